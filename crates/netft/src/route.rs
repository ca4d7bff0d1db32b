//! One route's live state: its heartbeat cadence, when it is due to be declared Down, its replay
//! window and loss count. Not the decisions that combine routes into node and network states
//! (detector.rs).

use crate::action::RouteState;
use crate::replay::ReplayWindow;
use crate::topology::RouteSpec;

/// A route and what this node knows about it right now.
#[derive(Debug, Clone)]
pub struct Route {
    pub spec: RouteSpec,
    pub delay_ms: u64,
    pub threshold: u64,
    pub state: RouteState,
    /// When the last good heartbeat arrived, or when the route was added (or the clock stepped).
    pub last_good_ms: u64,
    /// When any accepted heartbeat last arrived.
    pub last_heard_ms: Option<u64>,
    pub next_send_ms: u64,
    /// The sequence number of the last heartbeat sent on this route.
    pub tx_sequence: u64,
    pub window: ReplayWindow,
    /// Heartbeats from the peer that never arrived (gaps in its sequence numbers).
    pub lost: u64,
    /// Heartbeats accepted on this route.
    pub received: u64,
}

impl Route {
    /// A route added at `now_ms`, with `delay_ms` between heartbeats and `threshold` misses to Down.
    pub fn new(spec: RouteSpec, delay_ms: u32, threshold: u32, now_ms: u64) -> Self {
        Route {
            spec,
            delay_ms: u64::from(delay_ms),
            threshold: u64::from(threshold),
            state: RouteState::Unknown,
            last_good_ms: now_ms,
            last_heard_ms: None,
            next_send_ms: now_ms,
            tx_sequence: 0,
            window: ReplayWindow::default(),
            lost: 0,
            received: 0,
        }
    }

    /// The instant `threshold` heartbeats in a row count as missed: heartbeat k is due at
    /// `last_good + k * delay` and missed once half a delay more has passed without it (the half
    /// delay absorbs jitter in sending and delivery).
    pub fn down_deadline_ms(&self) -> u64 {
        self.last_good_ms + self.threshold * self.delay_ms + self.delay_ms / 2
    }

    /// Heartbeats missed in a row as of `now_ms`.
    pub fn misses(&self, now_ms: u64) -> u64 {
        let grace = self.last_good_ms + self.delay_ms / 2;
        if now_ms < grace + self.delay_ms {
            return 0;
        }
        (now_ms - grace) / self.delay_ms
    }

    /// The full detection window (threshold x delay).
    pub fn window_ms(&self) -> u64 {
        self.threshold * self.delay_ms
    }

    /// Whether a heartbeat is due; if so, advances the cadence and returns the next sequence number.
    pub fn take_due_send(&mut self, now_ms: u64) -> Option<u64> {
        if now_ms < self.next_send_ms {
            return None;
        }
        self.next_send_ms += self.delay_ms;
        if self.next_send_ms <= now_ms {
            self.next_send_ms = now_ms + self.delay_ms;
        }
        self.tx_sequence += 1;
        Some(self.tx_sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NodeId, RouteKey};

    fn route() -> Route {
        let spec = RouteSpec {
            key: RouteKey {
                local: "192.0.2.1".parse().unwrap(),
                remote: "192.0.2.2".parse().unwrap(),
            },
            node: NodeId(2),
            network: "net1".into(),
            priority: 1,
            same_subnet: true,
            local_adapter: "eth0".into(),
            remote_adapter: "eth0".into(),
        };
        Route::new(spec, 1000, 5, 10_000)
    }

    #[test]
    fn misses_count_whole_delays_past_half_a_delay_of_grace() {
        let r = route();
        assert_eq!(r.misses(11_499), 0);
        assert_eq!(r.misses(11_500), 1);
        assert_eq!(r.misses(15_499), 4);
        assert_eq!(r.misses(15_500), 5);
        assert_eq!(r.down_deadline_ms(), 15_500);
    }

    #[test]
    fn sends_keep_their_cadence_and_skip_ahead_after_a_stall() {
        let mut r = route();
        assert_eq!(r.take_due_send(10_000), Some(1));
        assert_eq!(r.take_due_send(10_500), None);
        assert_eq!(r.take_due_send(11_020), Some(2));
        assert_eq!(r.next_send_ms, 12_000, "jitter does not drift the cadence");
        assert_eq!(r.take_due_send(19_000), Some(3));
        assert_eq!(r.next_send_ms, 20_000);
    }
}
