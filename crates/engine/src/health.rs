//! Health polling as the engine sees it, and the routing of shell reports: a resource that comes
//! Online gets its health plan (LooksAlivePollInterval, IsAlivePollInterval, DeadlockTimeout) and its
//! host polls by it (keelson_types::HealthSchedule, on the resource's own thread); a changed plan is
//! handed again, leaving Online stops it; a failed check comes back as `Event::HealthFailed`, and a
//! plugin's own failure report as `Event::FailureReported` (a failed IsAlive at once). Call results
//! and timers are dispatched to their rules (stale ones ignored), and every failure is remembered as
//! its op's last error. Not what a failure then does (failure.rs).

use crate::command::Command;
use crate::engine::Engine;
use crate::state::ResourceState;
use crate::timer::{Timer, TimerKind};
use keelson_types::{LogLevel, Op, ResourceId, StatusKind};

impl Engine {
    /// A resource that just came Online: its host starts polling by its plan.
    pub(crate) fn start_health(&mut self, id: ResourceId) {
        let plan = self.res(id).health_plan();
        self.send_health_plan(id, Some(plan));
    }

    /// A resource left Online: its host stops polling.
    pub(crate) fn stop_health(&mut self, id: ResourceId) {
        if self.res(id).health_plan.is_some() {
            self.send_health_plan(id, None);
        }
    }

    /// Its properties may have changed: an Online resource whose plan differs gets the new one.
    pub(crate) fn refresh_health_plan(&mut self, id: ResourceId) {
        let Some(r) = self.resources.get(&id) else {
            return;
        };
        let plan = r.health_plan();
        if r.state == ResourceState::Online && r.health_plan.is_some_and(|p| p != plan) {
            self.send_health_plan(id, Some(plan));
        }
    }

    fn send_health_plan(&mut self, id: ResourceId, plan: Option<keelson_types::HealthPlan>) {
        let r = self.res_mut(id);
        r.health_plan = plan;
        let Some(host) = r.host else { return };
        self.out.push(Command::Poll {
            resource: id,
            host,
            plan,
        });
    }

    pub(crate) fn timer_fired(&mut self, timer: Timer) {
        if !self.take_timer(timer) {
            return;
        }
        match timer.kind {
            TimerKind::PendingTimeout(id) => self.pending_timeout(id),
            TimerKind::Restart(id) => self.restart_due(id),
            TimerKind::Retry(id) => self.retry_due(id),
            TimerKind::GroupRetry(g) => self.group_retry_due(g),
        }
    }

    /// A check the host ran by the plan failed. Ignored unless the resource is (still) Online and
    /// polled: a report that crossed its leaving Online is stale.
    pub(crate) fn health_failed(
        &mut self,
        id: ResourceId,
        op: Op,
        status: StatusKind,
        message: &str,
    ) {
        let Some(r) = self.resources.get(&id) else {
            return;
        };
        if r.state != ResourceState::Online || r.health_plan.is_none() {
            return;
        }
        self.note_error(id, op, status, message);
        match op {
            Op::LooksAlive => self.looks_alive_failed(id, status, message),
            _ => self.is_alive_failed(id, status, message),
        }
    }

    /// The plugin reported by itself that the resource failed: a failed IsAlive now, if it is
    /// Online and polled; otherwise (not Online, or already failing) the report is logged and
    /// ignored.
    pub(crate) fn failure_reported(&mut self, id: ResourceId, message: &str) {
        let Some(r) = self.resources.get(&id) else {
            return;
        };
        if r.state != ResourceState::Online || r.health_plan.is_none() {
            let (name, state) = (r.name.clone(), r.state);
            self.log(
                LogLevel::Info,
                format!(
                    "Failure report for resource '{name}' ignored: it is {state}, not Online: {message}"
                ),
            );
            return;
        }
        let message = format!("reported by the plugin: {message}");
        self.note_error(id, Op::IsAlive, StatusKind::Reported, &message);
        self.is_alive_failed(id, StatusKind::Reported, &message);
    }

