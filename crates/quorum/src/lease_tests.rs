//! The lease machine under a fake clock: claiming a free, released or expired lease and nothing
//! sooner, renewing, giving up on a deadline, a stalled holder, wall-clock steps, release, and a
//! two-node simulation with random stalls checking that two nodes never host the witness at once.

use std::collections::VecDeque;

use super::lease::*;
use super::record::LeaseRecord;
use super::timings::LeaseTimings;

const T: LeaseTimings = LeaseTimings {
    renew_ms: 100,
    give_up_ms: 500,
    lease_ms: 700,
    margin_ms: 100,
};
const WALL0: u64 = 1_700_000_000_000;

fn at(mono: u64) -> Now {
    Now {
        mono_ms: mono,
        wall_ms: WALL0 + mono,
    }
}

fn other(generation: u64, expiry_ms: u64) -> LeaseRecord {
    LeaseRecord {
        holder: 2,
        generation,
        expiry_ms,
        released: false,
    }
}

fn claims(actions: &[LeaseAction]) -> Vec<LeaseRecord> {
    actions
        .iter()
        .filter_map(|a| match a {
            LeaseAction::Claim { record, .. } => Some(*record),
            _ => None,
        })
        .collect()
}

fn has_stop(actions: &[LeaseAction]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, LeaseAction::StopHosting { .. }))
}

fn renewal(actions: &[LeaseAction]) -> Option<LeaseRecord> {
    actions.iter().find_map(|a| match a {
        LeaseAction::Renew(r) => Some(*r),
        _ => None,
    })
}

/// Ticks and answers a read of `record` at `now`; the actions of the read's answer.
fn observe(m: &mut LeaseMachine, now: Now, record: Option<LeaseRecord>) -> Vec<LeaseAction> {
    let read = m.handle(now, LeaseEvent::Tick);
    assert_eq!(read, vec![LeaseAction::Read], "at {now:?}");
    m.handle(now, LeaseEvent::Read(Ok(record)))
}

/// A machine for node 1 that holds generation 1, claimed at mono `t`.
fn holder_at(t: u64) -> (LeaseMachine, LeaseRecord) {
    let mut m = LeaseMachine::new(1, T);
    let record = LeaseRecord {
        holder: 1,
        generation: 1,
        expiry_ms: WALL0 + t + T.lease_ms,
        released: false,
    };
    let released = LeaseRecord {
        holder: 9,
        generation: 0,
        expiry_ms: 0,
        released: true,
    };
    assert_eq!(
        claims(&observe(&mut m, at(t), Some(released))),
        vec![record]
    );
    let won = m.handle(at(t), LeaseEvent::Claimed(Ok(ClaimOutcome::Won)));
    assert!(won.contains(&LeaseAction::StartHosting { generation: 1 }));
    assert!(m.hosting());
    (m, record)
}

#[test]
fn a_fresh_witness_is_claimed_only_after_a_full_takeover_wait() {
    let mut m = LeaseMachine::new(1, T);
    assert!(claims(&observe(&mut m, at(0), None)).is_empty());
    let wait = T.takeover_after_ms();
    assert!(claims(&observe(&mut m, at(wait - 1), None)).is_empty());
    let c = claims(&observe(&mut m, at(wait), None));
    assert_eq!(
        c,
        vec![LeaseRecord {
            holder: 1,
            generation: 1,
            expiry_ms: WALL0 + wait + T.lease_ms,
            released: false
        }]
    );
    assert_eq!(m.status(), LeaseStatus::Claiming);
    assert_eq!(
        m.handle(at(wait + 5), LeaseEvent::Tick),
        vec![],
        "one claim at a time"
    );
}

#[test]
fn a_released_lease_is_claimed_at_once_with_the_next_generation() {
    let mut m = LeaseMachine::new(1, T);
    let released = LeaseRecord {
        released: true,
        ..other(4, WALL0 + 10_000)
    };
    let c = claims(&observe(&mut m, at(0), Some(released)));
    assert_eq!(c[0].generation, 5);
    assert_eq!(c[0].holder, 1);
}

