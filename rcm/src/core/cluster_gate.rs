//! The core's side of the cluster: administrator changes go through the replicated database
//! (validated by the engine's dry run, proposed, acknowledged once committed and applied here),
//! committed entries are followed by the engine, and `keelson cluster create` turns this node and
//! its configuration into a one-node cluster that others can join. Not raft itself (cluster.rs).

use super::Core;
use crate::cluster::{Cluster, JoinSpec, NodeSpec};
use keelson_engine::{Command, Event};
use keelson_proto::ControlReply;
use keelson_raft::{Applied, Request};
use keelson_types::RecordChange;

impl Core {
    /// An administrator event on a cluster node: refused here with nothing changed, or committed on
    /// a majority and applied here before it counts.
    pub(super) fn admin_in_cluster(&mut self, event: Event) -> Result<(), String> {
        let planned = match self.engine.admin_changes(&event) {
            Some(planned) => planned.map_err(|e| e.to_string())?,
            None => {
                self.feed(event);
                return Ok(());
            }
        };
        if planned.is_empty() {
            // A runtime action with nothing to replicate (a simulated failure): this node's alone.
            let now = self.now();
            let commands = self.engine.handle(now, event).map_err(|e| e.to_string())?;
            self.execute(commands);
            return Ok(());
        }
        self.admit_cluster_change()?;
        let planned: Vec<RecordChange> = planned
            .into_iter()
            .map(|c| match c {
                RecordChange::PutGroup(g) if self.engine.group_record(&g.name).is_none() => {
                    RecordChange::PutGroup(self.with_own_state(g))
                }
                other => other,
            })
            .collect();
        let cluster = self
            .cluster
            .as_ref()
            .expect("admin_in_cluster is for cluster nodes");
        cluster
            .propose(Request::Changes(planned))
            .map_err(|e| format!("{e}; nothing was changed"))?;
        self.catch_up();
        Ok(())
    }

    /// Follows every durable apply told so far.
    pub(super) fn catch_up(&mut self) {
        while let Some(step) = self.applied.as_mut().and_then(|rx| rx.try_recv().ok()) {
            self.follow(step);
        }
    }

    /// Makes the engine follow one durable apply of the cluster database. What it would persist is
    /// already committed, so its Persist commands are dropped.
    pub(super) fn follow(&mut self, step: Applied) {
        let changes = match step {
            Applied::Changes { changes, .. } => changes,
            Applied::Snapshot { state, .. } => {
                let changes = self.changes_to_reach(&state);
                self.refresh_cluster_network();
                self.placement_nodes_changed();
                changes
            }
            Applied::Cluster { .. } => {
                self.refresh_cluster_network();
                self.placement_nodes_changed();
                return;
            }
        };
        let now = self.now();
        let mut commands = self.engine.apply_records(now, &changes);
        commands.retain(|c| !matches!(c, Command::Persist(_)));
        self.execute(commands);
        self.placement_committed(&changes);
        self.report_new_placements(&changes);
    }

    /// The record changes that turn the engine's configuration into `state`'s.
    fn changes_to_reach(&self, state: &keelson_raft::ClusterState) -> Vec<RecordChange> {
        let (groups, resources) = self.engine.records();
        let mut changes: Vec<RecordChange> = resources
            .iter()
            .filter(|r| !state.resources.contains_key(&r.name))
            .map(|r| RecordChange::DeleteResource(r.name.clone()))
            .collect();
        changes.extend(
            groups
                .iter()
                .filter(|g| !state.groups.contains_key(&g.name))
                .map(|g| RecordChange::DeleteGroup(g.name.clone())),
        );
        changes.extend(state.groups.values().cloned().map(RecordChange::PutGroup));
        changes.extend(
            state
                .resources
                .values()
                .cloned()
                .map(RecordChange::PutResource),
        );
        changes
    }

