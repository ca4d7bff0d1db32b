//! Raft's heartbeat and election timing derived from the NetFT heartbeat settings, so that losing
//! one network path never makes a follower start an election. A pure function and its argument;
//! not the NetFT settings themselves (crates/netft) nor applying a change at run time.

use std::sync::Arc;

use keelson_netft::NetftSettings;
use openraft::{Config, ConfigError};

/// The largest snapshot chunk sent in one frame: well under the frame limit.
pub const SNAPSHOT_CHUNK: u64 = 1024 * 1024;

/// Raft's timing, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    /// How often the leader sends a heartbeat, and (openraft) how long one append-entries RPC may
    /// take before it is abandoned and retried.
    pub heartbeat_ms: u64,
    /// The longest a follower can go without hearing from a live leader when one path is lost.
    pub path_loss_silence_ms: u64,
    /// A follower waits at least this long without a heartbeat before it campaigns.
    pub election_min_ms: u64,
    /// ... and at most this long (the spread keeps two followers from campaigning together).
    pub election_max_ms: u64,
}

/// Raft's timing for NetFT's `settings`.
///
/// **Why losing one path never triggers an election.** Two nodes talk raft over TCP between
/// their NetFT virtual addresses, and NetFT carries those packets over the best route that is Up.
/// When that route's path is cut, NetFT does not notice at once: with delay `D` and threshold `T`
/// (the larger `(T + 1) × D` of the same-subnet and cross-subnet settings) the route is declared
/// Down within `(T + 1) × D` of the cut — the last heartbeat that arrived may be up to one `D` old
/// when the cut happens, then `T` more are missed. From then on NetFT sends the next packet over
/// the next route. Until then the leader's heartbeats are lost. The append-entries RPC in flight
/// when the route switches is abandoned after one heartbeat interval `H` (openraft's RPC timeout
/// for append-entries), and the next one, sent on a fresh connection (network.rs drops a
/// connection whose call was abandoned; a connection that does not come up in time is a
/// `Timeout` too, never an `Unreachable` that openraft would back off from), goes out at the next
/// tick, within another `H`. So a
/// follower hears nothing for at most
///
/// ```text
/// silence = (T + 1) × D + 2 × H
/// ```
///
/// and it campaigns only after `election_min = silence + D` (one more heartbeat delay of margin
/// for timer and scheduling jitter, and the reconnect's handshake). openraft 0.9 additionally
/// waits out a leader lease (`election_timeout_max`) while it knows a leader, which only adds to
/// the margin; the argument does not rely on it. `H = D / 2` (same-subnet delay), at least 1 ms, so
/// raft's heartbeats are never slower than NetFT's. The election window is `[min, min + 2 × D)`.
///
/// The price: when the *leader* dies (all its paths), a new one is elected only after about
/// `election_max + election_min` — 8 s to 10 s plus the lease with WSFC's defaults (D = 1000 ms,
/// T = 5). Node loss itself is NetFT's to report, in `T × D`.
pub fn raft_timing(settings: &NetftSettings) -> RaftTiming {
    let (same_delay, same_threshold) = settings.timing(true);
    let (cross_delay, cross_threshold) = settings.timing(false);
    let detect = |delay: u32, threshold: u32| (u64::from(threshold) + 1) * u64::from(delay);
    let detection = detect(same_delay, same_threshold).max(detect(cross_delay, cross_threshold));
    let delay = u64::from(same_delay);
    let heartbeat_ms = (delay / 2).max(1);
    let path_loss_silence_ms = detection + 2 * heartbeat_ms;
    let election_min_ms = path_loss_silence_ms + delay;
    RaftTiming {
        heartbeat_ms,
        path_loss_silence_ms,
        election_min_ms,
        election_max_ms: election_min_ms + 2 * delay,
    }
}

impl RaftTiming {
    /// openraft's configuration with this timing, for the cluster named `cluster_name`.
    pub fn config(&self, cluster_name: &str) -> Result<Arc<Config>, ConfigError> {
        let config = Config {
            cluster_name: cluster_name.to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            install_snapshot_timeout: self.election_min_ms,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK,
            ..Default::default()
        };
        Ok(Arc::new(config.validate()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsfc_defaults_give_half_second_heartbeats_and_an_eight_second_election_timeout() {
        let t = raft_timing(&NetftSettings::default());
        assert_eq!(
            t,
            RaftTiming {
                heartbeat_ms: 500,
                path_loss_silence_ms: 7000,
                election_min_ms: 8000,
                election_max_ms: 10_000,
            }
        );
        let config = t.config("c").unwrap();
        assert_eq!(config.heartbeat_interval, 500);
        assert_eq!(config.election_timeout_min, 8000);
        assert_eq!(config.election_timeout_max, 10_000);
    }

    /// Every accepted setting: a follower's shortest election timeout outlasts the longest silence
    /// a single lost path causes, computed here from first principles.
    #[test]
    fn no_accepted_setting_lets_a_lost_path_outlast_the_election_timeout() {
        for delay in (250..=2000).step_by(50) {
            for threshold in 3..=10 {
                for (cross_delay, cross_threshold) in [(250, 3), (delay, threshold), (4000, 10)] {
                    let s =
                        NetftSettings::new(delay, threshold, cross_delay, cross_threshold).unwrap();
                    check(&s);
                }
            }
        }
    }

    #[test]
    fn the_test_only_lower_limits_keep_the_argument() {
        for delay in [10, 20, 50, 100] {
            for threshold in 2..=5 {
                check(&NetftSettings::test_only_override(delay, threshold).unwrap());
            }
        }
    }

    fn check(s: &NetftSettings) {
        let t = raft_timing(s);
        let worst_detection = [s.timing(true), s.timing(false)]
            .into_iter()
            .map(|(d, th)| u64::from(d) * (u64::from(th) + 1))
            .max()
            .unwrap();
        let silence = worst_detection + 2 * t.heartbeat_ms;
        assert!(t.election_min_ms > silence, "{s:?}: {t:?}");
        assert!(
            t.election_min_ms - silence >= u64::from(s.same_subnet_delay_ms),
            "a margin of one delay: {s:?} {t:?}"
        );
        assert!(t.election_max_ms > t.election_min_ms, "{t:?}");
        assert!(t.heartbeat_ms < u64::from(s.same_subnet_delay_ms), "{t:?}");
        assert!(t.config("c").is_ok(), "{s:?}");
    }
}