#[test]
fn a_live_holder_that_keeps_renewing_is_never_taken_over() {
    let mut m = LeaseMachine::new(1, T);
    for step in 0..100u64 {
        let now = at(step * T.renew_ms);
        // The holder's record changes every renewal, and its expiry is always in the future.
        let record = other(3, now.wall_ms + T.lease_ms);
        assert!(
            claims(&observe(&mut m, now, Some(record))).is_empty(),
            "step {step}"
        );
    }
}

#[test]
fn an_unchanged_record_is_taken_over_only_after_the_lease_and_margin_on_both_clocks() {
    let mut m = LeaseMachine::new(1, T);
    let stale = other(3, WALL0 + 200);
    assert!(claims(&observe(&mut m, at(0), Some(stale))).is_empty());
    let wait = T.takeover_after_ms();
    assert!(claims(&observe(&mut m, at(wait - 1), Some(stale))).is_empty());
    let c = claims(&observe(&mut m, at(wait), Some(stale)));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].generation, 4);
}

#[test]
fn a_wall_clock_step_forward_on_the_observer_does_not_shorten_the_wait() {
    let mut m = LeaseMachine::new(1, T);
    let record = other(3, WALL0 + T.lease_ms);
    assert!(claims(&observe(&mut m, at(0), Some(record))).is_empty());
    // The observer's wall clock jumps an hour ahead: the record looks long expired.
    let jumped = |mono| Now {
        mono_ms: mono,
        wall_ms: WALL0 + 3_600_000 + mono,
    };
    let wait = T.takeover_after_ms();
    assert!(claims(&observe(&mut m, jumped(10), Some(record))).is_empty());
    assert!(claims(&observe(&mut m, jumped(wait - 1), Some(record))).is_empty());
    assert_eq!(
        claims(&observe(&mut m, jumped(wait), Some(record))).len(),
        1
    );
}

#[test]
fn an_observer_whose_wall_clock_is_behind_also_waits_for_the_written_expiry() {
    let mut m = LeaseMachine::new(1, T);
    let record = other(3, WALL0 + 5_000);
    let wait = T.takeover_after_ms();
    assert!(claims(&observe(&mut m, at(0), Some(record))).is_empty());
    assert!(claims(&observe(&mut m, at(wait), Some(record))).is_empty());
    assert!(claims(&observe(&mut m, at(5_000 + T.margin_ms - 1), Some(record))).is_empty());
    assert_eq!(
        claims(&observe(&mut m, at(5_000 + T.margin_ms), Some(record))).len(),
        1
    );
}

#[test]
fn a_changed_record_restarts_the_wait() {
    let mut m = LeaseMachine::new(1, T);
    let wait = T.takeover_after_ms();
    assert!(claims(&observe(&mut m, at(0), Some(other(3, WALL0)))).is_empty());
    // A new holder took generation 4 just before we would have claimed.
    assert!(claims(&observe(&mut m, at(wait - 10), Some(other(4, WALL0)))).is_empty());
    assert!(claims(&observe(&mut m, at(wait + 10), Some(other(4, WALL0)))).is_empty());
    assert_eq!(
        claims(&observe(&mut m, at(2 * wait - 10), Some(other(4, WALL0)))).len(),
        1
    );
}

#[test]
fn read_errors_are_logged_and_claim_nothing() {
    let mut m = LeaseMachine::new(1, T);
    assert_eq!(m.handle(at(0), LeaseEvent::Tick), vec![LeaseAction::Read]);
    let a = m.handle(at(0), LeaseEvent::Read(Err("EIO".into())));
    assert_eq!(
        a,
        vec![LeaseAction::Log {
            level: LogLevel::Error,
            line: "Cannot read the witness lease: EIO".into()
        }]
    );
    assert_eq!(m.handle(at(1), LeaseEvent::Tick), vec![LeaseAction::Read]);
}

#[test]
fn the_holder_renews_every_period_with_a_later_expiry() {
    let (mut m, record) = holder_at(0);
    assert_eq!(m.handle(at(99), LeaseEvent::Tick), vec![]);
    let r = renewal(&m.handle(at(100), LeaseEvent::Tick)).expect("a renewal");
    assert_eq!(
        r,
        LeaseRecord {
            expiry_ms: WALL0 + 100 + T.lease_ms,
            ..record
        }
    );
    assert_eq!(
        m.handle(at(150), LeaseEvent::Tick),
        vec![],
        "one renewal at a time"
    );
    m.handle(at(160), LeaseEvent::Renewed(Ok(RenewOutcome::Renewed)));
    // The deadline counts from the start of the renewal (100), not its end (160).
    assert_eq!(
        m.status(),
        LeaseStatus::Held {
            generation: 1,
            give_up_at_mono: 100 + T.give_up_ms
        }
    );
    assert!(renewal(&m.handle(at(200), LeaseEvent::Tick)).is_some());
}