    /// `keelson cluster create NAME --node NAME=ADDR[,ADDR...]...`.
    pub(super) fn cluster_create(
        &mut self,
        name: String,
        nodes: Vec<(String, Vec<String>)>,
        virtual_subnet: Option<String>,
    ) -> Result<ControlReply, String> {
        if let Some(cluster) = &self.cluster {
            return Err(format!(
                "this node is already in cluster '{}'",
                cluster.status_view().name
            ));
        }
        let specs: Vec<NodeSpec> = nodes
            .into_iter()
            .map(|(name, addrs)| NodeSpec { name, addrs })
            .collect();
        let (groups, resources) = self.engine.records();
        // Every group stays where it is: on this node, now by name.
        let node = self.node.clone();
        let records: Vec<RecordChange> = groups
            .into_iter()
            .map(|g| {
                RecordChange::PutGroup(self.with_own_state(keelson_engine::GroupRecord {
                    owner: node.clone(),
                    ..g
                }))
            })
            .chain(resources.into_iter().map(RecordChange::PutResource))
            .collect();
        let kept = records.len();
        let made = Cluster::create(
            &self.data_dir,
            &name,
            &specs,
            &node,
            self.raft_port,
            virtual_subnet.as_deref(),
            records,
        );
        let mut cluster = made?;
        self.engine.set_local_node(&node);
        self.applied = cluster.take_applied();
        cluster.watch_membership(self.notices_tx.clone());
        self.cluster = Some(cluster);
        self.catch_up();
        self.refresh_cluster_network();
        tracing::info!(
            component = "RCM",
            "Node '{}' created cluster '{name}' ({} nodes listed); its configuration ({kept} records) is the cluster's",
            self.node,
            specs.len()
        );
        Ok(ControlReply::Done {
            message: format!(
                "cluster '{name}' created: node '{}' is its first member, with this node's configuration \
                 ({kept} groups and resources); {} listed nodes can join",
                self.node,
                specs.len() - 1
            ),
        })
    }

    /// `keelson node join --cluster ADDR --key FILE [--name NAME]`: this node (which must hold no
    /// configuration of its own) joins and takes the cluster's.
    pub(super) fn node_join(
        &mut self,
        seed: String,
        key_file: String,
        name: Option<String>,
    ) -> Result<ControlReply, String> {
        if let Some(cluster) = &self.cluster {
            return Err(format!(
                "this node is already in cluster '{}'",
                cluster.status_view().name
            ));
        }
        let (groups, resources) = self.engine.records();
        if !groups.is_empty() || !resources.is_empty() {
            return Err(format!(
                "this node has {} groups and {} resources of its own; a joining node takes the \
                 cluster's configuration, so delete them first (or create the cluster from this node)",
                groups.len(),
                resources.len()
            ));
        }
        let name = name.unwrap_or_else(|| self.node.clone());
        keelson_types::check_name("node", &name)?;
        let spec = JoinSpec {
            seed,
            key_file: key_file.into(),
            name: name.clone(),
        };
        let mut cluster = Cluster::join(&self.data_dir, &spec, self.raft_port)?;
        self.node = name.clone();
        self.engine.set_local_node(&name);
        self.applied = cluster.take_applied();
        cluster.watch_membership(self.notices_tx.clone());
        let status = cluster.status_view();
        self.cluster = Some(cluster);
        self.catch_up();
        self.refresh_cluster_network();
        tracing::info!(
            component = "RCM",
            "Node '{name}' joined cluster '{}' as node {}",
            status.name,
            status.node_id
        );
        Ok(ControlReply::Done {
            message: format!(
                "node '{name}' joined cluster '{}' as node {}",
                status.name, status.node_id
            ),
        })
    }

    /// Starts, restarts or stops the heartbeat network to match the cluster's members, and counts
    /// the votes again.
    pub(super) fn refresh_cluster_network(&mut self) {
        self.check_membership();
        if self.membership.evicted().is_some() {
            return;
        }
        self.follow_raft_timing();
        self.refresh_placer();
        let Some(cluster) = &self.cluster else {
            return;
        };
        let info = cluster.info();
        let (me, _) = cluster.me();
        let settings = match crate::cluster::settings::netft_settings(&info) {
            Ok(settings) => settings,
            Err(e) => {
                tracing::error!(component = "NETFT", "{e}; the defaults are used");
                keelson_netft::NetftSettings::default()
            }
        };
        let adapter = crate::cluster::virtual_net::plan(&info, me).unwrap_or_else(|e| {
            tracing::error!(component = "NETFT", "no virtual adapter: {e}");
            None
        });
        match crate::cluster::heartbeat::topology_of(&info, me) {
            Ok(Some(topology)) => {
                let timing = self.takeover_timing_for(&settings);
                let contact = timing.contact;
                let plan = crate::cluster::heartbeat::Plan {
                    topology,
                    settings,
                    adapter,
                    contact,
                };
                if !self.heartbeat.as_ref().is_some_and(|h| h.runs(&plan)) {
                    let started = crate::cluster::heartbeat::Heartbeat::start(
                        self.heartbeat.take(),
                        &self.data_dir,
                        plan,
                        cluster.key(),
                        info.netft_port,
                        cluster.routing(),
                        self.notices_tx.clone(),
                    );
                    match started {
                        Ok(h) => {
                            self.heartbeat = Some(h);
                            log_takeover_timing(&timing);
                        }
                        Err(e) => tracing::error!(
                            component = "NETFT",
                            "cannot start the heartbeat network: {e}"
                        ),
                    }
                }
            }
            Ok(None) => self.heartbeat = None,
            Err(e) => tracing::error!(component = "NETFT", "{e}"),
        }
        self.recount();
    }

