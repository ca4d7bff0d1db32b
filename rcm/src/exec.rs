//! Carrying out engine commands: start and stop hosts, open/close resources and call entry points in
//! tasks that report back to the core, timers, cluster-log lines, events and database changes. Not
//! deciding anything: the engine did that.

use crate::core::{Core, Input, PendingOpen, Queued};
use keelson_engine::{Command, HostId, PersistChange};
use keelson_host::{CallError, Host, OpenSpec};
use keelson_types::{HealthPlan, Op, ResourceId};
use std::time::Duration;
use tracing::Instrument;

impl Core {
    pub(crate) fn execute_one(&mut self, command: Command) {
        match command {
            Command::StartHost { host, .. } => self.start_host(host),
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
                // Calls queued behind an earlier open in flight now wait for this one.
                let seq = self.sequencer.begin_open(resource);
                let open = PendingOpen {
                    resource,
                    name,
                    type_name,
                    params,
                    seq,
                    deadline_ms,
                };
                self.handles.remove(&resource);
                if self.hosts.contains_key(&host) {
                    self.start_open(host, open);
                } else {
                    self.pending_opens.entry(host).or_default().push(open);
                }
            }
            Command::Close {
                resource,
                deadline_ms,
                ..
            } => self.close(resource, deadline_ms),
            Command::Call {
                resource,
                op,
                deadline_ms,
                ..
            } => self.call(resource, op, deadline_ms),
            Command::Poll { resource, plan, .. } => self.set_polling(resource, plan),
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
                tracing::info!(component = "RCM", "Group '{name}' state {from} -> {to}")
            }
            Command::Persist(change) => self.persist(vec![change]),
            Command::ResourceDeleted { resource, name } => self.forget(resource, &name),
        }
    }

    fn start_host(&mut self, host: HostId) {
        let tx = self.tx.clone();
        let config = self.host_config.clone();
        tokio::spawn(async move {
            let result = Host::spawn(&config).await.map(|(h, mut events)| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(event) = events.recv().await {
                        if tx.send(Input::HostEvent { host, event }).is_err() {
                            return;
                        }
                    }
                });
                h
            });
            let _ = tx.send(Input::HostStarted { host, result });
        });
    }

    fn stop_host(&mut self, host: HostId) {
        if let Some(h) = self.hosts.remove(&host) {
            self.retiring.insert(host);
            let pid = h.pid();
            self.handles.retain(|_, handle| handle.host_pid() != pid);
            tokio::spawn(async move {
                h.shutdown().await;
            });
        }
        for open in self.pending_opens.remove(&host).unwrap_or_default() {
            self.forget_open(&open);
        }
    }

    pub(crate) fn start_open(&mut self, host: HostId, open: PendingOpen) {
        let (resource, seq, deadline_ms) = (open.resource, open.seq, open.deadline_ms);
        let tx = self.tx.clone();
        let fail = |message: String| {
            let result = Err(keelson_host::HostError::Plugin(message));
            let _ = tx.send(Input::Opened {
                resource,
                seq,
                deadline_ms,
                host,
                result,
            });
        };
        let Some(h) = self.hosts.get(&host).cloned() else {
            return fail(format!("host slot {} is gone", host.0));
        };
        let path = match self.catalogue.resolve(&open.type_name) {
            crate::catalogue::Resolution::Found { path, .. } => path,
            crate::catalogue::Resolution::Pending => return self.wait_for_catalogue(host, open),
            crate::catalogue::Resolution::Missing(message) => return fail(message),
        };
        let deadline = Duration::from_millis(deadline_ms);
        let params_json = serde_json::to_string(&open.params).expect("a map of strings");
        let spec = OpenSpec::new(resource, &open.name, &path, &open.type_name)
            .params(params_json)
            .deadlock_timeout(deadline)
            .timings(self.timings.entry(resource).or_default().clone());
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = h.open(spec).await;
            let _ = tx.send(Input::Opened {
                resource,
                seq,
                deadline_ms,
                host,
                result,
            });
        });
    }

    /// Everything the node service kept about a deleted resource goes, here and only here.
    fn forget(&mut self, resource: ResourceId, name: &str) {
        self.timings.remove(&resource);
        self.secrets.remove(name);
        self.handles.remove(&resource);
    }

    /// Closes the resource within `deadline_ms`, the engine's deadline for this Close.
    fn close(&mut self, resource: ResourceId, deadline_ms: u64) {
        // An open still in flight is superseded: its instance is closed, within this Close's
        // deadline, when it arrives.
        self.sequencer.close(resource, deadline_ms);
        if let Some(handle) = self.handles.remove(&resource) {
            let deadline = Duration::from_millis(deadline_ms);
            tokio::spawn(async move {
                let _ = handle.close(deadline).await;
            });
        }
    }

    pub(crate) fn call(&mut self, resource: ResourceId, op: Op, deadline_ms: u64) {
        if self
            .sequencer
            .request(resource, Queued::Call(op, deadline_ms))
            .is_none()
        {
            return; // waits for the open in flight
        }
        let Some(handle) = self.handles.get(&resource).cloned() else {
            let message = format!(
                "{} not sent: the resource is not open in a host",
                op.upper()
            );
            self.feed(keelson_engine::Event::CallDone {
                resource,
                op,
                ok: false,
                message,
            });
            return;
        };
        let tx = self.tx.clone();
        let span = tracing::info_span!(
            "call",
            resource = handle.name(),
            group = self.engine.group_of(resource).unwrap_or(""),
            op = op.upper(),
        );
        tokio::spawn(
            async move {
                let result = handle
                    .call_with_deadline(op, Duration::from_millis(deadline_ms))
                    .await;
                let _ = tx.send(Input::CallDone {
                    resource,
                    op,
                    result,
                });
            }
            .instrument(span),
        );
    }

    /// Hands the resource's host its health plan (None: stop polling), in order with its calls.
    pub(crate) fn set_polling(&mut self, resource: ResourceId, plan: Option<HealthPlan>) {
        if self
            .sequencer
            .request(resource, Queued::Poll(plan))
            .is_none()
        {
            return; // waits for the open in flight
        }
        // Not open: nothing polls it, and its next open starts without a plan.
        let Some(handle) = self.handles.get(&resource).cloned() else {
            return;
        };
        tokio::spawn(async move {
            match handle.set_polling(plan).await {
                // A host that died or a resource closed meanwhile is reported on its own.
                Ok(()) | Err(CallError::HostDied(_)) | Err(CallError::Closed) => {}
                Err(e) => tracing::error!(
                    component = "RCM",
                    "resource '{}': cannot hand its health plan to its host: {e}",
                    handle.name()
                ),
            }
        });
    }

    /// Saves the changes of an internal event (a host death, a timer) in one transaction. Nobody
    /// waits for an answer: a failure is logged and the changes are kept for the next write.
    pub(crate) fn persist(&mut self, changes: Vec<PersistChange>) {
        if changes.is_empty() {
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