#[test]
fn failing_renewals_give_the_lease_up_at_the_deadline_not_before() {
    let (mut m, _) = holder_at(0);
    let mut t = 0;
    while t < T.give_up_ms {
        let a = m.handle(at(t), LeaseEvent::Tick);
        assert!(!has_stop(&a), "at {t}");
        if renewal(&a).is_some() {
            let e = m.handle(at(t + 1), LeaseEvent::Renewed(Err("ESTALE".into())));
            assert!(matches!(
                &e[..],
                [LeaseAction::Log {
                    level: LogLevel::Warning,
                    ..
                }]
            ));
        }
        t += 10;
    }
    let a = m.handle(at(T.give_up_ms), LeaseEvent::Tick);
    assert!(has_stop(&a), "{a:?}");
    assert!(!m.hosting());
    assert_eq!(m.handle(at(T.give_up_ms + 1), LeaseEvent::Tick), vec![]);
    assert_eq!(
        m.handle(at(T.give_up_ms + 2), LeaseEvent::HostingStopped),
        vec![]
    );
    // Back to observing, and its own old record is waited out like anyone's.
    assert_eq!(
        m.handle(at(T.give_up_ms + 3), LeaseEvent::Tick),
        vec![LeaseAction::Read]
    );
}

#[test]
fn a_holder_that_stalls_past_its_deadline_stops_on_its_first_tick() {
    let (mut m, _) = holder_at(0);
    // No tick for 2 s (SIGSTOP, a VM pause): the first tick stops hosting instead of renewing.
    let a = m.handle(at(2_000), LeaseEvent::Tick);
    assert!(has_stop(&a), "{a:?}");
    assert_eq!(renewal(&a), None);
    let LeaseAction::StopHosting { reason } = a.last().unwrap() else {
        panic!("{a:?}")
    };
    assert_eq!(
        reason,
        "the witness lease (generation 1) was not renewed for 2000 ms (deadline 500 ms)"
    );
}

#[test]
fn a_renewal_that_returns_after_the_deadline_does_not_save_the_lease() {
    let (mut m, _) = holder_at(0);
    assert!(renewal(&m.handle(at(100), LeaseEvent::Tick)).is_some());
    // The write hung, then succeeded long after the deadline of 100 + 500.
    let a = m.handle(at(900), LeaseEvent::Renewed(Ok(RenewOutcome::Renewed)));
    assert!(has_stop(&a), "{a:?}");
}

#[test]
fn a_wall_clock_step_on_the_holder_changes_neither_renewal_nor_deadline() {
    let (mut m, _) = holder_at(0);
    let back = |mono| Now {
        mono_ms: mono,
        wall_ms: WALL0 - 3_600_000 + mono,
    };
    let r = renewal(&m.handle(back(100), LeaseEvent::Tick)).unwrap();
    assert_eq!(r.expiry_ms, WALL0 - 3_600_000 + 100 + T.lease_ms);
    m.handle(back(101), LeaseEvent::Renewed(Err("EIO".into())));
    assert!(!has_stop(&m.handle(back(499), LeaseEvent::Tick)));
    assert!(has_stop(&m.handle(back(500), LeaseEvent::Tick)));
}

#[test]
fn a_renewal_that_finds_another_holder_stops_at_once() {
    let (mut m, _) = holder_at(0);
    assert!(renewal(&m.handle(at(100), LeaseEvent::Tick)).is_some());
    let a = m.handle(
        at(110),
        LeaseEvent::Renewed(Ok(RenewOutcome::Lost(Some(other(2, WALL0))))),
    );
    assert!(has_stop(&a));
    assert!(a.contains(&LeaseAction::StopHosting {
        reason: "the witness lease was taken by node 2 (generation 2)".into()
    }));
    let (mut m, _) = holder_at(0);
    m.handle(at(100), LeaseEvent::Tick);
    let gone = m.handle(at(110), LeaseEvent::Renewed(Ok(RenewOutcome::Lost(None))));
    assert!(gone.contains(&LeaseAction::StopHosting {
        reason: "the witness lease record is gone from the witness".into()
    }));
}

