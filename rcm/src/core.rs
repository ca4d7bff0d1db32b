//! The node service's core: one task owns the engine, the database, the logs, the timers and the
//! host pool (crates/host), and nothing else owns any of them. Inputs arrive on channels (control
//! requests, the pool's reports, catalogue probes); each goes through the pure engine and the
//! resulting commands are executed by the pool or here. Its fields are private; its impl is split
//! by facet, one impl per file: the loop and inputs here, commands in core/exec.rs, control
//! requests in core/requests.rs, the plugin catalogue's gate in core/catalogue_gate.rs, the
//! cluster's in core/cluster_gate.rs, its properties in core/cluster_properties.rs, validation
//! before commit in core/validation_gate.rs. Not the views' shapes (views.rs).

mod catalogue_gate;
mod cluster_gate;
mod cluster_properties;
mod election_nudge;
mod eviction;
mod exec;
mod fence_gate;
mod node_pause;
mod owner_state;
mod placement_gate;
mod requests;
mod validation_gate;
mod witness_gate;

use crate::api::CoreRequest;
use crate::audit::AuditLog;
use crate::catalogue::Catalogue;
use crate::cluster::Cluster;
use crate::clusterlog::ClusterLog;
use crate::events::EventLog;
use crate::secrets::Secrets;
use crate::unsaved::Unsaved;
use crate::views::Views;
use keelson_engine::{Command, Engine, Event, Timer};
use keelson_host::{HostConfig, HostEvent, Pool, PoolOutcome, PoolReport};
use keelson_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Timers due within this many ms of each other fire in one wake-up (never before they are due).
const TIMER_SLACK_MS: u64 = 5;
/// Inputs handled per wake-up before the loop looks at timers and requests again.
const INPUT_BATCH: usize = 256;

/// Something that happened outside the pool, for the core to handle in order.
pub enum Input {
    Api(CoreRequest),
    /// A plugin probe finished, or a create parked for the catalogue ran out of time (probe.rs).
    Catalogue(crate::probe::CatalogueInput),
    /// A type's `validate` gave its verdict on a held create or set (validation.rs).
    Validated(crate::validation::ValidationDone),
}

/// Everything the core owns.
pub struct Core {
    engine: Engine,
    store: Store,
    log: Arc<ClusterLog>,
    events: Arc<EventLog>,
    /// Held by the API too; here for its write health in `status`.
    audit: Arc<AuditLog>,
    catalogue: Catalogue,
    /// For the catalogue's deadlines (a host's hello timeout bounds a probe).
    host_config: HostConfig,
    /// The hosts and the resources open in them.
    pool: Pool,
    /// Runs types' `validate` entry points in throwaway hosts, off this thread.
    validator: crate::validation::Validator,
    /// Creates and sets held while their parameters are validated.
    validating: validation_gate::Validating,
    /// The cluster this node is in (None: a single node, whose database is `store`).
    cluster: Option<Cluster>,
    /// The port this node's cluster database listens on when it creates or joins a cluster.
    raft_port: u16,
    /// The cluster database's durable applies, in order (cluster nodes only).
    applied: Option<mpsc::UnboundedReceiver<keelson_raft::Applied>>,
    /// The heartbeat network, once another member reported its interfaces.
    heartbeat: Option<crate::cluster::heartbeat::Heartbeat>,
    /// What it reports, for the loop.
    notices: mpsc::UnboundedReceiver<crate::cluster::heartbeat::Notice>,
    notices_tx: mpsc::UnboundedSender<crate::cluster::heartbeat::Notice>,
    /// The other members' states as the heartbeat network sees them, by raft id.
    peers: BTreeMap<u64, keelson_netft::NodeState>,
    /// The members whose heartbeats say they hear this node (quorum counts only those both ways).
    hearing: std::collections::BTreeSet<u64>,
    /// Members out of contact under the contact lease: they count towards no quorum here.
    out_of_contact: std::collections::BTreeSet<u64>,
    /// The members whose heartbeats say they do not hear this node.
    deaf: std::collections::BTreeSet<u64>,
    /// Whether administrator changes are admitted (the last vote count).
    quorum: keelson_quorum::QuorumGate,
    /// This node's membership as far as it knows (a voter once, evicted since).
    membership: eviction::Membership,
    /// The placement core while this node leads, and the Down members' lease timers.
    placement: placement_gate::Placement,
    /// The leader's fencing of lost members (FenceAgent).
    fencing: fence_gate::Fencing,
    data_dir: std::path::PathBuf,
    node: String,
    epoch: Instant,
    /// Wall-clock ms at `epoch`, so engine time reads as Unix ms.
    epoch_unix_ms: u64,
    /// Values of secret private parameters, kept out of every log line and event.
    secrets: Secrets,
    /// Database changes from internal events (not administrator requests) that could not be saved:
    /// written again with the next change, so the database catches up once it works again.
    unsaved: Unsaved,
    timers: BTreeMap<(u64, u64), Timer>,
    timer_seq: u64,
    tx: mpsc::UnboundedSender<Input>,
    stop: bool,
}

