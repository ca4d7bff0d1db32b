//! This node's membership of a cluster: the replicated cluster database (openraft on
//! `<data-dir>/raft.redb`, run on a runtime thread of its own so the core can wait for a commit
//! with a deadline, as it waits for a local transaction), its identity and key, `keelson cluster
//! create`, proposals, and the cluster views. Every administrator change is validated by the engine
//! first and acknowledged only once committed; every node's engine follows committed entries
//! (`Engine::apply_records`). Not the heartbeat network (crates/netft) nor the raft storage
//! (crates/raft).

pub mod fence;
pub mod heartbeat;
pub mod identity;
mod launch;
pub mod settings;
// The failover wiring (issue 10) uses it; its argument and tests stand now.
#[allow(dead_code)]
pub mod takeover;
pub mod virtual_net;
pub mod witness;

use identity::{Identity, KeyFile};
use keelson_netft::interfaces::LocalInterface;
use keelson_proto::view;
use keelson_raft::openraft::Raft;
use keelson_raft::{
    Admission, Applied, ClusterClient, ClusterInfo, ClusterKey, ClusterNode, ClusterState,
    InterfaceRecord, NodeEntry, NodeId, RaftTiming, Request, Routing, Server, SharedState,
    TypeConfig, DEFAULT_NETFT_PORT,
};
use keelson_types::RecordChange;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// The cluster database's TCP port on each node's cluster addresses.
pub const RAFT_PORT: u16 = 3344;
/// Longest wait for a proposal to be committed (and applied here) before the request is refused.
const COMMIT_DEADLINE: Duration = Duration::from_secs(10);
/// How long a raft restarted with new timing is waited for to hold its state again.
const SETTLE_FOR: Duration = Duration::from_secs(2);
/// How long a restart of raft waits for peers' writes in flight through this node to be answered.
const QUIESCE_FOR: Duration = Duration::from_secs(2);
/// Most nodes in one cluster (WSFC's limit in the seed's era).
const MAX_NODES: usize = 16;
/// The raft id of the node that creates a cluster.
const FIRST_NODE_ID: NodeId = 1;

/// A node listed by `keelson cluster create`: its name and its addresses on the cluster networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub addrs: Vec<String>,
}

/// `keelson node join`: where the cluster is, its key file, and this node's name in it.
#[derive(Clone, Debug)]
pub struct JoinSpec {
    /// A member's address (`ADDR` or `ADDR:PORT`; the port defaults to RAFT_PORT).
    pub seed: String,
    pub key_file: std::path::PathBuf,
    pub name: String,
}

/// This node in its cluster.
pub struct Cluster {
    raft: Raft<TypeConfig>,
    /// The runtime raft runs on (its own thread).
    rt: Handle,
    view: SharedState,
    /// Every durable apply, in log order, until the core takes it.
    applied: Option<mpsc::UnboundedReceiver<Applied>>,
    identity: Identity,
    /// Makes forwarded writes and the administrative calls.
    client: ClusterClient,
    /// Answers the other nodes (held: dropping it stops serving); None only while raft restarts.
    #[allow(dead_code)]
    server: Option<Server>,
    /// The cluster key's bytes (NetFT derives its own key from them, as raft does).
    key: Vec<u8>,
    /// Where raft and forwarded requests reach each peer (its virtual address while the virtual
    /// adapter runs).
    routing: Routing,
    /// This node's raft endpoint as recorded: its first cluster address and the port listened on.
    endpoint: SocketAddr,
    /// Raft's timing in force (from the cluster's NetFT settings when raft started).
    timing: RaftTiming,
    /// How raft was started, to start it again with new timing.
    spec: launch::LaunchSpec,
    /// Where membership changes are told (`watch_membership`).
    membership_tx: Option<mpsc::UnboundedSender<heartbeat::Notice>>,
    /// The witness lease and voter, while the cluster has a witness.
    witness: witness::Witness,
}

/// What `start` needs besides the directory.
struct Start {
    identity: Identity,
    key: KeyFile,
    /// Where to listen, decided from the applied state (a restart) or given (create, join).
    listen: Listen,
}

enum Listen {
    At(SocketAddr),
    /// This node's recorded endpoint in the applied state.
    Recorded,
}

impl Cluster {
    /// The cluster this data directory belongs to, or None for a single node's directory.
    pub fn open(dir: &Path) -> Result<Option<Cluster>, String> {
        let Some(identity) = Identity::read(dir)? else {
            return Ok(None);
        };
        let raft_file = dir.join(keelson_raft::RAFT_FILE);
        if !raft_file.exists() {
            return Err(format!(
                "{} says this node is '{}' of cluster '{}', but its cluster database {} is missing; \
                 not starting",
                dir.join(identity::IDENTITY_FILE).display(),
                identity.node_name,
                identity.cluster,
                raft_file.display()
            ));
        }
        let key = identity::read_key(&identity::key_path(dir))?;
        let start = Start {
            identity,
            key,
            listen: Listen::Recorded,
        };
        Cluster::start(dir, start, None).map(Some)
    }

