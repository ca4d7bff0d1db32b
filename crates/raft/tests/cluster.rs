//! A real openraft cluster in one process over the redb stores: three nodes joined by an in-memory
//! network (each RPC is handed to the target's `Raft` handle, which queues it to that node's core
//! task over its channel), then a fourth added as a learner from a snapshot and promoted to voter, and
//! a node removed whose id is never handed out again.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keelson_raft::openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
};
use keelson_raft::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use keelson_raft::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use keelson_raft::openraft::{Config, Raft};
use keelson_raft::{ClusterNode, NodeId, Request, SharedState, TypeConfig};
use keelson_types::{GroupRecord, RecordChange, ResourceRecord};

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, ClusterNode, E>>;

/// Every running node's raft handle, by id: the in-memory network.
#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>>,
}

impl Router {
    fn get(&self, id: NodeId) -> Result<Raft<TypeConfig>, NetworkError> {
        let nodes = self.nodes.lock().unwrap();
        nodes.get(&id).cloned().ok_or_else(|| {
            let e = std::io::Error::new(std::io::ErrorKind::NotFound, format!("no node {id}"));
            NetworkError::new(&e)
        })
    }
}

struct Connection {
    target: NodeId,
    router: Router,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &ClusterNode) -> Connection {
        Connection {
            target,
            router: self.clone(),
        }
    }
}

impl Connection {
    async fn call<T, E, F, Fut>(&self, rpc: F) -> Rpc<T, E>
    where
        E: std::error::Error,
        F: FnOnce(Raft<TypeConfig>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let raft = self.router.get(self.target).map_err(RPCError::Network)?;
        rpc(raft)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        self.call(|raft| async move { raft.append_entries(rpc).await })
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(|raft| async move { raft.install_snapshot(rpc).await })
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        self.call(|raft| async move { raft.vote(rpc).await }).await
    }
}

/// One node: its raft, a view of its applied database, and its data directory.
struct Node {
    raft: Raft<TypeConfig>,
    view: SharedState,
    _dir: tempfile::TempDir,
}

const WAIT: Duration = Duration::from_secs(10);

fn config() -> Arc<Config> {
    let config = Config {
        cluster_name: "test".into(),
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Default::default()
    };
    Arc::new(config.validate().unwrap())
}

fn member(id: NodeId) -> ClusterNode {
    ClusterNode {
        name: format!("node{id}"),
        addr: format!("169.254.0.{id}:3344"),
    }
}

async fn start(id: NodeId, router: &Router) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (log, sm) = keelson_raft::open(dir.path()).unwrap();
    let view = sm.view();
    let raft = Raft::new(id, config(), router.clone(), log, sm)
        .await
        .unwrap();
    router.nodes.lock().unwrap().insert(id, raft.clone());
    Node {
        raft,
        view,
        _dir: dir,
    }
}

fn changes() -> Vec<RecordChange> {
    vec![
        RecordChange::PutGroup(GroupRecord {
            name: "web".into(),
            want_online: true,
            ..Default::default()
        }),
        RecordChange::PutResource(ResourceRecord {
            name: "ip".into(),
            type_name: "dummy".into(),
            group: "web".into(),
            want_online: true,
            ..Default::default()
        }),
    ]
}

/// A new node id from the leader's allocator, and the index of the entry that allocated it.
async fn allocate(leader: &Raft<TypeConfig>) -> (NodeId, u64) {
    let written = leader.client_write(Request::AllocateNodeId).await.unwrap();
    let id = written.data.allocated.expect("an allocated id");
    (id, written.log_id.index)
}

async fn wait_applied(node: &Node, index: u64, what: &str) {
    node.raft
        .wait(Some(WAIT))
        .applied_index_at_least(Some(index), what)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_a_batch_add_a_fourth_and_never_reuse_a_removed_id() {
    tokio::time::timeout(Duration::from_secs(60), scenario())
        .await
        .expect("the cluster scenario finishes within 60 s");
}

async fn scenario() {
    let router = Router::default();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(id, &router).await);
    }
    let initial: BTreeMap<NodeId, ClusterNode> = (1..=3).map(|id| (id, member(id))).collect();
    nodes[&1].raft.initialize(initial).await.unwrap();

    let metrics = nodes[&1]
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await
        .unwrap();
    let leader_id = metrics.current_leader.unwrap();
    let leader = nodes[&leader_id].raft.clone();

    let written = leader
        .client_write(Request::Changes(changes()))
        .await
        .unwrap();
    let batch_log_id = written.data.log_id.expect("the batch's log id");
    assert_eq!(written.log_id, batch_log_id);
    for node in nodes.values() {
        wait_applied(node, batch_log_id.index, "the batch is applied").await;
        let state = node.view.read().unwrap().clone();
        assert!(state.groups["web"].want_online);
        assert_eq!(state.resources["ip"].group, "web");
    }

    let read_at = leader.ensure_linearizable().await.unwrap();
    assert!(
        read_at >= Some(batch_log_id),
        "{read_at:?} >= {batch_log_id}"
    );
    let follower_id = (1..=3).find(|id| *id != leader_id).unwrap();
    let refused = nodes[&follower_id].raft.ensure_linearizable().await;
    assert!(
        refused.is_err(),
        "a follower cannot serve a linearizable read: {refused:?}"
    );

    // A snapshot and a purged log: the new node can only catch up by installing the snapshot.
    leader.trigger().snapshot().await.unwrap();
    let m = leader
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some(), "a snapshot is built")
        .await
        .unwrap();
    leader
        .trigger()
        .purge_log(m.snapshot.unwrap().index)
        .await
        .unwrap();
    leader
        .wait(Some(WAIT))
        .purged(m.snapshot, "the log is purged up to the snapshot")
        .await
        .unwrap();

    let (fourth, _) = allocate(&leader).await;
    assert_eq!(fourth, 4, "the first id past the initial members 1..=3");
    nodes.insert(fourth, start(fourth, &router).await);
    leader
        .add_learner(fourth, member(fourth), true)
        .await
        .unwrap();
    let voters: BTreeSet<NodeId> = [1, 2, 3, fourth].into();
    leader
        .change_membership(voters.clone(), false)
        .await
        .unwrap();
    let m = nodes[&fourth]
        .raft
        .wait(Some(WAIT))
        .voter_ids(voters.clone(), "the fourth node is a voter")
        .await
        .unwrap();
    assert!(m.snapshot.is_some(), "the fourth node installed a snapshot");
    assert_eq!(
        nodes[&fourth].view.read().unwrap().to_snapshot(),
        nodes[&leader_id].view.read().unwrap().to_snapshot()
    );

    let removed = (1..=3).find(|id| *id != leader_id).unwrap();
    let remaining: BTreeSet<NodeId> = voters.iter().copied().filter(|id| *id != removed).collect();
    leader
        .change_membership(remaining.clone(), false)
        .await
        .unwrap();
    leader
        .wait(Some(WAIT))
        .voter_ids(remaining, "the removed node is out")
        .await
        .unwrap();
    let (next, index) = allocate(&leader).await;
    assert_eq!(next, 5, "ids only grow");
    assert!(
        !voters.contains(&next),
        "{next} was never a member, {removed} stays spent"
    );
    for id in (1..=4).filter(|id| *id != removed) {
        wait_applied(&nodes[&id], index, "every member applied the allocation").await;
        let next_id = nodes[&id].view.read().unwrap().next_node_id;
        assert_eq!(next_id, 6, "node {id}");
    }

    for node in nodes.values() {
        node.raft.shutdown().await.unwrap();
    }
}
