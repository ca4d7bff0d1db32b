//! The leader's bookkeeping for fencing lost members: when an attempt starts, when a failed one is
//! retried (after the retry delay, forever: a fence is never skipped), and when a lost member's
//! groups may be taken over: once it is fenced (a fence agent's success means the node is off,
//! the contract of fence-agents, so its lease need not be waited out), and never before while it
//! is being fenced, even when its lease has run out. Pure, `(now_ms, FenceInput) -> Vec<FenceAction>`, tested with a fake clock. Not running
//! the agent (fence.rs), nor the timers, logs and events that carry out its actions
//! (core/fence_gate.rs).

use std::collections::BTreeMap;

/// What happened, for the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceInput {
    /// A member went Down while fencing is configured: fence it.
    NodeDown { node: String },
    /// A member is Up again (reached both ways).
    NodeUp { node: String },
    /// Its quorum lease ran out.
    LeaseExpired { node: String },
    /// The run `run` (from `FenceAction::Run`) against `node` ended: Ok (the agent's last line)
    /// or why it failed.
    AttemptDone {
        node: String,
        run: u64,
        result: Result<String, String>,
    },
    /// The retry timer armed after attempt `attempt` failed went off.
    RetryDue { node: String, attempt: u32 },
    /// FenceAgent is no longer set when an attempt was due: the administrator took fencing over.
    AgentRemoved { node: String },
    /// This node no longer leads: every pursuit stops (the next leader fences again).
    LeadershipLost,
}

/// What the shell does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceAction {
    /// Run the agent against `node`: attempt number `attempt` (from 1), run `run` (unique in this
    /// ledger: a result from an earlier pursuit of the same node is told apart).
    Run {
        node: String,
        attempt: u32,
        run: u64,
    },
    /// Attempt `attempt` failed (log it, raise it); after `retry_in_ms`, send `RetryDue`.
    Failed {
        node: String,
        attempt: u32,
        reason: String,
        retry_in_ms: u64,
    },
    /// `RetryDue` came early: send it again after `in_ms`.
    Rearm {
        node: String,
        attempt: u32,
        in_ms: u64,
    },
    /// `node` is fenced (attempt `attempt`, `after_ms` after this ledger began fencing it: when
    /// it went Down, or when this node began to lead).
    Fenced {
        node: String,
        attempt: u32,
        after_ms: u64,
        output: String,
    },
    /// Its lease ran out but it is not fenced yet: its groups wait.
    TakeoverWaits { node: String, attempts: u32 },
    /// Its groups may be taken over now (the placer hears `LeaseExpired`).
    Takeover { node: String },
    /// Fencing `node` stopped before it succeeded.
    Stopped {
        node: String,
        attempts: u32,
        why: StopReason,
    },
}

/// Why fencing a member stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It came Up again.
    NodeUp,
    /// This node no longer leads.
    NotLeader,
    /// FenceAgent was unset while a retry was due: the administrator's call.
    AgentRemoved,
}

/// Where the pursuit of one lost member is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Attempt `attempt` is running.
    Running,
    /// Attempt `attempt` failed; the next is due at `due_ms`.
    Waiting { due_ms: u64 },
    /// Fenced (or taken over by the administrator).
    Done,
}

#[derive(Clone, Debug)]
struct Pursuit {
    down_ms: u64,
    attempt: u32,
    /// The run of the current attempt.
    run: u64,
    phase: Phase,
    lease_expired: bool,
}

/// The members being fenced (or fenced), by name.
#[derive(Debug)]
pub struct FenceLedger {
    retry_delay_ms: u64,
    /// The last run id given out.
    runs: u64,
    pursuits: BTreeMap<String, Pursuit>,
}

impl FenceLedger {
    pub fn new(retry_delay_ms: u64) -> FenceLedger {
        FenceLedger {
            retry_delay_ms,
            runs: 0,
            pursuits: BTreeMap::new(),
        }
    }

    /// The delay before the next retry (FenceRetryDelay, read again before each input).
    pub fn set_retry_delay(&mut self, ms: u64) {
        self.retry_delay_ms = ms;
    }

