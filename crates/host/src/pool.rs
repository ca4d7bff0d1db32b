//! The node's resource hosts and the resources open in them, as one pool: it starts and retires
//! hosts, numbers opens, keeps each resource's handle and call timings across re-hosting, and
//! promises in-order requests per resource (a call or health plan sent while an open is in flight
//! waits behind it). Its tasks report back on one channel; `on_report` turns each report into
//! outcomes for the owner. With a lease configured, every host it starts holds one, renewed by the
//! pool's renewer thread; a host that fenced itself is lost with nobody to blame. Not policy: which host a resource goes to, and what a death means, are
//! the engine's; which plugin file a type is, is the catalogue's.

use crate::config::HostConfig;
use crate::error::{CallError, HostError};
use crate::event::HostEvent;
use crate::host::Host;
use crate::lane::Lane;
use crate::pool_io::{PendingOpen, PoolOutcome, PoolReport, Queued};
use crate::renewer::LeaseRenewer;
use crate::resource::{ResourceHandle, SharedTimings};
use crate::sequence::{OpenFate, Sequencer};
use crate::spec::OpenSpec;
use crate::DeathCause;
use keelson_proto::CallDone;
use keelson_types::{CallStats, HealthPlan, HostId, Op, ResourceId, StatusKind};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Every host of the node and every resource open in one.
pub struct Pool {
    config: HostConfig,
    hosts: HashMap<HostId, Host>,
    /// Hosts being shut down on purpose: their deaths are not failures.
    retiring: HashSet<HostId>,
    /// Opens waiting for their host to start.
    parked: HashMap<HostId, Vec<PendingOpen>>,
    /// Each open resource's lane, which performs its requests in the order they were sent.
    handles: HashMap<ResourceId, Lane>,
    /// Per resource: its open in flight and the requests that wait for it, in order.
    sequencer: Sequencer<(Queued, tracing::Span)>,
    /// Call timings by resource, handed to each of its handles in turn, so they survive re-hosting
    /// and every call is recorded once, by the handle.
    timings: HashMap<ResourceId, SharedTimings>,
    /// Calls completed since start, by entry point (for throughput figures).
    call_totals: BTreeMap<Op, u64>,
    reports: mpsc::UnboundedSender<PoolReport>,
    /// Renews every host's lease (None: hosts hold none).
    renewer: Option<Arc<LeaseRenewer>>,
}

impl Pool {
    /// An empty pool whose hosts run with `config`; its tasks report on the returned channel. With
    /// `config.lease`, the thread that renews the hosts' leases starts here.
    pub fn new(config: HostConfig) -> (Pool, mpsc::UnboundedReceiver<PoolReport>) {
        let (reports, rx) = mpsc::unbounded_channel();
        let renewer = config.lease.map(|lease| {
            // A thread that cannot start at start-up is a process that cannot work at all.
            Arc::new(
                LeaseRenewer::start(lease).expect("cannot start the host lease renewer thread"),
            )
        });
        let pool = Pool {
            config,
            hosts: HashMap::new(),
            retiring: HashSet::new(),
            parked: HashMap::new(),
            handles: HashMap::new(),
            sequencer: Sequencer::default(),
            timings: HashMap::new(),
            call_totals: BTreeMap::new(),
            reports,
            renewer,
        };
        (pool, rx)
    }

    /// The lease every host of this pool holds (None: none), for checking it against the cluster's
    /// quorum lease (which must outlast its length plus its fence budget).
    pub fn host_lease(&self) -> Option<crate::HostLease> {
        self.config.lease
    }

