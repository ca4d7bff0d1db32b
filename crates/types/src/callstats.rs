//! Per-call timing: count, p50, p99, max and last duration per entry point, over a window of recent
//! calls; and, for the checks a host runs by itself, the summaries it reports, added to what this side
//! measured (and to what earlier instances of the resource reported). Not the clock: callers measure
//! and record.

use crate::Op;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Percentiles are computed over at most this many recent calls per entry point, by default.
const WINDOW: usize = 1024;

/// Summary of one entry point's calls, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStats {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub last_us: u64,
}

/// Recent samples of one entry point.
#[derive(Clone, Debug, Default)]
struct Samples {
    count: u64,
    max_us: u64,
    last_us: u64,
    ring: Vec<u64>,
}

impl Samples {
    fn record(&mut self, us: u64, window: usize) {
        if self.ring.len() < window {
            self.ring.push(us);
        } else {
            self.ring[(self.count % window as u64) as usize] = us;
        }
        self.count += 1;
        self.max_us = self.max_us.max(us);
        self.last_us = us;
    }

    fn summary(&self) -> CallStats {
        let mut window = self.ring.clone();
        CallStats {
            count: self.count,
            p50_us: percentile(&mut window, 50),
            p99_us: percentile(&mut window, 99),
            max_us: self.max_us,
            last_us: self.last_us,
        }
    }
}

/// Nearest-rank percentile of the samples (reordered, in linear time); 0 when empty.
fn percentile(samples: &mut [u64], p: usize) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let rank = (p * samples.len()).div_ceil(100).max(1);
    *samples.select_nth_unstable(rank - 1).1
}

/// What hosts reported for one entry point they call by themselves.
#[derive(Clone, Copy, Debug, Default)]
struct Reported {
    /// The current instance's latest summary (counts since its open).
    current: CallStats,
    /// Calls of earlier instances (and calls lost with their host, which no instance reported).
    earlier: u64,
}

/// Timings of one resource, by entry point.
#[derive(Clone, Debug)]
pub struct CallTimings {
    by_op: BTreeMap<Op, Samples>,
    reported: BTreeMap<Op, Reported>,
    /// How many recent calls per entry point the percentiles cover.
    window: usize,
}

impl Default for CallTimings {
    fn default() -> Self {
        CallTimings::with_window(WINDOW)
    }
}

impl CallTimings {
    /// Timings whose percentiles cover the last `window` calls of each entry point (at least 1).
    pub fn with_window(window: usize) -> CallTimings {
        CallTimings {
            by_op: BTreeMap::new(),
            reported: BTreeMap::new(),
            window: window.max(1),
        }
    }

    pub fn record(&mut self, op: Op, elapsed: Duration) {
        self.by_op
            .entry(op)
            .or_default()
            .record(elapsed.as_micros() as u64, self.window);
    }

    /// Count, max and last (µs) of the calls of `op` timed here: cheap, no percentiles.
    pub fn counters(&self, op: Op) -> Option<(u64, u64, u64)> {
        self.by_op.get(&op).map(|s| (s.count, s.max_us, s.last_us))
    }

    /// The host's summary of the calls of `op` it made by itself since this instance was opened.
    /// Returns how many calls are new since its previous report.
    pub fn report(&mut self, op: Op, stats: CallStats) -> u64 {
        let r = self.reported.entry(op).or_default();
        let new = stats.count.saturating_sub(r.current.count);
        r.current = stats;
        new
    }

    /// A call of `op` that ended with its host before any report (a crash): counted, not timed.
    pub fn record_lost(&mut self, op: Op) {
        self.reported.entry(op).or_default().earlier += 1;
    }

    /// The resource was opened again: what the previous instance reported becomes history (its
    /// percentiles show until the new instance reports).
    pub fn begin_instance(&mut self) {
        for r in self.reported.values_mut() {
            r.earlier += r.current.count;
            r.current.count = 0;
        }
    }

    /// Summary per entry point that has been called at least once.
    pub fn summary(&self) -> BTreeMap<Op, CallStats> {
        let mut out: BTreeMap<Op, CallStats> = self
            .by_op
            .iter()
            .map(|(op, s)| (*op, s.summary()))
            .collect();
        for (op, r) in &self.reported {
            let count = r.earlier + r.current.count;
            let entry = out.entry(*op).or_default();
            if r.current.count > 0 || entry.count == 0 {
                // The host's own measurement of its recent calls is the better picture.
                *entry = CallStats {
                    max_us: entry.max_us.max(r.current.max_us),
                    ..r.current
                };
            }
            entry.count = self.by_op.get(op).map_or(0, |s| s.count) + count;
        }
        out.retain(|_, s| s.count > 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_over_a_sliding_window() {
        let mut t = CallTimings::default();
        for us in 1..=100 {
            t.record(Op::LooksAlive, Duration::from_micros(us));
        }
        let s = t.summary()[&Op::LooksAlive];
        assert_eq!(
            (s.count, s.p50_us, s.p99_us, s.max_us, s.last_us),
            (100, 50, 99, 100, 100)
        );
        for _ in 0..WINDOW {
            t.record(Op::LooksAlive, Duration::from_micros(7));
        }
        let s = t.summary()[&Op::LooksAlive];
        assert_eq!((s.p50_us, s.p99_us, s.max_us), (7, 7, 100));
        assert!(!t.summary().contains_key(&Op::IsAlive));
        // A smaller window forgets sooner.
        let mut t = CallTimings::with_window(4);
        for us in [100, 1, 1, 1, 1] {
            t.record(Op::IsAlive, Duration::from_micros(us));
        }
        let s = t.summary()[&Op::IsAlive];
        assert_eq!((s.count, s.p99_us, s.max_us), (5, 1, 100));
    }

    #[test]
    fn host_reports_add_up_across_instances_and_lost_calls() {
        let mut t = CallTimings::default();
        let report = |count, p50| CallStats {
            count,
            p50_us: p50,
            p99_us: p50 * 2,
            max_us: p50 * 3,
            last_us: p50,
        };
        assert_eq!(t.report(Op::LooksAlive, report(3, 10)), 3);
        assert_eq!(t.report(Op::LooksAlive, report(5, 12)), 2);
        assert_eq!(t.summary()[&Op::LooksAlive], report(5, 12));
        // The host crashed in an IsAlive it never reported, then the resource was reopened.
        t.record_lost(Op::IsAlive);
        t.begin_instance();
        assert_eq!(t.summary()[&Op::IsAlive].count, 1);
        assert_eq!(t.summary()[&Op::LooksAlive].count, 5);
        assert_eq!(t.report(Op::LooksAlive, report(1, 20)), 1);
        let s = t.summary()[&Op::LooksAlive];
        assert_eq!((s.count, s.p50_us, s.max_us), (6, 20, 60));
        // Calls timed here (an explicit one) count too.
        t.record(Op::LooksAlive, Duration::from_micros(100));
        let s = t.summary()[&Op::LooksAlive];
        assert_eq!((s.count, s.max_us), (7, 100));
    }
}
