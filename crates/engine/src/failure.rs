//! Resource failure and the restart policy: Failed + event 1069, then restart after RestartDelay,
//! stay Failed (retried after RetryPeriodOnFailure or never), or fail the group (group Failed,
//! event 1205, retried after RetryPeriodOnFailure; in a cluster it also asks the leader to fail it
//! over). A misconfigured resource stays Failed without restarts; one not installed on this node
//! fails its group over at once in a cluster and stays Failed on a single node. Not the decision
//! arithmetic (restart.rs) nor failure detection (health.rs, host_death.rs).

use crate::command::{Command, EventLevel, PlacementReport};
use crate::engine::Engine;
use crate::ids::GroupId;
use crate::restart::{decide_for, Decision};
use crate::state::ResourceState;
use crate::timer::TimerKind;
use keelson_types::{LogLevel, Op, ResourceId, StatusKind};

impl Engine {
    /// The resource failed (`reason` for the log). Online/OnlinePending failures go through the restart
    /// policy; an OfflinePending one ends Failed (retried after RetryPeriodOnFailure if it still wants
    /// online); Offline/Failed resources are left alone.
    pub(crate) fn fail(&mut self, id: ResourceId, reason: &str) {
        self.fail_with(id, reason, StatusKind::Error);
    }

    /// [`Engine::fail`] for a failure of kind `status`, which the policy tells apart (restart.rs).
    pub(crate) fn fail_with(&mut self, id: ResourceId, reason: &str, status: StatusKind) {
        let was = self.res(id).state;
        if matches!(was, ResourceState::Offline | ResourceState::Failed) {
            return;
        }
        self.cancel_resource_timers(id);
        let r = self.res_mut(id);
        r.outstanding
            .retain(|op| matches!(op, Op::Open | Op::Terminate));
        let release_offline = r.release_offline && was == ResourceState::OfflinePending;
        let (name, group) = (r.name.clone(), self.group_name_of(id));
        self.set_state(id, ResourceState::Failed);
        if release_offline || !self.hosted_here(self.res(id).group) {
            // A fresh start if the group comes back (or has come back: a cancelled hand-off).
            self.res_mut(id).released_failure = true;
        }
        self.log(
            LogLevel::Err,
            format!("Resource '{name}' failed: {reason}."),
        );
        let msg = format!(
            "Cluster resource '{name}' in clustered service or application '{group}' failed."
        );
        self.raise(1069, EventLevel::Error, msg, Some(name), Some(group));
        if was != ResourceState::OfflinePending {
            self.apply_policy(id, status);
        } else {
            self.retry_failed_offline(id);
        }
    }

    /// An Offline failed. The administrator's (the resource no longer wants online): it stays
    /// Failed. Otherwise (its provider left Online, say) it stays Failed here, without a restart of
    /// its own, and is tried again after RetryPeriodOnFailure, unless the group's own failure or
    /// its leaving this node takes care of it.
    fn retry_failed_offline(&mut self, id: ResourceId) {
        let r = self.res(id);
        let gid = r.group;
        if !r.want_online
            || r.released_failure
            || self.groups[&gid].failed_over
            || !self.hosted_here(gid)
        {
            return;
        }
        let name = r.name.clone();
        let at = self.now.saturating_add(r.props.retry_period_on_failure_ms);
        self.log(
            LogLevel::Warn,
            format!(
                "Resource '{name}' failed going offline while it should be online; it stays Failed \
                 and will be retried in {} ms.",
                at.saturating_sub(self.now)
            ),
        );
        self.schedule(TimerKind::Retry(id), at);
    }

    fn apply_policy(&mut self, id: ResourceId, status: StatusKind) {
        let gid = self.res(id).group;
        if self.groups[&gid].failed_over || !self.hosted_here(gid) {
            return; // a group leaving this node is not restarted here
        }
        let r = self.res(id);
        let name = r.name.clone();
        match decide_for(status, &r.props, &r.restarts, self.now) {
            Decision::Restart { at } => {
                let period = r.props.restart_period_ms;
                let now = self.now;
                self.res_mut(id).restarts.record(now, period);
                self.log(
                    LogLevel::Info,
                    format!(
                        "Resource '{name}' will be restarted in {} ms.",
                        at.saturating_sub(self.now)
                    ),
                );
                self.schedule(TimerKind::Restart(id), at);
            }
            Decision::StayFailed { retry_at: Some(at) } => {
                self.log(
                    LogLevel::Warn,
                    format!(
                        "Resource '{name}' stays Failed; it will be retried in {} ms.",
                        at.saturating_sub(self.now)
                    ),
                );
                self.schedule(TimerKind::Retry(id), at);
            }
            Decision::StayFailed { retry_at: None } => {
                self.log(
                    LogLevel::Warn,
                    format!("Resource '{name}' stays Failed (RestartAction=NoRestart)."),
                );
            }
            Decision::FailGroup { retry_at } => self.fail_group(gid, id, Some(retry_at)),
            Decision::Misconfigured => self.log(
                LogLevel::Warn,
                format!(
                    "Resource '{name}' is misconfigured: it stays Failed and is not restarted \
                     (an administrator's online tries it again)."
                ),
            ),
            Decision::LeaveNode if self.local_node.is_empty() => self.log(
                LogLevel::Warn,
                format!(
                    "Resource '{name}' is not installed on this node: it stays Failed and is not \
                     retried here (an administrator's online tries it again)."
                ),
            ),
            Decision::LeaveNode => self.fail_group(gid, id, None),
        }
    }

