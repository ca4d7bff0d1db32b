//! The core's facet that gets a new raft leader elected soon after the heartbeat network takes
//! the old one Down, instead of after raft's own election timeouts (which are longer than a
//! NetFT detection, so that a path loss the virtual adapter reroutes costs no election). openraft
//! voters refuse votes until their leader lease (election_timeout_max since they last heard the
//! leader) has run out, so the one surviving member with the smallest id stands for election
//! just after that lease must have ended on every survivor, and again every Delay a few times if
//! no leader came of it. Not the election itself (openraft), nor placement (placement_gate.rs).

use super::Core;
use crate::cluster::heartbeat::Notice;
use crate::cluster::takeover::TakeoverTiming;
use std::time::Duration;

/// How many times a survivor stands for election before it leaves it to raft's own timeouts.
const ATTEMPTS: u32 = 4;

impl Core {
    /// Member `id` went Down: if it led raft, the smallest-id survivor plans to stand.
    pub(super) fn nudge_election(&mut self, id: u64) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if cluster.leader_id() != Some(id) {
            return;
        }
        let (_, me) = cluster.me();
        let survivors = cluster
            .voters()
            .into_iter()
            .map(|(v, _)| v)
            .filter(|v| *v == me || self.is_reached_both_ways(*v));
        if survivors.min() != Some(me) {
            return;
        }
        let raft = cluster.raft_timing();
        let takeover = TakeoverTiming::new(&self.netft_settings(), 0);
        // Every survivor last heard the leader no later than (this node's Down) - earliest_down:
        // their leases are over election_max after that, plus half a Delay for the wire.
        let after = (raft.election_max_ms + takeover.delay_ms / 2)
            .saturating_sub(takeover.earliest_down_ms);
        tracing::info!(
            component = "RAFT",
            "The cluster database's leader (node {id}) is Down: this node stands for election in {after} ms, once every survivor's leader lease is over"
        );
        self.schedule_election(id, 0, Duration::from_millis(after));
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
        if (leader.is_some() && leader != Some(old_leader)) || !lost_still_down {
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
            self.schedule_election(old_leader, attempt + 1, Duration::from_millis(delay));
        }
    }
}
