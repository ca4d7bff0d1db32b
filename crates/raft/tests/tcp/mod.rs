//! Shared by the TCP transport tests: a node (its own temporary directory and redb file, its raft
//! on the TCP network, its server on an ephemeral loopback port), bootstrapping and joining
//! through the Join/Admit RPCs, and bounded waits.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keelson_netft::NetftSettings;
use keelson_raft::openraft::Raft;
use keelson_raft::{
    raft_timing, serve, ClusterClient, ClusterKey, ClusterNode, Network, NodeId, RaftTiming,
    Server, ServerConfig, SharedState, TypeConfig,
};
use keelson_types::{GroupRecord, RecordChange};
use tokio::net::TcpListener;

pub const CLUSTER: &str = "test-cluster";
/// Every wait's deadline.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn key() -> ClusterKey {
    ClusterKey::new(b"the-test-cluster-key-0123456789").unwrap()
}

pub fn wrong_key() -> ClusterKey {
    ClusterKey::new(b"a-different-cluster-key-98765").unwrap()
}

/// Test timing through the NetFT test-only override: 100 ms heartbeats (route down after 3 missed),
/// so raft heartbeats every 50 ms and followers wait 600..800 ms (plus openraft's lease).
pub fn timing() -> RaftTiming {
    raft_timing(&NetftSettings::test_only_override(100, 3).unwrap())
}

pub fn client() -> ClusterClient {
    ClusterClient::new(key(), CLUSTER, WAIT)
}

/// One running node.
pub struct Node {
    pub id: NodeId,
    pub raft: Raft<TypeConfig>,
    pub view: SharedState,
    pub server: Option<Server>,
    pub member: ClusterNode,
    _dir: tempfile::TempDir,
}

/// A listener on an ephemeral loopback port and the member it makes.
pub async fn listen(name: &str) -> (TcpListener, ClusterNode) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let member = ClusterNode {
        name: name.to_string(),
        addr: listener.local_addr().unwrap().to_string(),
    };
    (listener, member)
}

/// Starts node `id` (fresh storage) serving on `listener`.
pub async fn start(id: NodeId, listener: TcpListener, member: ClusterNode) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (log, sm) = keelson_raft::open(dir.path()).unwrap();
    let view = sm.view();
    let t = timing();
    let network = Network::new(id, key(), CLUSTER, &t);
    let raft = Raft::new(id, t.config(CLUSTER).unwrap(), network, log, sm)
        .await
        .unwrap();
    let mut config = ServerConfig::new(CLUSTER);
    config.admit_timeout = WAIT;
    let server = serve(listener, raft.clone(), key(), config).unwrap();
    Node {
        id,
        raft,
        view,
        server: Some(server),
        member,
        _dir: dir,
    }
}

/// The first node: id 1, a cluster of itself, its own leader.
pub async fn bootstrap() -> Node {
    let (listener, member) = listen("node1").await;
    let node = start(1, listener, member.clone()).await;
    node.raft
        .initialize(BTreeMap::from([(1, member)]))
        .await
        .unwrap();
    node.raft
        .wait(Some(WAIT))
        .current_leader(1, "node 1 leads its one-node cluster")
        .await
        .unwrap();
    node
}

/// A new node joining through the member at `seed`: reserve an id, start, be admitted.
pub async fn join(seed: &str, name: &str) -> Node {
    let (listener, member) = listen(name).await;
    let reservation = client().join(seed, member.clone()).await.unwrap();
    let node = start(reservation.id, listener, member).await;
    client().admit(&reservation).await.unwrap();
    node
}

/// Stops a node as a crash would look to its peers: its server's connections close, its raft
/// stops.
pub async fn kill(node: &mut Node) {
    drop(node.server.take());
    node.raft.shutdown().await.unwrap();
}

pub fn group(name: &str) -> Vec<RecordChange> {
    vec![RecordChange::PutGroup(GroupRecord {
        name: name.into(),
        want_online: true,
        ..Default::default()
    })]
}

/// Waits until `node` has applied log index `index`.
pub async fn applied(node: &Node, index: u64) {
    node.raft
        .wait(Some(WAIT))
        .applied_index_at_least(Some(index), "applied")
        .await
        .unwrap_or_else(|e| panic!("node {} did not apply {index}: {e}", node.id));
}

/// Polls `cond` every 5 ms until it holds or `WAIT` passes.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