    /// Restarts raft when the cluster's NetFT settings call for other timing; its applies then
    /// come on a new channel.
    fn follow_raft_timing(&mut self) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        match cluster.follow_timing() {
            Ok(Some(applied)) => {
                // What the stopped raft applied and the core has not taken yet comes first.
                if let Some(mut old) = self.applied.replace(applied) {
                    while let Ok(step) = old.try_recv() {
                        self.follow(step);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(
                component = "RAFT",
                "{e}; the cluster database may be stopped on this node: restart keelson-rcm"
            ),
        }
    }

    /// Counts the votes this node can reach; on losing quorum, event 1177.
    pub(super) fn recount(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let (_, me) = cluster.me();
        let was_in = self
            .quorum
            .last()
            .is_some_and(keelson_quorum::QuorumVerdict::in_quorum);
        let input = keelson_quorum::QuorumInput {
            this_node: me,
            nodes: cluster
                .voters()
                .into_iter()
                .map(|(id, name)| keelson_quorum::NodeVoter { id, name })
                .collect(),
            has_witness: cluster.witness().has_vote(),
            // Reached both ways: it is heard here and its heartbeats say it hears this node, so a
            // one-way cut counts as a lost node on both sides. A voter the heartbeats have said
            // nothing definite of yet (it just joined, or has not said whether it hears this node)
            // keeps a node that is in quorum in it, and does not bring one into it.
            reachable: cluster
                .voters()
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| self.counts_towards_quorum(*id, was_in))
                .collect(),
            witness_reachable: cluster.witness().reachable(
                &self.peers,
                &self.hearing,
                &self.notices_tx,
            ),
        };
        let verdict = input.count();
        let now_in = verdict.in_quorum();
        if self.quorum.update(verdict).is_some() {
            let why = self.quorum.admit().err().unwrap_or_default();
            tracing::error!(component = "RCM", "quorum lost: {why}");
            // The engine terminates every group here and raises event 1177.
            self.quorum_changed(false);
        } else if now_in && !was_in {
            self.quorum_changed(true);
        }
    }

    /// Whether voter `id` counts towards this node's quorum (see `recount`).
    fn counts_towards_quorum(&self, id: u64, was_in: bool) -> bool {
        use keelson_netft::NodeState as S;
        match self.peers.get(&id) {
            Some(S::Down) => false,
            _ if self.deaf.contains(&id) => false,
            _ if self.out_of_contact.contains(&id) => false,
            Some(S::Up) if self.hearing.contains(&id) => true,
            _ => was_in,
        }
    }

    /// What the heartbeat network reported.
    pub(super) fn on_notice(&mut self, notice: crate::cluster::heartbeat::Notice) {
        use crate::cluster::heartbeat::Notice;
        match notice {
            Notice::Log {
                level,
                component,
                message,
            } => crate::event_at!(level, component = component.as_str(), "{message}"),
            Notice::Event(e) => {
                let level = match e.level {
                    keelson_netft::EventLevel::Critical => keelson_engine::EventLevel::Critical,
                    keelson_netft::EventLevel::Error => keelson_engine::EventLevel::Error,
                    keelson_netft::EventLevel::Warning => keelson_engine::EventLevel::Warning,
                    keelson_netft::EventLevel::Information => {
                        keelson_engine::EventLevel::Information
                    }
                };
                self.events.raise(e.id, level, e.message, None, None);
            }
            Notice::Node { id, state } => {
                self.peers.insert(id, state);
                self.recount();
                self.placement_member_changed(id);
            }
            Notice::HearsUs { id, hears } => {
                if hears {
                    self.hearing.insert(id);
                    self.deaf.remove(&id);
                } else {
                    self.hearing.remove(&id);
                    self.deaf.insert(id);
                }
                self.recount();
                self.placement_member_changed(id);
            }
            Notice::Contact { id, in_contact } => {
                if in_contact {
                    self.out_of_contact.remove(&id);
                } else {
                    self.out_of_contact.insert(id);
                }
                self.recount();
                self.placement_member_changed(id);
            }
            Notice::LeaseExpired { id, down_at } => self.placement_lease_expired(id, down_at),
            Notice::Clock => self.placement_clock(),
            Notice::Elect {
                old_leader,
                attempt,
            } => self.election_due(old_leader, attempt),
            Notice::Fence(input) => self.fence_notice(input),
            Notice::CatchUp => self.retry_catch_up(),
            Notice::Stopped(reason) => {
                tracing::error!(
                    component = "NETFT",
                    "the heartbeat network stopped: {reason}"
                )
            }
            Notice::Membership => {
                self.check_membership();
                self.recount();
                self.refresh_placer();
            }
        }
    }

    /// `keelson network list`: every route with its state, priority, last heartbeat age and
    /// losses.
    pub(super) fn network_list_view(&self) -> Result<keelson_proto::view::NetworkList, String> {
        let cluster = self.in_cluster()?;
        let info = cluster.info();
        let name_of = |id: keelson_netft::NodeId| {
            info.nodes
                .values()
                .find(|n| n.id == Some(u64::from(id.0)))
                .map(|n| n.name.clone())
                .unwrap_or_else(|| id.to_string())
        };
        let routes = self
            .heartbeat
            .as_ref()
            .and_then(|h| h.status())
            .map(|status| status.routes)
            .unwrap_or_default()
            .into_iter()
            .map(|r| keelson_proto::view::Route {
                last_heartbeat_age_ms: r.last_heard_age_ms,
                local: r.key.local.to_string(),
                lost: r.lost,
                network: r.network,
                node: name_of(r.node),
                priority: r.priority,
                received: r.received,
                remote: r.key.remote.to_string(),
                state: format!("{:?}", r.state),
            })
            .collect();
        let virtual_adapter = self
            .heartbeat
            .as_ref()
            .and_then(|h| h.adapter_status())
            .map(|a| adapter_view(&a, &name_of));
        Ok(keelson_proto::view::NetworkList {
            cluster: info.name.clone(),
            routes,
            virtual_adapter,
        })
    }

    /// `keelson validate`: the network checks over every member's reported interfaces and this
    /// node's routes.
    pub(super) fn validation_view(&self) -> Result<keelson_proto::view::Validation, String> {
        use keelson_netft::validate::{validate, NodeReport, ReportedInterface, RouteReport};
        let cluster = self.in_cluster()?;
        let info = cluster.info();
        let (me, my_id) = cluster.me();
        let topology = crate::cluster::heartbeat::topology_of(&info, me)?;
        let network_of = |addr: std::net::IpAddr| {
            topology
                .as_ref()
                .and_then(|t| {
                    t.nodes
                        .iter()
                        .flat_map(|n| n.interfaces.iter())
                        .find(|i| i.addr == addr)
                })
                .map(|i| i.network.clone())
                .unwrap_or_else(|| "Cluster Network 1".into())
        };
        let nodes: Vec<NodeReport> = info
            .nodes
            .values()
            .filter_map(|n| Some((n, n.id?)))
            .map(|(n, id)| NodeReport {
                id: crate::cluster::heartbeat::netft_id(id),
                name: n.name.clone(),
                interfaces: n
                    .interfaces
                    .iter()
                    .map(|i| ReportedInterface {
                        adapter: i.adapter.clone(),
                        mac: parse_mac(&i.mac),
                        // The kernel's index is per node: qualified by the node it is unique.
                        interface_id: format!("{}/{}", n.name, i.index),
                        addresses: vec![i.addr],
                        network: network_of(i.addr),
                    })
                    .collect(),
            })
            .collect();
        let observer = crate::cluster::heartbeat::netft_id(my_id);
        let routes: Vec<RouteReport> = self
            .heartbeat
            .as_ref()
            .and_then(|h| h.status())
            .map(|s| s.routes)
            .unwrap_or_default()
            .iter()
            .map(|r| RouteReport::from_status(observer, r))
            .collect();
        let findings: Vec<keelson_proto::view::Finding> = validate(&nodes, &routes)
            .into_iter()
            .map(|f| keelson_proto::view::Finding {
                interface: f.interface.unwrap_or_default(),
                message: f.message,
                node: f.node,
                severity: f.severity.to_string(),
            })
            .collect();
        let errors = findings.iter().filter(|f| f.severity == "ERROR").count();
        Ok(keelson_proto::view::Validation {
            errors,
            warnings: findings.len() - errors,
            findings,
        })
    }

    /// `keelson node evict NAME`: refused while that node owns groups (they would have nowhere to
    /// run) or while this node has no quorum.
    pub(super) fn node_evict(&mut self, name: String) -> Result<ControlReply, String> {
        self.in_cluster()?;
        if name == self.node {
            return Err(format!(
                "node '{name}' is this node: evict it from another member"
            ));
        }
        let owned: Vec<String> = self
            .engine
            .groups()
            .into_iter()
            .filter(|g| g.owner == name)
            .map(|g| g.name)
            .collect();
        if !owned.is_empty() {
            return Err(format!(
                "node '{name}' owns group(s) {}: delete them first (moving groups to another node \
                 comes with failover)",
                owned.join(", ")
            ));
        }
        self.admit_cluster_change()?;
        let id = self.in_cluster()?.evict(&name)?;
        self.peers.remove(&id);
        self.hearing.remove(&id);
        self.deaf.remove(&id);
        self.out_of_contact.remove(&id);
        self.catch_up();
        self.refresh_cluster_network();
        tracing::info!(
            component = "RCM",
            "Node '{name}' (id {id}) was evicted from the cluster"
        );
        Ok(ControlReply::Done {
            message: format!("node '{name}' evicted; its id {id} is never given out again"),
        })
    }

    /// The cluster views, or why there are none.
    pub(super) fn in_cluster(&self) -> Result<&Cluster, String> {
        self.cluster.as_ref().ok_or_else(|| {
            "this node is not in a cluster: `keelson cluster create NAME --node NAME=ADDR` makes it one"
                .to_string()
        })
    }
}

/// `aa:bb:cc:dd:ee:ff` as bytes; None for none (or not one).
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    bytes.try_into().ok()
}