    /// Makes this node, with the configuration `records`, a new cluster of `nodes` (this node is the
    /// one named `me`; its cluster database listens on its first address, port `raft_port`).
    /// Nothing is left behind when it fails: the directory stays a single node's.
    pub fn create(
        dir: &Path,
        name: &str,
        nodes: &[NodeSpec],
        me: &str,
        raft_port: u16,
        virtual_subnet: Option<&str>,
        records: Vec<RecordChange>,
    ) -> Result<Cluster, String> {
        let mut info = check_nodes(name, nodes, me)?;
        if let Some(subnet) = virtual_subnet {
            info.virtual_subnet = subnet.to_string();
        }
        let subnet = virtual_net::VirtualSubnet::parse(&info.virtual_subnet)?;
        virtual_net::check_against(&subnet, &info)?;
        refuse_if_clustered(dir)?;
        let rt = raft_runtime()?;
        let local = block_on(&rt, keelson_netft::interfaces::local_interfaces())?
            .map_err(|e| format!("cannot list this node's interfaces: {e}"))?;
        let entry = info
            .nodes
            .get_mut(me)
            .expect("checked: this node is listed");
        entry.interfaces = interfaces_for(me, &entry.addrs, &local)?;
        let first: IpAddr = entry.addrs[0].parse().expect("checked: an address");
        let key = identity::create_key(dir, name)?;
        let start = Start {
            identity: Identity {
                cluster: name.to_string(),
                node_name: me.to_string(),
                node_id: FIRST_NODE_ID,
            },
            key,
            listen: Listen::At(SocketAddr::new(first, raft_port)),
        };
        let identity = start.identity.clone();
        let made = Cluster::start(dir, start, Some(rt))
            .and_then(|cluster| cluster.first_node(info, records).map(|()| cluster));
        finish(dir, &identity, made)
    }

    fn first_node(&self, mut info: ClusterInfo, records: Vec<RecordChange>) -> Result<(), String> {
        let me = self.identity.node_name.clone();
        let addr = self.endpoint.to_string();
        let entry = info
            .nodes
            .get_mut(&me)
            .expect("checked: this node is listed");
        entry.id = Some(FIRST_NODE_ID);
        entry.raft_addr = addr.clone();
        let member = ClusterNode { name: me, addr };
        let raft = self.raft.clone();
        self.block(async move {
            raft.initialize(BTreeMap::from([(FIRST_NODE_ID, member)]))
                .await
                .map_err(|e| format!("cannot initialise the cluster database: {e}"))
        })??;
        self.propose(Request::SetCluster(info))?;
        if !records.is_empty() {
            // The single node's configuration becomes the cluster's: nothing is lost.
            self.propose(Request::Changes(records))?;
        }
        Ok(())
    }