    /// Past the threshold with RestartAndFailover. On a single node there is nowhere to move to: the
    /// group is Failed, its resources are taken offline, and it is retried at `retry_at`. Without a
    /// `retry_at` (its offender is not installed on this node; only in a cluster) it is not retried
    /// here.
    fn fail_group(&mut self, gid: GroupId, offender: ResourceId, retry_at: Option<u64>) {
        let g = self.groups.get_mut(&gid).expect("group of a resource");
        g.failed_over = true;
        let (group, members) = (g.name.clone(), g.members.clone());
        for m in members {
            self.cancel(TimerKind::Restart(m));
            self.cancel(TimerKind::Retry(m));
        }
        let name = self.res(offender).name.clone();
        match retry_at {
            Some(retry_at) if self.local_node.is_empty() => self.log(
                LogLevel::Warn,
                format!(
                    "Resource '{name}' failed past its RestartThreshold; group '{group}' failed over, no other node \
                     can host it: group is Failed and will be retried in {} ms.",
                    retry_at.saturating_sub(self.now)
                ),
            ),
            Some(retry_at) => self.report_group_failed(&group, &name, retry_at),
            None => self.report_not_installed(&group, &name),
        }
        let msg = format!(
            "The Cluster service failed to bring clustered service or application '{group}' completely online or \
             offline. One or more resources may be in a failed state. This may impact the availability of the \
             clustered service or application."
        );
        self.raise(1205, EventLevel::Error, msg, Some(name), Some(group));
        if let Some(retry_at) = retry_at {
            self.schedule(TimerKind::GroupRetry(gid), retry_at);
        }
    }

    /// In a cluster: a resource of the group is not installed on this node, so the group is Failed
    /// here at once and the leader moves it (it is not retried here).
    fn report_not_installed(&mut self, group: &str, resource: &str) {
        self.log(
            LogLevel::Warn,
            format!(
                "Resource '{resource}' is not installed on node '{}'; group '{group}' is Failed here and asks \
                 to fail over at once (not retried here).",
                self.local_node
            ),
        );
        self.out
            .push(Command::Placement(PlacementReport::GroupFailed {
                group: group.to_string(),
                node: self.local_node.clone(),
                resource: resource.to_string(),
            }));
    }

    /// In a cluster: the group is Failed here and the leader decides where it goes next (it is
    /// retried here at `retry_at` if it stays).
    fn report_group_failed(&mut self, group: &str, resource: &str, retry_at: u64) {
        self.log(
            LogLevel::Warn,
            format!(
                "Resource '{resource}' failed past its RestartThreshold; group '{group}' is Failed on node '{}' \
                 and asks to fail over (retried here in {} ms if it stays).",
                self.local_node,
                retry_at.saturating_sub(self.now)
            ),
        );
        self.out
            .push(Command::Placement(PlacementReport::GroupFailed {
                group: group.to_string(),
                node: self.local_node.clone(),
                resource: resource.to_string(),
            }));
    }

    /// RestartDelay passed: the resource becomes Offline and reconciliation restarts it (after its
    /// providers, if they are down too).
    pub(crate) fn restart_due(&mut self, id: ResourceId) {
        if self
            .resources
            .get(&id)
            .is_some_and(|r| r.state == ResourceState::Failed)
        {
            let name = self.res(id).name.clone();
            self.log(LogLevel::Info, format!("Restarting resource '{name}'."));
            self.set_state(id, ResourceState::Offline);
        }
    }

    /// RetryPeriodOnFailure passed for a resource: forget its restarts and try again.
    pub(crate) fn retry_due(&mut self, id: ResourceId) {
        if self
            .resources
            .get(&id)
            .is_some_and(|r| r.state == ResourceState::Failed)
        {
            let name = self.res(id).name.clone();
            self.log(
                LogLevel::Info,
                format!("Retrying failed resource '{name}' (RetryPeriodOnFailure)."),
            );
            self.res_mut(id).restarts.clear();
            self.set_state(id, ResourceState::Offline);
        }
    }

    /// RetryPeriodOnFailure passed for a failed group: try the whole group again.
    pub(crate) fn group_retry_due(&mut self, gid: GroupId) {
        if self.groups.get(&gid).is_some_and(|g| g.failed_over) {
            let name = self.groups[&gid].name.clone();
            self.log(
                LogLevel::Info,
                format!("Retrying failed group '{name}' (RetryPeriodOnFailure)."),
            );
            self.clear_group_failure(gid);
        }
    }

    /// Ends a group failure (retry timer or administrator): failed members become Offline with their
    /// restart history forgotten, so reconciliation brings back what wants to be online.
    pub(crate) fn clear_group_failure(&mut self, gid: GroupId) {
        let g = self
            .groups
            .get_mut(&gid)
            .expect("group id from the engine's tables");
        if !g.failed_over {
            return;
        }
        g.failed_over = false;
        let members = g.members.clone();
        self.cancel(TimerKind::GroupRetry(gid));
        for m in members {
            self.res_mut(m).restarts.clear();
            if self.res(m).state == ResourceState::Failed {
                self.cancel(TimerKind::Retry(m));
                self.set_state(m, ResourceState::Offline);
            }
        }
    }
}