/// The virtual adapter as `keelson network list` shows it.
fn adapter_view(
    a: &keelson_netft::AdapterStatus,
    name_of: &dyn Fn(keelson_netft::NodeId) -> String,
) -> keelson_proto::view::VirtualAdapter {
    let c = &a.counters;
    keelson_proto::view::VirtualAdapter {
        name: a.name.clone(),
        address: format!("{}/{}", a.address, a.prefix_len),
        mtu: a.mtu,
        paths: a
            .paths
            .iter()
            .map(|(node, path)| keelson_proto::view::AdapterPath {
                node: name_of(*node),
                route: path
                    .as_ref()
                    .map(|p| format!("{} -> {}", p.key.local, p.key.remote))
                    .unwrap_or_default(),
                priority: path.as_ref().map_or(0, |p| p.priority),
            })
            .collect(),
        sent: c.sent,
        delivered: c.delivered,
        no_route: c.no_route,
        refused: c.forged
            + c.replayed
            + c.malformed
            + c.wrong_sender
            + c.spoofed_source
            + c.not_for_us,
    }
}

/// One line on how a lost node's groups are taken over with the timing the heartbeats now run.
fn log_takeover_timing(t: &crate::cluster::takeover::TakeoverTiming) {
    match t.contact {
        Some(c) => tracing::info!(
            component = "RCM",
            "Takeover timing: a node that has not heard a majority for {} ms gives up its groups (contact lease; it says it hears a peer for {} ms), so a node taken Down (at the earliest {} ms after it was lost) has its groups started elsewhere after {} ms more",
            c.window_ms,
            c.hears_ms,
            t.earliest_down_ms,
            t.takeover_wait_ms
        ),
        None => tracing::info!(
            component = "RCM",
            "Takeover timing: quorum follows the node states (no contact lease fits Delay {} ms, Threshold {} and this node's terminate budget), so a node taken Down (at the earliest {} ms after it was lost) has its groups started elsewhere after {} ms more",
            t.delay_ms,
            t.threshold,
            t.earliest_down_ms,
            t.takeover_wait_ms
        ),
    }
}
