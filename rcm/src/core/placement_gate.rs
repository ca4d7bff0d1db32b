//! The core's facet for group placement across nodes. On the raft leader it runs the placement
//! core (`keelson_engine::Placer`): fed with every member's state (Up when reached both ways,
//! Down from NetFT), each Down member's lease expiry (the takeover wait after it went Down) and
//! every committed record; what it decides (a group's new owner) is committed through raft like
//! any change. On every node it tells the engine when quorum is lost (terminate everything, before
//! the quorum lease ends) and regained, and it decides, with a placement core of its own built from
//! the committed records, what its own reports (a group released, a group failed) and an
//! administrator's `group move` commit: every decision is a group record with a new placement
//! epoch, so one built on an older view loses to a newer one. Not the placement rules (crates/engine/src/placement), not
//! the hand-off each node obeys (the engine), not the timing argument (cluster/takeover.rs).

use super::Core;
use crate::cluster::takeover::TakeoverTiming;
use keelson_engine::placement::{PlacementEvent, Placer};
use keelson_engine::{Command, PersistChange, PlacementReport};
use keelson_types::RecordChange;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The leader's placement state.
#[derive(Default)]
pub(super) struct Placement {
    placer: Option<Placer>,
    /// The members the placer was built for (it is rebuilt when they change).
    members: Vec<String>,
    /// When each member was last seen going Down (its lease expiry is timed from then), on
    /// every node: a node that becomes leader goes on from its own observation.
    down_since: BTreeMap<u64, Instant>,
    /// Members whose lease ran out since they went Down (until they come Up again).
    expired: std::collections::BTreeSet<u64>,
    /// The local hour the placer was last told (failback windows).
    hour: Option<u32>,
    /// The hour could not be read (logged once).
    hour_unreadable: bool,
    /// The nodes the placer was told are paused.
    paused: std::collections::BTreeSet<String>,
    /// Quorum came back but the catch-up with the cluster failed: a retry is scheduled.
    catch_up_pending: bool,
}

/// The members an administrator paused, as the cluster's node entries say.
fn paused_nodes(info: &keelson_raft::ClusterInfo) -> std::collections::BTreeSet<String> {
    info.nodes
        .values()
        .filter(|n| n.paused)
        .map(|n| n.name.clone())
        .collect()
}

/// How soon a failed catch-up after regaining quorum is tried again.
const CATCH_UP_RETRY: Duration = Duration::from_millis(200);

/// How often the local hour is looked at (a failback window opens within this of its hour).
const CLOCK_EVERY: Duration = Duration::from_secs(60);

impl Core {
    /// Starts or stops the placement core as this node becomes or stops being the raft leader.
    pub(super) fn refresh_placer(&mut self) {
        let leads = self.cluster.as_ref().is_some_and(|c| c.is_leader());
        if !leads {
            self.placement.placer = None;
            self.fence_not_leading();
            return;
        }
        if self.placement.placer.is_none() || self.placement.members != self.members() {
            self.start_placer();
        }
    }

    /// The cluster's members (nodes with an id), by name.
    fn members(&self) -> Vec<String> {
        let Some(cluster) = &self.cluster else {
            return Vec::new();
        };
        cluster
            .info()
            .nodes
            .values()
            .filter(|n| n.id.is_some())
            .map(|n| n.name.clone())
            .collect()
    }

