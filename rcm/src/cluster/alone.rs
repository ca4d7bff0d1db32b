//! The raft network of a cluster whose only member is this node: it never sends (a one-node
//! cluster is its own majority), and an RPC to anyone else is "unreachable". Replaced by the
//! authenticated TCP transport once other nodes join. Not a fake: openraft needs a network, and a
//! single voter never uses it.
#![allow(clippy::result_large_err)]

use keelson_raft::openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError};
use keelson_raft::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use keelson_raft::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use keelson_raft::{ClusterNode, NodeId, TypeConfig};

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, ClusterNode, E>>;

/// No peers.
pub struct Alone;

fn unreachable<T, E: std::error::Error>(target: NodeId) -> Rpc<T, E> {
    let e = std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("node {target} is not reachable: this node's cluster has no network transport"),
    );
    Err(RPCError::Network(NetworkError::new(&e)))
}

/// The connection to one (unreachable) peer.
pub struct NoPeer(NodeId);

impl RaftNetworkFactory<TypeConfig> for Alone {
    type Network = NoPeer;
    async fn new_client(&mut self, target: NodeId, _node: &ClusterNode) -> NoPeer {
        NoPeer(target)
    }
}

impl RaftNetwork<TypeConfig> for NoPeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        unreachable(self.0)
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        unreachable(self.0)
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        unreachable(self.0)
    }
}
