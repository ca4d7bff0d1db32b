//! Statistics of the health checks a host runs by itself: each resource thread times its checks and
//! posts a summary now and then (its first check of each kind at once, then at most every
//! STATS_PERIOD, and whatever is left when polling stops); one reporter thread sends what was posted
//! up the control socket in a few frames. Not the checks (resource.rs) nor the summary arithmetic
//! (keelson_types::CallTimings).

use crate::log::ControlWriter;
use keelson_proto::{HostReply, ResourceCallStats};
use keelson_types::{CallTimings, Op, ResourceId};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A resource posts the summary of a kind of check at most this often (ms).
const STATS_PERIOD_MS: u64 = 15_000;
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

/// One resource instance's check timings and when each kind was last posted.
pub struct HealthStats {
    resource: ResourceId,
    timings: CallTimings,
    /// Per kind: (ms of its last post, calls since it).
    posted: BTreeMap<Op, (u64, u64)>,
    board: Arc<StatsBoard>,
}

impl HealthStats {
    pub fn new(resource: ResourceId, board: Arc<StatsBoard>) -> HealthStats {
        HealthStats {
            resource,
            timings: CallTimings::default(),
            posted: BTreeMap::new(),
            board,
        }
    }

    /// Records one check of `op` taking `elapsed`, at `now_ms`; posts when due.
    pub fn record(&mut self, op: Op, elapsed: Duration, now_ms: u64) {
        self.timings.record(op, elapsed);
        let first = !self.posted.contains_key(&op);
        let (last, unposted) = self.posted.entry(op).or_insert((now_ms, 0));
        *unposted += 1;
        if first || now_ms.saturating_sub(*last) >= STATS_PERIOD_MS {
            *last = now_ms;
            *unposted = 0;
            self.post(op);
        }
    }

    /// Posts every kind with checks not posted yet (polling stops, or the resource closes).
    pub fn flush(&mut self, now_ms: u64) {
        let due: Vec<Op> = self
            .posted
            .iter()
            .filter(|(_, (_, unposted))| *unposted > 0)
            .map(|(op, _)| *op)
            .collect();
        for op in due {
            self.posted.insert(op, (now_ms, 0));
            self.post(op);
        }
    }

    fn post(&self, op: Op) {
        if let Some(stats) = self.timings.summary().get(&op) {
            self.board.post(ResourceCallStats {
                resource: self.resource,
                op,
                stats: *stats,
            });
        }
    }
}
