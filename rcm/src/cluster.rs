//! This node's membership of a cluster: the replicated cluster database (openraft on
//! `<data-dir>/raft.redb`, run on a runtime thread of its own so the core can wait for a commit
//! with a deadline, as it waits for a local transaction), its identity and key, `keelson cluster
//! create`, proposals, and the cluster views. Every administrator change is validated by the engine
//! first and acknowledged only once committed; every node's engine follows committed entries
//! (`Engine::apply_records`). Not the heartbeat network (crates/netft) nor the raft storage
//! (crates/raft).

mod alone;
pub mod identity;

use identity::Identity;
use keelson_proto::view;
use keelson_raft::openraft::{Config, Raft};
use keelson_raft::{
    Applied, ClusterInfo, ClusterNode, ClusterState, NodeEntry, NodeId, Request, SharedState,
    TypeConfig,
};
use keelson_types::RecordChange;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// The cluster database's TCP port on each node's cluster addresses.
pub const RAFT_PORT: u16 = 3344;
/// Longest wait for a proposal to be committed (and applied here) before the request is refused.
const COMMIT_DEADLINE: Duration = Duration::from_secs(10);
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

/// This node in its cluster.
pub struct Cluster {
    raft: Raft<TypeConfig>,
    /// The runtime raft runs on (its own thread).
    rt: Handle,
    view: SharedState,
    /// Every durable apply, in log order, until the core takes it.
    applied: Option<mpsc::UnboundedReceiver<Applied>>,
    identity: Identity,
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
        identity::read_key(&identity::key_path(dir))?;
        Cluster::start(dir, identity).map(Some)
    }

    /// Makes this node, with the configuration `records`, a new cluster of `nodes` (this node is the
    /// one named `me`). Nothing is left behind when it fails: the directory stays a single node's.
    pub fn create(
        dir: &Path,
        name: &str,
        nodes: &[NodeSpec],
        me: &str,
        records: Vec<RecordChange>,
    ) -> Result<Cluster, String> {
        let info = check_nodes(name, nodes, me)?;
        if Identity::read(dir)?.is_some() {
            return Err("this node is already in a cluster".into());
        }
        let raft_file = dir.join(keelson_raft::RAFT_FILE);
        if raft_file.exists() {
            return Err(format!(
                "{} exists although this node is in no cluster: move it aside first",
                raft_file.display()
            ));
        }
        identity::create_key(dir)?;
        let identity = Identity {
            cluster: name.to_string(),
            node_name: me.to_string(),
            node_id: FIRST_NODE_ID,
        };
        match Cluster::first_node(dir, identity.clone(), info, records) {
            Ok(cluster) => {
                identity.write(dir)?;
                Ok(cluster)
            }
            Err(e) => {
                // Nothing was acknowledged: the node stays as it was.
                let _ = std::fs::remove_file(&raft_file);
                let _ = std::fs::remove_file(identity::key_path(dir));
                Err(e)
            }
        }
    }

    fn first_node(
        dir: &Path,
        identity: Identity,
        info: ClusterInfo,
        records: Vec<RecordChange>,
    ) -> Result<Cluster, String> {
        let me = &info.nodes[&identity.node_name];
        let member = ClusterNode {
            name: identity.node_name.clone(),
            addr: raft_endpoint(&me.addrs[0]),
        };
        let cluster = Cluster::start(dir, identity)?;
        let raft = cluster.raft.clone();
        cluster.block(async move {
            raft.initialize(BTreeMap::from([(FIRST_NODE_ID, member)]))
                .await
                .map_err(|e| format!("cannot initialise the cluster database: {e}"))
        })??;
        cluster.propose(Request::SetCluster(info))?;
        if !records.is_empty() {
            // The single node's configuration becomes the cluster's: nothing is lost.
            cluster.propose(Request::Changes(records))?;
        }
        Ok(cluster)
    }

    fn start(dir: &Path, identity: Identity) -> Result<Cluster, String> {
        let rt = raft_runtime()?;
        let dir = dir.to_path_buf();
        let id = identity.node_id;
        let (raft, view, applied) = block_on(&rt, async move {
            let (log, mut sm) = keelson_raft::open(&dir)
                .map_err(|e| format!("cannot open the cluster database: {e}"))?;
            let view = sm.view();
            let applied = sm.follow();
            let raft = Raft::new(id, raft_config()?, alone::Alone, log, sm)
                .await
                .map_err(|e| format!("cannot start the cluster database: {e}"))?;
            Ok::<_, String>((raft, view, applied))
        })??;
        let cluster = Cluster {
            raft,
            rt,
            view,
            applied: Some(applied),
            identity,
        };
        Ok(cluster)
    }

    /// The applied cluster database, for the engine to start from.
    pub fn state(&self) -> ClusterState {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The channel of durable applies (taken once, by the core's loop).
    pub fn take_applied(&mut self) -> Option<mpsc::UnboundedReceiver<Applied>> {
        self.applied.take()
    }

    /// Proposes `request` and waits until it is committed on a majority and applied here; its log
    /// index. A refusal or a timeout says so: then nothing is acknowledged.
    pub fn propose(&self, request: Request) -> Result<u64, String> {
        let raft = self.raft.clone();
        let written = self.block(async move { raft.client_write(request).await })?;
        let index = written
            .map_err(|e| format!("the cluster did not commit the change: {e}"))?
            .log_id
            .index;
        self.wait_applied(index)?;
        Ok(index)
    }

    /// Proposes record changes nobody waits for (those of internal events); a failure is logged.
    pub fn propose_in_background(&self, changes: Vec<RecordChange>) {
        let raft = self.raft.clone();
        self.rt.spawn(async move {
            if let Err(e) = raft.client_write(Request::Changes(changes)).await {
                tracing::error!(
                    component = "RCM",
                    "the cluster did not commit an internal change: {e}"
                );
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
            witness: "none".into(),
        }
    }

    /// `keelson node list`.
    pub fn node_list_view(&self) -> view::NodeList {
        let metrics = self.raft.metrics().borrow().clone();
        let state = self.state();
        let info = state.cluster.unwrap_or_default();
        let nodes = info
            .nodes
            .values()
            .map(|n| node_view(n, &self.identity, metrics.current_leader))
            .collect();
        view::NodeList {
            cluster: info.name,
            nodes,
        }
    }
}

fn node_view(n: &NodeEntry, me: &Identity, leader: Option<NodeId>) -> view::Node {
    let state = match n.id {
        None => "Joining",
        Some(id) if id == me.node_id => "Up",
        // Other members' liveness comes from the heartbeat network, which is not wired yet.
        Some(_) => "Unknown",
    };
    view::Node {
        addrs: n.addrs.clone(),
        id: n.id.unwrap_or(0),
        leader: n.id.is_some() && n.id == leader,
        name: n.name.clone(),
        state: state.into(),
    }
}

/// The raft endpoint on a cluster address.
fn raft_endpoint(addr: &str) -> String {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{RAFT_PORT}"),
        _ => format!("{addr}:{RAFT_PORT}"),
    }
}

/// Raft's timing: its heartbeat well inside NetFT's detection, and an election only after NetFT
/// has had time to find and use another path (SameSubnetDelay x SameSubnetThreshold at their
/// defaults is 5 s), so losing one path never starts an election.
fn raft_config() -> Result<Arc<Config>, String> {
    let config = Config {
        cluster_name: "keelson".into(),
        heartbeat_interval: 500,
        election_timeout_min: 6_000,
        election_timeout_max: 9_000,
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| format!("raft configuration: {e}"))
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
    fn ipv6_raft_endpoints_are_bracketed() {
        assert_eq!(raft_endpoint("192.0.2.1"), "192.0.2.1:3344");
        assert_eq!(raft_endpoint("2001:db8::1"), "[2001:db8::1]:3344");
    }
}