    /// True while `node` is pursued and not fenced yet.
    #[cfg(test)]
    pub fn pending(&self, node: &str) -> bool {
        self.pursuits
            .get(node)
            .is_some_and(|p| p.phase != Phase::Done)
    }

    pub fn handle(&mut self, now_ms: u64, input: FenceInput) -> Vec<FenceAction> {
        match input {
            FenceInput::NodeDown { node } => self.node_down(now_ms, node),
            FenceInput::NodeUp { node } => self.stop(&node, StopReason::NodeUp),
            FenceInput::LeaseExpired { node } => self.lease_expired(node),
            FenceInput::AttemptDone { node, run, result } => {
                self.attempt_done(now_ms, node, run, result)
            }
            FenceInput::RetryDue { node, attempt } => self.retry_due(now_ms, node, attempt),
            FenceInput::AgentRemoved { node } => self.agent_removed(node),
            FenceInput::LeadershipLost => {
                let nodes: Vec<String> = self.pursuits.keys().cloned().collect();
                nodes
                    .iter()
                    .flat_map(|n| self.stop(n, StopReason::NotLeader))
                    .collect()
            }
        }
    }

    fn node_down(&mut self, now_ms: u64, node: String) -> Vec<FenceAction> {
        if self.pursuits.contains_key(&node) {
            return Vec::new();
        }
        self.runs += 1;
        let run = self.runs;
        self.pursuits.insert(
            node.clone(),
            Pursuit {
                down_ms: now_ms,
                attempt: 1,
                run,
                phase: Phase::Running,
                lease_expired: false,
            },
        );
        vec![FenceAction::Run {
            node,
            attempt: 1,
            run,
        }]
    }

    fn stop(&mut self, node: &str, why: StopReason) -> Vec<FenceAction> {
        let Some(p) = self.pursuits.remove(node) else {
            return Vec::new();
        };
        if p.phase == Phase::Done {
            return Vec::new();
        }
        vec![FenceAction::Stopped {
            node: node.to_string(),
            attempts: p.attempt,
            why,
        }]
    }

    fn lease_expired(&mut self, node: String) -> Vec<FenceAction> {
        let Some(p) = self.pursuits.get_mut(&node) else {
            // Not pursued: fencing was not configured when it went Down.
            return vec![FenceAction::Takeover { node }];
        };
        p.lease_expired = true;
        if p.phase == Phase::Done {
            // Taken over when it was fenced; told again (a rebuilt placer hears it too).
            return vec![FenceAction::Takeover { node }];
        }
        let attempts = p.attempt;
        vec![FenceAction::TakeoverWaits { node, attempts }]
    }

    fn attempt_done(
        &mut self,
        now_ms: u64,
        node: String,
        run: u64,
        result: Result<String, String>,
    ) -> Vec<FenceAction> {
        let retry_in_ms = self.retry_delay_ms;
        let Some(p) = self.pursuits.get_mut(&node) else {
            return Vec::new();
        };
        if p.phase != Phase::Running || p.run != run {
            return Vec::new();
        }
        let attempt = p.attempt;
        match result {
            Ok(output) => {
                p.phase = Phase::Done;
                let mut actions = vec![FenceAction::Fenced {
                    node: node.clone(),
                    attempt,
                    after_ms: now_ms.saturating_sub(p.down_ms),
                    output,
                }];
                // Off: nothing of it runs any more, whatever its lease.
                actions.push(FenceAction::Takeover { node });
                actions
            }
            Err(reason) => {
                p.phase = Phase::Waiting {
                    due_ms: now_ms + retry_in_ms,
                };
                vec![FenceAction::Failed {
                    node,
                    attempt,
                    reason,
                    retry_in_ms,
                }]
            }
        }
    }

    fn retry_due(&mut self, now_ms: u64, node: String, attempt: u32) -> Vec<FenceAction> {
        let Some(p) = self.pursuits.get_mut(&node) else {
            return Vec::new();
        };
        let Phase::Waiting { due_ms } = p.phase else {
            return Vec::new();
        };
        if p.attempt != attempt {
            return Vec::new();
        }
        if now_ms < due_ms {
            return vec![FenceAction::Rearm {
                node,
                attempt,
                in_ms: due_ms - now_ms,
            }];
        }
        self.runs += 1;
        p.attempt += 1;
        p.run = self.runs;
        p.phase = Phase::Running;
        vec![FenceAction::Run {
            node,
            attempt: p.attempt,
            run: p.run,
        }]
    }

