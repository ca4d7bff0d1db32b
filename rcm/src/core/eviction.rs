//! The core's facet for this node's own membership: it notices when it has been evicted (its
//! name gone from the cluster's node list, or its id gone from raft's membership after it was a
//! voter), says so once (cluster.log, event 1135), stops its heartbeats and its raft so it cannot
//! disturb the others, and refuses every administrator change from then on with one line saying
//! why. Also the one gate every cluster change passes (eviction, then quorum). Not evicting others
//! (cluster_gate.rs).

use super::Core;

/// What this node knows of its own membership.
#[derive(Debug, Default)]
pub(super) struct Membership {
    /// Raft's membership has listed this node as a voter (so its absence later is an eviction,
    /// not a join in progress).
    was_voter: bool,
    /// The cluster's name, once this node was evicted from it.
    evicted_from: Option<String>,
}

impl Membership {
    /// The cluster this node was evicted from, if it was.
    pub(super) fn evicted(&self) -> Option<&str> {
        self.evicted_from.as_deref()
    }
}

impl Core {
    /// Looks whether this node is still a member; the first time it is not, stops its part in
    /// the cluster.
    pub(super) fn check_membership(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if self.membership.evicted_from.is_some() {
            return;
        }
        let (me, _) = cluster.me();
        let me = me.to_string();
        let Some((voter, listed)) = cluster.own_membership() else {
            return;
        };
        self.membership.was_voter |= voter;
        let info = cluster.info();
        if !(listed && (voter || !self.membership.was_voter)) {
            self.evicted(&info.name, &me);
        }
    }

    fn evicted(&mut self, cluster_name: &str, me: &str) {
        tracing::error!(
            component = "RCM",
            "This node '{me}' was evicted from cluster '{cluster_name}': it stops its heartbeats and its cluster database and takes no more changes"
        );
        let event = keelson_netft::action::event_1135(me);
        self.events.raise(
            event.id,
            keelson_engine::EventLevel::Critical,
            event.message,
            None,
            None,
        );
        self.heartbeat = None;
        if let Some(cluster) = &self.cluster {
            cluster.shutdown();
        }
        self.membership.evicted_from = Some(cluster_name.to_string());
    }

    /// Every administrator change on a cluster node passes here: refused on an evicted node and
    /// without quorum, each with one line saying why.
    pub(super) fn admit_cluster_change(&self) -> Result<(), String> {
        if let Some(cluster) = self.membership.evicted() {
            return Err(format!(
                "this node '{}' was evicted from cluster '{cluster}' and takes no more changes; \
                 stop it, and remove its node.json, cluster.key and raft.redb to use it again",
                self.node
            ));
        }
        self.quorum.admit()
    }
}
