//! When the majority may start a lost node's groups, and how long that node's hosts may run
//! without their rcm: the timing argument that keeps a group from being Online on two nodes at
//! once, derived from the NetFT settings and the time a node needs to terminate its resources.
//! Pure; not the detector (crates/netft), not the hosts' lease itself (crates/host, rhs), and not
//! who decides the move (the placement core).
//!
//! **The argument.** Let D be the heartbeat delay and T the threshold (the slower route kind's),
//! and B the terminate budget (the longest a node takes to terminate every resource it runs:
//! the Terminate calls' deadline). A node X is cut off (or dies, or freezes) at instant t0.
//!
//! * The majority takes X Down no earlier than `t0 + (T - 1/2) × D`: a route is Down when
//!   heartbeat k, due `k × D` after the last one heard, is half a Delay late, and the last one
//!   heard may have left X just before t0 (so at most one Delay of the window was already spent).
//! * X loses quorum no later than `t0 + (T + 1/2) × D + D`: if the cut is symmetric, X takes the
//!   majority Down by `t0 + (T + 1/2) × D`; if it is one-way (X still hears them), the majority's
//!   next heartbeat after taking X Down, within one more D, says they no longer hear X, and X
//!   counts only members reached both ways. It then terminates its groups within B.
//! * If X's rcm is frozen instead, NetFT (which runs in it) is frozen too, and X's hosts fence
//!   themselves: each rhs terminates its resources when its lease from rcm, renewed every
//!   `host_lease / 3`, has not been renewed for `host_lease`, and is done within B.
//!
//! So X runs nothing after `t0 + (T + 3/2) × D + B` (or `t0 + host_lease + B` if frozen), and the
//! majority waits `takeover_wait = 2 × D + B + margin` after taking X Down, which ends no earlier
//! than `t0 + (T + 3/2) × D + B + margin`. The host lease is chosen so that a frozen node's hosts
//! are done by then too: `host_lease = (T + 3/2) × D`, at most, since a renewal may have been
//! sent just before t0. The margin (one D) covers scheduling and timer jitter on both sides; all
//! instants are CLOCK_MONOTONIC on each node, never compared across nodes.

use keelson_netft::NetftSettings;

/// The derived timing, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeoverTiming {
    /// The slower route kind's Delay and Threshold.
    pub delay_ms: u64,
    pub threshold: u64,
    /// The earliest the majority can take a cut node Down, after the cut.
    pub earliest_down_ms: u64,
    /// The latest a cut node has lost quorum, after the cut.
    pub quorum_lost_by_ms: u64,
    /// The latest a cut or frozen node runs nothing, after the cut.
    pub clean_by_ms: u64,
    /// How long the majority waits after taking a node Down before it starts its groups.
    pub takeover_wait_ms: u64,
    /// How long a host runs without a lease renewal from its rcm before it fences itself.
    pub host_lease_ms: u64,
}

impl TakeoverTiming {
    /// The timing for `settings`, with `terminate_budget_ms` for a node to terminate everything.
    pub fn new(settings: &NetftSettings, terminate_budget_ms: u64) -> TakeoverTiming {
        let (same_delay, same_threshold) = settings.timing(true);
        let (cross_delay, cross_threshold) = settings.timing(false);
        let window = |d: u32, t: u32| u64::from(d) * u64::from(t);
        let (delay, threshold) =
            if window(same_delay, same_threshold) >= window(cross_delay, cross_threshold) {
                (u64::from(same_delay), u64::from(same_threshold))
            } else {
                (u64::from(cross_delay), u64::from(cross_threshold))
            };
        let half = delay / 2;
        let earliest_down_ms = threshold * delay - half;
        let quorum_lost_by_ms = threshold * delay + half + delay;
        let clean_by_ms = quorum_lost_by_ms + terminate_budget_ms;
        let margin = delay;
        TakeoverTiming {
            delay_ms: delay,
            threshold,
            earliest_down_ms,
            quorum_lost_by_ms,
            clean_by_ms,
            takeover_wait_ms: clean_by_ms + margin - earliest_down_ms,
            host_lease_ms: quorum_lost_by_ms,
        }
    }

    /// The earliest instant, after the cut, at which the majority starts the lost node's groups.
    pub fn earliest_takeover_ms(&self) -> u64 {
        self.earliest_down_ms + self.takeover_wait_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsfc_defaults_give_a_four_second_wait_after_detection() {
        let t = TakeoverTiming::new(&NetftSettings::default(), 1000);
        assert_eq!(
            t,
            TakeoverTiming {
                delay_ms: 1000,
                threshold: 5,
                earliest_down_ms: 4500,
                quorum_lost_by_ms: 6500,
                clean_by_ms: 7500,
                takeover_wait_ms: 4000,
                host_lease_ms: 6500,
            }
        );
    }

    #[test]
    fn a_takeover_never_starts_before_the_lost_node_is_clean_whatever_the_settings() {
        for delay in [50u32, 100, 250, 1000, 2000, 4000] {
            for threshold in [2u32, 3, 5, 10] {
                for budget in [0u64, 200, 1000, 5000] {
                    let settings = NetftSettings {
                        same_subnet_delay_ms: delay,
                        same_subnet_threshold: threshold,
                        cross_subnet_delay_ms: delay,
                        cross_subnet_threshold: threshold,
                        ..NetftSettings::default()
                    };
                    let t = TakeoverTiming::new(&settings, budget);
                    assert!(t.earliest_takeover_ms() > t.clean_by_ms, "{t:?}");
                    assert!(t.quorum_lost_by_ms > t.earliest_down_ms, "{t:?}");
                    // A frozen node's hosts: lease from the last renewal (at most at the cut)
                    // plus the budget is before the takeover too.
                    assert!(t.host_lease_ms + budget < t.earliest_takeover_ms(), "{t:?}");
                }
            }
        }
    }
}
