//! The calling side of the cluster's administrative RPCs: a write proposed through the leader
//! (this node's raft if it leads, else forwarded to the leader it names, following at most a few
//! `ForwardToLeader` hops), a linearizable read barrier, join (reserve an id, then admit) and
//! eviction. Every call has a deadline. Not raft's own RPCs (network.rs).

use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::Raft;

use crate::admin::{leadership, proposed_write_error};
use crate::handshake::{connect, ConnectError};
use crate::key::ClusterKey;
use crate::routing::Routing;
use crate::wire::{AdminError, Membership, Reply, Rpc, WireError};
use crate::{ClusterNode, NodeId, Request, Response, TypeConfig};

/// At most this many `ForwardToLeader` answers are followed for one call.
const MAX_HOPS: usize = 4;

/// Why an administrative call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the cluster has no leader right now (an election is under way, or no quorum)")]
    NoLeader,
    #[error("refused by the leader: {0}")]
    Refused(String),
    #[error("raft peer {addr}: {source}")]
    Connect { addr: String, source: ConnectError },
    #[error("raft peer {addr}: {source}")]
    Wire { addr: String, source: WireError },
    #[error("raft peer {addr} answered with {what}")]
    Unexpected { addr: String, what: String },
    #[error("no answer within {0:?}: the request may or may not have been committed")]
    Timeout(Duration),
    #[error("followed {MAX_HOPS} leader redirections without reaching the leader")]
    TooManyHops,
    #[error("this node's raft: {0}")]
    Local(String),
    #[error("{0}")]
    Uncertain(String),
}

/// The first pause before a write is tried again (no leader, or it cannot be connected to), and
/// the longest (it doubles).
const RETRY_FIRST: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_millis(500);

/// A reserved id and the leader that reserved it (to send `admit` to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: NodeId,
    pub leader_addr: String,
}

/// Calls peers' administrative RPCs with the cluster key.
#[derive(Debug, Clone)]
pub struct ClusterClient {
    key: ClusterKey,
    cluster: String,
    timeout: Duration,
    routing: Routing,
}

/// Where a local attempt says to go instead.
enum Local<T> {
    Done(T),
    Forward(Option<ClusterNode>),
}

impl ClusterClient {
    /// A client of cluster `cluster`; every call must finish within `timeout`.
    pub fn new(key: ClusterKey, cluster: &str, timeout: Duration) -> ClusterClient {
        ClusterClient {
            key,
            cluster: cluster.to_string(),
            timeout,
            routing: Routing::direct(),
        }
    }

    /// The same client, reaching a leader it is sent to where `routing` says.
    pub fn with_routing(mut self, routing: Routing) -> ClusterClient {
        self.routing = routing;
        self
    }

    /// Where to reach `leader` now: `ADDR` or `ADDR|FALLBACK` (see `call`).
    fn leader_addr(&self, leader: Option<ClusterNode>) -> Result<String, ClientError> {
        let leader = leader.ok_or(ClientError::NoLeader)?;
        let route = self.routing.route(&leader);
        Ok(route.candidates().collect::<Vec<_>>().join("|"))
    }