    /// Joins the cluster `spec` names: reserves an id with its leader, starts this node's cluster
    /// database under it, is admitted as a voter, and records its interfaces and endpoint. Nothing
    /// is left behind when it fails before admission.
    pub fn join(dir: &Path, spec: &JoinSpec, raft_port: u16) -> Result<Cluster, String> {
        refuse_if_clustered(dir)?;
        let key = identity::read_key(&spec.key_file)?;
        let seed = seed_addr(&spec.seed)?;
        let my_addr = local_addr_towards(seed)?;
        let rt = raft_runtime()?;
        let local = block_on(&rt, keelson_netft::interfaces::local_interfaces())?
            .map_err(|e| format!("cannot list this node's interfaces: {e}"))?;
        // The listening port is chosen now (it may be ephemeral): the reservation names it.
        let probe = std::net::TcpListener::bind(SocketAddr::new(my_addr, raft_port))
            .map_err(|e| format!("cannot listen on {my_addr}:{raft_port}: {e}"))?;
        let addr = probe
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        drop(probe);
        identity::install_key(dir, &key)?;
        let client = client_for(&key)?;
        let member = ClusterNode {
            name: spec.name.clone(),
            addr: addr.to_string(),
        };
        let reserve = {
            let (client, seed) = (client.clone(), seed.to_string());
            block_on(&rt, async move { client.join(&seed, member).await })?
        };
        let reservation = match reserve {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_file(identity::key_path(dir));
                return Err(format!("the cluster at {seed} refused this node: {e}"));
            }
        };
        let identity = Identity {
            cluster: key.cluster.clone(),
            node_name: spec.name.clone(),
            node_id: reservation.id,
        };
        let start = Start {
            identity: identity.clone(),
            key,
            listen: Listen::At(addr),
        };
        let made = Cluster::start(dir, start, Some(rt)).and_then(|cluster| {
            cluster.admitted(&reservation, &local)?;
            Ok(cluster)
        });
        finish(dir, &identity, made)
    }

    /// After `join`: admitted as a voter, caught up, and this node's entry filled in.
    fn admitted(
        &self,
        reservation: &keelson_raft::Reservation,
        local: &[LocalInterface],
    ) -> Result<(), String> {
        let (client, r) = (self.client.clone(), reservation.clone());
        self.block(async move { client.admit(&r).await })?
            .map_err(|e| format!("the cluster did not admit this node: {e}"))?;
        let (client, raft) = (self.client.clone(), self.raft.clone());
        self.block(async move { client.read_barrier(&raft).await })?
            .map_err(|e| format!("cannot catch up with the cluster: {e}"))?;
        let info = self
            .state()
            .cluster
            .ok_or("the cluster has no name and node list yet")?;
        let me = &self.identity.node_name;
        let mut entry = info
            .nodes
            .get(me)
            .cloned()
            .ok_or_else(|| format!("node '{me}' is not listed in cluster '{}'", info.name))?;
        entry.id = Some(self.identity.node_id);
        entry.raft_addr = self.endpoint.to_string();
        entry.interfaces = interfaces_for(me, &entry.addrs, local)?;
        self.propose(Request::PutNode(entry))?;
        Ok(())
    }

    fn start(dir: &Path, start: Start, rt: Option<Handle>) -> Result<Cluster, String> {
        let rt = match rt {
            Some(rt) => rt,
            None => raft_runtime()?,
        };
        let dir = dir.to_path_buf();
        let Start {
            identity,
            key,
            listen,
        } = start;
        let id = identity.node_id;
        let me = identity.node_name.clone();
        let cluster_name = key.cluster.clone();
        let raft_key = ClusterKey::new(&key.key).map_err(|e| format!("cluster key: {e}"))?;
        let key_bytes = key.key.clone();
        let routing = Routing::direct();
        let client = client_for(&key)?.with_routing(routing.clone());
        let spec = launch::LaunchSpec {
            dir,
            id,
            cluster_name,
            key: raft_key,
            routing: routing.clone(),
        };
        let endpoint = match listen {
            Listen::At(addr) => Some(addr),
            Listen::Recorded => None,
        };
        let launched = {
            let spec = spec.clone();
            block_on(
                &rt,
                async move { launch::launch(spec, endpoint, &me).await },
            )??
        };
        let witness = witness::Witness::start(witness::WitnessParts {
            rt: rt.clone(),
            raft: launched.raft.clone(),
            view: launched.view.clone(),
            routing: routing.clone(),
            hosted: launched.server.hosted(),
            client: client.clone(),
            key: key_bytes.clone(),
            cluster: identity.cluster.clone(),
            me: id,
            addr: launched.endpoint.to_string(),
        })?;
        Ok(Cluster {
            raft: launched.raft,
            rt,
            view: launched.view,
            applied: Some(launched.applied),
            identity,
            client,
            server: Some(launched.server),
            key: key_bytes,
            routing,
            endpoint: launched.endpoint,
            timing: launched.timing,
            spec,
            membership_tx: None,
            witness,
        })
    }

    /// Restarts raft with the timing the cluster's NetFT settings now call for, if that changed
    /// (`cluster set SameSubnetDelay=...`): openraft takes its timing only when it starts. The new
    /// channel of applies, for the core's loop, when it restarted. Costs an election when this
    /// node led.
    pub fn follow_timing(&mut self) -> Result<Option<mpsc::UnboundedReceiver<Applied>>, String> {
        let wanted = launch::timing_of(self.state().cluster.as_ref());
        if wanted == self.timing {
            return Ok(None);
        }
        let raft = self.raft.clone();
        let before = raft.metrics().borrow().clone();
        // A peer's write in flight through this node gets its answer before raft stops, or it
        // would read "raft stopped" for a change that may well be committed.
        if let Some(server) = &self.server {
            if !self.block(server.quiesce(QUIESCE_FOR))? {
                tracing::warn!(
                    component = "RAFT",
                    "a peer's write through this node was still unanswered after {} ms; the cluster database restarts anyway and that peer hears its outcome is unknown",
                    QUIESCE_FOR.as_millis()
                );
            }
        }
        self.block(async move { raft.shutdown().await })?
            .map_err(|e| format!("cannot stop the cluster database to retime it: {e}"))?;
        // Its port is listened on again by the new server.
        drop(self.server.take());
        let (spec, endpoint, me) = (
            self.spec.clone(),
            self.endpoint,
            self.identity.node_name.clone(),
        );
        let launched =
            self.block(async move { launch::launch(spec, Some(endpoint), &me).await })??;
        tracing::info!(
            component = "RAFT",
            "The cluster database follows the new NetFT settings: heartbeat {} ms, election timeout {}..{} ms (was {} ms, {}..{} ms)",
            launched.timing.heartbeat_ms,
            launched.timing.election_min_ms,
            launched.timing.election_max_ms,
            self.timing.heartbeat_ms,
            self.timing.election_min_ms,
            self.timing.election_max_ms
        );
        self.settle(&launched.raft, &before);
        self.witness.rebind(
            launched.raft.clone(),
            launched.view.clone(),
            launched.server.hosted(),
        );
        self.raft = launched.raft;
        self.view = launched.view;
        self.server = Some(launched.server);
        self.timing = launched.timing;
        if let Some(tx) = self.membership_tx.clone() {
            self.watch_membership(tx);
        }
        Ok(Some(launched.applied))
    }

    /// Waits, briefly, until a restarted raft holds the membership it held before and, if it led
    /// then, leads again with everything applied, so that what is read next is as before.
    fn settle(
        &self,
        raft: &Raft<TypeConfig>,
        before: &keelson_raft::openraft::RaftMetrics<NodeId, ClusterNode>,
    ) {
        let me = self.identity.node_id;
        let led = before.current_leader == Some(me);
        let membership = before.membership_config.log_id().to_owned();
        let raft = raft.clone();
        let settled = self.block(async move {
            raft.wait(Some(SETTLE_FOR))
                .metrics(
                    |m| {
                        m.membership_config.log_id() == &membership
                            && (!led
                                || (m.current_leader == Some(me)
                                    && m.last_applied.map(|l| l.index) == m.last_log_index))
                    },
                    "restarted raft settled",
                )
                .await
                .map(drop)
        });
        if !matches!(settled, Ok(Ok(()))) {
            tracing::warn!(
                component = "RAFT",
                "the restarted cluster database has not settled within {} ms; it goes on",
                SETTLE_FOR.as_millis()
            );
        }
    }

    /// Where raft reaches each peer; the heartbeat network moves it onto the virtual addresses.
    pub fn routing(&self) -> Routing {
        self.routing.clone()
    }

    /// Evicts node `name` (another node: the core refuses this one): out of raft's membership,
    /// its entry removed; its id is never given out again. The evicted node's id.
    pub fn evict(&self, name: &str) -> Result<NodeId, String> {
        let info = self.info();
        let entry = info
            .nodes
            .get(name)
            .ok_or_else(|| format!("no node named '{name}' in cluster '{}'", info.name))?;
        if let Some(id) = entry.id {
            let (client, me) = (self.client.clone(), self.endpoint.to_string());
            self.block(async move { client.evict(&me, id).await })?
                .map_err(|e| format!("the cluster did not evict node '{name}': {e}"))?;
        }
        self.propose(Request::RemoveNode(name.to_string()))?;
        Ok(entry.id.unwrap_or(0))
    }

    /// The cluster's name and node list as applied here.
    pub fn info(&self) -> ClusterInfo {
        self.state().cluster.unwrap_or_default()
    }

    /// The cluster key's bytes.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// This node's witness role.
    pub fn witness(&self) -> &witness::Witness {
        &self.witness
    }

    /// This node's name and raft id.
    pub fn me(&self) -> (&str, NodeId) {
        (&self.identity.node_name, self.identity.node_id)
    }

    /// Whether raft's latest membership has this node as a voter, and whether the cluster's node
    /// list (once there is one) still names it; None while raft has not loaded a membership.
    pub fn own_membership(&self) -> Option<(bool, bool)> {
        let metrics = self.raft.metrics().borrow().clone();
        metrics.membership_config.log_id().as_ref()?;
        let membership = metrics.membership_config.membership();
        let voter = membership
            .get_joint_config()
            .last()
            .is_some_and(|config| config.contains(&self.identity.node_id));
        let listed = self
            .state()
            .cluster
            .is_none_or(|info| info.nodes.contains_key(&self.identity.node_name));
        Some((voter, listed))
    }

    /// The raft leader this node knows of (it may be one that has just died).
    pub fn leader_id(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Asks raft to stand for election now (in the background; a leader ignores it).
    pub fn trigger_election(&self) {
        let raft = self.raft.clone();
        self.rt.spawn(async move {
            if let Err(e) = raft.trigger().elect().await {
                tracing::warn!(component = "RAFT", "cannot stand for election: {e}");
            }
        });
    }

    /// True when this node is raft's leader now.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.identity.node_id)
    }

    /// Sends `Notice::Membership` to `tx` whenever raft's membership or leader changes (also
    /// across a restart of raft with new timing).
    pub fn watch_membership(&mut self, tx: mpsc::UnboundedSender<heartbeat::Notice>) {
        self.membership_tx = Some(tx.clone());
        let mut metrics = self.raft.metrics();
        self.rt.spawn(async move {
            let mut last = None;
            loop {
                let now = {
                    let m = metrics.borrow_and_update();
                    (m.membership_config.log_id().to_owned(), m.current_leader)
                };
                if last != Some(now) {
                    last = Some(now);
                    if tx.send(heartbeat::Notice::Membership).is_err() {
                        return;
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// The voting nodes (id, name), from raft's membership (not the witness voter).
    pub fn voters(&self) -> Vec<(NodeId, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .filter(|(id, n)| voters.contains(id) && !n.is_hosted())
            .map(|(id, n)| (*id, n.name.clone()))
            .collect()
    }

    /// The applied cluster database, for the engine to start from.
    pub fn state(&self) -> ClusterState {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The group records as applied here (the engine may not have followed the latest yet).
    pub fn group_records(&self) -> Vec<keelson_types::GroupRecord> {
        let view = self.view.read().unwrap_or_else(|p| p.into_inner());
        view.groups.values().cloned().collect()
    }

    /// The cluster's name, nodes and properties with every change committed before this call
    /// applied here (a read barrier through the leader, retried through a moment without one):
    /// what a change is computed from.
    pub fn committed_info(&self) -> Result<ClusterInfo, String> {
        let (client, raft) = (self.client.clone(), self.raft.clone());
        self.block(async move { client.read_barrier(&raft).await })?
            .map_err(|e| format!("cannot read the cluster's latest state: {e}"))?;
        self.applied_info()
    }

    /// As `committed_info`, but one attempt only: for the core's own checks, which must not hold
    /// it through an election and try again on their own schedule.
    pub fn committed_info_now(&self) -> Result<ClusterInfo, String> {
        let (client, raft) = (self.client.clone(), self.raft.clone());
        self.block(async move { client.read_barrier_now(&raft).await })?
            .map_err(|e| format!("cannot read the cluster's latest state: {e}"))?;
        self.applied_info()
    }

    fn applied_info(&self) -> Result<ClusterInfo, String> {
        self.state()
            .cluster
            .ok_or_else(|| "the cluster has no name and node list yet".into())
    }

    /// The channel of durable applies (taken once, by the core's loop).
    pub fn take_applied(&mut self) -> Option<mpsc::UnboundedReceiver<Applied>> {
        self.applied.take()
    }

    /// Proposes `request` and waits until it is committed on a majority and applied here; its log
    /// index. A refusal or a timeout says so: then nothing is acknowledged.
    pub fn propose(&self, request: Request) -> Result<u64, String> {
        let (client, raft) = (self.client.clone(), self.raft.clone());
        let written = self.block(async move { client.write(&raft, request).await })?;
        let index = written
            .map_err(|e| format!("the cluster did not commit the change: {e}"))?
            .log_id
            .map(|l| l.index)
            .ok_or("the cluster's answer names no log entry")?;
        self.wait_applied(index)?;
        Ok(index)
    }

    /// Proposes record changes nobody waits for (those of internal events); a failure is logged.
    pub fn propose_in_background(&self, changes: Vec<RecordChange>) {
        self.write_in_background(Request::Changes(changes), |e| {
            tracing::error!(
                component = "RCM",
                "the cluster did not commit an internal change: {e}"
            )
        });
    }

    /// Proposes a request nobody waits for (a group's state report); a failure is logged.
    pub fn propose_request_in_background(&self, request: Request) {
        self.write_in_background(request, |e| {
            tracing::warn!(
                component = "RCM",
                "the cluster did not commit a group state report: {e}"
            )
        });
    }

    fn write_in_background(
        &self,
        request: Request,
        failed: impl FnOnce(keelson_raft::ClientError) + Send + 'static,
    ) {
        let (client, raft) = (self.client.clone(), self.raft.clone());
        self.rt.spawn(async move {
            if let Err(e) = client.write(&raft, request).await {
                failed(e);
            }
        });
    }

    fn wait_applied(&self, index: u64) -> Result<(), String> {
        let raft = self.raft.clone();
        self.block(async move {
            raft.wait(Some(COMMIT_DEADLINE))
                .applied_index_at_least(Some(index), "applied here")
                .await
                .map(drop)
                .map_err(|e| format!("entry {index} was not applied on this node: {e}"))
        })?
    }

    /// Runs `fut` on the raft runtime and waits for it, at most COMMIT_DEADLINE.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        block_on(&self.rt, fut)
    }

    /// Stops raft (the process is ending).
    pub fn shutdown(&self) {
        self.witness.release();
        let raft = self.raft.clone();
        let _ = self.block(async move { raft.shutdown().await });
    }

    /// `keelson cluster status`.
    pub fn status_view(&self) -> view::ClusterStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let names: BTreeMap<NodeId, String> = membership
            .nodes()
            .map(|(id, n)| (*id, n.name.clone()))
            .collect();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let leader = metrics
            .current_leader
            .and_then(|id| names.get(&id).cloned());
        // The leader counts the voters it replicates to; a follower knows only that a leader is.
        let votes = match &metrics.replication {
            Some(replication) => voters
                .iter()
                .filter(|v| {
                    **v == self.identity.node_id || replication.get(v).is_some_and(Option::is_some)
                })
                .count(),
            None if leader.is_some() => voters.len() / 2 + 1,
            None => 0,
        };
        let quorum_ok = leader.is_some() && votes > voters.len() / 2;
        view::ClusterStatus {
            applied_index: metrics.last_applied.map(|l| l.index).unwrap_or(0),
            leader: leader.unwrap_or_default(),
            name: self.identity.cluster.clone(),
            node: self.identity.node_name.clone(),
            node_id: self.identity.node_id,
            quorum: format!("node majority: {votes} of {} votes", voters.len()),
            quorum_ok,
            term: metrics.current_term,
            voters: voters
                .iter()
                .filter_map(|id| names.get(id).cloned())
                .collect(),
            witness: self.witness.status_line(&names),
            raft_heartbeat_ms: self.timing.heartbeat_ms,
            raft_election_min_ms: self.timing.election_min_ms,
            raft_election_max_ms: self.timing.election_max_ms,
        }
    }

    /// `keelson node list`, with the other nodes' states as the heartbeat network sees them.
    pub fn node_list_view(
        &self,
        peers: &BTreeMap<NodeId, keelson_netft::NodeState>,
        hearing: &BTreeSet<NodeId>,
    ) -> view::NodeList {
        let metrics = self.raft.metrics().borrow().clone();
        let state = self.state();
        let info = state.cluster.unwrap_or_default();
        let nodes = info
            .nodes
            .values()
            .map(|n| node_view(n, &self.identity, metrics.current_leader, peers, hearing))
            .collect();
        view::NodeList {
            cluster: info.name,
            nodes,
        }
    }
}

fn node_view(
    n: &NodeEntry,
    me: &Identity,
    leader: Option<NodeId>,
    peers: &BTreeMap<NodeId, keelson_netft::NodeState>,
    hearing: &BTreeSet<NodeId>,
) -> view::Node {
    use keelson_netft::NodeState as S;
    let state = match n.id {
        None => "Joining",
        Some(id) if id == me.node_id => "Up",
        Some(id) => match peers.get(&id) {
            // Heard here, and it hears this node: Up; heard, but it does not hear this node.
            Some(S::Up) if hearing.contains(&id) => "Up",
            Some(S::Up) => "OneWay",
            Some(S::Down) => "Down",
            Some(S::Unknown) | None => "Unknown",
        },
    };
    let state = if n.paused && state == "Up" {
        "Paused"
    } else {
        state
    };
    view::Node {
        addrs: n.addrs.clone(),
        id: n.id.unwrap_or(0),
        leader: n.id.is_some() && n.id == leader,
        name: n.name.clone(),
        paused: n.paused,
        state: state.into(),
    }
}

/// A runtime of its own for raft, on a thread that lives as long as the process.
fn raft_runtime() -> Result<Handle, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the cluster database's runtime: {e}"))?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("raft".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the cluster database's thread: {e}"))?;
    Ok(handle)
}

/// Runs `fut` on `rt` and waits for its result from this (non-raft) thread, at most
/// COMMIT_DEADLINE.
fn block_on<T: Send + 'static>(
    rt: &Handle,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv_timeout(COMMIT_DEADLINE).map_err(|_| {
        format!(
            "the cluster database did not answer within {} s",
            COMMIT_DEADLINE.as_secs()
        )
    })
}

/// Refuses a directory that already is a cluster node's (or holds a stray raft file).
fn refuse_if_clustered(dir: &Path) -> Result<(), String> {
    if let Some(me) = Identity::read(dir)? {
        return Err(format!("this node is already in cluster '{}'", me.cluster));
    }
    let raft_file = dir.join(keelson_raft::RAFT_FILE);
    if raft_file.exists() {
        return Err(format!(
            "{} exists although this node is in no cluster: move it aside first",
            raft_file.display()
        ));
    }
    Ok(())
}

/// Writes node.json when `made` succeeded (the commit point); otherwise removes what was created.
fn finish(
    dir: &Path,
    identity: &Identity,
    made: Result<Cluster, String>,
) -> Result<Cluster, String> {
    match made.and_then(|cluster| identity.write(dir).map(|()| cluster)) {
        Ok(cluster) => Ok(cluster),
        Err(e) => {
            let _ = std::fs::remove_file(dir.join(keelson_raft::RAFT_FILE));
            let _ = std::fs::remove_file(identity::key_path(dir));
            Err(e)
        }
    }
}

fn client_for(file: &KeyFile) -> Result<ClusterClient, String> {
    let key = ClusterKey::new(&file.key).map_err(|e| format!("cluster key: {e}"))?;
    Ok(ClusterClient::new(key, &file.cluster, COMMIT_DEADLINE))
}

/// Only nodes listed at `cluster create`, not yet members, joining from one of their listed
/// addresses, may reserve an id.
pub(crate) fn admission(view: SharedState) -> Admission {
    Admission(Arc::new(move |node: &ClusterNode| {
        let state = view.read().unwrap_or_else(|p| p.into_inner());
        let info = state
            .cluster
            .as_ref()
            .ok_or("this cluster has no node list yet")?;
        let entry = info.nodes.get(&node.name).ok_or_else(|| {
            let listed: Vec<&str> = info.nodes.keys().map(String::as_str).collect();
            format!(
                "node '{}' is not listed in cluster '{}' (listed: {})",
                node.name,
                info.name,
                listed.join(", ")
            )
        })?;
        if entry.id.is_some() {
            return Err(format!("node '{}' is already a member", node.name));
        }
        let ip = node
            .addr
            .parse::<SocketAddr>()
            .map(|a| a.ip().to_string())
            .map_err(|_| format!("'{}' is not an address and port", node.addr))?;
        if !entry.addrs.contains(&ip) {
            return Err(format!(
                "node '{}' joins from {ip}, which is not one of its listed addresses ({})",
                node.name,
                entry.addrs.join(", ")
            ));
        }
        Ok(())
    }))
}

/// This node's endpoint as the applied state records it.
pub(crate) fn recorded_endpoint(view: &SharedState, me: &str) -> Result<SocketAddr, String> {
    let state = view.read().unwrap_or_else(|p| p.into_inner());
    let entry = state
        .cluster
        .as_ref()
        .and_then(|c| c.nodes.get(me))
        .ok_or_else(|| format!("the cluster database has no entry for this node '{me}'"))?;
    entry.raft_addr.parse().map_err(|_| {
        format!(
            "this node's recorded endpoint '{}' is not an address",
            entry.raft_addr
        )
    })
}

/// `ADDR` or `ADDR:PORT` of a member.
fn seed_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, RAFT_PORT))
        .map_err(|_| format!("--cluster {text:?}: expected an address or address:port"))
}

