//! openraft's network over authenticated TCP: `Network` is the `RaftNetworkFactory`, one
//! `PeerConnection` per target (one TCP connection, reused while calls succeed). Failures are
//! mapped so openraft retries the right way: a connection refused (nothing listens, no route, the
//! peer refuses the key or we refuse its proof) is `Unreachable` (openraft backs off, bounded
//! here); a reused connection that fails mid-call is `NetworkError` (retry at once, on a fresh
//! one); a call, or a connection that does not come up, past the RPC's `hard_ttl` is `Timeout`
//! (no backoff: on a lost path the next attempt must go out at the next tick). A connection whose call failed or was abandoned
//! is dropped, never reused half-read. Not the serving side (server.rs).

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use crate::channel::{Channel, MAX_PAYLOAD};
use crate::counters::LogGate;
use crate::handshake::{connect_to, ConnectError};
use crate::key::ClusterKey;
use crate::routing::{Route, Routing};
use crate::wire::{encode, Reply, Rpc, WireError};
use crate::{ClusterNode, NodeId, RaftTiming, TypeConfig};

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, ClusterNode, E>>;

/// What every connection of this node needs: who it is, the key, the cluster, the backoff.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Shared>,
}

struct Shared {
    id: NodeId,
    log_gate: LogGate,
    key: ClusterKey,
    cluster: String,
    backoff_start: Duration,
    backoff_max: Duration,
    routing: Routing,
}

impl Network {
    /// The network of node `id` of cluster `cluster`, backing off from peers that refuse the
    /// connection from one heartbeat up to four.
    pub fn new(id: NodeId, key: ClusterKey, cluster: &str, timing: &RaftTiming) -> Network {
        let heartbeat = Duration::from_millis(timing.heartbeat_ms);
        Network {
            inner: Arc::new(Shared {
                id,
                log_gate: LogGate::new(),
                key,
                cluster: cluster.to_string(),
                backoff_start: heartbeat,
                backoff_max: heartbeat * 4,
                routing: Routing::direct(),
            }),
        }
    }

    /// The same network, reaching peers where `routing` says (e.g. their virtual addresses).
    pub fn with_routing(self, routing: Routing) -> Network {
        let shared = &self.inner;
        Network {
            inner: Arc::new(Shared {
                id: shared.id,
                log_gate: LogGate::new(),
                key: shared.key.clone(),
                cluster: shared.cluster.clone(),
                backoff_start: shared.backoff_start,
                backoff_max: shared.backoff_max,
                routing,
            }),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> PeerConnection {
        PeerConnection {
            shared: self.inner.clone(),
            target,
            node: node.clone(),
            channel: None,
            generation: 0,
        }
    }
}

/// Node `target` as this node's raft reaches it.
pub struct PeerConnection {
    shared: Arc<Shared>,
    target: NodeId,
    node: ClusterNode,
    channel: Option<Channel>,
    /// The routing generation `channel` was opened under.
    generation: u64,
}

/// Why one call failed, before it becomes openraft's error.
enum Failure {
    /// No connection could be set up: back off.
    Setup(ConnectError),
    /// The connection failed during the call: retry at once on a new one.
    Call(WireError),
    /// The peer answered with something that is not the answer to this call.
    Unexpected(String),
    /// Past the RPC's time to live.
    Timeout(Duration),
}

impl PeerConnection {
    /// Sends `payload` (an encoded `Rpc`) and waits for the reply, within `ttl`.
    async fn exchange(&mut self, payload: &[u8], ttl: Duration) -> Result<Reply, Failure> {
        let route = self.shared.routing.route(&self.node);
        if route.generation != self.generation {
            // The peer's address may have changed: reconnect to where it is now.
            self.channel = None;
            self.generation = route.generation;
        }
        let attempt = async {
            let mut channel = match self.channel.take() {
                Some(channel) => channel,
                None => self.connect(&route, ttl).await?,
            };
            channel.send_payload(payload).await.map_err(Failure::Call)?;
            let reply: Reply = channel.recv().await.map_err(Failure::Call)?;
            // Only a channel whose call completed is kept: its two sequence numbers agree with
            // the peer's.
            self.channel = Some(channel);
            Ok(reply)
        };
        tokio::time::timeout(ttl, attempt)
            .await
            .unwrap_or(Err(Failure::Timeout(ttl)))
    }

    /// A new connection to where `route` says, else (nothing there: the virtual adapter may be
    /// restarting) to its fallback.
    async fn connect(&self, route: &Route, ttl: Duration) -> Result<Channel, Failure> {
        let (key, cluster) = (&self.shared.key, &self.shared.cluster);
        let mut last = None;
        for addr in route.candidates() {
            match connect_to(addr, Some(self.target), key, cluster, ttl).await {
                Ok(channel) => return Ok(channel),
                Err(e @ ConnectError::Connect(_)) => last = Some((addr, e)),
                Err(e) => return Err(self.setup_failed(addr, e)),
            }
        }
        let (addr, e) = last.expect("a route has at least one address");
        Err(self.setup_failed(addr, e))
    }

    fn setup_failed(&self, addr: &str, e: ConnectError) -> Failure {
        if let ConnectError::Timeout(after) = e {
            // A connection that does not come up in time is a lost path as likely as a dead
            // peer: no backoff (timing.rs relies on the next attempt going out at the next tick).
            return Failure::Timeout(after);
        }
        let refused = matches!(e, ConnectError::Refused(_) | ConnectError::PeerUnproven);
        if refused && self.shared.log_gate.allow_peer(addr) {
            tracing::warn!(
                component = "RAFT",
                "Raft peer node {} ({}, reached at {addr}) refused or failed authentication: {e} (further lines about it are suppressed for a minute)",
                self.target,
                self.node
            );
        }
        Failure::Setup(e)
    }

    fn error<E: std::error::Error>(
        &self,
        f: Failure,
        action: RPCTypes,
    ) -> RPCError<NodeId, ClusterNode, E> {
        match f {
            Failure::Setup(e) => RPCError::Unreachable(Unreachable::new(&e)),
            Failure::Call(e) => RPCError::Network(NetworkError::new(&e)),
            Failure::Unexpected(what) => {
                let e = std::io::Error::new(std::io::ErrorKind::InvalidData, what);
                RPCError::Network(NetworkError::new(&e))
            }
            Failure::Timeout(timeout) => RPCError::Timeout(Timeout {
                action,
                id: self.shared.id,
                target: self.target,
                timeout,
            }),
        }
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, ClusterNode, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            e,
        ))
    }

