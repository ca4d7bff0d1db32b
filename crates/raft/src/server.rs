//! The raft transport's serving side: accepts TCP connections, runs the handshake (nothing a peer
//! sends is acted on before it proves the cluster key), then answers one `Rpc` after another by
//! handing it to the raft the connection is for (append-entries, vote, snapshot chunks) or to the
//! administrative side (admin.rs) of whichever local raft leads. The node's own raft is always
//! served; others it runs in-process (the witness voter, while this node holds the witness lease)
//! are added and removed at run time (`HostedRafts`). What is refused or dropped is counted and
//! logged at most once per peer address per minute; nothing a peer sends can panic it. Not the
//! calling side (network.rs, client.rs).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::Raft;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::admin::Admin;
use crate::channel::Channel;
use crate::counters::{Count, Counters, LogGate, TransportCounters};
use crate::handshake::{accept_for, AcceptError};
use crate::key::ClusterKey;
use crate::wire::{decode, Reply, Rpc, WireError};
use crate::{NodeId, TypeConfig};

/// How long the accept loop pauses after an accept error (too many open files, say).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// How the server treats its peers.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The cluster's name: a peer naming another is refused.
    pub cluster: String,
    /// A peer must finish the handshake within this.
    pub handshake_timeout: Duration,
    /// At most this many connections at once, and a quarter of that still in their handshake;
    /// past either a new one is closed at once.
    pub max_connections: usize,
    /// How long a joining node may take to catch up as a learner before it is refused.
    pub admit_timeout: Duration,
    /// An authenticated connection that sends nothing for this long is closed (a peer that
    /// vanished without closing it must not hold a connection slot for ever; a leader's
    /// replication sends a heartbeat every heartbeat interval).
    pub idle_timeout: Duration,
    /// Who may join, asked before an id is reserved (e.g. only nodes listed at `cluster create`).
    pub admission: Option<Admission>,
}

/// The check itself: the joining node in, its refusal out.
pub type AdmissionCheck = dyn Fn(&crate::ClusterNode) -> Result<(), String> + Send + Sync;

/// A check of a joining node; an error is its refusal, sent back as it is.
#[derive(Clone)]
pub struct Admission(pub std::sync::Arc<AdmissionCheck>);

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admission(..)")
    }
}

impl ServerConfig {
    /// Defaults for the cluster `cluster`: 5 s handshakes, 256 connections, 60 s to catch up,
    /// idle connections closed after 5 min.
    pub fn new(cluster: &str) -> ServerConfig {
        ServerConfig {
            cluster: cluster.to_string(),
            handshake_timeout: Duration::from_secs(5),
            max_connections: 256,
            admit_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(300),
            admission: None,
        }
    }
}

/// A running server; dropping it (or `shutdown`) stops it and closes every connection it holds.
pub struct Server {
    task: JoinHandle<()>,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

/// One raft this server answers for, with its administrative side.
struct Target {
    raft: Raft<TypeConfig>,
    admin: Admin,
}

impl Target {
    fn new(raft: Raft<TypeConfig>, config: &ServerConfig) -> Arc<Target> {
        Arc::new(Target {
            admin: Admin::new(raft.clone(), config.admit_timeout, config.admission.clone()),
            raft,
        })
    }

