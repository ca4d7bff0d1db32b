//! The administrative calls as a node serves them from its peers: a write proposed through this
//! node if it leads, a join (reserve an id; then admit: learner, caught up, voter), an eviction,
//! a linearizable read point. A follower answers each with `ForwardToLeader`. Not the connection
//! handling (server.rs), not the calling side (client.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::{ChangeMembers, Raft, StoredMembership};

use crate::wire::{AdminError, Membership};
use crate::{ClusterNode, NodeId, Request, Response, TypeConfig};

/// How long a reserved id waits for its node's `Admit`.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(300);
/// At most this many reservations are held; past it the oldest expire first.
const MAX_RESERVATIONS: usize = 64;

/// Ids this leader reserved by `Join` and not yet admitted: only these may be admitted, each
/// once, so no id is ever admitted twice nor an evicted one again.
#[derive(Debug, Default)]
struct Reservations {
    by_id: BTreeMap<NodeId, (ClusterNode, Instant)>,
}

impl Reservations {
    fn insert(&mut self, id: NodeId, node: ClusterNode, now: Instant) {
        self.by_id
            .retain(|_, (_, at)| now.duration_since(*at) < RESERVATION_LIFETIME);
        while self.by_id.len() >= MAX_RESERVATIONS {
            let oldest = self
                .by_id
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => self.by_id.remove(&id),
                None => break,
            };
        }
        self.by_id.insert(id, (node, now));
    }

    fn take(&mut self, id: NodeId, now: Instant) -> Option<ClusterNode> {
        let (node, at) = self.by_id.remove(&id)?;
        (now.duration_since(at) < RESERVATION_LIFETIME).then_some(node)
    }
}

/// The administrative side of one node's raft.
pub(crate) struct Admin {
    raft: Raft<TypeConfig>,
    reservations: Mutex<Reservations>,
    admit_timeout: Duration,
    admission: Option<crate::server::Admission>,
    /// Held shared by every write in flight; `quiesce` takes it alone and closes it, so that raft
    /// is stopped only once every write it took has had its answer (true: closed).
    writes: tokio::sync::RwLock<bool>,
}

fn forward<E: std::fmt::Display>(
    e: RaftError<NodeId, E>,
    leader: Option<(Option<NodeId>, Option<ClusterNode>)>,
) -> AdminError {
    match leader {
        Some((leader_id, leader)) => AdminError::ForwardToLeader { leader_id, leader },
        None => AdminError::Refused(e.to_string()),
    }
}

fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, ClusterNode>>) -> AdminError {
    let leader = match &e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            Some((f.leader_id, f.leader_node.clone()))
        }
        _ => None,
    };
    forward(e, leader)
}

fn read_error(e: RaftError<NodeId, CheckIsLeaderError<NodeId, ClusterNode>>) -> AdminError {
    let leader = match &e {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)) => {
            Some((f.leader_id, f.leader_node.clone()))
        }
        _ => None,
    };
    forward(e, leader)
}

/// Ok if `raft` leads as far as its metrics say, else `ForwardToLeader` naming the leader it knows.
/// A request refused on this ground was never proposed, so sending it to the leader is safe.
pub(crate) fn leadership(raft: &Raft<TypeConfig>) -> Result<(), AdminError> {
    let m = raft.metrics().borrow().clone();
    if m.current_leader == Some(m.id) {
        return Ok(());
    }
    let leader = m
        .current_leader
        .and_then(|id| m.membership_config.membership().get_node(&id).cloned());
    Err(AdminError::ForwardToLeader {
        leader_id: m.current_leader,
        leader,
    })
}

/// A write's error once it was handed to raft as leader: a `ForwardToLeader` now means leadership
/// moved while it was in flight, so it may or may not commit — never to be proposed again blindly.
pub(crate) fn proposed_write_error(
    e: RaftError<NodeId, ClientWriteError<NodeId, ClusterNode>>,
) -> AdminError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => AdminError::Uncertain(
            "leadership moved while the request was being committed: it may or may not have been committed".into(),
        ),
        RaftError::Fatal(fatal) => AdminError::Uncertain(format!(
            "the leader's cluster database stopped ({fatal}) while the request was being committed: it may or may not have been committed"
        )),
        other => AdminError::Refused(other.to_string()),
    }
}

