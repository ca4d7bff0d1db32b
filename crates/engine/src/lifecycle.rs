//! Bringing resources online and offline: state changes (with the rule that leaving Online takes every
//! Online dependent down at once), host placement, Online/Offline calls and their results, and the
//! reconciliation pass run after every event that starts whatever is now allowed to start (dependencies
//! first, independents in parallel) and stops whatever must stop (dependents first).
//! Not failures and restart policy (failure.rs) nor health checks (health.rs).

use crate::command::Command;
use crate::engine::Engine;
use crate::graph;
use crate::ids::GroupId;
use crate::state::ResourceState;
use crate::timer::TimerKind;
use keelson_types::{LogLevel, Op, ResourceId, StatusKind};

impl Engine {
    /// Changes state and notifies. Leaving Online takes every Online (direct) dependent offline in the
    /// same step, which recursively covers the transitive ones: nothing stays Online above a provider
    /// that is not.
    pub(crate) fn set_state(&mut self, id: ResourceId, to: ResourceState) {
        let r = self.res_mut(id);
        let from = r.state;
        if from == to {
            return;
        }
        r.state = to;
        if from == ResourceState::OfflinePending {
            r.release_offline = false;
        }
        let name = r.name.clone();
        self.out.push(Command::ResourceStateChanged {
            resource: id,
            name,
            from,
            to,
        });
        if from == ResourceState::Online {
            self.stop_health(id);
            for d in graph::direct_dependents(&self.resources, id) {
                if self.res(d).state == ResourceState::Online {
                    self.start_offline(d);
                }
            }
        }
    }

    /// Opens the resource where it belongs (its own host if SeparateMonitor, else the default host).
    pub(crate) fn open(&mut self, id: ResourceId) {
        let separate = self.res(id).props.separate_monitor;
        let host = self.hosts.place(id, separate, &mut self.out);
        let r = self.res_mut(id);
        r.host = Some(host);
        if r.opened_once {
            r.gen += 1;
        }
        r.opened_once = true;
        r.outstanding.insert(Op::Open);
        r.reopen = false;
        let (name, type_name, plugin) = (r.name.clone(), r.type_name.clone(), r.plugin.clone());
        let params = r.params.clone();
        let deadline_ms = r.deadline_for(Op::Open);
        self.out.push(Command::Open {
            resource: id,
            host,
            name,
            type_name,
            plugin,
            params,
            deadline_ms,
        });
    }

    /// Closes the resource in its host (stopping a host left empty).
    pub(crate) fn close(&mut self, id: ResourceId) {
        let r = self.res_mut(id);
        r.outstanding.remove(&Op::Open);
        let Some(host) = r.host.take() else { return };
        let deadline_ms = r.deadline_for(Op::Close);
        self.out.push(Command::Close {
            resource: id,
            host,
            deadline_ms,
        });
        self.hosts.remove_member(host, id, &mut self.out);
    }

    /// Makes sure the resource is open where it belongs now, with its current parameters (a
    /// SeparateMonitor set by hand, or parameters changed while it was up, take effect here, at its
    /// next online).
    fn ensure_hosted(&mut self, id: ResourceId) {
        let r = self.res(id);
        if let Some(host) = r.host {
            if !r.reopen && self.hosts.fits(host, id, r.props.separate_monitor) {
                return;
            }
            self.close(id);
        }
        self.open(id);
    }

    /// OnlinePending + Online call + PendingTimeout timer.
    pub(crate) fn start_online(&mut self, id: ResourceId) {
        self.ensure_hosted(id);
        self.set_state(id, ResourceState::OnlinePending);
        self.call(id, Op::Online);
        let at = self
            .now
            .saturating_add(self.res(id).props.pending_timeout_ms);
        self.schedule(TimerKind::PendingTimeout(id), at);
    }

