//! The node service's core: one task owns the engine and everything around it (hosts, open resource
//! handles, private parameters, call timings, timers). Inputs arrive on one channel (control requests,
//! call results, host starts and deaths); each goes through the pure engine and the resulting commands
//! are executed here. Not the meaning of commands (exec.rs), of requests (requests.rs) or views
//! (views.rs).

use crate::api::CoreRequest;
use crate::audit::AuditLog;
use crate::catalogue::Catalogue;
use crate::clusterlog::ClusterLog;
use crate::events::EventLog;
use crate::secrets::Secrets;
use crate::unsaved::Unsaved;
use keelson_engine::{Command, Engine, Event, HostId, Timer};
use keelson_host::{
    CallError, Host, HostConfig, HostDied, HostError, HostEvent, OpenFate, ResourceHandle,
    Sequencer, SharedTimings,
};
use keelson_proto::CallDone;
use keelson_store::Store;
use keelson_types::{HealthPlan, Op, ResourceId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Timers due within this many ms of each other fire in one wake-up (never before they are due).
const TIMER_SLACK_MS: u64 = 5;
/// Inputs handled per wake-up before the loop looks at timers and requests again.
const INPUT_BATCH: usize = 256;

/// Something that happened, for the core to handle in order.
pub enum Input {
    Api(CoreRequest),
    HostStarted {
        host: HostId,
        result: Result<Host, HostError>,
    },
    HostEvent {
        host: HostId,
        event: HostEvent,
    },
    Opened {
        resource: ResourceId,
        /// Which Open this answers: only the latest one of a resource counts.
        seq: u64,
        /// That Open's deadline, for closing an instance nobody wants any more.
        deadline_ms: u64,
        host: HostId,
        result: Result<ResourceHandle, HostError>,
    },
    CallDone {
        resource: ResourceId,
        op: Op,
        result: Result<CallDone, CallError>,
    },
    /// A plugin probe finished, or a create parked for the catalogue ran out of time (probe.rs).
    Catalogue(crate::probe::CatalogueInput),
}

/// An Open waiting for its host to start.
pub struct PendingOpen {
    pub resource: ResourceId,
    pub name: String,
    pub type_name: String,
    pub params: BTreeMap<String, String>,
    pub seq: u64,
    /// Deadline of the OPEN call, as the engine decided it.
    pub deadline_ms: u64,
}

/// A request that waits for a resource's open in flight.
pub enum Queued {
    /// A call of `op` with its deadline (ms).
    Call(Op, u64),
    /// A health plan for its host to poll by (None: stop).
    Poll(Option<HealthPlan>),
}

/// Everything the core owns.
pub struct Core {
    pub engine: Engine,
    pub store: Store,
    pub log: Arc<ClusterLog>,
    pub events: Arc<EventLog>,
    /// Held by the API too; here for its write health in `status`.
    pub audit: Arc<AuditLog>,
    pub catalogue: Catalogue,
    pub host_config: HostConfig,
    pub node: String,
    epoch: Instant,
    /// Wall-clock ms at `epoch`, so engine time reads as Unix ms.
    epoch_unix_ms: u64,
    pub hosts: HashMap<HostId, Host>,
    /// Hosts being shut down on purpose: their deaths are not failures.
    pub retiring: HashSet<HostId>,
    pub pending_opens: HashMap<HostId, Vec<PendingOpen>>,
    pub handles: HashMap<ResourceId, Arc<ResourceHandle>>,
    /// Per resource: its open in flight (numbered, so a superseded one's answer is told apart) and
    /// the requests that wait for it, in order.
    pub sequencer: Sequencer<Queued>,
    /// Values of secret private parameters, kept out of every log line and event.
    pub secrets: Secrets,
    /// Database changes from internal events (not administrator requests) that could not be saved:
    /// written again with the next change, so the database catches up once it works again.
    pub unsaved: Unsaved,
    /// Call timings by resource, handed to each of its host handles in turn, so they survive
    /// re-hosting (engine ids are stable) and every call is recorded once, by the handle.
    pub timings: HashMap<ResourceId, SharedTimings>,
    /// Calls completed since start, by entry point (for throughput figures).
    pub call_totals: BTreeMap<Op, u64>,
    timers: BTreeMap<(u64, u64), Timer>,
    timer_seq: u64,
    pub tx: mpsc::UnboundedSender<Input>,
    pub stop: bool,
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        store: Store,
        log: Arc<ClusterLog>,
        events: Arc<EventLog>,
        audit: Arc<AuditLog>,
        catalogue: Catalogue,
        host_config: HostConfig,
        node: String,
        tx: mpsc::UnboundedSender<Input>,
    ) -> Core {
        Core {
            engine,
            store,
            log,
            events,
            audit,
            catalogue,
            host_config,
            node,
            epoch: Instant::now(),
            epoch_unix_ms: crate::clusterlog::unix_ms(),
            hosts: HashMap::new(),
            retiring: HashSet::new(),
            pending_opens: HashMap::new(),
            handles: HashMap::new(),
            sequencer: Sequencer::default(),
            secrets: Secrets::default(),
            unsaved: Unsaved::default(),
            timings: HashMap::new(),
            call_totals: BTreeMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            tx,
            stop: false,
        }
    }

    /// Engine time: Unix milliseconds, but monotonic.
    pub fn now(&self) -> u64 {
        self.epoch_unix_ms + self.epoch.elapsed().as_millis() as u64
    }

    /// Runs until a NodeStop request; then shuts every host down.
    pub async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<Input>,
        mut api: mpsc::Receiver<CoreRequest>,
    ) {
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed_for = u64::MAX;
        while !self.stop {
            // Timers due within TIMER_SLACK of the earliest one fire together, never early: one wake-up
            // serves a whole batch of health checks instead of one each.
            let next = self
                .timers
                .keys()
                .next()
                .map(|(at, _)| *at + TIMER_SLACK_MS)
                .unwrap_or(u64::MAX);
            if next != armed_for {
                armed_for = next;
                let wait = next.saturating_sub(self.now()).min(3_600_000);
                sleep
                    .as_mut()
                    .reset(tokio::time::Instant::now() + Duration::from_millis(wait));
            }
            tokio::select! {
                Some(input) = inputs.recv() => {
                    self.on_input(input);
                    // Drain what else is queued before going back to sleep.
                    for _ in 0..INPUT_BATCH {
                        let Ok(input) = inputs.try_recv() else { break };
                        self.on_input(input);
                    }
                }
                Some(request) = api.recv() => self.on_input(Input::Api(request)),
                _ = &mut sleep => {
                    armed_for = u64::MAX;
                    self.fire_due_timers();
                }
            }
        }
        self.shutdown().await;
    }

    fn fire_due_timers(&mut self) {
        let now = self.now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            self.feed(Event::TimerFired { timer });
        }
    }

    pub fn schedule(&mut self, at: u64, timer: Timer) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), timer);
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Api(request) => {
                // A create of a type still being probed waits for the catalogue (probe.rs).
                let Some((request, reply)) = self.gate_on_catalogue(request) else {
                    return;
                };
                let answer = self.request(request);
                let _ = reply.send(answer);
            }
            Input::HostStarted { host, result } => self.host_started(host, result),
            Input::HostEvent { host, event } => self.host_event(host, event),
            Input::Opened {
                resource,
                seq,
                deadline_ms,
                host,
                result,
            } => self.opened(resource, seq, deadline_ms, host, result),
            Input::CallDone {
                resource,
                op,
                result,
            } => self.call_done(resource, op, result),
            Input::Catalogue(input) => self.on_catalogue(input),
        }
    }

    /// Feeds an outside event (never refused) and executes what the engine asks.
    pub fn feed(&mut self, event: Event) {
        let now = self.now();
        match self.engine.handle(now, event) {
            Ok(commands) => self.execute(commands),
            Err(e) => tracing::error!(component = "RCM", "engine refused an internal event: {e}"),
        }
    }

    /// Feeds an administrator event. It counts only once its changes are durable: a refusal, or a
    /// database that cannot save them, leaves the engine and the database as they were and the error
    /// goes back to the caller.
    pub fn admin(&mut self, event: Event) -> Result<(), String> {
        let now = self.now();
        let (store, unsaved) = (&mut self.store, &mut self.unsaved);
        let commands = self
            .engine
            .handle_committed(now, event, |changes| unsaved.save_with(store, changes))
            .map_err(|e| match e {
                keelson_engine::Refusal::Engine(e) => e.to_string(),
                keelson_engine::Refusal::Storage(e) => format!("{e}; nothing was changed"),
            })?;
        self.execute(commands);
        Ok(())
    }

    fn host_started(&mut self, host: HostId, result: Result<Host, HostError>) {
        match result {
            Ok(h) => {
                let pid = h.pid();
                tracing::info!(
                    component = "RCM",
                    "resource host {pid} started (slot {})",
                    host.0
                );
                self.hosts.insert(host, h);
                self.feed(Event::HostStarted { host, pid });
                for open in self.pending_opens.remove(&host).unwrap_or_default() {
                    self.start_open(host, open);
                }
            }
            Err(e) => {
                tracing::error!(component = "RCM", "cannot start a resource host: {e}");
                // The opens waiting for this host, and the calls behind them, will not happen.
                for open in self.pending_opens.remove(&host).unwrap_or_default() {
                    self.forget_open(&open);
                }
                self.feed(Event::HostDied {
                    host,
                    offender: None,
                    offending_plugin: None,
                    cause: e.to_string(),
                });
            }
        }
    }

    fn host_event(&mut self, host: HostId, event: HostEvent) {
        match event {
            HostEvent::Log {
                pid,
                tid,
                level,
                message,
                ..
            } => {
                let text = self.secrets.redact(&message);
                crate::event_at!(level, pid, tid, component = "RHS", "{text}")
            }
            HostEvent::Stderr { pid, line } => {
                let text = self.secrets.redact(&line);
                tracing::warn!(pid, tid = 0u32, component = "RHS", "stderr: {text}")
            }
            HostEvent::Refused { pid, message } => {
                let text = self.secrets.redact(&message);
                tracing::error!(
                    pid,
                    tid = 0u32,
                    component = "RHS",
                    "refused a request: {text}"
                )
            }
            HostEvent::Progress { .. } => {}
            HostEvent::HealthFailed {
                pid,
                resource,
                op,
                message,
            } => {
                if self.hosts_resource(pid, resource) {
                    self.feed(Event::HealthFailed {
                        resource,
                        op,
                        message,
                    });
                }
            }
            HostEvent::CallStats { pid, stats } => self.host_stats(pid, stats),
            HostEvent::Died(died) => self.host_died(host, died),
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

    fn host_died(&mut self, host: HostId, died: HostDied) {
        // The call that took the host down counts, even though nobody could time it (a deadlock's
        // duration is known).
        if let Some((resource, Some(op))) = died.cause.offender() {
            if let Some(timings) = self.timings.get(&resource) {
                let mut timings = timings.lock().unwrap_or_else(|p| p.into_inner());
                match &died.cause {
                    keelson_host::DeathCause::Deadlock { elapsed, .. } => {
                        timings.record(op, *elapsed)
                    }
                    _ => timings.record_lost(op),
                }
            }
        }
        self.hosts.remove(&host);
        self.handles.retain(|_, h| h.host_pid() != died.pid);
        if self.retiring.remove(&host) {
            return;
        }
        tracing::error!(component = "RCM", "resource host failure: {died}");
        let offender = match died.cause.offender() {
            Some((resource, Some(op))) => Some((resource, op)),
            _ => None,
        };
        self.feed(Event::HostDied {
            host,
            offender,
            offending_plugin: died.cause.offending_plugin().map(str::to_string),
            cause: died.to_string(),
        });
    }

    /// An open that will never be answered: forget it (and the Close that superseded it).
    pub(crate) fn forget_open(&mut self, open: &PendingOpen) {
        self.sequencer.forget(open.resource, open.seq);
    }

    /// The answer to Open number `seq` (made with `deadline_ms`).
    fn opened(
        &mut self,
        resource: ResourceId,
        seq: u64,
        deadline_ms: u64,
        host: HostId,
        result: Result<ResourceHandle, HostError>,
    ) {
        let waiting = match self.sequencer.opened(resource, seq, deadline_ms) {
            OpenFate::Current(waiting) => waiting,
            // Closed or reopened while this open was in flight: nobody wants this instance.
            OpenFate::Stale { close_deadline_ms } => {
                if let Ok(handle) = result {
                    let deadline = Duration::from_millis(close_deadline_ms);
                    tokio::spawn(async move {
                        let _ = handle.close(deadline).await;
                    });
                }
                return;
            }
        };
        match result {
            Ok(handle) => {
                let stale = !self.hosts.contains_key(&host);
                self.handles.insert(resource, Arc::new(handle));
                if stale {
                    return;
                }
                self.feed(Event::CallDone {
                    resource,
                    op: Op::Open,
                    ok: true,
                    message: String::new(),
                });
                for queued in waiting {
                    match queued {
                        Queued::Call(op, deadline_ms) => self.call(resource, op, deadline_ms),
                        Queued::Poll(plan) => self.set_polling(resource, plan),
                    }
                }
            }
            // A host death is reported on its own; the open failed, and so do the calls behind it.
            Err(e) => {
                let message = e.to_string();
                self.feed(Event::CallDone {
                    resource,
                    op: Op::Open,
                    ok: false,
                    message: message.clone(),
                });
                let calls = waiting.into_iter().filter_map(|q| match q {
                    Queued::Call(op, _) => Some(op),
                    Queued::Poll(_) => None,
                });
                for op in calls {
                    let message = format!("{} not sent: open failed: {message}", op.upper());
                    self.feed(Event::CallDone {
                        resource,
                        op,
                        ok: false,
                        message,
                    });
                }
            }
        }
    }

    fn call_done(&mut self, resource: ResourceId, op: Op, result: Result<CallDone, CallError>) {
        *self.call_totals.entry(op).or_default() += 1;
        match result {
            Ok(done) => {
                let ok = done.status == 0;
                self.feed(Event::CallDone {
                    resource,
                    op,
                    ok,
                    message: done.message,
                });
            }
            // The host died under the call: its death report drives recovery, not this call.
            Err(CallError::HostDied(_)) => {}
            Err(e) => self.feed(Event::CallDone {
                resource,
                op,
                ok: false,
                message: e.to_string(),
            }),
        }
    }

    /// Shuts every host down (resources just stop; desired state stays persisted).
    async fn shutdown(&mut self) {
        tracing::info!(component = "RCM", "node service stopping");
        let hosts: Vec<Host> = self.hosts.drain().map(|(_, h)| h).collect();
        self.handles.clear();
        for host in hosts {
            host.shutdown().await;
        }
    }

    /// Executes engine commands in order (persists batched into one transaction).
    pub fn execute(&mut self, commands: Vec<Command>) {
        let mut persist = Vec::new();
        for command in commands {
            match command {
                Command::Persist(change) => persist.push(change),
                other => self.execute_one(other),
            }
        }
        self.persist(persist);
    }
}