    /// Ticks `Notice::Clock` every CLOCK_EVERY for as long as the process runs.
    pub(super) fn start_clock(&self) {
        let tx = self.notices_tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CLOCK_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                if tx.send(crate::cluster::heartbeat::Notice::Clock).is_err() {
                    return;
                }
            }
        });
    }

    /// A minute passed: the leader's placer hears the hour when it changed (a failback window may
    /// have opened).
    pub(super) fn placement_clock(&mut self) {
        if self.placement.placer.is_some() {
            self.tell_hour();
        }
    }

    /// The local hour, or None (logged once) when it cannot be read: failback windows then stay
    /// closed, as the placer treats an unknown hour.
    fn local_hour(&mut self) -> Option<u32> {
        match keelson_sys::clock::local_hour() {
            Ok(h) => Some(h),
            Err(e) => {
                if !std::mem::replace(&mut self.placement.hour_unreadable, true) {
                    tracing::error!(
                        component = "RCM",
                        "cannot read the local hour ({e}): groups with a failback window do not fail back"
                    );
                }
                None
            }
        }
    }

    fn start_placer(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let info = cluster.info();
        let members = self.members();
        // As applied: the engine may not have followed the latest entries (those that made the
        // cluster, say) yet.
        let groups = cluster.group_records();
        self.placement.placer = Some(Placer::new(&members, &groups));
        self.placement.members = members.clone();
        self.placement.hour = None;
        tracing::info!(
            component = "RCM",
            "This node leads: it places the cluster's {} groups on its {} members",
            groups.len(),
            members.len()
        );
        let me = self.node.clone();
        self.place(PlacementEvent::NodeUp { node: me });
        let states: Vec<(u64, String, bool)> = info
            .nodes
            .values()
            .filter_map(|n| n.id.map(|id| (id, n.name.clone())))
            .filter(|(_, name)| *name != self.node)
            .map(|(id, name)| (id, name, self.reached_both_ways(id)))
            .collect();
        self.placement.paused = paused_nodes(&info);
        for node in self.placement.paused.clone() {
            self.place(PlacementEvent::Pause { node, drain: false });
        }
        for (id, node, up) in states {
            if up {
                self.place(PlacementEvent::NodeUp { node });
            } else if self.peers.get(&id) == Some(&keelson_netft::NodeState::Down) {
                self.place(PlacementEvent::NodeDown { node: node.clone() });
                // The new leader fences it (it cannot know whether the old one did) before its
                // lease expiry can reach the placer (fence_gate.rs).
                self.fence_node_down(id);
                // Every node times a Down member's lease from when it saw it go, leader or not:
                // a new leader (elected because the old one is the node lost) goes on with its
                // own timer, or moves the groups at once if it has run out already.
                if self.placement.expired.contains(&id) {
                    self.fence_lease_expired(node);
                } else if !self.placement.down_since.contains_key(&id) {
                    // It never saw it go (it started after): timed from now.
                    self.start_lease_timer(id);
                }
            }
        }
    }

    /// A member is Up for placement when it is heard here and hears this node.
    pub(super) fn is_reached_both_ways(&self, id: u64) -> bool {
        self.reached_both_ways(id)
    }

    fn reached_both_ways(&self, id: u64) -> bool {
        self.peers.get(&id) == Some(&keelson_netft::NodeState::Up)
            && self.hearing.contains(&id)
            && !self.out_of_contact.contains(&id)
    }

    /// Member `id`'s state may have changed: tells the placer (Up both ways, or Down).
    pub(super) fn placement_member_changed(&mut self, id: u64) {
        let Some(name) = self.member_name(id) else {
            return;
        };
        let up = self.reached_both_ways(id);
        let down = self.peers.get(&id) == Some(&keelson_netft::NodeState::Down);
        if up {
            self.placement.down_since.remove(&id);
            self.placement.expired.remove(&id);
            self.fence_node_up(id);
            self.place(PlacementEvent::NodeUp { node: name });
        } else if down && !self.placement.down_since.contains_key(&id) {
            self.start_lease_timer(id);
            self.fence_node_down(id);
            self.nudge_election(id);
            self.place(PlacementEvent::NodeDown { node: name });
        }
    }

    /// Member `id`'s lease, timed from when it went Down (`down_at`), has run out: if it is still
    /// Down since then, its groups may move.
    pub(super) fn placement_lease_expired(&mut self, id: u64, down_at: Instant) {
        if self.placement.down_since.get(&id) != Some(&down_at) {
            return;
        }
        if let Err(why) = self.quorum.admit() {
            // Out of quorum this node cannot tell a lost member from its own isolation (a leader
            // that hears nobody still reaches its followers one way): the member may be running
            // its groups with the majority. Its lease is timed again once this node is back.
            tracing::warn!(
                component = "RCM",
                "Node '{}' (id {id}) has been Down here for {} ms, but this node is out of quorum ({why}): its groups do not move",
                self.member_name(id).unwrap_or_default(),
                down_at.elapsed().as_millis()
            );
            return;
        }
        self.placement.expired.insert(id);
        if let Some(node) = self.member_name(id) {
            tracing::info!(
                component = "RCM",
                "Node '{node}' (id {id}) has been Down for {} ms: its quorum lease has expired, its groups may move",
                down_at.elapsed().as_millis()
            );
            // Once it is fenced too, when a FenceAgent is set (fence_gate.rs).
            self.fence_lease_expired(node);
        }
    }

    /// The cluster's node entries changed: the leader's placer hears of nodes paused or resumed.
    pub(super) fn placement_nodes_changed(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if self.placement.placer.is_none() {
            return;
        }
        let now = paused_nodes(&cluster.info());
        let was = std::mem::replace(&mut self.placement.paused, now.clone());
        for node in now.difference(&was).cloned() {
            self.place(PlacementEvent::Pause { node, drain: false });
        }
        for node in was.difference(&now).cloned() {
            self.place(PlacementEvent::Resume { node });
        }
    }

    /// Records committed through raft: the placer follows them.
    pub(super) fn placement_committed(&mut self, changes: &[RecordChange]) {
        if self.placement.placer.is_some() && !changes.is_empty() {
            self.place(PlacementEvent::Committed(changes.to_vec()));
        }
    }

    fn start_lease_timer(&mut self, id: u64) {
        self.start_lease_timer_after(id, Duration::ZERO);
    }

    /// As `start_lease_timer`, with `extra` before the takeover wait.
    fn start_lease_timer_after(&mut self, id: u64, extra: Duration) {
        let down_at = Instant::now();
        self.placement.down_since.insert(id, down_at);
        let wait = extra + self.takeover_wait();
        let tx = self.notices_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = tx.send(crate::cluster::heartbeat::Notice::LeaseExpired { id, down_at });
        });
    }

    /// The cluster's heartbeat settings as applied here (the defaults outside a cluster, or when
    /// the stored ones do not read).
    pub(super) fn netft_settings(&self) -> keelson_netft::NetftSettings {
        self.cluster
            .as_ref()
            .and_then(|c| crate::cluster::settings::netft_settings(&c.info()).ok())
            .unwrap_or_default()
    }

    /// How long after a member went Down its groups may start elsewhere: the takeover argument's
    /// wait for the cluster's settings, and long enough for a frozen node's hosts to have fenced
    /// themselves (their lease and TERMINATE budget) too.
    fn takeover_wait(&self) -> Duration {
        let lease = self.pool.host_lease().unwrap_or_default();
        let budget = lease.terminate_within().as_millis() as u64;
        let timing = self.takeover_timing_for(&self.netft_settings());
        Duration::from_millis(timing.wait_with_hosts(lease.valid_for().as_millis() as u64, budget))
    }

    /// The takeover timing for `settings` with this node's terminate budget (its hosts' fence
    /// budget): the contact lease its heartbeats run with and the wait after a Down.
    pub(super) fn takeover_timing_for(
        &self,
        settings: &keelson_netft::NetftSettings,
    ) -> TakeoverTiming {
        let lease = self.pool.host_lease().unwrap_or_default();
        TakeoverTiming::new(settings, lease.terminate_within().as_millis() as u64)
    }

    pub(super) fn member_name(&self, id: u64) -> Option<String> {
        let info = self.cluster.as_ref()?.info();
        info.nodes
            .values()
            .find(|n| n.id == Some(id))
            .map(|n| n.name.clone())
    }

    /// One event to the placer; what it decides is carried out (records committed through raft,
    /// events raised, lines logged).
    pub(super) fn place(&mut self, event: PlacementEvent) {
        if self.placement.placer.is_none() {
            return;
        }
        self.tell_hour();
        self.place_now(event);
    }

    /// The placer hears the local hour when it is not the one it was last told.
    fn tell_hour(&mut self) {
        if let Some(h) = self
            .local_hour()
            .filter(|h| self.placement.hour != Some(*h))
        {
            self.placement.hour = Some(h);
            self.place_now(PlacementEvent::Hour(h));
        }
    }

    fn place_now(&mut self, event: PlacementEvent) {
        let now = self.now();
        let Some(placer) = self.placement.placer.as_mut() else {
            return;
        };
        match placer.handle(now, event) {
            Ok(commands) => self.execute(commands),
            Err(e) => tracing::warn!(component = "RCM", "placement: {e}"),
        }
    }

    /// The catch-up after regaining quorum failed (no leader yet, a peer not reachable): it is
    /// tried again in CATCH_UP_RETRY, for as long as this node stays in quorum.
    fn schedule_catch_up(&mut self) {
        self.placement.catch_up_pending = true;
        let tx = self.notices_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(CATCH_UP_RETRY).await;
            let _ = tx.send(crate::cluster::heartbeat::Notice::CatchUp);
        });
    }

    /// A catch-up retry is due: the groups run once caught up, unless quorum was lost meanwhile
    /// (its next regain catches up again).
    pub(super) fn retry_catch_up(&mut self) {
        if !self.placement.catch_up_pending {
            return;
        }
        if self.quorum.admit().is_ok() {
            self.run_once_caught_up();
        } else {
            self.placement.catch_up_pending = false;
        }
    }

    /// Quorum changed on this node: losing it terminates every group here at once (event 1177),
    /// regaining it lets the groups it owns run again.
    pub(super) fn quorum_changed(&mut self, in_quorum: bool) {
        if !in_quorum {
            let commands = self.engine.lose_quorum(self.now());
            self.execute(commands);
            return;
        }
        // A member seen Down while this node was out of quorum may have been in the majority all
        // along (this node was the one cut off): its Down counts only once it has lasted a whole
        // detection window from now, when this node's view counts again (a live member reached
        // now is Up again well within it), and its lease is timed from then. Found by t21: with
        // no wait after a Down (the contact lease), a leader that heard nobody moved a group the
        // moment it was back, before the heartbeats of the group's owner, which had kept
        // quorum, were taken in.
        let down: Vec<u64> = self.placement.down_since.keys().copied().collect();
        let window = self
            .takeover_timing_for(&self.netft_settings())
            .earliest_down_ms;
        for id in down {
            self.placement.expired.remove(&id);
            self.start_lease_timer_after(id, Duration::from_millis(window));
        }
        self.run_once_caught_up();
    }

    /// Back in quorum: the groups run only once caught up with the cluster (another node may own
    /// them by now); when that cannot be done yet, it is tried again shortly.
    fn run_once_caught_up(&mut self) {
        if let Some(cluster) = &self.cluster {
            if let Err(e) = cluster.committed_info_now() {
                if !self.placement.catch_up_pending {
                    tracing::warn!(
                        component = "RCM",
                        "quorum is back but this node cannot catch up with the cluster yet ({e}); its groups wait (tried again every {} ms)",
                        CATCH_UP_RETRY.as_millis()
                    );
                }
                self.schedule_catch_up();
                return;
            }
        }
        self.placement.catch_up_pending = false;
        self.catch_up();
        let commands = self.engine.regain_quorum(self.now());
        self.execute(commands);
    }
}

