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
//!
//! **With a contact lease (the default where it fits).** Waiting after detection is not needed if
//! X gives up its groups *before* the majority can take it Down. So X counts a peer towards its
//! quorum only while it heard it within a window `W` (NetFT's `ContactLease`), and tells a peer
//! "I hear you" only while it heard it within `W - D`:
//!
//! * symmetric cut at t0: X hears nobody after t0 and is out of quorum by `t0 + W`;
//! * one-way cut, X no longer heard: the majority stops saying it hears X by `t0 + W - D`, and
//!   their next heartbeat, within one more D, tells X: out of quorum by `t0 + W`;
//! * one-way cut, X deaf: as the symmetric case on X's side (the majority keeps hearing X and
//!   never takes it Down: its groups wait for the heal, as before);
//! * frozen rcm: the hosts' lease, as above.
//!
//! X runs nothing after `t0 + W + B`. Choosing `W = (T - 1/2) × D - B - D/2` makes that half a
//! Delay (the margin) before the earliest Down, so the majority may start X's groups the moment it
//! takes X Down: `takeover_wait = 0`, provided the host lease is at most `W` too. The lease is
//! used only when `W - D` is at least 3/2 Delays and 750 ms, so that a peer says "I hear you"
//! through one lost heartbeat on every path and through a loaded machine's scheduling stalls
//! (neither flaps quorum), and when `W` is shorter than the membership rule's `(T + 3/2) × D`;
//! otherwise the membership rule above applies unchanged (the tests' Delay 200 with Threshold 5,
//! for instance).
//! With WSFC's defaults (D 1000 ms, T 5, B 1000 ms) `W` = 3000 ms: a node that hears no majority
//! for 3 s gives up its groups, and the majority moves them as soon as it takes the node Down.

use keelson_netft::{ContactLease, NetftSettings};

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
    /// The longest host lease that adds nothing to the takeover wait.
    pub host_lease_ms: u64,
    /// The contact lease every node runs its heartbeats with, when the timing uses one.
    pub contact: Option<ContactLease>,
}

impl TakeoverTiming {
    /// The timing for `settings`, with `terminate_budget_ms` for a node to terminate everything:
    /// the contact lease where it fits, else the membership rule.
    pub fn new(settings: &NetftSettings, terminate_budget_ms: u64) -> TakeoverTiming {
        let membership = TakeoverTiming::membership(settings, terminate_budget_ms);
        membership
            .with_contact_lease(terminate_budget_ms)
            .unwrap_or(membership)
    }

    /// The timing by the membership rule alone: quorum follows NetFT's node states.
    pub fn membership(settings: &NetftSettings, terminate_budget_ms: u64) -> TakeoverTiming {
        let (delay, threshold) = slower_timing(settings);
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
            contact: None,
        }
    }

    /// The contact-lease timing derived from the membership one, when it fits (see the module).
    fn with_contact_lease(&self, terminate_budget_ms: u64) -> Option<TakeoverTiming> {
        let delay = self.delay_ms;
        let margin = delay / 2;
        let window = self
            .earliest_down_ms
            .checked_sub(terminate_budget_ms + margin)?;
        let hears = window.checked_sub(delay)?;
        if hears < MIN_HEARS_MS.max(3 * delay / 2) || window >= self.quorum_lost_by_ms {
            return None;
        }
        let clean_by_ms = window + terminate_budget_ms;
        Some(TakeoverTiming {
            quorum_lost_by_ms: window,
            clean_by_ms,
            takeover_wait_ms: (clean_by_ms + margin).saturating_sub(self.earliest_down_ms),
            host_lease_ms: window,
            contact: Some(ContactLease {
                window_ms: window,
                hears_ms: hears,
            }),
            ..*self
        })
    }

    /// The margin the wait leaves for scheduling and timer jitter.
    fn margin_ms(&self) -> u64 {
        if self.contact.is_some() {
            self.delay_ms / 2
        } else {
            self.delay_ms
        }
    }

    /// The wait after a node went Down, long enough too for a frozen node's hosts, whose lease
    /// from their rcm is `host_lease_ms` and who terminate within `budget_ms`, to be done.
    pub fn wait_with_hosts(&self, host_lease_ms: u64, budget_ms: u64) -> u64 {
        let hosts_done = host_lease_ms + budget_ms + self.margin_ms();
        self.takeover_wait_ms
            .max(hosts_done.saturating_sub(self.earliest_down_ms))
    }

    /// The earliest instant, after the cut, at which the majority starts the lost node's groups.
    pub fn earliest_takeover_ms(&self) -> u64 {
        self.earliest_down_ms + self.takeover_wait_ms
    }
}

/// The shortest silence after which a node stops telling a peer it hears it, whatever the
/// Delay: a loaded machine's scheduling stalls must not flap quorum.
const MIN_HEARS_MS: u64 = 750;