/// What the core is built from (main.rs opens and checks each of them).
pub struct CoreParts {
    pub engine: Engine,
    pub store: Store,
    pub log: Arc<ClusterLog>,
    pub events: Arc<EventLog>,
    pub audit: Arc<AuditLog>,
    pub catalogue: Catalogue,
    pub host_config: HostConfig,
    pub node: String,
    pub tx: mpsc::UnboundedSender<Input>,
    pub cluster: Option<Cluster>,
    pub raft_port: u16,
    pub data_dir: std::path::PathBuf,
}

impl Core {
    /// The core, and the channel its pool reports on (hand it to `run`).
    pub fn new(parts: CoreParts) -> (Core, mpsc::UnboundedReceiver<PoolReport>) {
        let (pool, reports) = Pool::new(parts.host_config.clone());
        let validator =
            crate::validation::Validator::new(parts.host_config.clone(), parts.tx.clone());
        let (notices_tx, notices) = mpsc::unbounded_channel();
        let core = Core {
            engine: parts.engine,
            store: parts.store,
            log: parts.log,
            events: parts.events,
            audit: parts.audit,
            catalogue: parts.catalogue,
            host_config: parts.host_config,
            pool,
            validator,
            validating: validation_gate::Validating::default(),
            applied: None,
            heartbeat: None,
            notices,
            notices_tx,
            peers: BTreeMap::new(),
            hearing: std::collections::BTreeSet::new(),
            out_of_contact: std::collections::BTreeSet::new(),
            deaf: std::collections::BTreeSet::new(),
            quorum: keelson_quorum::QuorumGate::new(),
            membership: eviction::Membership::default(),
            placement: placement_gate::Placement::default(),
            fencing: fence_gate::Fencing::default(),
            cluster: parts.cluster,
            raft_port: parts.raft_port,
            data_dir: parts.data_dir,
            node: parts.node,
            epoch: Instant::now(),
            epoch_unix_ms: crate::clusterlog::unix_ms(),
            secrets: Secrets::default(),
            unsaved: Unsaved::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            tx: parts.tx,
            stop: false,
        };
        (core, reports)
    }

