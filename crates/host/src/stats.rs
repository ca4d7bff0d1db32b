//! Per-call timing: count, p50, p99, max and last duration per entry point, over a window of recent
//! calls. Not the clock: callers measure and record.

use keelson_types::Op;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Percentiles are computed over at most this many recent calls per entry point.
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
    fn record(&mut self, us: u64) {
        if self.ring.len() < WINDOW {
            self.ring.push(us);
        } else {
            self.ring[(self.count % WINDOW as u64) as usize] = us;
        }
        self.count += 1;
        self.max_us = self.max_us.max(us);
        self.last_us = us;
    }

    fn summary(&self) -> CallStats {
        let mut sorted = self.ring.clone();
        sorted.sort_unstable();
        CallStats {
            count: self.count,
            p50_us: percentile(&sorted, 50),
            p99_us: percentile(&sorted, 99),
            max_us: self.max_us,
            last_us: self.last_us,
        }
    }
}

/// Nearest-rank percentile of sorted samples; 0 when empty.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Timings of one resource, by entry point.
#[derive(Clone, Debug, Default)]
pub struct CallTimings {
    by_op: BTreeMap<Op, Samples>,
}

impl CallTimings {
    pub fn record(&mut self, op: Op, elapsed: Duration) {
        self.by_op
            .entry(op)
            .or_default()
            .record(elapsed.as_micros() as u64);
    }

    /// Summary per entry point that has been called at least once.
    pub fn summary(&self) -> BTreeMap<Op, CallStats> {
        self.by_op
            .iter()
            .map(|(op, s)| (*op, s.summary()))
            .collect()
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
    }
}