    async fn call(
        &mut self,
        rpc: &Rpc,
        option: &RPCOption,
        action: RPCTypes,
    ) -> Result<Reply, Failure> {
        let payload = encode(rpc).map_err(Failure::Call)?;
        if payload.len() > MAX_PAYLOAD {
            let e = WireError::Oversized {
                len: payload.len(),
                cap: MAX_PAYLOAD,
            };
            return Err(Failure::Unexpected(format!("{action} request: {e}")));
        }
        self.exchange(&payload, option.hard_ttl()).await
    }
}

fn unexpected(reply: &Reply, wanted: &str) -> Failure {
    match reply {
        Reply::Malformed(why) => {
            Failure::Unexpected(format!("the peer could not read our {wanted}: {why}"))
        }
        other => Failure::Unexpected(format!("the peer answered a {wanted} with {other:?}")),
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let entries = rpc.entries.len() as u64;
        let rpc = Rpc::AppendEntries(rpc);
        let payload =
            encode(&rpc).map_err(|e| self.error(Failure::Call(e), RPCTypes::AppendEntries))?;
        if payload.len() > MAX_PAYLOAD {
            // openraft splits the batch and retries at once (one entry that is too large on its
            // own is Unreachable to it).
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint((entries / 2).max(1)),
            ));
        }
        match self.exchange(&payload, option.hard_ttl()).await {
            Ok(Reply::AppendEntries(Ok(r))) => Ok(r),
            Ok(Reply::AppendEntries(Err(e))) => Err(self.remote(e)),
            Ok(other) => Err(self.error(
                unexpected(&other, "append-entries"),
                RPCTypes::AppendEntries,
            )),
            Err(f) => Err(self.error(f, RPCTypes::AppendEntries)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self
            .call(
                &Rpc::InstallSnapshot(rpc),
                &option,
                RPCTypes::InstallSnapshot,
            )
            .await
        {
            Ok(Reply::InstallSnapshot(Ok(r))) => Ok(r),
            Ok(Reply::InstallSnapshot(Err(e))) => Err(self.remote(e)),
            Ok(other) => Err(self.error(
                unexpected(&other, "install-snapshot"),
                RPCTypes::InstallSnapshot,
            )),
            Err(f) => Err(self.error(f, RPCTypes::InstallSnapshot)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(&Rpc::Vote(rpc), &option, RPCTypes::Vote).await {
            Ok(Reply::Vote(Ok(r))) => Ok(r),
            Ok(Reply::Vote(Err(e))) => Err(self.remote(e)),
            Ok(other) => Err(self.error(unexpected(&other, "vote"), RPCTypes::Vote)),
            Err(f) => Err(self.error(f, RPCTypes::Vote)),
        }
    }

    fn backoff(&self) -> Backoff {
        let (start, max) = (self.shared.backoff_start, self.shared.backoff_max);
        Backoff::new(std::iter::successors(Some(start), move |d| {
            Some((*d * 2).min(max))
        }))
    }
}