    async fn deadline<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(ClientError::Timeout(self.timeout)))
    }

    /// Proposes `request` (validated by this node's engine) through the leader: Ok once it is
    /// committed on a majority and applied on the leader. `NoLeader` and `Refused` mean it was not
    /// committed; `Uncertain` and `Timeout` that it may have been (read back before retrying).
    pub async fn write(
        &self,
        raft: &Raft<TypeConfig>,
        request: Request,
    ) -> Result<Response, ClientError> {
        self.deadline(async {
            // While there is no leader (an election) or the leader cannot be connected to (its
            // raft restarting), nothing was proposed: try again, within the deadline.
            // Retries stop at nine tenths of the deadline, so the answer stays "not committed".
            let stop = tokio::time::Instant::now() + self.timeout * 9 / 10;
            let mut pause = RETRY_FIRST;
            loop {
                match self.write_once(raft, request.clone()).await {
                    Err(e @ (ClientError::NoLeader | ClientError::Connect { .. }))
                        if tokio::time::Instant::now() + pause < stop =>
                    {
                        tracing::debug!(
                            component = "RAFT",
                            "write not proposed yet ({e}); trying again"
                        );
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(RETRY_MAX);
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    async fn write_once(
        &self,
        raft: &Raft<TypeConfig>,
        request: Request,
    ) -> Result<Response, ClientError> {
        {
            let local = match leadership(raft) {
                Ok(()) => match raft.client_write(request.clone()).await {
                    Ok(written) => Local::Done(written.data),
                    Err(e) => return Err(from_admin(proposed_write_error(e))),
                },
                Err(AdminError::ForwardToLeader { leader, .. }) => Local::Forward(leader),
                Err(e) => return Err(from_admin(e)),
            };
            match local {
                Local::Done(response) => Ok(response),
                Local::Forward(leader) => {
                    let addr = self.leader_addr(leader)?;
                    match self.call_leader(&addr, &Rpc::ClientWrite(request)).await? {
                        (Reply::ClientWrite(r), _) => r.map_err(from_admin),
                        (other, addr) => Err(unexpected(addr, &other)),
                    }
                }
            }
        }
    }

    /// Returns once this node's state machine holds everything committed before the call: a read
    /// of it afterwards is linearizable (openraft's `ensure_linearizable`, asked of the leader).
    pub async fn read_barrier(&self, raft: &Raft<TypeConfig>) -> Result<(), ClientError> {
        self.deadline(async {
            // A read barrier changes nothing, so any failure may be retried: a leader that cannot
            // hear a majority for a moment (its followers restarting raft with new timing), an
            // election, a leader not reached yet. Retries stop at nine tenths of the deadline,
            // with the last failure.
            let stop = tokio::time::Instant::now() + self.timeout * 9 / 10;
            let mut pause = RETRY_FIRST;
            loop {
                match self.read_barrier_now(raft).await {
                    Err(e) if tokio::time::Instant::now() + pause < stop => {
                        tracing::debug!(
                            component = "RAFT",
                            "read barrier not reached yet ({e}); trying again"
                        );
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(RETRY_MAX);
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    /// One attempt at `read_barrier`, failing at once on the first error (for a caller that
    /// retries on its own schedule).
    pub async fn read_barrier_now(&self, raft: &Raft<TypeConfig>) -> Result<(), ClientError> {
        self.deadline(async {
            let local = match raft.ensure_linearizable().await {
                Ok(_) => Local::Done(()),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    Local::Forward(f.leader_node)
                }
                Err(e) => return Err(ClientError::Local(e.to_string())),
            };
            let Local::Forward(leader) = local else {
                return Ok(());
            };
            let addr = self.leader_addr(leader)?;
            let point = match self.call_leader(&addr, &Rpc::LinearizableRead).await? {
                (Reply::LinearizableRead(r), _) => r.map_err(from_admin)?,
                (other, addr) => return Err(unexpected(addr, &other)),
            };
            raft.wait(Some(self.timeout))
                .applied_index_at_least(point.map(|p| p.index), "read barrier")
                .await
                .map_err(|e| ClientError::Local(e.to_string()))?;
            Ok(())
        })
        .await
    }

    /// Asks the cluster, through any member at `seed_addr`, for an id for `node`.
    pub async fn join(
        &self,
        seed_addr: &str,
        node: ClusterNode,
    ) -> Result<Reservation, ClientError> {
        self.deadline(async {
            match self.call_leader(seed_addr, &Rpc::Join(node)).await? {
                (Reply::Join(r), leader_addr) => Ok(Reservation {
                    id: r.map_err(from_admin)?,
                    leader_addr,
                }),
                (other, addr) => Err(unexpected(addr, &other)),
            }
        })
        .await
    }

    /// Once the node reserved as `reservation.id` runs its raft and server: has the leader add it
    /// as a learner, catch it up and make it a voter.
    pub async fn admit(&self, reservation: &Reservation) -> Result<Membership, ClientError> {
        self.deadline(async {
            let rpc = Rpc::Admit { id: reservation.id };
            match self.call_leader(&reservation.leader_addr, &rpc).await? {
                (Reply::Admit(r), _) => r.map_err(from_admin),
                (other, addr) => Err(unexpected(addr, &other)),
            }
        })
        .await
    }

    /// Removes node `id` from the cluster, through any member at `member_addr`.
    pub async fn evict(&self, member_addr: &str, id: NodeId) -> Result<Membership, ClientError> {
        self.deadline(async {
            match self.call_leader(member_addr, &Rpc::Evict { id }).await? {
                (Reply::Evict(r), _) => r.map_err(from_admin),
                (other, addr) => Err(unexpected(addr, &other)),
            }
        })
        .await
    }

    /// Sends `rpc` to `addr`, following the leader it names; the answer and who gave it.
    async fn call_leader(&self, addr: &str, rpc: &Rpc) -> Result<(Reply, String), ClientError> {
        let mut addr = addr.to_string();
        for _ in 0..MAX_HOPS {
            let reply = self.call(&addr, rpc).await?;
            let forward = match &reply {
                Reply::ClientWrite(Err(AdminError::ForwardToLeader { leader, .. }))
                | Reply::Join(Err(AdminError::ForwardToLeader { leader, .. }))
                | Reply::Admit(Err(AdminError::ForwardToLeader { leader, .. }))
                | Reply::Evict(Err(AdminError::ForwardToLeader { leader, .. }))
                | Reply::LinearizableRead(Err(AdminError::ForwardToLeader { leader, .. })) => {
                    leader.clone()
                }
                _ => return Ok((reply, addr)),
            };
            addr = self.leader_addr(forward)?;
        }
        Err(ClientError::TooManyHops)
    }

    /// Calls `addrs`: one address, or several joined by `|` tried in turn while nothing can be
    /// connected to (a virtual address, then the membership address).
    async fn call(&self, addrs: &str, rpc: &Rpc) -> Result<Reply, ClientError> {
        let mut channel = None;
        let mut failed = None;
        for addr in addrs.split('|') {
            match connect(addr, &self.key, &self.cluster, self.timeout).await {
                Ok(c) => {
                    channel = Some((c, addr));
                    break;
                }
                Err(source) => {
                    let retry = matches!(source, ConnectError::Connect(_));
                    failed = Some(ClientError::Connect {
                        addr: addr.to_string(),
                        source,
                    });
                    if !retry {
                        break;
                    }
                }
            }
        }
        let Some((mut channel, addr)) = channel else {
            return Err(failed.expect("at least one address was tried"));
        };
        let wire = |source| ClientError::Wire {
            addr: addr.to_string(),
            source,
        };
        channel.send(rpc).await.map_err(wire)?;
        channel.recv().await.map_err(wire)
    }
}

fn from_admin(e: AdminError) -> ClientError {
    match e {
        AdminError::ForwardToLeader { .. } => ClientError::NoLeader,
        AdminError::Refused(why) => ClientError::Refused(why),
        AdminError::Uncertain(why) => ClientError::Uncertain(why),
    }
}

fn unexpected(addr: String, reply: &Reply) -> ClientError {
    ClientError::Unexpected {
        addr,
        what: format!("{reply:?}"),
    }
}
