//! The health-polling policy, pure and clock-free: when a resource's LooksAlive and IsAlive are due,
//! given the intervals the engine handed it, and what a result means (a failed LooksAlive runs IsAlive
//! at once; a failed IsAlive ends polling until the engine hands a new plan). The host runs it on each
//! resource's own thread with its real clock; the engine's tests run it with a fake one. Not the calls
//! themselves (rhs) nor what a failure does to the resource (crates/engine).

use crate::Op;
use serde::{Deserialize, Serialize};

/// What the engine hands a resource while it is Online: its poll intervals and the deadline of each
/// health call (DeadlockTimeout), all in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HealthPlan {
    pub looks_alive_ms: u64,
    pub is_alive_ms: u64,
    pub deadline_ms: u64,
}

/// What a health result asks of the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthVerdict {
    /// Fine: nothing to tell anybody.
    Healthy,
    /// LooksAlive failed: tell the engine, and IsAlive is now due at once.
    LooksAliveFailed,
    /// IsAlive failed: tell the engine; polling stops until a new plan arrives.
    IsAliveFailed,
}

/// One resource's polling schedule on a clock of ms (any origin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSchedule {
    plan: HealthPlan,
    next_looks_alive: u64,
    next_is_alive: u64,
    /// False once an IsAlive failed: nothing is due any more.
    polling: bool,
}

impl HealthSchedule {
    /// A resource that came Online at `now`: the first LooksAlive and IsAlive one interval later.
    pub fn start(plan: HealthPlan, now: u64) -> HealthSchedule {
        HealthSchedule {
            plan,
            next_looks_alive: now.saturating_add(plan.looks_alive_ms),
            next_is_alive: now.saturating_add(plan.is_alive_ms),
            polling: true,
        }
    }

    /// The plan changed while polling: a kind whose interval changed is next due one new interval
    /// from `now`; the other keeps its time. A new deadline applies to the next call. A schedule
    /// that stopped (a failed IsAlive) starts again from `now`.
    pub fn replan(&mut self, plan: HealthPlan, now: u64) {
        if !self.polling {
            *self = HealthSchedule::start(plan, now);
            return;
        }
        if plan.looks_alive_ms != self.plan.looks_alive_ms {
            self.next_looks_alive = now.saturating_add(plan.looks_alive_ms);
        }
        if plan.is_alive_ms != self.plan.is_alive_ms {
            self.next_is_alive = now.saturating_add(plan.is_alive_ms);
        }
        self.plan = plan;
        self.polling = true;
    }

    pub fn plan(&self) -> HealthPlan {
        self.plan
    }

    /// When the next check of `op` (LooksAlive or IsAlive) is due; None when polling stopped.
    pub fn next_of(&self, op: Op) -> Option<u64> {
        if !self.polling {
            return None;
        }
        match op {
            Op::LooksAlive => Some(self.next_looks_alive),
            Op::IsAlive => Some(self.next_is_alive),
            _ => None,
        }
    }

    /// When anything is next due (to sleep until then); None when polling stopped.
    pub fn next_due(&self) -> Option<u64> {
        self.polling
            .then(|| self.next_looks_alive.min(self.next_is_alive))
    }

    /// The check to run now, if one is due, and its next time scheduled one interval from `now`
    /// (IsAlive, the thorough one, first when both are due; then LooksAlive).
    pub fn due(&mut self, now: u64) -> Option<Op> {
        if !self.polling {
            return None;
        }
        if self.next_is_alive <= now {
            self.next_is_alive = now.saturating_add(self.plan.is_alive_ms);
            return Some(Op::IsAlive);
        }
        if self.next_looks_alive <= now {
            self.next_looks_alive = now.saturating_add(self.plan.looks_alive_ms);
            return Some(Op::LooksAlive);
        }
        None
    }