    fn leads(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        m.current_leader == Some(m.id)
    }
}

/// The rafts a server answers for besides its node's own, by id; cloning shares them. A
/// connection for an id that is removed is closed at its next call.
#[derive(Clone)]
pub struct HostedRafts {
    rafts: Arc<RwLock<BTreeMap<NodeId, Arc<Target>>>>,
    config: ServerConfig,
}

impl HostedRafts {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeId, Arc<Target>>> {
        // Plain map operations: a panic cannot leave it half-changed.
        self.rafts.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<NodeId, Arc<Target>>> {
        self.rafts.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers peers' RPCs for raft node `id` with `raft` from now on.
    pub fn host(&self, id: NodeId, raft: Raft<TypeConfig>) {
        let target = Target::new(raft, &self.config);
        self.write().insert(id, target);
    }

    /// Stops answering for node `id`; whether it was hosted.
    pub fn unhost(&self, id: NodeId) -> bool {
        self.write().remove(&id).is_some()
    }

    /// The ids hosted now.
    pub fn ids(&self) -> Vec<NodeId> {
        self.read().keys().copied().collect()
    }

    /// The raft hosted as node `id`, if any.
    pub fn raft(&self, id: NodeId) -> Option<Raft<TypeConfig>> {
        self.get(id).map(|t| t.raft.clone())
    }

    fn get(&self, id: NodeId) -> Option<Arc<Target>> {
        self.read().get(&id).cloned()
    }

    /// A hosted raft that leads, if one does.
    fn leader(&self) -> Option<Arc<Target>> {
        self.read().values().find(|t| t.leads()).cloned()
    }
}

impl std::fmt::Debug for HostedRafts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostedRafts({:?})", self.ids())
    }
}

struct Shared {
    own_id: NodeId,
    own: Arc<Target>,
    hosted: HostedRafts,
    key: ClusterKey,
    config: ServerConfig,
    counters: Counters,
    log_gate: LogGate,
}

/// Serves `raft` on `listener` to the peers that hold `key`.
pub fn serve(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    key: ClusterKey,
    config: ServerConfig,
) -> std::io::Result<Server> {
    let local_addr = listener.local_addr()?;
    let own_id = raft.metrics().borrow().id;
    let shared = Arc::new(Shared {
        own_id,
        own: Target::new(raft, &config),
        hosted: HostedRafts {
            rafts: Arc::default(),
            config: config.clone(),
        },
        key,
        counters: Counters::default(),
        log_gate: LogGate::new(),
        config,
    });
    let task = tokio::spawn(accept_loop(listener, shared.clone()));
    Ok(Server {
        task,
        shared,
        local_addr,
    })
}

impl Server {
    /// What it has refused, dropped and served so far.
    pub fn counters(&self) -> TransportCounters {
        self.shared.counters.snapshot()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The other rafts it answers for (add or remove one at any time).
    pub fn hosted(&self) -> HostedRafts {
        self.shared.hosted.clone()
    }

    /// Lets the writes in flight through its node's own raft and the rafts it hosts finish (up to
    /// `within`) and refuses new ones as "no leader known", before those rafts are stopped: a
    /// peer's write is then either answered or never proposed. Whether all finished in time.
    pub fn quiesce(&self, within: Duration) -> impl std::future::Future<Output = bool> + 'static {
        let mut targets = vec![self.shared.own.clone()];
        targets.extend(self.shared.hosted.read().values().cloned());
        async move {
            let deadline = tokio::time::Instant::now() + within;
            let mut all = true;
            for target in targets {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                all &= target.admin.quiesce(left).await;
            }
            all
        }
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(self) {}
}

impl Drop for Server {
    fn drop(&mut self) {
        // The accept task owns every connection task (a JoinSet): aborting it aborts them all.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    // Peers still in their handshake get only part of the slots: a flood of connections that
    // never finish it cannot take the ones authenticated peers need.
    let handshakes = Arc::new(Semaphore::new(shared.config.max_connections.div_ceil(4)));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.counters.add(Count::Accepted);
                    let (Ok(slot), Ok(handshake)) = (slots.clone().try_acquire_owned(), handshakes.clone().try_acquire_owned()) else {
                        shared.counters.add(Count::OverLimit);
                        let max = shared.config.max_connections;
                        shared.log(peer, format_args!("closed: at the connection limit ({max} at once, at most {} of them in their handshake)", max.div_ceil(4)));
                        continue;
                    };
                    let shared = shared.clone();
                    connections.spawn(async move {
                        serve_connection(stream, peer, &shared, handshake).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // EMFILE and the like: the listener stays; pause (a backoff, not a wait for
                    // anything) so a persistent error does not spin.
                    tracing::warn!(component = "RAFT", "Raft transport cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

impl Shared {
    /// One line about `peer`, unless one was written in the last minute.
    fn log(&self, peer: SocketAddr, what: std::fmt::Arguments<'_>) {
        if self.log_gate.allow(peer.ip()) {
            tracing::warn!(component = "RAFT", "Raft connection from {peer}: {what} (further lines about this address are suppressed for a minute; see the transport counters)");
        }
    }

    /// Whether a connection may be for `target`: the node's own raft (None, or its id), or one
    /// it hosts; the refusal names the target.
    fn serves(&self, target: Option<NodeId>) -> Result<(), String> {
        match target {
            None => Ok(()),
            Some(id) if id == self.own_id || self.hosted.get(id).is_some() => Ok(()),
            Some(id) => Err(format!("raft node {id} (it is not hosted here)")),
        }
    }

    /// The raft a connection for `target` reaches now (None once a hosted one is gone).
    fn target(&self, target: Option<NodeId>) -> Option<Arc<Target>> {
        match target {
            None => Some(self.own.clone()),
            Some(id) if id == self.own_id => Some(self.own.clone()),
            Some(id) => self.hosted.get(id),
        }
    }

    /// Who answers an administrative call: the node's own raft unless a raft it hosts leads (a
    /// peer forwards to the leader's address, which for a hosted leader is its host's).
    fn admin(&self) -> Arc<Target> {
        if self.own.leads() {
            return self.own.clone();
        }
        self.hosted.leader().unwrap_or_else(|| self.own.clone())
    }

    fn refused(&self, peer: SocketAddr, e: &AcceptError) {
        let count = match e {
            AcceptError::WrongKey | AcceptError::OurProofRefused(_) => Count::WrongKey,
            AcceptError::WrongCluster(_) => Count::WrongCluster,
            AcceptError::Wire(WireError::Version(_)) => Count::WrongVersion,
            AcceptError::Wire(WireError::Oversized { .. }) => Count::Oversized,
            AcceptError::Wire(WireError::BadMagic | WireError::Malformed(_)) => Count::Malformed,
            AcceptError::Wire(e) if e.is_eof() => {
                self.counters.add(Count::HandshakeFailed);
                return; // a port probe or a peer that gave up: nothing to say
            }
            _ => Count::HandshakeFailed,
        };
        self.counters.add(count);
        self.log(peer, format_args!("refused: {e}"));
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    handshake: OwnedSemaphorePermit,
) {
    let config = &shared.config;
    let (mut channel, target) = match accept_for(
        stream,
        &shared.key,
        &config.cluster,
        config.handshake_timeout,
        |target| shared.serves(target),
    )
    .await
    {
        Ok(accepted) => accepted,
        Err(e) => return shared.refused(peer, &e),
    };
    drop(handshake);
    shared.counters.add(Count::Authenticated);
    loop {
        let received = tokio::time::timeout(config.idle_timeout, channel.recv_payload()).await;
        let payload = match received {
            Ok(Ok(payload)) => payload,
            Ok(Err(e)) if e.is_eof() => return,
            Ok(Err(e)) => return dropped(shared, peer, &e),
            Err(_) => {
                tracing::debug!(
                    component = "RAFT",
                    "Raft connection from {peer}: idle for {:?}, closed",
                    config.idle_timeout
                );
                return;
            }
        };
        let Some(serving) = shared.target(target) else {
            tracing::debug!(
                component = "RAFT",
                "Raft connection from {peer}: node {target:?} is no longer hosted here, closed"
            );
            return;
        };
        let reply = match decode::<Rpc>(&payload) {
            Ok(rpc) => dispatch(shared, &serving, rpc).await,
            Err(e) => {
                shared.counters.add(Count::Malformed);
                shared.log(
                    peer,
                    format_args!("dropped an authenticated frame that does not decode: {e}"),
                );
                Reply::Malformed(e.to_string())
            }
        };
        if let Err(e) = answer(&mut channel, &reply).await {
            tracing::debug!(
                component = "RAFT",
                "Raft connection from {peer}: cannot answer: {e}"
            );
            return;
        }
        shared.counters.add(Count::Served);
    }
}

/// A frame that cannot be read past: counted, logged, and the connection closed.
fn dropped(shared: &Shared, peer: SocketAddr, e: &WireError) {
    let count = match e {
        WireError::Oversized { .. } => Count::Oversized,
        WireError::BadTag => Count::BadTag,
        WireError::Io(_) => {
            tracing::debug!(
                component = "RAFT",
                "Raft connection from {peer} failed: {e}"
            );
            return;
        }
        _ => Count::Malformed,
    };
    shared.counters.add(count);
    shared.log(
        peer,
        format_args!("dropped a frame and closed the connection: {e}"),
    );
}

async fn answer(channel: &mut Channel, reply: &Reply) -> Result<(), WireError> {
    match channel.send(reply).await {
        Err(WireError::Oversized { len, cap }) => {
            // Never happens for raft's own answers (all small); say so rather than go silent.
            let why = format!("the answer of {len} bytes is larger than the {cap}-byte limit");
            channel.send(&Reply::Malformed(why)).await
        }
        other => other,
    }
}

async fn dispatch(shared: &Shared, target: &Target, rpc: Rpc) -> Reply {
    let raft = &target.raft;
    let admin = || shared.admin();
    match rpc {
        Rpc::AppendEntries(req) => Reply::AppendEntries(raft.append_entries(req).await),
        Rpc::Vote(req) => Reply::Vote(raft.vote(req).await),
        Rpc::InstallSnapshot(req) => Reply::InstallSnapshot(raft.install_snapshot(req).await),
        Rpc::ClientWrite(request) => Reply::ClientWrite(admin().admin.write(request).await),
        Rpc::Join(node) => Reply::Join(admin().admin.join(node).await),
        Rpc::Admit { id } => Reply::Admit(admin().admin.admit(id).await),
        Rpc::Evict { id } => Reply::Evict(admin().admin.evict(id).await),
        Rpc::LinearizableRead => Reply::LinearizableRead(admin().admin.read_point().await),
    }
}
