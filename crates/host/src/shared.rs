//! The state one host's handle, its resource handles and its supervisor task share: pid, death
//! report, resource names, plugin loads waiting for an answer, the watchdog's record and the event
//! channel; how a control frame from the host is dispatched. Not the process (spawn.rs) nor reading
//! it (supervisor.rs).

use crate::blame::PluginSlots;
use crate::classify::{classify, Exit};
use crate::death::{DeathCause, HostDied};
use crate::event::HostEvent;
use keelson_proto::{HostAlarm, HostReply};
use keelson_types::{Op, PluginInfo, ResourceId, StatusKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// The signal that ends a host at once.
const SIGKILL: keelson_sys::Signal = keelson_sys::Signal::SIGKILL;

/// State shared by the host handle, its resources and its supervisor task.
pub(crate) struct Shared {
    pub(crate) pid: u32,
    pub(crate) watchdog_grace: Duration,
    pub(crate) death: watch::Sender<Option<HostDied>>,
    pub(crate) pending: Mutex<HashMap<u64, oneshot::Sender<Result<PluginInfo, String>>>>,
    pub(crate) names: Mutex<HashMap<ResourceId, String>>,
    /// Set just before rcm's watchdog SIGKILLs the host, so the death is blamed on that call.
    pub(crate) watchdog: Mutex<Option<DeathCause>>,
    /// The plugins the host reported loading, by code slot (to blame a crash on a plugin thread).
    pub(crate) plugins: Mutex<PluginSlots>,
    pub(crate) events: mpsc::UnboundedSender<HostEvent>,
    /// rcm's end of the host's lease socket, when it was started with a lease.
    pub(crate) lease: Option<Arc<std::os::unix::net::UnixDatagram>>,
}

impl Shared {
    pub(crate) async fn died(&self) -> HostDied {
        let mut rx = self.death.subscribe();
        let died = rx.wait_for(Option::is_some).await.map(|d| d.clone());
        died.ok()
            .flatten()
            .expect("the supervisor always reports a death before dropping the sender")
    }

    /// The death report if it arrives within `wait`.
    pub(crate) async fn died_within(&self, wait: Duration) -> Option<HostDied> {
        tokio::time::timeout(wait, self.died()).await.ok()
    }

    pub(crate) fn kill(&self) {
        if self.death.borrow().is_none() {
            let _ = keelson_sys::process::kill(self.pid, SIGKILL);
        }
    }

    /// rcm's watchdog: blames `op` on `resource` and SIGKILLs the host.
    pub(crate) fn watchdog_kill(&self, resource: ResourceId, op: Op, elapsed: Duration) {
        let name = self.name_of(resource).unwrap_or_default();
        let cause = DeathCause::Deadlock {
            resource,
            name,
            op,
            elapsed,
            by_watchdog: true,
        };
        self.watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(cause);
        self.kill();
    }

    pub(crate) fn name_of(&self, resource: ResourceId) -> Option<String> {
        self.lock_names().get(&resource).cloned()
    }

    pub(crate) fn lock_names(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceId, String>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn lock_pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<PluginInfo, String>>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn emit(&self, event: HostEvent) {
        let _ = self.events.send(event);
    }

    /// Handles one frame from the control socket.
    pub(crate) fn dispatch(&self, reply: HostReply) {
        let pid = self.pid;
        match reply {
            HostReply::PluginLoaded { req, result } => {
                if let Some(tx) = self.lock_pending().remove(&req) {
                    let _ = tx.send(result);
                }
            }
            HostReply::Log {
                resource,
                level,
                tid,
                message,
            } => self.emit(HostEvent::Log {
                pid,
                tid,
                level,
                resource,
                message,
            }),
            HostReply::Progress { resource, progress } => self.emit(HostEvent::Progress {
                pid,
                resource,
                progress,
            }),
            HostReply::Refused { message } => self.emit(HostEvent::Refused { pid, message }),
            HostReply::PluginMapped(mapping) => self
                .plugins
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(mapping),
            HostReply::HealthFailed {
                resource,
                op,
                status,
                message,
            } => self.emit(HostEvent::HealthFailed {
                pid,
                resource,
                op,
                status: StatusKind::from_code_or_error(status),
                message,
            }),
            HostReply::FailureReported { resource, message } => {
                self.emit(HostEvent::FailureReported {
                    pid,
                    resource,
                    message,
                })
            }
            HostReply::CallStats { stats } => self.emit(HostEvent::CallStats { pid, stats }),
            HostReply::Hello(_) => self.emit(HostEvent::Refused {
                pid,
                message: "unexpected second Hello".into(),
            }),
        }
    }

    /// Why the host died, from its wait status, its alarms and the watchdog's record.
    pub(crate) fn death_cause(&self, exit: Exit, alarms: Vec<HostAlarm>) -> DeathCause {
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let plugins = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        classify(
            exit,
            alarms,
            watchdog,
            |r| self.name_of(r),
            &plugins,
            crate::symbols::symbolise,
        )
    }

    /// Publishes the death report (once, last) and drops every waiter for a plugin load.
    pub(crate) fn report_death(&self, died: HostDied) {
        for (_, tx) in self.lock_pending().drain() {
            drop(tx);
        }
        self.death.send_replace(Some(died.clone()));
        self.emit(HostEvent::Died(died));
    }
}