impl Core {
    /// Before a host's death is handled: a host that fenced itself on a cluster node means this
    /// node's rcm was frozen past the host lease, long enough for the majority to have taken it
    /// Down and moved its groups, while its own views (peers, hearing, owners) are from before the
    /// freeze. So it loses quorum first (every group terminated, event 1177), and the death then
    /// restarts nothing here. True when it did.
    pub(super) fn fence_loses_quorum(&mut self, died: Option<&keelson_host::HostDied>) -> bool {
        let fenced =
            died.is_some_and(|d| matches!(d.cause, keelson_host::DeathCause::Fenced { .. }));
        if !fenced || self.cluster.is_none() {
            return false;
        }
        tracing::error!(
            component = "RCM",
            "a resource host fenced itself: this node was frozen past its host lease and may have lost quorum meanwhile; it terminates its groups and runs them again only after a fresh count and a catch-up with the cluster"
        );
        self.quorum_changed(false);
        true
    }

    /// After the fenced host's death is handled: the count starts afresh (as if never held), so
    /// quorum is regained through the usual catch-up as soon as a count finds it.
    pub(super) fn recount_after_fence(&mut self) {
        self.quorum = keelson_quorum::QuorumGate::new();
        self.recount();
    }

    /// A placement core built from the committed records and this node's view of the members.
    fn local_placer(&self) -> Placer {
        let groups = match &self.cluster {
            Some(cluster) => cluster.group_records(),
            None => self.engine.records().0,
        };
        let mut placer = Placer::new(&self.members(), &groups);
        let now = self.now();
        let mut feed = vec![PlacementEvent::NodeUp {
            node: self.node.clone(),
        }];
        if let Ok(h) = keelson_sys::clock::local_hour() {
            feed.push(PlacementEvent::Hour(h));
        }
        if let Some(cluster) = &self.cluster {
            for n in cluster.info().nodes.values() {
                let (Some(id), false) = (n.id, n.name == self.node) else {
                    continue;
                };
                let node = n.name.clone();
                if self.reached_both_ways(id) {
                    feed.push(PlacementEvent::NodeUp { node });
                } else if self.peers.get(&id) == Some(&keelson_netft::NodeState::Down) {
                    feed.push(PlacementEvent::NodeDown { node });
                }
            }
            feed.extend(
                paused_nodes(&cluster.info())
                    .into_iter()
                    .map(|node| PlacementEvent::Pause { node, drain: false }),
            );
        }
        for event in feed {
            // A fresh core's view: what it would commit for these is the leader's to decide.
            let _ = placer.handle(now, event);
        }
        placer
    }