/// The slower route kind's Delay and Threshold (the larger detection window).
fn slower_timing(settings: &NetftSettings) -> (u64, u64) {
    let (same_delay, same_threshold) = settings.timing(true);
    let (cross_delay, cross_threshold) = settings.timing(false);
    let window = |d: u32, t: u32| u64::from(d) * u64::from(t);
    if window(same_delay, same_threshold) >= window(cross_delay, cross_threshold) {
        (u64::from(same_delay), u64::from(same_threshold))
    } else {
        (u64::from(cross_delay), u64::from(cross_threshold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsfc_defaults_give_a_four_second_wait_after_detection() {
        let t = TakeoverTiming::membership(&NetftSettings::default(), 1000);
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
                contact: None,
            }
        );
    }

    #[test]
    fn with_wsfc_defaults_the_contact_lease_leaves_no_wait_after_detection() {
        let t = TakeoverTiming::new(&NetftSettings::default(), 1000);
        assert_eq!(
            t,
            TakeoverTiming {
                delay_ms: 1000,
                threshold: 5,
                earliest_down_ms: 4500,
                quorum_lost_by_ms: 3000,
                clean_by_ms: 4000,
                takeover_wait_ms: 0,
                host_lease_ms: 3000,
                contact: Some(ContactLease {
                    window_ms: 3000,
                    hears_ms: 2000
                }),
            }
        );
        // rcm's default host lease (3000 ms) and fence budget (1000 ms) add nothing.
        assert_eq!(t.wait_with_hosts(3000, 1000), 0);
        assert_eq!(t.wait_with_hosts(3500, 1000), 500);
    }

    #[test]
    fn the_membership_rule_applies_where_the_lease_would_flap_or_gain_nothing() {
        let short = |delay: u32, threshold: u32| NetftSettings {
            same_subnet_delay_ms: delay,
            same_subnet_threshold: threshold,
            cross_subnet_delay_ms: delay,
            cross_subnet_threshold: threshold,
            ..NetftSettings::default()
        };
        // The tests' Delay 200 with a one-second budget: no room for a window at all; with
        // t23's 300 ms budget, a window of 500 ms would flap under load.
        assert_eq!(TakeoverTiming::new(&short(200, 5), 1000).contact, None);
        assert_eq!(TakeoverTiming::new(&short(200, 5), 300).contact, None);
        // Threshold 10 at Delay 200 with a 300 ms budget: W = 1900 - 300 - 100.
        let t = TakeoverTiming::new(&short(200, 10), 300);
        assert_eq!(
            t.contact.map(|c| (c.window_ms, c.hears_ms)),
            Some((1500, 1300))
        );
        assert_eq!(t.wait_with_hosts(900, 300), 0);
        // D = 660 (Pacemaker's detection at token 1000) with a one-second budget: 1640 < 1650.
        assert_eq!(TakeoverTiming::new(&short(660, 5), 1000).contact, None);
        // ... and with a 500 ms budget the lease fits: W = 2970 - 500 - 330.
        let t = TakeoverTiming::new(&short(660, 5), 500);
        assert_eq!(t.contact.map(|c| c.window_ms), Some(2140));
        assert_eq!(t.takeover_wait_ms, 0);
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
                    let m = TakeoverTiming::membership(&settings, budget);
                    assert!(m.earliest_takeover_ms() > m.clean_by_ms, "{m:?}");
                    assert!(m.quorum_lost_by_ms > m.earliest_down_ms, "{m:?}");
                    // A frozen node's hosts: lease from the last renewal (at most at the cut)
                    // plus the budget is before the takeover too.
                    assert!(m.host_lease_ms + budget < m.earliest_takeover_ms(), "{m:?}");
                    let t = TakeoverTiming::new(&settings, budget);
                    assert!(t.earliest_takeover_ms() > t.clean_by_ms, "{t:?}");
                    assert!(t.host_lease_ms + budget < t.earliest_takeover_ms(), "{t:?}");
                    for lease in [0u64, 500, 3000, 10_000] {
                        let wait = t.wait_with_hosts(lease, budget);
                        assert!(t.earliest_down_ms + wait > lease + budget, "{t:?} {lease}");
                    }
                    if let Some(c) = t.contact {
                        // Quorum is lost within the window, on either kind of cut: a one-way
                        // cut shows one Delay after the peers' "hears you" window.
                        assert!(c.hears_ms + t.delay_ms <= c.window_ms, "{t:?}");
                        assert!(c.hears_ms >= (3 * t.delay_ms / 2).max(750), "{t:?}");
                        assert!(c.window_ms < t.earliest_down_ms, "{t:?}");
                        assert!(t.quorum_lost_by_ms == c.window_ms, "{t:?}");
                    }
                }
            }
        }
    }
}