#[test]
fn release_stops_hosting_first_then_writes_the_released_record() {
    let (mut m, record) = holder_at(0);
    let a = m.handle(at(50), LeaseEvent::ReleaseRequested);
    assert!(has_stop(&a));
    assert!(
        !a.iter().any(|a| matches!(a, LeaseAction::Release(_))),
        "not before the voter is closed"
    );
    let a = m.handle(at(60), LeaseEvent::HostingStopped);
    assert_eq!(
        a,
        vec![LeaseAction::Release(LeaseRecord {
            released: true,
            ..record
        })]
    );
    m.handle(at(70), LeaseEvent::Released(Ok(RenewOutcome::Renewed)));
    assert!(m.done());
    assert_eq!(
        m.handle(at(10_000), LeaseEvent::Tick),
        vec![],
        "done for good"
    );
}

#[test]
fn release_while_claiming_releases_a_won_claim_without_hosting() {
    let mut m = LeaseMachine::new(1, T);
    let released = LeaseRecord {
        released: true,
        ..other(1, 0)
    };
    let record = claims(&observe(&mut m, at(0), Some(released)))[0];
    assert_eq!(m.handle(at(1), LeaseEvent::ReleaseRequested), vec![]);
    let a = m.handle(at(2), LeaseEvent::Claimed(Ok(ClaimOutcome::Won)));
    assert_eq!(
        a,
        vec![LeaseAction::Release(LeaseRecord {
            released: true,
            ..record
        })]
    );
    assert!(!m.hosting());
}

#[test]
fn a_lost_or_failed_claim_goes_back_to_observing() {
    for outcome in [
        Ok(ClaimOutcome::Lost(Some(other(2, WALL0 + 700)))),
        Err("EACCES".to_string()),
    ] {
        let mut m = LeaseMachine::new(1, T);
        let released = LeaseRecord {
            released: true,
            ..other(1, 0)
        };
        assert_eq!(claims(&observe(&mut m, at(0), Some(released))).len(), 1);
        m.handle(at(1), LeaseEvent::Claimed(outcome));
        assert!(!m.hosting());
        // The winner's record is now waited out from scratch.
        assert!(claims(&observe(&mut m, at(2), Some(other(2, WALL0 + 700)))).is_empty());
    }
}

#[test]
fn a_claim_won_too_late_is_not_used() {
    let mut m = LeaseMachine::new(1, T);
    let released = LeaseRecord {
        released: true,
        ..other(1, 0)
    };
    claims(&observe(&mut m, at(0), Some(released)));
    let a = m.handle(at(T.give_up_ms), LeaseEvent::Claimed(Ok(ClaimOutcome::Won)));
    assert!(!a
        .iter()
        .any(|a| matches!(a, LeaseAction::StartHosting { .. })));
    assert!(!m.hosting());
}

#[test]
fn a_voter_that_fails_to_start_lets_the_lease_expire() {
    let (mut m, _) = holder_at(0);
    let a = m.handle(at(1), LeaseEvent::HostingFailed("store locked".into()));
    assert!(matches!(
        &a[..],
        [LeaseAction::Log {
            level: LogLevel::Error,
            ..
        }]
    ));
    assert!(m.held().is_none());
    assert_eq!(
        m.handle(at(100), LeaseEvent::Tick),
        vec![LeaseAction::Read],
        "no renewal"
    );
}

/// A tiny deterministic generator for the simulation.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// One simulated node: its machine, its witness operations in order (each answered a few ms after
/// the one before, as the driver runs them one at a time), and when it is stalled until.
struct SimNode {
    machine: LeaseMachine,
    pending: VecDeque<(u64, LeaseAction)>,
    stalled_until: u64,
    hosting: bool,
}