    fn agent_removed(&mut self, node: String) -> Vec<FenceAction> {
        let Some(p) = self.pursuits.get_mut(&node) else {
            return Vec::new();
        };
        if p.phase == Phase::Done {
            return Vec::new();
        }
        p.phase = Phase::Done;
        let mut actions = vec![FenceAction::Stopped {
            node: node.clone(),
            attempts: p.attempt,
            why: StopReason::AgentRemoved,
        }];
        if p.lease_expired {
            actions.push(FenceAction::Takeover { node });
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FenceAction as A;
    use FenceInput as I;

    fn n() -> String {
        "n2".to_string()
    }

    /// Run `run`'s end (for one node pursued once, run N is attempt N).
    fn done(run: u64, ok: bool) -> I {
        let attempt = run;
        I::AttemptDone {
            node: n(),
            run,
            result: if ok {
                Ok("Success: Powered OFF".into())
            } else {
                Err(format!("exit status 1: no route (try {attempt})"))
            },
        }
    }

    #[test]
    fn failures_are_retried_after_the_delay_forever_and_takeover_waits_for_the_fence() {
        let mut l = FenceLedger::new(200);
        assert_eq!(
            l.handle(1_000, I::NodeDown { node: n() }),
            [A::Run {
                node: n(),
                attempt: 1,
                run: 1
            }]
        );
        // Down again while pursued: nothing new starts.
        assert!(l.handle(1_001, I::NodeDown { node: n() }).is_empty());
        let mut now = 1_000;
        for attempt in 1..=50u32 {
            let run = u64::from(attempt);
            now += 30;
            let failed = l.handle(now, done(run, false));
            assert_eq!(
                failed,
                [A::Failed {
                    node: n(),
                    attempt,
                    reason: format!("exit status 1: no route (try {attempt})"),
                    retry_in_ms: 200,
                }]
            );
            if attempt == 3 {
                // The lease runs out meanwhile: the groups wait.
                assert_eq!(
                    l.handle(now + 1, I::LeaseExpired { node: n() }),
                    [A::TakeoverWaits {
                        node: n(),
                        attempts: 3
                    }]
                );
            }
            // A timer that comes early is armed again, never run early nor lost.
            assert_eq!(
                l.handle(now + 150, I::RetryDue { node: n(), attempt }),
                [A::Rearm {
                    node: n(),
                    attempt,
                    in_ms: 50
                }]
            );
            now += 200;
            assert_eq!(
                l.handle(now, I::RetryDue { node: n(), attempt }),
                [A::Run {
                    node: n(),
                    attempt: attempt + 1,
                    run: run + 1
                }]
            );
            // A stale timer or result changes nothing.
            assert!(l.handle(now, I::RetryDue { node: n(), attempt }).is_empty());
            assert!(l.handle(now, done(run, true)).is_empty());
            assert!(l.pending("n2"));
        }
        now += 40;
        assert_eq!(
            l.handle(now, done(51, true)),
            [
                A::Fenced {
                    node: n(),
                    attempt: 51,
                    after_ms: now - 1_000,
                    output: "Success: Powered OFF".into(),
                },
                A::Takeover { node: n() },
            ]
        );
        assert!(!l.pending("n2"));
        // Fenced: a later lease expiry (a rebuilt placer's timer) lets it through at once.
        assert_eq!(
            l.handle(now + 5, I::LeaseExpired { node: n() }),
            [A::Takeover { node: n() }]
        );
    }

    #[test]
    fn a_fence_before_the_lease_runs_out_lets_the_groups_move_at_once() {
        let mut l = FenceLedger::new(5_000);
        l.handle(0, I::NodeDown { node: n() });
        let fenced = l.handle(700, done(1, true));
        assert!(
            matches!(
                fenced.as_slice(),
                [A::Fenced { after_ms: 700, .. }, A::Takeover { .. }]
            ),
            "{fenced:?}"
        );
        assert_eq!(
            l.handle(3_300, I::LeaseExpired { node: n() }),
            [A::Takeover { node: n() }],
            "told again: harmless, and a rebuilt placer needs it"
        );
    }

    #[test]
    fn an_unpursued_node_is_taken_over_at_its_lease() {
        let mut l = FenceLedger::new(100);
        assert_eq!(
            l.handle(10, I::LeaseExpired { node: "n3".into() }),
            [A::Takeover { node: "n3".into() }]
        );
    }

    #[test]
    fn a_node_up_before_its_fence_stops_it_and_a_late_result_is_ignored() {
        let mut l = FenceLedger::new(100);
        l.handle(0, I::NodeDown { node: n() });
        l.handle(10, done(1, false));
        assert_eq!(
            l.handle(50, I::NodeUp { node: n() }),
            [A::Stopped {
                node: n(),
                attempts: 1,
                why: StopReason::NodeUp
            }]
        );
        assert!(l
            .handle(
                110,
                I::RetryDue {
                    node: n(),
                    attempt: 1
                }
            )
            .is_empty());
        assert!(l.handle(120, done(2, true)).is_empty());
        assert!(l.handle(130, I::NodeUp { node: n() }).is_empty());
        // Down again later: a new pursuit from attempt 1, timed from then, in a run of its own.
        assert_eq!(
            l.handle(1_000, I::NodeDown { node: n() }),
            [A::Run {
                node: n(),
                attempt: 1,
                run: 2
            }]
        );
        // The first pursuit's run ending late is not this one's.
        assert!(l.handle(1_100, done(1, true)).is_empty());
        let fenced = l.handle(1_250, done(2, true));
        assert!(
            matches!(
                fenced.as_slice(),
                [A::Fenced { after_ms: 250, .. }, A::Takeover { .. }]
            ),
            "{fenced:?}"
        );
        // Up after the fence: nothing to stop.
        assert!(l.handle(2_000, I::NodeUp { node: n() }).is_empty());
    }

    #[test]
    fn losing_leadership_stops_every_pursuit_in_flight() {
        let mut l = FenceLedger::new(100);
        l.handle(0, I::NodeDown { node: "n2".into() });
        l.handle(0, I::NodeDown { node: "n3".into() });
        l.handle(
            5,
            I::AttemptDone {
                node: "n3".into(),
                run: 2,
                result: Ok(String::new()),
            },
        );
        assert_eq!(
            l.handle(10, I::LeadershipLost),
            [A::Stopped {
                node: "n2".into(),
                attempts: 1,
                why: StopReason::NotLeader
            }]
        );
        assert!(l.handle(20, done(1, true)).is_empty());
        assert!(!l.pending("n2") && !l.pending("n3"));
    }

    #[test]
    fn an_agent_unset_while_a_retry_is_due_hands_fencing_to_the_administrator() {
        let mut l = FenceLedger::new(100);
        l.handle(0, I::NodeDown { node: n() });
        l.handle(10, done(1, false));
        l.handle(20, I::LeaseExpired { node: n() });
        assert_eq!(
            l.handle(110, I::AgentRemoved { node: n() }),
            [
                A::Stopped {
                    node: n(),
                    attempts: 1,
                    why: StopReason::AgentRemoved
                },
                A::Takeover { node: n() },
            ]
        );
        assert!(l.handle(120, done(1, true)).is_empty());
    }

    #[test]
    fn the_retry_delay_in_force_is_the_one_read_last() {
        let mut l = FenceLedger::new(100);
        l.handle(0, I::NodeDown { node: n() });
        l.set_retry_delay(2_500);
        let failed = l.handle(10, done(1, false));
        assert!(
            matches!(
                failed.as_slice(),
                [A::Failed {
                    retry_in_ms: 2_500,
                    ..
                }]
            ),
            "{failed:?}"
        );
        assert_eq!(
            l.handle(
                2_509,
                I::RetryDue {
                    node: n(),
                    attempt: 1
                }
            ),
            [A::Rearm {
                node: n(),
                attempt: 1,
                in_ms: 1
            }]
        );
    }
}