/// The local address this node reaches `seed` from (a connected UDP socket sends nothing).
fn local_addr_towards(seed: SocketAddr) -> Result<IpAddr, String> {
    let any: SocketAddr = if seed.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let socket =
        std::net::UdpSocket::bind(any).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(seed)
        .map_err(|e| format!("no route to {seed}: {e}"))?;
    socket
        .local_addr()
        .map(|a| a.ip())
        .map_err(|e| format!("cannot read the local address towards {seed}: {e}"))
}

/// The interfaces holding `addrs`, each of which must be one of this node's addresses.
fn interfaces_for(
    me: &str,
    addrs: &[String],
    local: &[LocalInterface],
) -> Result<Vec<InterfaceRecord>, String> {
    addrs
        .iter()
        .map(|a| {
            let ip: IpAddr = a
                .parse()
                .map_err(|_| format!("'{a}' is not an IP address"))?;
            let i = local.iter().find(|i| i.addr == ip).ok_or_else(|| {
                format!("address {ip} given for this node '{me}' is not an address of this node")
            })?;
            Ok(InterfaceRecord {
                adapter: i.adapter.clone(),
                index: i.index,
                mac: i.mac.clone(),
                addr: ip,
                prefix_len: i.prefix_len,
            })
        })
        .collect()
}

