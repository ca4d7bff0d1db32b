//! The state machine tells its follower every durable apply, in log order, with the changes of each
//! committed entry (and nothing for entries that carry no records). One node, no network: its own
//! majority.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use keelson_raft::openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError};
use keelson_raft::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use keelson_raft::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use keelson_raft::openraft::{Config, Raft};
use keelson_raft::{Applied, ClusterNode, NodeId, Request, TypeConfig};
use keelson_types::{GroupRecord, RecordChange};

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, ClusterNode, E>>;

/// A network with no peers: a one-node cluster never sends.
struct Alone;

fn unreachable<T, E: std::error::Error>() -> Rpc<T, E> {
    let e = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "a one-node cluster has no peers",
    );
    Err(RPCError::Network(NetworkError::new(&e)))
}

impl RaftNetworkFactory<TypeConfig> for Alone {
    type Network = Alone;
    async fn new_client(&mut self, _target: NodeId, _node: &ClusterNode) -> Alone {
        Alone
    }
}

impl RaftNetwork<TypeConfig> for Alone {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        unreachable()
    }
    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        unreachable()
    }
    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        unreachable()
    }
}

fn group(name: &str, online: bool) -> RecordChange {
    RecordChange::PutGroup(GroupRecord {
        name: name.into(),
        want_online: online,
        ..Default::default()
    })
}

async fn recv(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Applied>) -> Applied {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an apply is told within 10 s")
        .expect("the state machine keeps the channel")
}

async fn one_node(
    dir: &std::path::Path,
) -> (
    Raft<TypeConfig>,
    tokio::sync::mpsc::UnboundedReceiver<Applied>,
) {
    let (log, mut sm) = keelson_raft::open(dir).unwrap();
    let rx = sm.follow();
    let config = Config {
        cluster_name: "follow".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Default::default()
    };
    let raft = Raft::new(
        1,
        std::sync::Arc::new(config.validate().unwrap()),
        Alone,
        log,
        sm,
    )
    .await
    .unwrap();
    (raft, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_batch_is_told_in_order_after_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (raft, mut rx) = one_node(dir.path()).await;
    let me = ClusterNode {
        name: "n1".into(),
        addr: "127.0.0.1:0".into(),
    };
    raft.initialize(BTreeMap::from([(1, me)])).await.unwrap();
    // It elects itself within a few election timeouts (a loaded machine may take a moment).
    raft.wait(Some(Duration::from_secs(10)))
        .current_leader(1, "leading alone")
        .await
        .unwrap();
    let first = raft
        .client_write(Request::Changes(vec![group("web", false)]))
        .await
        .unwrap();
    // An entry without records (a node id allocation) is not told.
    raft.client_write(Request::AllocateNodeId).await.unwrap();
    let third = raft
        .client_write(Request::Changes(vec![
            group("web", true),
            group("db", false),
        ]))
        .await
        .unwrap();
    assert_eq!(
        recv(&mut rx).await,
        Applied::Changes {
            index: first.log_id.index,
            changes: vec![group("web", false)]
        }
    );
    assert_eq!(
        recv(&mut rx).await,
        Applied::Changes {
            index: third.log_id.index,
            changes: vec![group("web", true), group("db", false)]
        }
    );
    raft.shutdown().await.unwrap();
}
