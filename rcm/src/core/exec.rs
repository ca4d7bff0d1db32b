//! Carrying out engine commands: hosts, opens, closes, calls and health plans go to the pool;
//! timers, cluster-log lines, events and database changes are done here. Not deciding anything:
//! the engine did that.

use super::Core;
use keelson_engine::{Command, PersistChange};
use keelson_host::PendingOpen;
use keelson_types::{HostId, Op, ResourceId};

impl Core {
    pub(crate) fn execute_one(&mut self, command: Command) {
        match command {
            Command::StartHost { host, .. } => self.pool.start_host(host),
            Command::StopHost { host } => self.stop_host(host),
            Command::Open {
                resource,
                host,
                name,
                type_name,
                params,
                deadline_ms,
                ..
            } => {
                let open = PendingOpen {
                    resource,
                    name,
                    type_name,
                    params,
                    seq: 0,
                    deadline_ms,
                };
                if let Some(open) = self.pool.begin_open(host, open) {
                    self.start_open(host, open);
                }
            }
            Command::Close {
                resource,
                deadline_ms,
                ..
            } => self.pool.close(resource, deadline_ms),
            Command::Call {
                resource,
                op,
                deadline_ms,
                ..
            } => self.call(resource, op, deadline_ms),
            Command::Poll { resource, plan, .. } => self.pool.set_polling(resource, plan),
            Command::ScheduleTimer { at, timer } => self.schedule(at, timer),
            Command::Log {
                level,
                component,
                message,
            } => {
                let text = self.secrets.redact(&message);
                crate::event_at!(level, component = component.as_str(), "{text}")
            }
            Command::RaiseEvent(e) => {
                let message = self.secrets.redact(&e.message).into_owned();
                self.events
                    .raise(e.id, e.level, message, e.resource, e.group);
            }
            Command::ResourceStateChanged { name, from, to, .. } => {
                tracing::info!(component = "RCM", "Resource '{name}' state {from} -> {to}")
            }
            Command::GroupStateChanged { name, from, to, .. } => {
                tracing::info!(component = "RCM", "Group '{name}' state {from} -> {to}");
                self.report_owner_state(&name);
            }
            Command::Persist(change) => self.persist(vec![change]),
            Command::ResourceDeleted { resource, name } => self.forget(resource, &name),
            Command::Placement(report) => self.report_placement(report),
        }
    }

    fn stop_host(&mut self, host: HostId) {
        self.pool.retire_host(host);
    }

    /// Opens `open` in `host` once its plugin is known (a type still being probed waits for the
    /// catalogue; an unknown one fails the open).
    pub(super) fn start_open(&mut self, host: HostId, open: PendingOpen) {
        match self.catalogue.resolve(&open.type_name) {
            crate::catalogue::Resolution::Found { path, .. } => {
                self.pool.start_open(host, open, &path)
            }
            crate::catalogue::Resolution::Pending => self.wait_for_catalogue(host, open),
            crate::catalogue::Resolution::Missing(message) => {
                self.pool.fail_open(host, &open, message)
            }
        }
    }

    /// Everything the node service kept about a deleted resource goes, here and only here.
    fn forget(&mut self, resource: ResourceId, name: &str) {
        self.pool.forget(resource);
        self.secrets.remove(name);
    }

    /// Calls `op` in a span naming the resource and its group.
    fn call(&mut self, resource: ResourceId, op: Op, deadline_ms: u64) {
        let span = tracing::info_span!(
            "call",
            resource = self.engine.resource_name(resource).unwrap_or(""),
            group = self.engine.group_of(resource).unwrap_or(""),
            op = op.upper(),
        );
        if let Some(outcome) = self.pool.call(resource, op, deadline_ms, span) {
            self.on_outcome(outcome);
        }
    }

    /// Saves the changes of an internal event (a host death, a timer) in one transaction. Nobody
    /// waits for an answer: a failure is logged and the changes are kept for the next write.
    pub(super) fn persist(&mut self, changes: Vec<PersistChange>) {
        if changes.is_empty() {
            return;
        }
        if let Some(cluster) = &self.cluster {
            cluster.propose_in_background(changes);
            return;
        }
        if let Err(e) = self.unsaved.save_or_keep(&mut self.store, &changes) {
            tracing::error!(
                component = "RCM",
                "{e}; kept in memory to save with the next change"
            );
        }
    }
}
