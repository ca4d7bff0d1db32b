//! The deadlock monitor's decision, pure: given the calls running now (start time, deadline, entry
//! point) and the clock, which one outlived its deadline, else how long the monitor may sleep before
//! one could. Not the slots, the clock or the verdict's consequences (monitor.rs).

use keelson_types::Op;
use std::time::Duration;

/// Longest the monitor sleeps between looks, whatever the deadlines.
pub const MAX_TICK: Duration = Duration::from_millis(500);
/// Shortest sleep, so a burst of tiny deadlines cannot spin the monitor.
pub const MIN_TICK: Duration = Duration::from_millis(1);

/// One call running now, as its slot publishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Running {
    /// Which slot (the caller's index).
    pub slot: usize,
    /// When it started, in ns on the monitor's clock.
    pub started_ns: u64,
    pub deadline_ms: u64,
    /// None when the published op byte is not an entry point (never blamed).
    pub op: Option<Op>,
}

/// What the monitor should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// This call outlived its deadline by running `elapsed_ns`.
    Overdue {
        slot: usize,
        op: Op,
        elapsed_ns: u64,
    },
    /// Nothing is overdue: look again after this long.
    Sleep(Duration),
}

/// The first overdue call, else the sleep until the earliest deadline could pass (at most
/// MAX_TICK, and a twentieth of the smallest deadline ever seen, at least MIN_TICK).
pub fn scan(
    now_ns: u64,
    min_deadline_ms: u64,
    running: impl IntoIterator<Item = Running>,
) -> Verdict {
    let mut sleep = MAX_TICK.min(Duration::from_millis(min_deadline_ms / 20));
    for call in running {
        let deadline_ns = call.deadline_ms.saturating_mul(1_000_000);
        let elapsed = now_ns.saturating_sub(call.started_ns);
        if elapsed > deadline_ns {
            if let Some(op) = call.op {
                return Verdict::Overdue {
                    slot: call.slot,
                    op,
                    elapsed_ns: elapsed,
                };
            }
        }
        sleep = sleep.min(Duration::from_nanos(
            deadline_ns - elapsed.min(deadline_ns) + 1,
        ));
    }
    Verdict::Sleep(sleep.max(MIN_TICK))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn call(slot: usize, started_ms: u64, deadline_ms: u64) -> Running {
        Running {
            slot,
            started_ns: started_ms * MS,
            deadline_ms,
            op: Some(Op::LooksAlive),
        }
    }

    #[test]
    fn nothing_running_sleeps_the_longest_tick() {
        assert_eq!(scan(10 * MS, u64::MAX, []), Verdict::Sleep(MAX_TICK));
    }

    #[test]
    fn a_call_past_its_deadline_is_overdue_with_its_running_time() {
        let verdict = scan(1_301 * MS, 300, [call(0, 0, 60_000), call(3, 1_000, 300)]);
        assert_eq!(
            verdict,
            Verdict::Overdue {
                slot: 3,
                op: Op::LooksAlive,
                elapsed_ns: 301 * MS,
            }
        );
    }

    #[test]
    fn a_call_exactly_at_its_deadline_is_not_overdue_yet() {
        assert_eq!(
            scan(300 * MS, 300, [call(0, 0, 300)]),
            Verdict::Sleep(MIN_TICK)
        );
    }

    #[test]
    fn the_sleep_ends_when_the_earliest_deadline_could_pass() {
        // 200 ms left on a 300 ms deadline; the smallest deadline seen caps the tick at 15 ms.
        assert_eq!(
            scan(100 * MS, 300, [call(0, 0, 300)]),
            Verdict::Sleep(Duration::from_millis(15))
        );
        // Long deadlines: a call 2 ms from its deadline wakes the monitor in 2 ms.
        let v = scan(299_998 * MS, 300_000, [call(0, 0, 300_000)]);
        assert_eq!(v, Verdict::Sleep(Duration::from_nanos(2 * MS + 1)));
        // Tiny deadlines never make it spin.
        assert_eq!(scan(0, 1, [call(0, 0, 1)]), Verdict::Sleep(MIN_TICK));
    }

    #[test]
    fn an_overdue_slot_without_an_entry_point_is_not_blamed() {
        let unknown = Running {
            op: None,
            ..call(0, 0, 1)
        };
        assert!(matches!(scan(10 * MS, 1, [unknown]), Verdict::Sleep(_)));
    }
}