/// The shared witness: the current record; claims are exclusive per generation.
fn apply(witness: &mut Option<LeaseRecord>, action: &LeaseAction) -> LeaseEvent {
    match action {
        LeaseAction::Read => LeaseEvent::Read(Ok(*witness)),
        LeaseAction::Claim { previous, record } => {
            if *witness == *previous {
                *witness = Some(*record);
                LeaseEvent::Claimed(Ok(ClaimOutcome::Won))
            } else {
                LeaseEvent::Claimed(Ok(ClaimOutcome::Lost(*witness)))
            }
        }
        LeaseAction::Renew(r) | LeaseAction::Release(r) => {
            let ours =
                witness.is_some_and(|w| w.holder == r.holder && w.generation == r.generation);
            let outcome = if ours {
                *witness = Some(*r);
                RenewOutcome::Renewed
            } else {
                RenewOutcome::Lost(*witness)
            };
            match action {
                LeaseAction::Renew(_) => LeaseEvent::Renewed(Ok(outcome)),
                _ => LeaseEvent::Released(Ok(outcome)),
            }
        }
        other => panic!("not witness I/O: {other:?}"),
    }
}

#[test]
fn two_nodes_with_random_stalls_and_slow_io_never_host_at_once_and_do_take_over() {
    let mut takeovers = 0;
    for seed in 1..=40u64 {
        let mut rng = Lcg(seed);
        let mut witness: Option<LeaseRecord> = None;
        let mut nodes: Vec<SimNode> = (1..=2)
            .map(|id| SimNode {
                machine: LeaseMachine::new(id, T),
                pending: VecDeque::new(),
                stalled_until: 0,
                hosting: false,
            })
            .collect();
        let mut last_host = None;
        for now_ms in 0..60_000u64 {
            let now = Now {
                mono_ms: now_ms,
                // Node clocks agree; wall steps are covered above.
                wall_ms: WALL0 + now_ms,
            };
            for node in nodes.iter_mut() {
                if now_ms < node.stalled_until {
                    continue;
                }
                if rng.next(20_000) == 0 {
                    // A stall of up to 3 s: the process is frozen, the voter with it.
                    node.stalled_until = now_ms + 1 + rng.next(3_000);
                    continue;
                }
                let mut events = Vec::new();
                if node.pending.front().is_some_and(|(due, _)| now_ms >= *due) {
                    let (_, action) = node.pending.pop_front().unwrap();
                    events.push(apply(&mut witness, &action));
                }
                if now_ms % 10 == 0 {
                    events.push(LeaseEvent::Tick);
                }
                while let Some(event) = events.pop() {
                    for action in node.machine.handle(now, event) {
                        match action {
                            LeaseAction::StartHosting { .. } => node.hosting = true,
                            LeaseAction::StopHosting { .. } => {
                                node.hosting = false;
                                events.push(LeaseEvent::HostingStopped);
                            }
                            LeaseAction::Log { .. } => {}
                            io => {
                                // Witness I/O takes 1..60 ms, sometimes 400.
                                let delay = if rng.next(50) == 0 {
                                    400
                                } else {
                                    1 + rng.next(60)
                                };
                                let after = node.pending.back().map_or(now_ms, |(due, _)| *due);
                                node.pending.push_back((after.max(now_ms) + delay, io));
                            }
                        }
                    }
                }
            }
            // A stalled holder still "hosts" (its voter is frozen, not closed) until it wakes and
            // its driver stops it; what keeps that safe is the fence: the voter's store refuses
            // writes from the give-up deadline on (host.rs). So the invariant is that no two
            // nodes may write the witness store at the same instant.
            let may_write = |n: &SimNode| {
                n.hosting
                    && matches!(n.machine.status(),
                        LeaseStatus::Held { give_up_at_mono, .. } if now_ms < give_up_at_mono)
            };
            let hosts: Vec<usize> = (0..2).filter(|i| may_write(&nodes[*i])).collect();
            assert!(
                hosts.len() <= 1,
                "seed {seed} at {now_ms} ms: both nodes may write the witness store"
            );
            if let Some(&h) = hosts.first() {
                if last_host.is_some_and(|l| l != h) {
                    takeovers += 1;
                }
                last_host = Some(h);
            }
        }
        assert!(last_host.is_some(), "seed {seed}: someone took the lease");
    }
    assert!(
        takeovers > 0,
        "stalls made the other node take over at least once"
    );
}
