//! Health polling and the routing of shell reports: LooksAlive every LooksAlivePollInterval, IsAlive
//! every IsAlivePollInterval, IsAlive at once when LooksAlive fails; call results and timers dispatched
//! to their rules (stale ones ignored). Not what a failure then does (failure.rs).

use crate::engine::Engine;
use crate::state::ResourceState;
use crate::timer::{Timer, TimerKind};
use keelson_types::{LogLevel, Op, ResourceId};

impl Engine {
    /// Schedules the first LooksAlive and IsAlive of a resource that just came Online.
    pub(crate) fn start_health(&mut self, id: ResourceId) {
        let p = &self.res(id).props;
        let (looks, is) = (
            self.now.saturating_add(p.looks_alive_poll_interval_ms),
            self.now.saturating_add(p.is_alive_poll_interval_ms),
        );
        self.schedule(TimerKind::LooksAlive(id), looks);
        self.schedule(TimerKind::IsAlive(id), is);
    }

    pub(crate) fn timer_fired(&mut self, timer: Timer) {
        if !self.take_timer(timer) {
            return;
        }
        match timer.kind {
            TimerKind::LooksAlive(id) => self.poll(id, Op::LooksAlive),
            TimerKind::IsAlive(id) => self.poll(id, Op::IsAlive),
            TimerKind::PendingTimeout(id) => self.pending_timeout(id),
            TimerKind::Restart(id) => self.restart_due(id),
            TimerKind::Retry(id) => self.retry_due(id),
            TimerKind::GroupRetry(g) => self.group_retry_due(g),
        }
    }

    /// A poll is due: call (unless a check of that kind, or an IsAlive, is still running) and
    /// schedule the next one.
    fn poll(&mut self, id: ResourceId, op: Op) {
        let Some(r) = self.resources.get(&id) else {
            return;
        };
        if r.state != ResourceState::Online {
            return;
        }
        let busy = r.outstanding.contains(&op) || r.outstanding.contains(&Op::IsAlive);
        let (kind, interval) = match op {
            Op::LooksAlive => (
                TimerKind::LooksAlive(id),
                r.props.looks_alive_poll_interval_ms,
            ),
            _ => (TimerKind::IsAlive(id), r.props.is_alive_poll_interval_ms),
        };
        if !busy {
            self.call(id, op);
        }
        self.schedule(kind, self.now.saturating_add(interval));
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
            Op::LooksAlive if !ok => self.looks_alive_failed(id, message),
            Op::IsAlive if !ok => self.is_alive_failed(id, message),
            Op::Open if !ok => self.open_failed(id, message),
            Op::Terminate => {
                let name = self.res(id).name.clone();
                self.log(
                    LogLevel::Dbg,
                    format!("Terminate of resource '{name}' returned (ok={ok}) {message}"),
                );
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
        self.log(
            LogLevel::Warn,
            format!("LooksAlive failed for resource '{name}': {message}; running IsAlive."),
        );
        if !self.res(id).outstanding.contains(&Op::IsAlive) {
            self.call(id, Op::IsAlive);
        }
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
