//! Statistics of the health checks a host runs by itself: each resource thread times its checks and
//! posts their counters now and then (its first check of each kind at once, then at most every
//! POST_PERIOD_MS, and whatever is left when polling stops), the percentiles recomputed at most every
//! PERCENTILE_PERIOD_MS; one reporter thread sends what was posted up the control socket in a few
//! frames. Not the checks (resource.rs) nor the summary arithmetic
//! (keelson_types::CallTimings).

use crate::log::ControlWriter;
use keelson_proto::{HostReply, ResourceCallStats};
use keelson_types::{CallStats, CallTimings, Op, ResourceId};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A resource posts the counters of a kind of check at most this often (ms)...
const POST_PERIOD_MS: u64 = 1_000;
/// ...and recomputes its percentiles (a pass over the window of samples) at most this often (ms).
const PERCENTILE_PERIOD_MS: u64 = 15_000;
/// Percentiles cover this many recent checks of each kind (21 minutes of LooksAlive at the default
/// 5 s): the host keeps one such window per resource, so it is kept small.
const HOST_WINDOW: usize = 256;
/// The reporter waits this long after the first post to gather others into the same frames.
const GATHER: Duration = Duration::from_millis(250);
/// Summaries per frame (about 20 bytes each, far below the frame limit).
const PER_FRAME: usize = 512;

/// Summaries posted and not yet sent; shared by every resource thread and the reporter.
#[derive(Default)]
pub struct StatsBoard {
    posted: Mutex<Vec<ResourceCallStats>>,
    wake: Condvar,
}

impl StatsBoard {
    fn post(&self, entry: ResourceCallStats) {
        let mut posted = self.posted.lock().unwrap_or_else(|p| p.into_inner());
        posted.push(entry);
        if posted.len() == 1 {
            self.wake.notify_one();
        }
    }

    /// The reporter thread: waits for a post, gathers for GATHER, sends everything posted.
    pub fn run(self: Arc<StatsBoard>, control: ControlWriter) {
        loop {
            let mut posted = self.posted.lock().unwrap_or_else(|p| p.into_inner());
            while posted.is_empty() {
                posted = self.wake.wait(posted).unwrap_or_else(|p| p.into_inner());
            }
            drop(posted);
            std::thread::sleep(GATHER);
            let batch = std::mem::take(&mut *self.posted.lock().unwrap_or_else(|p| p.into_inner()));
            for chunk in batch.chunks(PER_FRAME) {
                control.send(&HostReply::CallStats {
                    stats: chunk.to_vec(),
                });
            }
        }
    }
}

/// What was last posted for one kind of check.
#[derive(Clone, Copy, Default)]
struct Posted {
    at_ms: u64,
    /// Checks since that post.
    unposted: u64,
    /// When the percentiles were last computed, and their values.
    percentiles_at_ms: u64,
    p50_us: u64,
    p99_us: u64,
}

/// One resource instance's check timings and what was last posted of each kind.
pub struct HealthStats {
    resource: ResourceId,
    timings: CallTimings,
    posted: BTreeMap<Op, Posted>,
    board: Arc<StatsBoard>,
}

impl HealthStats {
    pub fn new(resource: ResourceId, board: Arc<StatsBoard>) -> HealthStats {
        HealthStats {
            resource,
            timings: CallTimings::with_window(HOST_WINDOW),
            posted: BTreeMap::new(),
            board,
        }
    }

    /// Records one check of `op` taking `elapsed`, at `now_ms`; posts when due (the first check of
    /// a kind at once, then at most every POST_PERIOD_MS).
    pub fn record(&mut self, op: Op, elapsed: Duration, now_ms: u64) {
        self.timings.record(op, elapsed);
        let first = !self.posted.contains_key(&op);
        let posted = self.posted.entry(op).or_default();
        posted.unposted += 1;
        if first || now_ms.saturating_sub(posted.at_ms) >= POST_PERIOD_MS {
            let fresh =
                first || now_ms.saturating_sub(posted.percentiles_at_ms) >= PERCENTILE_PERIOD_MS;
            self.post(op, now_ms, fresh);
        }
    }

    /// Posts every kind with checks not posted yet, percentiles fresh (polling stops, or the
    /// resource closes).
    pub fn flush(&mut self, now_ms: u64) {
        let due: Vec<Op> = self
            .posted
            .iter()
            .filter(|(_, p)| p.unposted > 0)
            .map(|(op, _)| *op)
            .collect();
        for op in due {
            self.post(op, now_ms, true);
        }
    }

    /// Posts the counters of `op`, with percentiles recomputed if `fresh`, else the last ones.
    fn post(&mut self, op: Op, now_ms: u64, fresh: bool) {
        let Some((count, max_us, last_us)) = self.timings.counters(op) else {
            return;
        };
        let posted = self.posted.entry(op).or_default();
        if fresh {
            let summary = self.timings.summary().get(&op).copied().unwrap_or_default();
            (posted.p50_us, posted.p99_us) = (summary.p50_us, summary.p99_us);
            posted.percentiles_at_ms = now_ms;
        }
        posted.at_ms = now_ms;
        posted.unposted = 0;
        self.board.post(ResourceCallStats {
            resource: self.resource,
            op,
            stats: CallStats {
                count,
                p50_us: posted.p50_us,
                p99_us: posted.p99_us,
                max_us,
                last_us,
            },
        });
    }
}