    /// The result of a check that `due` gave, at `now`.
    pub fn done(&mut self, op: Op, ok: bool, now: u64) -> HealthVerdict {
        match (op, ok) {
            (_, true) => HealthVerdict::Healthy,
            (Op::LooksAlive, false) => {
                // IsAlive at once; the periodic one counts from this one.
                self.next_is_alive = now;
                HealthVerdict::LooksAliveFailed
            }
            (_, false) => {
                self.polling = false;
                HealthVerdict::IsAliveFailed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: HealthPlan = HealthPlan {
        looks_alive_ms: 5_000,
        is_alive_ms: 60_000,
        deadline_ms: 300_000,
    };

    /// Runs the schedule on a fake clock from `from` to `to` (ms), every check answering ok; the
    /// checks run, with their times.
    fn run(s: &mut HealthSchedule, from: u64, to: u64) -> Vec<(u64, Op)> {
        let mut out = Vec::new();
        let mut now = from;
        while let Some(next) = s.next_due().filter(|n| *n <= to) {
            now = now.max(next);
            while let Some(op) = s.due(now) {
                out.push((now, op));
                assert_eq!(s.done(op, true, now), HealthVerdict::Healthy);
            }
        }
        out
    }

    #[test]
    fn looks_alive_every_interval_and_is_alive_every_interval_from_online() {
        let mut s = HealthSchedule::start(PLAN, 1_000);
        assert_eq!(s.next_of(Op::LooksAlive), Some(6_000));
        assert_eq!(s.next_of(Op::IsAlive), Some(61_000));
        assert_eq!(s.due(5_999), None, "never early");
        let checks = run(&mut s, 1_000, 61_000);
        let looks = checks.iter().filter(|(_, o)| *o == Op::LooksAlive).count();
        let is: Vec<_> = checks.iter().filter(|(_, o)| *o == Op::IsAlive).collect();
        assert_eq!(looks, 12);
        assert_eq!(is, [&(61_000, Op::IsAlive)]);
    }

    #[test]
    fn a_failed_looks_alive_makes_is_alive_due_at_once_and_it_runs_once() {
        let mut s = HealthSchedule::start(PLAN, 0);
        assert_eq!(s.due(5_000), Some(Op::LooksAlive));
        assert_eq!(
            s.done(Op::LooksAlive, false, 5_010),
            HealthVerdict::LooksAliveFailed
        );
        assert_eq!(s.next_due(), Some(5_010));
        assert_eq!(s.due(5_010), Some(Op::IsAlive));
        assert_eq!(s.done(Op::IsAlive, true, 5_011), HealthVerdict::Healthy);
        assert_eq!(s.next_of(Op::IsAlive), Some(65_010));
        assert_eq!(s.due(5_011), None);
    }

    #[test]
    fn a_failed_is_alive_stops_polling_until_a_new_plan() {
        let mut s = HealthSchedule::start(PLAN, 0);
        assert_eq!(s.due(60_000), Some(Op::IsAlive));
        assert_eq!(
            s.done(Op::IsAlive, false, 60_001),
            HealthVerdict::IsAliveFailed
        );
        assert_eq!((s.next_due(), s.due(1_000_000)), (None, None));
        s.replan(PLAN, 70_000);
        assert_eq!(s.next_due(), Some(75_000), "a new plan starts afresh");
    }

    #[test]
    fn a_changed_interval_counts_from_the_change_and_the_other_keeps_its_time() {
        let mut s = HealthSchedule::start(PLAN, 0);
        let faster = HealthPlan {
            looks_alive_ms: 1_000,
            deadline_ms: 7_000,
            ..PLAN
        };
        s.replan(faster, 2_500);
        assert_eq!(s.next_of(Op::LooksAlive), Some(3_500));
        assert_eq!(s.next_of(Op::IsAlive), Some(60_000));
        assert_eq!(s.plan().deadline_ms, 7_000);
        let checks = run(&mut s, 2_500, 10_500);
        assert_eq!(checks.len(), 8, "{checks:?}");
    }

    #[test]
    fn both_due_together_run_is_alive_then_looks_alive() {
        let plan = HealthPlan {
            looks_alive_ms: 10,
            is_alive_ms: 20,
            deadline_ms: 5,
        };
        let mut s = HealthSchedule::start(plan, 0);
        assert_eq!(
            run(&mut s, 0, 20),
            [
                (10, Op::LooksAlive),
                (20, Op::IsAlive),
                (20, Op::LooksAlive)
            ]
        );
    }
}