    /// Starts host `host`; `HostStarted` reports it.
    pub fn start_host(&mut self, host: HostId) {
        let tx = self.reports.clone();
        let config = self.config.clone();
        let renewer = self.renewer.clone();
        tokio::spawn(async move {
            let result = Host::spawn(&config).await.map(|(h, mut events)| {
                if let (Some(renewer), Some(socket)) = (&renewer, h.lease_socket()) {
                    renewer.add(h.pid(), socket);
                }
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(event) = events.recv().await {
                        if tx.send(PoolReport::HostEvent { host, event }).is_err() {
                            return;
                        }
                    }
                });
                h
            });
            let _ = tx.send(PoolReport::HostStarted { host, result });
        });
    }

    /// Shuts host `host` down on purpose: its resources' handles go, the opens waiting for it are
    /// dropped, and its death is not a failure.
    pub fn retire_host(&mut self, host: HostId) {
        if let Some(h) = self.hosts.remove(&host) {
            self.retiring.insert(host);
            let pid = h.pid();
            self.handles.retain(|_, handle| handle.host_pid() != pid);
            tokio::spawn(async move {
                h.shutdown().await;
            });
        }
        for open in self.parked.remove(&host).unwrap_or_default() {
            self.forget_open(&open);
        }
    }

    /// A new Open of a resource in `host`, numbered. Requests sent from now on wait for it. When
    /// the host is up the open is returned for the owner to resolve its plugin and hand to
    /// `start_open`; otherwise it waits for the host (`PoolOutcome::OpenReady`).
    pub fn begin_open(&mut self, host: HostId, mut open: PendingOpen) -> Option<PendingOpen> {
        open.seq = self.sequencer.begin_open(open.resource);
        self.handles.remove(&open.resource);
        if self.hosts.contains_key(&host) {
            Some(open)
        } else {
            self.parked.entry(host).or_default().push(open);
            None
        }
    }

    /// True when `open` is still its resource's current open and its host is up.
    pub fn wants(&self, host: HostId, open: &PendingOpen) -> bool {
        self.hosts.contains_key(&host) && self.sequencer.is_current(open.resource, open.seq)
    }

    /// Opens `open` in `host` from the plugin at `plugin_path`; `Opened` reports it.
    pub fn start_open(&mut self, host: HostId, open: PendingOpen, plugin_path: &str) {
        let Some(h) = self.hosts.get(&host).cloned() else {
            return self.fail_open(host, &open, format!("host slot {} is gone", host.0));
        };
        let params_json = serde_json::to_string(&open.params).expect("a map of strings");
        let mut spec = OpenSpec::new(open.resource, &open.name, plugin_path, &open.type_name)
            .params(params_json)
            .deadlock_timeout(Duration::from_millis(open.deadline_ms))
            .timings(self.timings.entry(open.resource).or_default().clone());
        if let Some(dirs) = &self.config.resource_dirs {
            match dirs.ensure(open.resource) {
                Ok(dir) => spec = spec.state_dir(dir).node_name(&dirs.node_name),
                Err(message) => return self.fail_open(host, &open, message),
            }
        }
        let tx = self.reports.clone();
        let (resource, seq, deadline_ms) = (open.resource, open.seq, open.deadline_ms);
        tokio::spawn(async move {
            let result = h.open(spec).await;
            let _ = tx.send(PoolReport::Opened {
                resource,
                seq,
                deadline_ms,
                host,
                result,
            });
        });
    }

    /// `open` cannot be made (e.g. its type has no plugin): it fails as if its host refused it.
    pub fn fail_open(&mut self, host: HostId, open: &PendingOpen, message: String) {
        let _ = self.reports.send(PoolReport::Opened {
            resource: open.resource,
            seq: open.seq,
            deadline_ms: open.deadline_ms,
            host,
            result: Err(HostError::Plugin(message)),
        });
    }

    /// An open that will never be answered: forget it (and the Close that superseded it).
    pub fn forget_open(&mut self, open: &PendingOpen) {
        self.sequencer.forget(open.resource, open.seq);
    }

    /// Closes the resource within `deadline_ms`; an open still in flight is superseded and its
    /// instance closed, within this deadline, when it arrives.
    pub fn close(&mut self, resource: ResourceId, deadline_ms: u64) {
        self.sequencer.close(resource, deadline_ms);
        if let Some(lane) = self.handles.remove(&resource) {
            lane.close(deadline_ms);
        }
    }

    /// Resource `id`'s state directory on this node, when the pool gives resources one.
    pub fn state_dir_of(&self, id: ResourceId) -> Option<std::path::PathBuf> {
        self.config.resource_dirs.as_ref().map(|d| d.dir_of(id))
    }

    /// Everything the pool kept about a deleted resource goes.
    pub fn forget(&mut self, resource: ResourceId) {
        self.timings.remove(&resource);
        self.handles.remove(&resource);
        if let Some(dirs) = &self.config.resource_dirs {
            if let Err(message) = dirs.remove(resource) {
                tracing::warn!("{message}");
            }
        }
    }

    /// Calls `op` on the resource within `deadline_ms`, in order with its other requests, inside
    /// `span`; `CallDone` reports it. A resource not open fails at once (the returned outcome).
    pub fn call(
        &mut self,
        resource: ResourceId,
        op: Op,
        deadline_ms: u64,
        span: tracing::Span,
    ) -> Option<PoolOutcome> {
        let (_, span) = self
            .sequencer
            .request(resource, (Queued::Call(op, deadline_ms), span))?;
        let Some(lane) = self.handles.get(&resource) else {
            let message = format!(
                "{} not sent: the resource is not open in a host",
                op.upper()
            );
            return Some(PoolOutcome::CallDone {
                resource,
                op,
                ok: false,
                status: StatusKind::Error,
                message,
            });
        };
        lane.call(op, deadline_ms, span);
        None
    }

    /// Hands the resource's host its health plan (None: stop polling), in order with its calls.
    pub fn set_polling(&mut self, resource: ResourceId, plan: Option<HealthPlan>) {
        let request = (Queued::Poll(plan), tracing::Span::none());
        if self.sequencer.request(resource, request).is_none() {
            return; // waits for the open in flight
        }
        // Not open: nothing polls it, and its next open starts without a plan.
        if let Some(lane) = self.handles.get(&resource) {
            lane.set_polling(plan);
        }
    }

    /// The resource's call statistics by entry point (empty when it never ran).
    pub fn call_stats(&self, resource: ResourceId) -> BTreeMap<Op, CallStats> {
        self.timings
            .get(&resource)
            .map(|t| t.lock().unwrap_or_else(|p| p.into_inner()).summary())
            .unwrap_or_default()
    }

    /// Calls completed since start, by entry point.
    pub fn call_totals(&self) -> &BTreeMap<Op, u64> {
        &self.call_totals
    }

    /// What one report of the pool's tasks means, in order.
    pub fn on_report(&mut self, report: PoolReport) -> Vec<PoolOutcome> {
        let mut out = Vec::new();
        match report {
            PoolReport::HostStarted { host, result } => self.host_started(host, result, &mut out),
            PoolReport::HostEvent { host, event } => self.host_event(host, event, &mut out),
            PoolReport::Opened {
                resource,
                seq,
                deadline_ms,
                host,
                result,
            } => self.opened(resource, seq, deadline_ms, host, result, &mut out),
            PoolReport::CallDone {
                resource,
                op,
                result,
            } => self.call_done(resource, op, result, &mut out),
        }
        out
    }

    /// Shuts every host down.
    pub async fn shutdown(&mut self) {
        let hosts: Vec<Host> = self.hosts.drain().map(|(_, h)| h).collect();
        self.handles.clear();
        for host in hosts {
            host.shutdown().await;
        }
    }

    fn host_started(
        &mut self,
        host: HostId,
        result: Result<Host, HostError>,
        out: &mut Vec<PoolOutcome>,
    ) {
        let parked = self.parked.remove(&host).unwrap_or_default();
        match result {
            Ok(h) => {
                let pid = h.pid();
                tracing::info!(
                    component = "RCM",
                    "resource host {pid} started (slot {})",
                    host.0
                );
                self.hosts.insert(host, h);
                out.push(PoolOutcome::HostStarted { host, pid });
                out.extend(
                    parked
                        .into_iter()
                        .map(|open| PoolOutcome::OpenReady { host, open }),
                );
            }
            Err(e) => {
                tracing::error!(component = "RCM", "cannot start a resource host: {e}");
                // The opens waiting for this host, and the calls behind them, will not happen.
                for open in parked {
                    self.forget_open(&open);
                }
                out.push(PoolOutcome::HostLost {
                    host,
                    offender: None,
                    offending_plugin: None,
                    cause: e.to_string(),
                    died: None,
                });
            }
        }
    }

    fn host_event(&mut self, host: HostId, event: HostEvent, out: &mut Vec<PoolOutcome>) {
        match event {
            HostEvent::Log { .. } | HostEvent::Stderr { .. } | HostEvent::Refused { .. } => {
                out.push(PoolOutcome::HostLine(event))
            }
            HostEvent::Progress { pid, resource, .. } => {
                if self.hosts_resource(pid, resource) {
                    out.push(PoolOutcome::HostLine(event))
                }
            }
            HostEvent::HealthFailed {
                pid,
                resource,
                op,
                status,
                message,
            } => {
                if self.hosts_resource(pid, resource) {
                    out.push(PoolOutcome::HealthFailed {
                        resource,
                        op,
                        status,
                        message,
                    });
                }
            }
            HostEvent::FailureReported {
                pid,
                resource,
                message,
            } => {
                if self.hosts_resource(pid, resource) {
                    out.push(PoolOutcome::FailureReported { resource, message });
                }
            }
            HostEvent::CallStats { pid, stats } => self.host_stats(pid, stats),
            HostEvent::Died(died) => self.host_died(host, died, out),
        }
    }

    /// True when host `pid` holds the resource's current instance (a report from an earlier one is
    /// stale).
    fn hosts_resource(&self, pid: u32, resource: ResourceId) -> bool {
        self.handles
            .get(&resource)
            .is_some_and(|h| h.host_pid() == pid)
    }

    /// The host's summaries of the checks it ran by itself: into the resources' timings and the
    /// node's totals.
    fn host_stats(&mut self, pid: u32, stats: Vec<keelson_proto::ResourceCallStats>) {
        for entry in stats {
            if !self.hosts_resource(pid, entry.resource) {
                continue;
            }
            let Some(timings) = self.timings.get(&entry.resource) else {
                continue;
            };
            let new = timings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .report(entry.op, entry.stats);
            *self.call_totals.entry(entry.op).or_default() += new;
        }
    }

    fn host_died(&mut self, host: HostId, died: crate::HostDied, out: &mut Vec<PoolOutcome>) {
        // The call that took the host down counts, even though nobody could time it (a deadlock's
        // duration is known).
        if let Some((resource, Some(op))) = died.cause.offender() {
            if let Some(timings) = self.timings.get(&resource) {
                let mut timings = timings.lock().unwrap_or_else(|p| p.into_inner());
                match &died.cause {
                    DeathCause::Deadlock { elapsed, .. } => timings.record(op, *elapsed),
                    _ => timings.record_lost(op),
                }
            }
        }
        self.hosts.remove(&host);
        self.handles.retain(|_, h| h.host_pid() != died.pid);
        if self.retiring.remove(&host) {
            return;
        }
        if let DeathCause::Fenced {
            resources,
            terminated,
            ..
        } = died.cause
        {
            tracing::warn!(
                component = "RCM",
                "Resource host {} fenced itself: this node service did not renew its lease in time \
                 (it was frozen or starved); the host terminated {terminated} of its {resources} \
                 resources and exited. Nobody is blamed: not a resource failure.",
                died.pid
            );
        } else {
            tracing::error!(component = "RCM", "resource host failure: {died}");
        }
        let offender = match died.cause.offender() {
            Some((resource, Some(op))) => Some((resource, op)),
            _ => None,
        };
        out.push(PoolOutcome::HostLost {
            host,
            offender,
            offending_plugin: died.cause.offending_plugin().map(str::to_string),
            cause: died.to_string(),
            died: Some(died),
        });
    }

    /// The answer to Open number `seq` (made with `deadline_ms`).
    fn opened(
        &mut self,
        resource: ResourceId,
        seq: u64,
        deadline_ms: u64,
        host: HostId,
        result: Result<ResourceHandle, HostError>,
        out: &mut Vec<PoolOutcome>,
    ) {
        let waiting = match self.sequencer.opened(resource, seq, deadline_ms) {
            OpenFate::Current(waiting) => waiting,
            // Closed or reopened while this open was in flight: nobody wants this instance.
            OpenFate::Stale { close_deadline_ms } => {
                if let Ok(handle) = result {
                    Lane::start(handle, self.reports.clone()).close(close_deadline_ms);
                }
                return;
            }
        };
        match result {
            Ok(handle) => {
                let stale = !self.hosts.contains_key(&host);
                let lane = Lane::start(handle, self.reports.clone());
                self.handles.insert(resource, lane);
                if stale {
                    return;
                }
                out.push(PoolOutcome::CallDone {
                    resource,
                    op: Op::Open,
                    ok: true,
                    status: StatusKind::Ok,
                    message: String::new(),
                });
                for (queued, span) in waiting {
                    match queued {
                        Queued::Call(op, deadline_ms) => {
                            out.extend(self.call(resource, op, deadline_ms, span))
                        }
                        Queued::Poll(plan) => self.set_polling(resource, plan),
                    }
                }
            }
            // A host death is reported on its own; the open failed, and so do the calls behind it.
            Err(e) => {
                let message = e.to_string();
                let status = e.status_kind();
                out.push(PoolOutcome::CallDone {
                    resource,
                    op: Op::Open,
                    ok: false,
                    status,
                    message: message.clone(),
                });
                let calls = waiting.into_iter().filter_map(|(q, _)| match q {
                    Queued::Call(op, _) => Some(op),
                    Queued::Poll(_) => None,
                });
                for op in calls {
                    out.push(PoolOutcome::CallDone {
                        resource,
                        op,
                        ok: false,
                        status,
                        message: format!("{} not sent: open failed: {message}", op.upper()),
                    });
                }
            }
        }
    }

    fn call_done(
        &mut self,
        resource: ResourceId,
        op: Op,
        result: Result<CallDone, CallError>,
        out: &mut Vec<PoolOutcome>,
    ) {
        *self.call_totals.entry(op).or_default() += 1;
        match result {
            Ok(done) => out.push(PoolOutcome::CallDone {
                resource,
                op,
                ok: done.status == 0,
                status: StatusKind::from_code_or_error(done.status),
                message: done.message,
            }),
            // The host died under the call: its death report drives recovery, not this call.
            Err(CallError::HostDied(_)) => {}
            Err(e) => out.push(PoolOutcome::CallDone {
                resource,
                op,
                ok: false,
                status: StatusKind::Error,
                message: e.to_string(),
            }),
        }
    }
}