/// The cluster `keelson cluster create` describes, checked: a valid name, 1..=16 nodes with valid,
/// distinct names and addresses, and this node among them.
pub fn check_nodes(name: &str, nodes: &[NodeSpec], me: &str) -> Result<ClusterInfo, String> {
    keelson_types::check_name("cluster", name)?;
    if nodes.is_empty() {
        return Err("a cluster needs at least one node (--node NAME=ADDR[,ADDR...])".into());
    }
    if nodes.len() > MAX_NODES {
        return Err(format!(
            "a cluster has at most {MAX_NODES} nodes; {} were given",
            nodes.len()
        ));
    }
    let mut seen_addrs = BTreeMap::new();
    let mut entries = BTreeMap::new();
    for node in nodes {
        keelson_types::check_name("node", &node.name)?;
        if node.addrs.is_empty() {
            return Err(format!("node '{}' has no address", node.name));
        }
        for addr in &node.addrs {
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("node '{}': '{addr}' is not an IP address", node.name))?;
            if let Some(other) = seen_addrs.insert(ip, node.name.clone()) {
                return Err(format!(
                    "address {ip} is given to both node '{other}' and node '{}'",
                    node.name
                ));
            }
        }
        let id = (node.name == me).then_some(FIRST_NODE_ID);
        let entry = NodeEntry {
            name: node.name.clone(),
            addrs: node.addrs.clone(),
            id,
            interfaces: Vec::new(),
            raft_addr: String::new(),
            paused: false,
        };
        if entries.insert(node.name.clone(), entry).is_some() {
            return Err(format!("node '{}' is listed twice", node.name));
        }
    }
    if !entries.contains_key(me) {
        let listed: Vec<&str> = entries.keys().map(String::as_str).collect();
        return Err(format!(
            "this node is '{me}', which is not among the nodes listed ({}); name it with --node {me}=ADDR",
            listed.join(", ")
        ));
    }
    Ok(ClusterInfo {
        name: name.to_string(),
        nodes: entries,
        netft_port: DEFAULT_NETFT_PORT,
        virtual_subnet: keelson_raft::DEFAULT_VIRTUAL_SUBNET.to_string(),
        properties: BTreeMap::new(),
        witness: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, addrs: &[&str]) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_cluster_lists_every_node_and_gives_this_one_the_first_id() {
        let nodes = [
            node("n1", &["192.0.2.1", "198.51.100.1"]),
            node("n2", &["192.0.2.2"]),
        ];
        let info = check_nodes("prod", &nodes, "n1").unwrap();
        assert_eq!(info.name, "prod");
        assert_eq!(info.nodes["n1"].id, Some(FIRST_NODE_ID));
        assert_eq!(info.nodes["n2"].id, None);
        assert_eq!(info.nodes["n1"].addrs, vec!["192.0.2.1", "198.51.100.1"]);
    }

    #[test]
    fn bad_node_lists_are_refused_with_the_reason() {
        let cases: [(&[NodeSpec], &str, &str); 5] = [
            (&[], "n1", "at least one node"),
            (
                &[node("n1", &["192.0.2.1"])],
                "me",
                "not among the nodes listed (n1)",
            ),
            (
                &[node("n1", &["nope"])],
                "n1",
                "'nope' is not an IP address",
            ),
            (
                &[node("n1", &["192.0.2.1"]), node("n2", &["192.0.2.1"])],
                "n1",
                "given to both node 'n1' and node 'n2'",
            ),
            (
                &[node("n1", &["192.0.2.1"]), node("n1", &["192.0.2.2"])],
                "n1",
                "listed twice",
            ),
        ];
        for (nodes, me, want) in cases {
            let e = check_nodes("prod", nodes, me).unwrap_err();
            assert!(e.contains(want), "{e} (wanted {want})");
        }
        assert!(check_nodes("bad\u{202e}name", &[node("n1", &["192.0.2.1"])], "n1").is_err());
        let many: Vec<NodeSpec> = (0..17)
            .map(|i| node(&format!("n{i}"), &[&format!("192.0.2.{}", i + 1)]))
            .collect();
        assert!(check_nodes("prod", &many, "n0")
            .unwrap_err()
            .contains("at most 16"));
    }

    #[test]
    fn seeds_take_the_default_port_and_bad_ones_are_named() {
        assert_eq!(
            seed_addr("192.0.2.1").unwrap(),
            "192.0.2.1:3344".parse().unwrap()
        );
        assert_eq!(
            seed_addr("192.0.2.1:4000").unwrap(),
            "192.0.2.1:4000".parse().unwrap()
        );
        assert_eq!(
            seed_addr("[2001:db8::1]:5").unwrap(),
            "[2001:db8::1]:5".parse().unwrap()
        );
        assert!(seed_addr("node-a").unwrap_err().contains("\"node-a\""));
    }
}
