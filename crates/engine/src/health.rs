//! Health polling as the engine sees it, and the routing of shell reports: a resource that comes
//! Online gets its health plan (LooksAlivePollInterval, IsAlivePollInterval, DeadlockTimeout) and its
//! host polls by it (keelson_types::HealthSchedule, on the resource's own thread); a changed plan is
//! handed again, leaving Online stops it; a failed check comes back as `Event::HealthFailed`. Call
//! results and timers are dispatched to their rules (stale ones ignored). Not what a failure then
//! does (failure.rs).

use crate::command::Command;
use crate::engine::Engine;
use crate::state::ResourceState;
use crate::timer::{Timer, TimerKind};
use keelson_types::{LogLevel, Op, ResourceId};

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
    pub(crate) fn health_failed(&mut self, id: ResourceId, op: Op, message: &str) {
        let Some(r) = self.resources.get(&id) else {
            return;
        };
        if r.state != ResourceState::Online || r.health_plan.is_none() {
            return;
        }
        match op {
            Op::LooksAlive => self.looks_alive_failed(id, message),
            _ => self.is_alive_failed(id, message),
        }
    }

    pub(crate) fn call_done(&mut self, id: ResourceId, op: Op, ok: bool, message: &str) {
        let Some(r) = self.resources.get_mut(&id) else {
            return;
        };
        if !r.outstanding.remove(&op) {
            return; // stale: not (or no longer) expected
        }
        match op {
            Op::Online => self.online_done(id, ok, message),
            Op::Offline => self.offline_done(id, ok, message),
            Op::Open if !ok => self.open_failed(id, message),
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

    fn looks_alive_failed(&mut self, id: ResourceId, message: &str) {
        let r = self.res(id);
        if r.state != ResourceState::Online {
            return;
        }
        let name = r.name.clone();
        // The host runs IsAlive at once by itself.
        self.log(
            LogLevel::Warn,
            format!("LooksAlive failed for resource '{name}': {message}; running IsAlive."),
        );
    }

    fn is_alive_failed(&mut self, id: ResourceId, message: &str) {
        if self.res(id).state != ResourceState::Online {
            return;
        }
        let name = self.res(id).name.clone();
        self.log(
            LogLevel::Err,
            format!("IsAlive failed for resource '{name}': {message}"),
        );
        self.fail(id, &format!("IsAlive failed: {message}"));
    }

    fn open_failed(&mut self, id: ResourceId, message: &str) {
        let name = self.res(id).name.clone();
        self.log(
            LogLevel::Err,
            format!("Open of resource '{name}' failed: {message}"),
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
        self.call(id, Op::Terminate);
        self.fail(id, &format!("{op} timed out after {ms} ms"));
    }
}