    /// OfflinePending + Offline call + PendingTimeout timer; a resource with no host is simply Offline.
    pub(crate) fn start_offline(&mut self, id: ResourceId) {
        if self.res(id).host.is_none() {
            self.set_state(id, ResourceState::Offline);
            return;
        }
        self.set_state(id, ResourceState::OfflinePending);
        self.call(id, Op::Offline);
        let at = self
            .now
            .saturating_add(self.res(id).props.pending_timeout_ms);
        self.schedule(TimerKind::PendingTimeout(id), at);
    }

    /// Sends a call of `op` to the resource's host with the deadline its properties give.
    pub(crate) fn call(&mut self, id: ResourceId, op: Op) {
        let r = self.res_mut(id);
        let Some(host) = r.host else { return };
        r.outstanding.insert(op);
        let deadline_ms = r.deadline_for(op);
        self.out.push(Command::Call {
            resource: id,
            host,
            op,
            deadline_ms,
        });
    }

    pub(crate) fn online_done(&mut self, id: ResourceId, status: StatusKind, message: &str) {
        self.cancel(TimerKind::PendingTimeout(id));
        if self.res(id).state != ResourceState::OnlinePending {
            return;
        }
        if !status.is_ok() {
            let name = self.res(id).name.clone();
            let note = crate::health::kind_note(status);
            self.log(
                LogLevel::Err,
                format!("Online of resource '{name}' failed{note}: {message}"),
            );
            self.fail_with(id, &format!("Online failed{note}: {message}"), status);
        } else if !self.providers_online(id) {
            // A provider left Online while this one was starting: take it down again.
            self.start_offline(id);
        } else {
            self.set_state(id, ResourceState::Online);
            self.start_health(id);
        }
    }

    pub(crate) fn offline_done(&mut self, id: ResourceId, ok: bool, message: &str) {
        self.cancel(TimerKind::PendingTimeout(id));
        if self.res(id).state != ResourceState::OfflinePending {
            return;
        }
        if ok {
            self.set_state(id, ResourceState::Offline);
        } else {
            let name = self.res(id).name.clone();
            self.log(
                LogLevel::Err,
                format!("Offline of resource '{name}' failed: {message}"),
            );
            self.fail(id, &format!("Offline failed: {message}"));
        }
    }

    pub(crate) fn providers_online(&self, id: ResourceId) -> bool {
        self.res(id)
            .depends_on
            .iter()
            .all(|p| self.res(*p).state == ResourceState::Online)
    }

    fn dependents_down(&self, id: ResourceId) -> bool {
        graph::direct_dependents(&self.resources, id)
            .iter()
            .all(|d| {
                matches!(
                    self.res(*d).state,
                    ResourceState::Offline | ResourceState::Failed
                )
            })
    }

    /// One pass over every group: start what wants to be online and may (all providers Online), stop
    /// what must not be online and may (no dependent still up).
    pub(crate) fn reconcile_all(&mut self) {
        let groups: Vec<GroupId> = self.groups.keys().copied().collect();
        for g in groups {
            self.reconcile(g);
        }
    }

    pub(crate) fn reconcile(&mut self, group: GroupId) {
        if !self.hosted_here(group) {
            self.release(group);
            return;
        }
        self.resume_released(group);
        let g = &self.groups[&group];
        let failed_over = g.failed_over;
        let members: Vec<ResourceId> = g.members.iter().copied().collect();
        for id in members {
            let r = self.res(id);
            let want = r.want_online && !failed_over;
            if want && r.state == ResourceState::Offline && self.providers_online(id) {
                self.start_online(id);
            } else if !want && r.state == ResourceState::Online && self.dependents_down(id) {
                self.start_offline(id);
            }
        }
    }

    /// Forgets every live timer of the resource.
    pub(crate) fn cancel_resource_timers(&mut self, id: ResourceId) {
        for kind in [
            TimerKind::PendingTimeout(id),
            TimerKind::Restart(id),
            TimerKind::Retry(id),
        ] {
            self.cancel(kind);
        }
    }
}
