//! The restart policy as a pure decision: given a resource's properties, its recent restarts, the
//! time of a failure and what kind of failure it was, what happens next. Not the carrying out
//! (timers, group failover): see failure.rs.

use keelson_types::{ResourceProperties, RestartAction, StatusKind};

/// When a resource was restarted lately (ms timestamps, oldest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestartHistory {
    restarts: Vec<u64>,
}

impl RestartHistory {
    /// Restarts in the window `(now - period, now]`.
    pub fn within(&self, now: u64, period: u64) -> usize {
        self.restarts
            .iter()
            .filter(|t| now.saturating_sub(**t) < period)
            .count()
    }

    /// Remembers a restart decided at `now`, forgetting ones older than `period`.
    pub fn record(&mut self, now: u64, period: u64) {
        self.restarts.retain(|t| now.saturating_sub(*t) < period);
        self.restarts.push(now);
    }

    /// Forgets every restart (after a retry or an administrator's online).
    pub fn clear(&mut self) {
        self.restarts.clear();
    }
}

/// What to do about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Restart the resource at `at` (now + RestartDelay).
    Restart { at: u64 },
    /// Leave the resource Failed; try it again at `retry_at` if given (RetryPeriodOnFailure).
    StayFailed { retry_at: Option<u64> },
    /// Past the threshold with RestartAndFailover: fail the group over; retry the group at `retry_at`.
    FailGroup { retry_at: u64 },
    /// The plugin said its configuration is wrong: Failed, never restarted nor retried (until an
    /// administrator brings it online again). No restart is counted.
    Misconfigured,
    /// The plugin said this node cannot run it: not retried here. In a cluster the group fails
    /// over at once (no restart counted, whatever the threshold); on a single node it stays Failed.
    LeaveNode,
}

/// The WSFC rule: NoRestart leaves it Failed; otherwise restart while fewer than RestartThreshold
/// restarts happened within RestartPeriod; past that, Restart leaves it Failed (retried after
/// RetryPeriodOnFailure) and RestartAndFailover fails the group (retried after RetryPeriodOnFailure).
pub fn decide(props: &ResourceProperties, history: &RestartHistory, now: u64) -> Decision {
    let retry_at = now.saturating_add(props.retry_period_on_failure_ms);
    if props.restart_action == RestartAction::NoRestart {
        return Decision::StayFailed { retry_at: None };
    }
    if history.within(now, props.restart_period_ms) < props.restart_threshold as usize {
        return Decision::Restart {
            at: now.saturating_add(props.restart_delay_ms),
        };
    }
    match props.restart_action {
        RestartAction::Restart => Decision::StayFailed {
            retry_at: Some(retry_at),
        },
        _ => Decision::FailGroup { retry_at },
    }
}

/// [`decide`] for a failure of kind `status`: a misconfigured resource is never restarted, one not
/// installed here leaves the node, and every other kind (error, timeout, not running, a crash, a
/// plugin's own report…) goes through the restart policy.
pub fn decide_for(
    status: StatusKind,
    props: &ResourceProperties,
    history: &RestartHistory,
    now: u64,
) -> Decision {
    match status {
        StatusKind::Misconfigured => Decision::Misconfigured,
        StatusKind::NotInstalled => Decision::LeaveNode,
        _ => decide(props, history, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(action: RestartAction, threshold: u32) -> ResourceProperties {
        ResourceProperties {
            restart_action: action,
            restart_threshold: threshold,
            ..Default::default()
        }
    }

    #[test]
    fn default_policy_restarts_once_then_fails_the_group() {
        let p = ResourceProperties::default();
        let mut h = RestartHistory::default();
        assert_eq!(decide(&p, &h, 1_000), Decision::Restart { at: 1_500 });
        h.record(1_000, p.restart_period_ms);
        assert_eq!(
            decide(&p, &h, 2_000),
            Decision::FailGroup {
                retry_at: 2_000 + 3_600_000
            }
        );
        // Outside the period the restart no longer counts.
        assert_eq!(
            decide(&p, &h, 1_000 + 900_000),
            Decision::Restart { at: 901_500 }
        );
    }

    #[test]
    fn restart_stays_failed_past_threshold_and_no_restart_never_restarts() {
        let mut h = RestartHistory::default();
        let p = props(RestartAction::Restart, 2);
        assert!(matches!(decide(&p, &h, 0), Decision::Restart { .. }));
        h.record(0, p.restart_period_ms);
        assert!(matches!(decide(&p, &h, 1), Decision::Restart { .. }));
        h.record(1, p.restart_period_ms);
        assert_eq!(
            decide(&p, &h, 2),
            Decision::StayFailed {
                retry_at: Some(3_600_002)
            }
        );
        let p = props(RestartAction::NoRestart, 5);
        assert_eq!(
            decide(&p, &RestartHistory::default(), 0),
            Decision::StayFailed { retry_at: None }
        );
        let p = props(RestartAction::RestartAndFailover, 0);
        assert!(matches!(
            decide(&p, &RestartHistory::default(), 0),
            Decision::FailGroup { .. }
        ));
    }

    #[test]
    fn the_kind_of_failure_decides_before_the_threshold() {
        let p = ResourceProperties::default();
        let h = RestartHistory::default();
        for kind in [
            StatusKind::Error,
            StatusKind::NotRunning,
            StatusKind::Timeout,
            StatusKind::Reported,
            StatusKind::HostDied,
            StatusKind::Panic,
        ] {
            assert_eq!(
                decide_for(kind, &p, &h, 1_000),
                Decision::Restart { at: 1_500 },
                "{kind}"
            );
        }
        assert_eq!(
            decide_for(StatusKind::Misconfigured, &p, &h, 1_000),
            Decision::Misconfigured
        );
        assert_eq!(
            decide_for(StatusKind::NotInstalled, &p, &h, 1_000),
            Decision::LeaveNode
        );
        // Even with restarts left and NoRestart alike, the kind wins.
        let never = props(RestartAction::NoRestart, 9);
        assert_eq!(
            decide_for(StatusKind::NotInstalled, &never, &h, 0),
            Decision::LeaveNode
        );
    }

    #[test]
    fn history_forgets_old_restarts() {
        let mut h = RestartHistory::default();
        h.record(0, 10);
        h.record(5, 10);
        assert_eq!(h.within(9, 10), 2);
        assert_eq!(h.within(12, 10), 1);
        h.record(20, 10);
        assert_eq!(h.restarts, vec![20]);
        h.clear();
        assert_eq!(h.within(20, 10), 0);
    }
}