fn membership_of(written: &ClientWriteResponse<TypeConfig>) -> Result<Membership, AdminError> {
    let membership = written.membership.clone().ok_or_else(|| {
        AdminError::Refused("the membership change committed no membership".into())
    })?;
    Ok(StoredMembership::new(Some(written.log_id), membership))
}

fn valid_node(node: &ClusterNode) -> Result<(), AdminError> {
    if node.name.is_empty() || node.name.len() > 128 || node.name.chars().any(char::is_control) {
        return Err(AdminError::Refused(format!(
            "node name '{}' is not 1-128 characters without control characters",
            node.name.escape_debug()
        )));
    }
    node.addr.parse::<SocketAddr>().map_err(|e| {
        AdminError::Refused(format!(
            "node '{}': address '{}' is not ADDR:PORT: {e}",
            node.name,
            node.addr.escape_debug()
        ))
    })?;
    Ok(())
}

impl Admin {
    pub(crate) fn new(
        raft: Raft<TypeConfig>,
        admit_timeout: Duration,
        admission: Option<crate::server::Admission>,
    ) -> Admin {
        Admin {
            raft,
            reservations: Mutex::new(Reservations::default()),
            admit_timeout,
            admission,
            writes: tokio::sync::RwLock::new(false),
        }
    }

