//! The core's facet that gets a new raft leader elected as soon as the heartbeat network takes
//! the old one Down, instead of after raft's own election timeouts (which are longer than a
//! NetFT detection, so that a path loss the virtual adapter reroutes costs no election).
//!
//! openraft voters refuse votes while their leader lease lasts (election_timeout_max since they
//! last heard the leader), but only while their vote is the leader's committed one: a node that
//! stands for election itself holds an uncommitted vote and grants any later term. So every
//! survivor that sees the leader go Down while it is in quorum (a node cut off itself would only
//! disrupt the majority's leader later) stands once at once, which ends its own lease, and the
//! one with the smallest id stands again every quarter Delay (each time at a higher term, which
//! the others, now candidates, grant) until a leader other than the lost one is known, a dozen
//! times at most; then raft's own timeouts take over. Any survivor may win: raft's terms and log
//! checks keep it safe, and which one leads does not matter to placement. Not the election
//! itself (openraft), nor placement (placement_gate.rs).

use super::Core;
use crate::cluster::heartbeat::Notice;
use crate::cluster::takeover::TakeoverTiming;
use std::time::Duration;

/// How many times the smallest-id survivor stands before it leaves it to raft's own timeouts.
const ATTEMPTS: u32 = 12;
/// The shortest time between two of its attempts: a vote round needs new connections between
/// followers (they never spoke raft to each other), and standing again abandons the round.
const MIN_RETRY_MS: u64 = 100;

impl Core {
    /// Member `id` went Down: if it led raft, this survivor stands at once, and the smallest-id
    /// survivor keeps standing until a new leader is known.
    pub(super) fn nudge_election(&mut self, id: u64) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if cluster.leader_id() != Some(id) {
            return;
        }
        if let Err(why) = self.quorum.admit() {
            // Cut off itself, it would only disrupt the majority's leader with a higher term once
            // it is back (found by t21: a node whose links were down for half a second).
            tracing::info!(
                component = "RAFT",
                "The cluster database's leader (node {id}) is Down here, but this node is out of quorum ({why}): it does not stand for election"
            );
            return;
        }
        let (_, me) = cluster.me();
        let survivors = cluster
            .voters()
            .into_iter()
            .map(|(v, _)| v)
            .filter(|v| *v == me || self.is_reached_both_ways(*v));
        if survivors.min() != Some(me) {
            tracing::info!(
                component = "RAFT",
                "The cluster database's leader (node {id}) is Down: Standing for election once, which ends this node's leader lease so that it grants a survivor's vote"
            );
            cluster.trigger_election();
            return;
        }
        tracing::info!(
            component = "RAFT",
            "The cluster database's leader (node {id}) is Down: this node stands for election now and every quarter Delay until a new leader is known"
        );
        self.election_due(id, 0);
    }

    fn schedule_election(&self, old_leader: u64, attempt: u32, after: Duration) {
        let tx = self.notices_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(Notice::Elect {
                old_leader,
                attempt,
            });
        });
    }

    /// A planned election is due: stand unless a leader other than the lost one is known, or the
    /// lost one is back.
    pub(super) fn election_due(&mut self, old_leader: u64, attempt: u32) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let leader = cluster.leader_id();
        let lost_still_down = self.peers.get(&old_leader) == Some(&keelson_netft::NodeState::Down);
        if (leader.is_some() && leader != Some(old_leader))
            || !lost_still_down
            || self.quorum.admit().is_err()
        {
            return;
        }
        tracing::info!(
            component = "RAFT",
            "Standing for election (attempt {} of {ATTEMPTS}): the leader, node {old_leader}, is Down",
            attempt + 1
        );
        cluster.trigger_election();
        if attempt + 1 < ATTEMPTS {
            let delay = TakeoverTiming::new(&self.netft_settings(), 0).delay_ms;
            let every = Duration::from_millis((delay / 4).max(MIN_RETRY_MS));
            self.schedule_election(old_leader, attempt + 1, every);
        }
    }
}
