//! One resource thread's health polling: the schedule the parent handed it (keelson_types'
//! HealthSchedule, the pure policy), the statistics of its checks, and the failure report a check's
//! result calls for. Not running the checks (resource.rs) nor sending statistics (stats.rs).

use crate::stats::{HealthStats, StatsBoard};
use keelson_abi::KEELSON_OK;
use keelson_proto::{CallDone, HostReply};
use keelson_types::{HealthPlan, HealthSchedule, HealthVerdict, Op, ResourceId};
use std::sync::Arc;
use std::time::Duration;

/// A resource's polling state: idle until the parent sends a plan.
pub struct Polling {
    resource: ResourceId,
    schedule: Option<HealthSchedule>,
    stats: HealthStats,
}

impl Polling {
    pub fn new(resource: ResourceId, board: Arc<StatsBoard>) -> Polling {
        Polling {
            resource,
            schedule: None,
            stats: HealthStats::new(resource, board),
        }
    }

    /// A new plan (the resource came Online, or its intervals or deadline changed), or None: stop.
    pub fn set(&mut self, plan: Option<HealthPlan>, now: u64) {
        match (plan, self.schedule.as_mut()) {
            (Some(plan), Some(schedule)) => schedule.replan(plan, now),
            (Some(plan), None) => self.schedule = Some(HealthSchedule::start(plan, now)),
            (None, _) => self.stop(now),
        }
    }

    /// Stops polling; the statistics not posted yet are posted now.
    pub fn stop(&mut self, now: u64) {
        self.schedule = None;
        self.stats.flush(now);
    }

    /// The check due now and its deadline (ms), if any.
    pub fn due(&mut self, now: u64) -> Option<(Op, u64)> {
        let schedule = self.schedule.as_mut()?;
        let op = schedule.due(now)?;
        Some((op, schedule.plan().deadline_ms))
    }

    pub fn next_due(&self) -> Option<u64> {
        self.schedule.as_ref()?.next_due()
    }

    /// Records a check's result; the report to send up if it failed.
    pub fn done(&mut self, op: Op, done: &CallDone, now: u64) -> Option<HostReply> {
        self.stats
            .record(op, Duration::from_nanos(done.elapsed_ns), now);
        let verdict = self
            .schedule
            .as_mut()
            .map(|s| s.done(op, done.status == KEELSON_OK, now))?;
        if verdict == HealthVerdict::IsAliveFailed {
            self.stats.flush(now);
        }
        (verdict != HealthVerdict::Healthy).then(|| HostReply::HealthFailed {
            resource: self.resource,
            op,
            status: done.status,
            message: done.message.clone(),
        })
    }
}