    pub(crate) fn call_done(&mut self, id: ResourceId, op: Op, status: StatusKind, message: &str) {
        let Some(r) = self.resources.get_mut(&id) else {
            return;
        };
        if !r.outstanding.remove(&op) {
            return; // stale: not (or no longer) expected
        }
        let ok = status.is_ok();
        if !ok {
            self.note_error(id, op, status, message);
        }
        match op {
            Op::Online => self.online_done(id, status, message),
            Op::Offline => self.offline_done(id, ok, message),
            Op::Open if !ok => self.open_failed(id, status, message),
            Op::Terminate => {
                let name = self.res(id).name.clone();
                self.log(
                    LogLevel::Dbg,
                    format!("Terminate of resource '{name}' returned (ok={ok}) {message}"),
                );
                self.terminate_done(id);
            }
            _ => {}
        }
    }

    fn looks_alive_failed(&mut self, id: ResourceId, status: StatusKind, message: &str) {
        let r = self.res(id);
        if r.state != ResourceState::Online {
            return;
        }
        let name = r.name.clone();
        // The host runs IsAlive at once by itself.
        let line = if status == StatusKind::NotRunning {
            format!("LooksAlive found resource '{name}' not running: {message}; running IsAlive.")
        } else {
            format!("LooksAlive failed for resource '{name}': {message}; running IsAlive.")
        };
        self.log(LogLevel::Warn, line);
    }

    /// A failed IsAlive (or a failure report): NotRunning is logged as "not running" (the resource
    /// is cleanly down), not as an error; the policy then decides by `status`.
    fn is_alive_failed(&mut self, id: ResourceId, status: StatusKind, message: &str) {
        if self.res(id).state != ResourceState::Online {
            return;
        }
        let name = self.res(id).name.clone();
        if status == StatusKind::NotRunning {
            self.log(
                LogLevel::Warn,
                format!("IsAlive found resource '{name}' not running: {message}"),
            );
            return self.fail_with(id, &format!("not running: {message}"), status);
        }
        self.log(
            LogLevel::Err,
            format!(
                "IsAlive failed for resource '{name}'{}: {message}",
                kind_note(status)
            ),
        );
        self.fail_with(id, &format!("IsAlive failed: {message}"), status);
    }

    fn open_failed(&mut self, id: ResourceId, status: StatusKind, message: &str) {
        let name = self.res(id).name.clone();
        self.log(
            LogLevel::Err,
            format!(
                "Open of resource '{name}' failed{}: {message}",
                kind_note(status)
            ),
        );
        self.close(id);
    }

    /// PendingTimeout expired on Online or Offline: Terminate, then Failed.
    fn pending_timeout(&mut self, id: ResourceId) {
        let Some(r) = self.resources.get_mut(&id) else {
            return;
        };
        let op = match r.state {
            ResourceState::OnlinePending => Op::Online,
            ResourceState::OfflinePending => Op::Offline,
            _ => return,
        };
        r.outstanding.remove(&op);
        let (name, ms) = (r.name.clone(), r.props.pending_timeout_ms);
        self.log(
            LogLevel::Err,
            format!("{op} of resource '{name}' did not finish within PendingTimeout ({ms} ms); terminating it."),
        );
        let reason = format!("{op} timed out after {ms} ms");
        self.note_error(id, op, StatusKind::Timeout, &reason);
        self.call(id, Op::Terminate);
        self.fail_with(id, &reason, StatusKind::Timeout);
    }
}

/// ` (misconfigured)` / ` (not installed)` after "failed" in a log line, for the kinds that change
/// what happens next; nothing for the others, whose lines keep their old shape.
pub(crate) fn kind_note(status: StatusKind) -> &'static str {
    match status {
        StatusKind::Misconfigured => " (misconfigured)",
        StatusKind::NotInstalled => " (not installed)",
        _ => "",
    }
}