    /// Decides `event` with a local placement core: the records to commit, and the rest of what
    /// it decided (events, log lines). The refusal names the group or node.
    pub(super) fn decide_locally(
        &mut self,
        event: PlacementEvent,
    ) -> Result<(Vec<PersistChange>, Vec<Command>), String> {
        let now = self.now();
        let commands = self
            .local_placer()
            .handle(now, event)
            .map_err(|e| e.to_string())?;
        let (persist, rest): (Vec<Command>, Vec<Command>) = commands
            .into_iter()
            .partition(|c| matches!(c, Command::Persist(_)));
        let changes = persist
            .into_iter()
            .filter_map(|c| match c {
                Command::Persist(change) => Some(change),
                _ => None,
            })
            .collect();
        Ok((changes, rest))
    }

    /// Decides `event` with a local placement core; its records are committed (waited for when
    /// `wait`), its events raised. The refusal names the group or node.
    fn place_locally(&mut self, event: PlacementEvent, wait: bool) -> Result<usize, String> {
        let (changes, rest) = self.decide_locally(event)?;
        let count = changes.len();
        if let Some(cluster) = &self.cluster {
            if wait {
                cluster
                    .propose(keelson_raft::Request::Changes(changes))
                    .map_err(|e| format!("{e}; nothing was changed"))?;
            } else if !changes.is_empty() {
                cluster.propose_in_background(changes);
            }
        }
        self.execute(rest);
        Ok(count)
    }

    /// This node's engine reports a hand-off step or a failed group: committed from here.
    pub(super) fn report_placement(&mut self, report: PlacementReport) {
        if let Err(e) = self.place_locally(PlacementEvent::from(report), false) {
            tracing::warn!(component = "RCM", "placement report not taken: {e}");
        }
    }

    /// `keelson group move G [--to N]`.
    pub(super) fn group_move(
        &mut self,
        group: String,
        to: Option<String>,
    ) -> Result<keelson_proto::ControlReply, String> {
        self.in_cluster()?;
        self.admit_cluster_change()?;
        let shown = to.clone().unwrap_or_else(|| "the best other node".into());
        self.place_locally(
            PlacementEvent::Move {
                group: group.clone(),
                to,
            },
            true,
        )?;
        self.catch_up();
        let owner = self
            .engine
            .group_record(&group)
            .map(|g| g.owner)
            .unwrap_or_default();
        tracing::info!(
            component = "RCM",
            "Administrator moves group '{group}' to {shown}: its owner is now '{owner}'"
        );
        Ok(keelson_proto::ControlReply::Done {
            message: format!(
                "group '{group}' moving to node '{owner}' (offline on its previous owner first)"
            ),
        })
    }
}