    /// Remembers the secret parameter values of restored resources, so they never reach a log.
    pub fn remember_secrets<'a>(
        &mut self,
        resources: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>)>,
    ) {
        for (name, params) in resources {
            self.secrets
                .update(name, params, keelson_types::is_secret_param);
        }
    }

    /// The facts the views read, borrowed.
    fn views(&self) -> Views<'_> {
        Views {
            engine: &self.engine,
            pool: &self.pool,
            store: &self.store,
            unsaved: &self.unsaved,
            logs: [self.log.health(), self.events.health(), self.audit.health()],
            catalogue: &self.catalogue,
            secrets: &self.secrets,
            node: &self.node,
            now_ms: self.now(),
            members: self
                .cluster
                .as_ref()
                .map_or(1, |c| c.voters().len().max(1) as u32),
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
        mut reports: mpsc::UnboundedReceiver<PoolReport>,
        mut api: mpsc::Receiver<CoreRequest>,
    ) {
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        self.applied = self.cluster.as_mut().and_then(Cluster::take_applied);
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.watch_membership(self.notices_tx.clone());
        }
        self.refresh_cluster_network();
        self.start_clock();
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
                Some(report) = reports.recv() => {
                    self.on_report(report);
                    for _ in 0..INPUT_BATCH {
                        let Ok(report) = reports.try_recv() else { break };
                        self.on_report(report);
                    }
                }
                Some(request) = api.recv() => self.on_input(Input::Api(request)),
                Some(step) = recv_applied(&mut self.applied) => self.follow(step),
                Some(notice) = self.notices.recv() => self.on_notice(notice),
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

    fn schedule(&mut self, at: u64, timer: Timer) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), timer);
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Api(request) => {
                // A create of a type still being probed waits for the catalogue (probe.rs).
                let Some(request) = self.gate_on_catalogue(request) else {
                    return;
                };
                // A create or parameter change is checked, and its type's validate run, first.
                let Some((request, reply)) = self.gate_on_validation(request) else {
                    return;
                };
                let answer = self.request(request);
                let _ = reply.send(answer);
            }
            Input::Catalogue(input) => self.on_catalogue(input),
            Input::Validated(done) => self.on_validated(done),
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
        if self.cluster.is_some() {
            return self.admin_in_cluster(event);
        }
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

    /// One report of the pool's tasks: what it means for the engine.
    fn on_report(&mut self, report: PoolReport) {
        for outcome in self.pool.on_report(report) {
            self.on_outcome(outcome);
        }
    }

    fn on_outcome(&mut self, outcome: PoolOutcome) {
        match outcome {
            PoolOutcome::HostStarted { host, pid } => self.feed(Event::HostStarted { host, pid }),
            PoolOutcome::HostLost {
                host,
                offender,
                offending_plugin,
                cause,
                died,
            } => {
                let fenced = self.fence_loses_quorum(died.as_ref());
                self.feed(Event::HostDied {
                    host,
                    offender,
                    offending_plugin,
                    cause,
                });
                if fenced {
                    self.recount_after_fence();
                }
            }
            PoolOutcome::OpenReady { host, open } => self.start_open(host, open),
            PoolOutcome::CallDone {
                resource,
                op,
                status,
                message,
                ..
            } => self.feed(Event::CallDone {
                resource,
                op,
                status,
                message,
            }),
            PoolOutcome::HealthFailed {
                resource,
                op,
                status,
                message,
            } => self.feed(Event::HealthFailed {
                resource,
                op,
                status,
                message,
            }),
            PoolOutcome::FailureReported { resource, message } => {
                self.feed(Event::FailureReported { resource, message })
            }
            PoolOutcome::HostLine(line) => self.host_line(line),
        }
    }

    /// A line a host wrote, redacted, into the cluster log.
    fn host_line(&self, line: HostEvent) {
        match line {
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
            HostEvent::Progress {
                pid,
                resource,
                progress,
            } => {
                let name = self.engine.resource_name(resource).unwrap_or("?");
                tracing::info!(
                    pid,
                    tid = 0u32,
                    component = "RHS",
                    "[{name}] progress {progress}% (set_status)"
                )
            }
            _ => {}
        }
    }

    /// Shuts every host down (resources just stop; desired state stays persisted).
    async fn shutdown(&mut self) {
        tracing::info!(component = "RCM", "node service stopping");
        self.validator.shutdown();
        self.pool.shutdown().await;
        if let Some(cluster) = &self.cluster {
            cluster.shutdown();
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

/// The next durable apply of the cluster database, or never for a single node.
async fn recv_applied(
    applied: &mut Option<mpsc::UnboundedReceiver<keelson_raft::Applied>>,
) -> Option<keelson_raft::Applied> {
    match applied {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