    fn reservations(&self) -> std::sync::MutexGuard<'_, Reservations> {
        // Plain map operations: a panic cannot leave it half-changed.
        self.reservations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `ForwardToLeader` unless this node leads (as far as it knows: the raft call that follows is
    /// what decides).
    fn lead(&self) -> Result<(), AdminError> {
        leadership(&self.raft)
    }

    fn membership(&self) -> Membership {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .as_ref()
            .clone()
    }

    /// Proposes `request`, already validated by the sender's engine; Ok once it is committed and
    /// applied on this (the leader's) state machine.
    pub(crate) async fn write(&self, request: Request) -> Result<Response, AdminError> {
        let closed = self.writes.read().await;
        if *closed {
            // Raft is being stopped here (to restart it): nothing was proposed, and the sender
            // tries again once a leader is known.
            return Err(AdminError::ForwardToLeader {
                leader_id: None,
                leader: None,
            });
        }
        self.lead()?;
        let written = self
            .raft
            .client_write(request)
            .await
            .map_err(proposed_write_error)?;
        Ok(written.data)
    }

    /// Waits, up to `within`, until every write in flight has been answered, then refuses new ones
    /// as "no leader known" (never proposed, so the sender may try again): raft can be stopped
    /// without losing an answer. Whether every write in flight finished in time.
    pub(crate) async fn quiesce(&self, within: Duration) -> bool {
        match tokio::time::timeout(within, self.writes.write()).await {
            Ok(mut closed) => {
                *closed = true;
                true
            }
            Err(_) => false,
        }
    }

    /// Reserves a fresh id for `node`.
    pub(crate) async fn join(&self, node: ClusterNode) -> Result<NodeId, AdminError> {
        valid_node(&node)?;
        self.lead()?;
        // A hosted voter (the witness voter) is no node that joins from an address of its own: the
        // node configuring it asks for its id, and it is admitted once its host runs it.
        if let (Some(check), false) = (&self.admission, node.is_hosted()) {
            (check.0)(&node).map_err(AdminError::Refused)?;
        }
        let membership = self.membership();
        if let Some((id, member)) = membership
            .nodes()
            .find(|(_, m)| m.name == node.name || m.addr == node.addr)
        {
            return Err(AdminError::Refused(format!(
                "node {node} cannot join: node {id} ({member}) has that name or address; evict it first"
            )));
        }
        let id = self
            .write(Request::AllocateNodeId)
            .await?
            .allocated
            .ok_or_else(|| AdminError::Refused("the allocator gave no id".into()))?;
        tracing::info!(
            component = "RAFT",
            "Reserved node id {id} for joining node {node}"
        );
        self.reservations().insert(id, node, Instant::now());
        Ok(id)
    }

    /// Adds the node reserved as `id` as a learner, waits until it has caught up, then makes it a
    /// voter.
    pub(crate) async fn admit(&self, id: NodeId) -> Result<Membership, AdminError> {
        self.lead()?;
        let node = self.reservations().take(id, Instant::now()).ok_or_else(|| {
            AdminError::Refused(format!(
                "node id {id} is not reserved by this leader (never, already used, or expired): join again for a new id"
            ))
        })?;
        let added = tokio::time::timeout(
            self.admit_timeout,
            self.raft.add_learner(id, node.clone(), true),
        )
        .await;
        match added {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(write_error(e)),
            Err(_) => {
                self.drop_learner(id).await;
                return Err(AdminError::Refused(format!(
                    "node {id} ({node}) did not catch up within {:?}; it was not admitted",
                    self.admit_timeout
                )));
            }
        }
        let ids: BTreeSet<NodeId> = [id].into();
        let written = self
            .raft
            .change_membership(ChangeMembers::AddVoterIds(ids), false)
            .await
            .map_err(write_error)?;
        tracing::info!(
            component = "RAFT",
            "Node {id} ({node}) joined the cluster as a voter"
        );
        membership_of(&written)
    }

    async fn drop_learner(&self, id: NodeId) {
        let ids: BTreeSet<NodeId> = [id].into();
        if let Err(e) = self
            .raft
            .change_membership(ChangeMembers::RemoveNodes(ids), false)
            .await
        {
            tracing::warn!(
                component = "RAFT",
                "Could not remove learner {id} that did not catch up: {e}"
            );
        }
    }

    /// Removes node `id` (voter or learner) from the cluster.
    pub(crate) async fn evict(&self, id: NodeId) -> Result<Membership, AdminError> {
        self.lead()?;
        let membership = self.membership();
        let is_voter = membership.membership().voter_ids().any(|v| v == id);
        let is_member = membership.nodes().any(|(n, _)| *n == id);
        if !is_member {
            return Err(AdminError::Refused(format!(
                "node {id} is not a member of the cluster"
            )));
        }
        let ids: BTreeSet<NodeId> = [id].into();
        let change = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        let written = self
            .raft
            .change_membership(change, false)
            .await
            .map_err(write_error)?;
        tracing::info!(
            component = "RAFT",
            "Node {id} was evicted from the cluster; its id is never given out again"
        );
        membership_of(&written)
    }

    /// The log id a reader must have applied to read linearizably (this node must lead).
    pub(crate) async fn read_point(&self) -> Result<Option<openraft::LogId<NodeId>>, AdminError> {
        self.raft.ensure_linearizable().await.map_err(read_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> ClusterNode {
        ClusterNode {
            name: name.into(),
            addr: "127.0.0.1:1".into(),
        }
    }

    #[test]
    fn a_reservation_is_taken_once_and_expires() {
        let mut r = Reservations::default();
        let t0 = Instant::now();
        r.insert(4, node("a"), t0);
        assert_eq!(r.take(4, t0), Some(node("a")));
        assert_eq!(r.take(4, t0), None, "taken once");
        r.insert(5, node("b"), t0);
        assert_eq!(r.take(5, t0 + RESERVATION_LIFETIME), None, "expired");
        assert_eq!(r.take(3, t0), None, "never reserved");
    }

    #[test]
    fn reservations_are_bounded() {
        let mut r = Reservations::default();
        let t0 = Instant::now();
        for id in 0..(MAX_RESERVATIONS as u64 * 2) {
            r.insert(id, node("n"), t0 + Duration::from_millis(id));
        }
        assert_eq!(r.by_id.len(), MAX_RESERVATIONS);
        assert!(
            r.by_id.contains_key(&(MAX_RESERVATIONS as u64 * 2 - 1)),
            "the newest is kept"
        );
    }

    #[test]
    fn a_node_needs_a_name_and_a_socket_address() {
        assert!(valid_node(&node("n1")).is_ok());
        assert!(valid_node(&ClusterNode {
            name: "".into(),
            addr: "127.0.0.1:1".into()
        })
        .is_err());
        let e = valid_node(&ClusterNode {
            name: "n".into(),
            addr: "nowhere".into(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("'nowhere' is not ADDR:PORT"), "{e}");
    }
}
