//! This node's part in the cluster's witness vote. While a witness is configured
//! (`ClusterInfo::witness`) every node runs a lease driver (crates/quorum) against it, with the
//! lease timings of the cluster's NetFT settings; the node holding the lease runs the witness voter
//! in-process (hooks.rs). Every node keeps the `witness` routing layer pointing at the node the
//! lease names (`@HOLDER=ADDR:PORT`), so raft reaches the witness voter wherever it runs, and tells
//! the core when the witness's reachability changes (for the quorum count). Not the lease rules nor
//! the voter (crates/quorum), nor the `cluster quorum` command (core/witness_gate.rs).

mod hooks;
mod live;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use keelson_netft::{NetftSettings, NodeState};
use keelson_quorum::{
    DiskWitness, DriverError, FileWitness, LeaseDriver, LeaseMachine, LeaseRecord, LeaseStatus,
    LeaseStore, LeaseTimings, SystemClock, WitnessKey, WITNESS_NAME,
};
use keelson_raft::openraft::Raft;
use keelson_raft::{
    ClusterClient, ClusterInfo, ClusterKey, ClusterNode, HostedRafts, NodeId, Reservation, Routing,
    SharedState, TypeConfig, WitnessConfig, WitnessKind, HOSTED_ADDR,
};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use hooks::describe;
use hooks::{Hooks, HostedSlot};
use live::Live;

use super::heartbeat::Notice;

/// The routing layer this module owns: the witness voter's name -> `@HOLDER=ADDR:PORT`.
pub const ROUTING_LAYER: &str = "witness";
/// How long one administrative call of `cluster quorum` may take.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Extra time a driver is given, past its stop budget, to release the lease.
const RELEASE_SLACK: Duration = Duration::from_secs(3);
/// The process exit status when the witness voter could not be stopped.
const EXIT_WITNESS_NOT_STOPPED: i32 = 70;

/// What this node knows of the witness now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The configured witness (or the one this node is configuring).
    pub config: Option<WitnessConfig>,
    /// The witness voter runs on this node.
    pub hosting: bool,
    /// The node holding a live lease (this node when it hosts).
    pub holder: Option<NodeId>,
    /// The lease record last read (None while this node holds it, or before any was read).
    pub record: Option<LeaseRecord>,
    /// The lease generation held here.
    pub held_generation: Option<u64>,
    pub timings: Option<LeaseTimings>,
}

/// The pieces of this node's cluster membership the witness needs.
pub struct WitnessParts {
    /// The runtime raft runs on (the witness voter runs there too).
    pub rt: Handle,
    pub raft: Raft<TypeConfig>,
    pub view: SharedState,
    pub routing: Routing,
    pub hosted: HostedRafts,
    pub client: ClusterClient,
    pub key: Vec<u8>,
    pub cluster: String,
    pub me: NodeId,
    /// This node's raft endpoint.
    pub addr: String,
}

/// This node's witness role; see the module doc.
pub struct Witness {
    inner: Arc<Inner>,
    watcher: JoinHandle<()>,
}

struct Inner {
    parts: WitnessParts,
    /// Raft, its view and its server now (replaced when raft restarts).
    live: Live,
    /// A runtime of the lease's own (its thread never waits for raft's storage, so renewals keep
    /// their timing): the watcher and the driver run there.
    lease_rt: Handle,
    state: Mutex<State>,
    /// Bumped when hosting or the wanted witness changes (wakes the watcher).
    changed: watch::Sender<u64>,
    seen: watch::Sender<Seen>,
    core: Mutex<Option<mpsc::UnboundedSender<Notice>>>,
}

#[derive(Default)]
struct State {
    /// A witness this node is configuring, not committed yet.
    pending: Option<WitnessConfig>,
    running: Option<Running>,
    /// The last witness that could not be opened, and why (logged once).
    failed: Option<(WitnessConfig, String)>,
    /// What the core was last told of: (witness id, hosted here, the live lease's holder).
    reported: Option<(NodeId, bool, Option<NodeId>)>,
}

struct Running {
    config: WitnessConfig,
    timings: LeaseTimings,
    release: oneshot::Sender<()>,
    task: JoinHandle<()>,
    status: watch::Receiver<LeaseStatus>,
}

/// Points the witness voter's route at node `name`, reached at `addr` (or its own override).
fn route_to(routing: &Routing, name: &str, addr: &str) {
    let route = BTreeMap::from([(WITNESS_NAME.to_string(), format!("@{name}={addr}"))]);
    routing.set_overrides(ROUTING_LAYER, route);
}

/// The lease timings of `info`'s NetFT settings (the defaults if they cannot be read).
fn settings_of(info: &ClusterInfo) -> NetftSettings {
    super::settings::netft_settings(info).unwrap_or_else(|e| {
        tracing::error!(
            component = "QUORUM",
            "{e}; the witness lease uses the defaults"
        );
        NetftSettings::default()
    })
}

impl Witness {
    /// Starts watching the configured witness (none yet is fine).
    pub fn start(parts: WitnessParts) -> Result<Witness, String> {
        let rt = lease_runtime()?;
        let live = Live::new(parts.raft.clone(), parts.view.clone(), parts.hosted.clone());
        let inner = Arc::new(Inner {
            parts,
            live,
            lease_rt: rt.clone(),
            state: Mutex::default(),
            changed: watch::channel(0).0,
            seen: watch::channel(Seen::default()).0,
            core: Mutex::default(),
        });
        let watcher = rt.spawn(watch_loop(inner.clone()));
        Ok(Witness { inner, watcher })
    }

    /// What this node knows of the witness now (nothing of a witness no longer configured, even
    /// while its driver is still giving the lease up).
    pub fn seen(&self) -> Seen {
        let seen = self.inner.seen.borrow().clone();
        let wanted = self.inner.wanted();
        if seen.config == wanted {
            return seen;
        }
        Seen {
            config: wanted,
            ..Seen::default()
        }
    }

    /// Whether the witness voter runs here or on a node NetFT reports Up and reached both ways
    /// (`hearing`: its heartbeats say it hears this node); tells `notices` (from now on) whenever
    /// that may have changed, as a `Notice::Node` for the witness voter's id.
    pub fn reachable(
        &self,
        peers: &BTreeMap<u64, NodeState>,
        hearing: &BTreeSet<u64>,
        notices: &mpsc::UnboundedSender<Notice>,
    ) -> bool {
        let mut core = lock(&self.inner.core);
        if core.is_none() {
            *core = Some(notices.clone());
        }
        drop(core);
        counts(&self.seen(), peers, hearing)
    }

    /// Whether the configured witness voter is one of raft's voters (its vote counts).
    pub fn has_vote(&self) -> bool {
        let configured = {
            let view = self.inner.live.view();
            let state = view.read().unwrap_or_else(|p| p.into_inner());
            state
                .cluster
                .as_ref()
                .and_then(|c| c.witness.as_ref())
                .map(|w| w.id)
        };
        let Some(id) = configured else {
            return false;
        };
        let metrics = self.inner.live.raft().metrics().borrow().clone();
        let is_voter = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id);
        is_voter
    }

    /// A hosted voter (a witness voter) in raft's membership, if there is one.
    pub fn hosted_member(&self) -> Option<NodeId> {
        let metrics = self.inner.live.raft().metrics().borrow().clone();
        let found = metrics
            .membership_config
            .membership()
            .nodes()
            .find(|(_, n)| n.is_hosted())
            .map(|(id, _)| *id);
        found
    }

    /// Whether raft's membership holds the witness voter `id` at all (voter or learner).
    pub fn is_member(&self, id: NodeId) -> bool {
        let metrics = self.inner.live.raft().metrics().borrow().clone();
        let member = metrics
            .membership_config
            .membership()
            .nodes()
            .any(|(n, _)| *n == id);
        member
    }

    /// The line `keelson cluster status` shows.
    pub fn status_line(&self, names: &BTreeMap<NodeId, String>) -> String {
        let seen = self.seen();
        let Some(config) = &seen.config else {
            return "none".into();
        };
        let host = match seen.holder {
            Some(h) => format!("hosted by {}", name_of(names, h)),
            None => "not hosted (no live lease)".into(),
        };
        format!("{} (node {}), {host}", describe(config), config.id)
    }

    /// Reserves a fresh raft id for the witness voter with the leader (the node-id allocator, so it
    /// is never given out again).
    pub fn reserve(&self) -> Result<Reservation, String> {
        let parts = &self.inner.parts;
        let (client, addr) = (parts.client.clone(), parts.addr.clone());
        let voter = ClusterNode {
            name: WITNESS_NAME.to_string(),
            addr: HOSTED_ADDR.to_string(),
        };
        block_on(&parts.rt, CALL_DEADLINE, async move {
            client.join(&addr, voter).await
        })?
        .map_err(|e| format!("the cluster gave no id for the witness voter: {e}"))
    }

    /// Has the leader add the reserved witness voter as a learner, catch it up and make it a voter.
    pub fn admit(&self, reservation: &Reservation) -> Result<(), String> {
        let (client, r) = (self.inner.parts.client.clone(), reservation.clone());
        block_on(&self.inner.parts.rt, CALL_DEADLINE, async move {
            client.admit(&r).await
        })?
        .map(drop)
        .map_err(|e| format!("the cluster did not admit the witness voter: {e}"))
    }

    /// Takes the witness voter `id` out of raft's membership.
    pub fn evict(&self, id: NodeId) -> Result<(), String> {
        let parts = &self.inner.parts;
        let (client, addr) = (parts.client.clone(), parts.addr.clone());
        block_on(&parts.rt, CALL_DEADLINE, async move {
            client.evict(&addr, id).await
        })?
        .map(drop)
        .map_err(|e| format!("the cluster did not remove the witness voter (node {id}): {e}"))
    }

    /// Waits (at most `within`) until raft knows a leader other than node `not` (after the witness
    /// voter, if it led, was taken out of the membership and stepped down).
    pub fn wait_leader_other_than(&self, not: NodeId, within: Duration) -> Result<(), String> {
        let raft = self.inner.live.raft();
        block_on(&self.inner.parts.rt, within, async move {
            raft.wait(Some(within))
                .metrics(
                    |m| m.current_leader.is_some_and(|l| l != not),
                    "a leader other than the witness voter",
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })?
        .map_err(|e| format!("the cluster elected no new leader: {e}"))
    }

    /// Runs a lease driver for `config` before it is committed (this node configures it, so it
    /// reads the witness first), or stops doing so (None).
    pub fn set_pending(&self, config: Option<WitnessConfig>) {
        lock(&self.inner.state).pending = config;
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Waits until this node holds the lease on `config` and runs its voter, at most `within`.
    pub fn wait_hosted(&self, config: &WitnessConfig, within: Duration) -> Result<(), String> {
        let mut seen = self.inner.seen.subscribe();
        let want = config.clone();
        let waited = block_on(&self.inner.parts.rt, within, async move {
            seen.wait_for(|s| s.config.as_ref() == Some(&want) && s.hosting)
                .await
                .map(drop)
                .map_err(|_| "the witness watcher stopped".to_string())
        });
        match waited {
            Ok(hosted) => hosted,
            Err(_) => Err(format!(
                "this node did not take the lease of the {} within {} ms (see cluster.log, QUORUM)",
                describe(config),
                within.as_millis()
            )),
        }
    }

    /// Checks that this node can use `config`'s witness now: it opens, its lease (if any) verifies
    /// under the cluster key and is not held, and on a file share the store an earlier witness
    /// voter of this cluster left (its lease verified, so it is this cluster's; its voter was
    /// removed) is deleted.
    pub fn prepare(&self, config: &WitnessConfig, netft: &NetftSettings) -> Result<(), String> {
        let timings = LeaseTimings::from_netft(netft);
        let mut store = open_store(config, &self.inner.parts.key, self.inner.parts.me, &timings)?;
        let record = store.read().map_err(|e| e.to_string())?;
        if let Some(r) =
            record.filter(|r| !r.released && wall_ms() < r.expiry_ms + timings.margin_ms)
        {
            return Err(format!(
                "{}: its lease is held (node {}, generation {}): is it another witness's?",
                describe(config),
                r.holder,
                r.generation
            ));
        }
        if config.kind == WitnessKind::FileShare {
            let old = keelson_quorum::witness_store_path(std::path::Path::new(&config.path));
            if old.exists() {
                std::fs::remove_file(&old).map_err(|e| {
                    format!(
                        "{}: cannot remove an earlier witness voter's store {}: {e}",
                        describe(config),
                        old.display()
                    )
                })?;
                tracing::info!(
                    component = "QUORUM",
                    "Removed {}, the store of an earlier witness voter of this cluster",
                    old.display()
                );
            }
        }
        Ok(())
    }

    /// Follows raft restarted with new timing: its raft, view and server (which answers for the
    /// witness voter from now on if it runs here).
    pub fn rebind(&self, raft: Raft<TypeConfig>, view: SharedState, hosted: HostedRafts) {
        self.inner.live.replace(raft, view, hosted);
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Gives the lease up (stopping the witness voter first if it runs here): the node is stopping.
    pub fn release(&self) {
        self.watcher.abort();
        let running = lock(&self.inner.state).running.take();
        if let Some(running) = running {
            let within = release_budget(&running.timings);
            let inner = self.inner.clone();
            if let Err(e) = block_on(&self.inner.lease_rt, within + RELEASE_SLACK, async move {
                inner.stop_driver(running).await
            }) {
                tracing::error!(component = "QUORUM", "giving up the witness lease: {e}");
            }
        }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

fn name_of(names: &BTreeMap<NodeId, String>, id: NodeId) -> String {
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("node {id}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain field updates: a panic cannot leave them half-changed.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a driver may take to release: its stop budget and one renewal.
fn release_budget(t: &LeaseTimings) -> Duration {
    Duration::from_millis(t.stop_budget_ms() + t.renew_ms)
}

fn open_store(
    config: &WitnessConfig,
    key: &[u8],
    me: NodeId,
    timings: &LeaseTimings,
) -> Result<Box<dyn LeaseStore>, String> {
    let key = WitnessKey::new(key).map_err(|e| format!("cluster key: {e}"))?;
    let path = std::path::Path::new(&config.path);
    Ok(match config.kind {
        WitnessKind::FileShare => {
            Box::new(FileWitness::open(path, key, me).map_err(|e| e.to_string())?)
        }
        WitnessKind::Disk => {
            Box::new(DiskWitness::open(path, key, me, timings).map_err(|e| e.to_string())?)
        }
    })
}

/// The lease's runtime, on a thread that lives as long as the process.
fn lease_runtime() -> Result<Handle, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the witness lease's runtime: {e}"))?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("witness-lease".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the witness lease's thread: {e}"))?;
    Ok(handle)
}

/// Runs `fut` on `rt`, waiting at most `within` from this (non-raft) thread.
fn block_on<T: Send + 'static>(
    rt: &Handle,
    within: Duration,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        if let Ok(answer) = tokio::time::timeout(within, fut).await {
            // The waiter may have given up: then nobody needs the answer.
            let _ = tx.send(answer);
        }
    });
    rx.recv_timeout(within + Duration::from_millis(100))
        .map_err(|_| format!("no answer within {} ms", within.as_millis()))
}

/// Reconciles and observes whenever raft applies something, hosting changes or the lease moves.
async fn watch_loop(inner: Arc<Inner>) {
    let mut changed = inner.changed.subscribe();
    loop {
        inner.reconcile().await;
        let status = inner.open_status();
        inner.observe();
        // Raft's metrics now; a restarted raft (rebind) wakes the loop through `changed`.
        let mut metrics = inner.live.raft().metrics();
        metrics.borrow_and_update();
        tokio::select! {
            r = metrics.changed() => if r.is_err() {
                // This raft stopped: wait for the next one (or for good, at the process's end).
                let _ = changed.changed().await;
            },
            _ = changed.changed() => {}
            _ = status_changed(status) => {}
        }
    }
}

async fn status_changed(status: Option<watch::Receiver<LeaseStatus>>) {
    match status {
        Some(mut rx) => {
            // Closed means the driver ended: the next reconcile sees its task finished.
            let _ = rx.changed().await;
        }
        None => std::future::pending().await,
    }
}

impl Inner {
    /// The configured witness, or the one this node is configuring.
    fn wanted(&self) -> Option<WitnessConfig> {
        let configured = {
            let view = self.live.view();
            let state = view.read().unwrap_or_else(|p| p.into_inner());
            state.cluster.as_ref().and_then(|c| c.witness.clone())
        };
        configured.or_else(|| lock(&self.state).pending.clone())
    }

    fn info(&self) -> ClusterInfo {
        let view = self.live.view();
        let state = view.read().unwrap_or_else(|p| p.into_inner());
        state.cluster.clone().unwrap_or_default()
    }

    /// The running driver's status, unless it has ended.
    fn open_status(&self) -> Option<watch::Receiver<LeaseStatus>> {
        let state = lock(&self.state);
        let running = state.running.as_ref()?;
        let mut rx = running.status.clone();
        rx.has_changed().ok()?;
        // Seen now: the watcher wakes at the next change.
        rx.borrow_and_update();
        Some(rx)
    }

    /// Starts, restarts or stops the driver to match the configured witness and timings.
    async fn reconcile(&self) {
        let info = self.info();
        let netft = settings_of(&info);
        let timings = LeaseTimings::from_netft(&netft);
        let wanted = info
            .witness
            .clone()
            .or_else(|| lock(&self.state).pending.clone());
        let stale = {
            let mut state = lock(&self.state);
            let keep = state.running.as_ref().is_some_and(|r| {
                !r.task.is_finished() && Some(&r.config) == wanted.as_ref() && r.timings == timings
            });
            if keep {
                None
            } else {
                state.running.take()
            }
        };
        if let Some(running) = stale {
            let within = release_budget(&running.timings) + RELEASE_SLACK;
            if tokio::time::timeout(within, self.stop_driver(running))
                .await
                .is_err()
            {
                tracing::error!(component = "QUORUM", "the witness lease driver did not release within {} ms; this process exits so the witness store is closed", within.as_millis());
                std::process::exit(EXIT_WITNESS_NOT_STOPPED);
            }
        }
        let Some(config) = wanted else {
            return;
        };
        if lock(&self.state).running.is_none() {
            self.start_driver(config, netft, timings);
        }
    }

    fn start_driver(&self, config: WitnessConfig, netft: NetftSettings, timings: LeaseTimings) {
        let parts = &self.parts;
        let store = match open_store(&config, &parts.key, parts.me, &timings) {
            Ok(store) => store,
            Err(e) => {
                let mut state = lock(&self.state);
                if state.failed.as_ref() != Some(&(config.clone(), e.clone())) {
                    tracing::error!(
                        component = "QUORUM",
                        "cannot use the {}: {e}",
                        describe(&config)
                    );
                    state.failed = Some((config, e));
                }
                return;
            }
        };
        let key = match ClusterKey::new(&parts.key) {
            Ok(key) => key,
            Err(e) => return tracing::error!(component = "QUORUM", "cluster key: {e}"),
        };
        let clock = SystemClock::default();
        let fence = clock.fence();
        let slot = HostedSlot::default();
        let info = self.info();
        let me_entry = info.nodes.values().find(|n| n.id == Some(parts.me));
        let me = me_entry
            .map(|n| (n.name.clone(), n.raft_addr.clone()))
            .unwrap_or_else(|| (format!("node {}", parts.me), parts.addr.clone()));
        let hooks = Hooks {
            config: config.clone(),
            cluster: parts.cluster.clone(),
            key,
            netft,
            fence: fence.clone(),
            routing: parts.routing.clone(),
            live: self.live.clone(),
            slot: slot.clone(),
            me,
            changed: self.changed.clone(),
            raft_rt: parts.rt.clone(),
        };
        let machine = LeaseMachine::new(parts.me, timings);
        let tick = Duration::from_millis((timings.renew_ms / 10).max(5));
        let driver = LeaseDriver::new(machine, store, hooks, clock, tick).with_fence(fence);
        let status = driver.status();
        let (release, rx) = oneshot::channel();
        let ended = DriverEnd {
            config: config.clone(),
            raft_rt: parts.rt.clone(),
            live: self.live.clone(),
            slot: slot.clone(),
            within: Duration::from_millis(timings.stop_budget_ms()),
        };
        let task = tokio::spawn(async move { ended.after(driver.run(rx).await).await });
        tracing::info!(
            component = "QUORUM",
            "Watching the lease of the {} (witness voter node {}): renew every {} ms, give up after {} ms, lease {} ms, takeover margin {} ms",
            describe(&config),
            config.id,
            timings.renew_ms,
            timings.give_up_ms,
            timings.lease_ms,
            timings.margin_ms
        );
        let mut state = lock(&self.state);
        state.failed = None;
        state.running = Some(Running {
            config,
            timings,
            release,
            task,
            status,
        });
    }

    /// Releases the lease and waits for the driver to end.
    async fn stop_driver(&self, running: Running) {
        // A driver that already ended has dropped its receiver: nothing to release then.
        let _ = running.release.send(());
        if let Err(e) = running.task.await {
            tracing::error!(component = "QUORUM", "the witness lease driver failed: {e}");
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Publishes what is known of the witness, points its route at the lease holder and tells the
    /// core when its reachability changed.
    fn observe(&self) {
        let info = self.info();
        let mut state = lock(&self.state);
        let config = info.witness.clone().or_else(|| state.pending.clone());
        let seen = match &state.running {
            Some(r) if Some(&r.config) == config.as_ref() => {
                let status = r.status.borrow().clone();
                seen_from(&r.config, r.timings, &status, self.parts.me, wall_ms())
            }
            _ => Seen {
                config: config.clone(),
                ..Seen::default()
            },
        };
        match seen
            .holder
            .and_then(|h| info.nodes.values().find(|n| n.id == Some(h)))
        {
            Some(holder) => route_to(&self.parts.routing, &holder.name, &holder.raft_addr),
            None if config.is_none() => {
                self.parts
                    .routing
                    .set_overrides(ROUTING_LAYER, BTreeMap::new());
            }
            None => {}
        }
        // Who hosts, not just whether anyone does: the core's count also depends on whether
        // NetFT reaches the host, so a move from a lost host to this node must be told even when
        // the moment with no host in between was never seen here.
        let report = config.as_ref().map(|c| (c.id, seen.hosting, seen.holder));
        let tell = match (report, state.reported) {
            (Some(now), before) if before != Some(now) => Some((now.0, now.1 || now.2.is_some())),
            (None, Some((id, _, _))) => Some((id, false)),
            _ => None,
        };
        state.reported = report;
        drop(state);
        // Published before the core is told, so its count reads the new state.
        self.seen.send_if_modified(|old| {
            let modified = *old != seen;
            *old = seen;
            modified
        });
        if let Some((id, live)) = tell {
            self.tell_core(id, live);
        }
    }

    fn tell_core(&self, id: NodeId, live: bool) {
        let state = if live { NodeState::Up } else { NodeState::Down };
        if let Some(tx) = lock(&self.core).as_ref() {
            // A core that is gone needs no news.
            let _ = tx.send(Notice::Node { id, state });
        }
    }
}

/// Whether the witness's vote counts for this node: its voter runs here, or on the node holding a
/// live lease if NetFT reports that node Up and reached both ways.
fn counts(seen: &Seen, peers: &BTreeMap<u64, NodeState>, hearing: &BTreeSet<u64>) -> bool {
    seen.hosting
        || seen
            .holder
            .is_some_and(|h| peers.get(&h) == Some(&NodeState::Up) && hearing.contains(&h))
}

/// What a driver's status says of the witness.
fn seen_from(
    config: &WitnessConfig,
    timings: LeaseTimings,
    status: &LeaseStatus,
    me: NodeId,
    now_wall: u64,
) -> Seen {
    let mut seen = Seen {
        config: Some(config.clone()),
        timings: Some(timings),
        ..Seen::default()
    };
    match status {
        LeaseStatus::Held { generation, .. } => {
            seen.hosting = true;
            seen.holder = Some(me);
            seen.held_generation = Some(*generation);
        }
        LeaseStatus::Observing(Some(record)) => {
            let live = !record.released && now_wall < record.expiry_ms + timings.margin_ms;
            seen.holder = live.then_some(record.holder);
            seen.record = Some(*record);
        }
        LeaseStatus::Observing(None)
        | LeaseStatus::Claiming
        | LeaseStatus::Stopping
        | LeaseStatus::Released => {}
    }
    seen
}

fn wall_ms() -> u64 {
    crate::clusterlog::unix_ms()
}

/// What happens once a driver's `run` returns: an error that leaves the voter possibly running
/// ends the process (so the kernel closes the witness store).
struct DriverEnd {
    config: WitnessConfig,
    raft_rt: Handle,
    live: Live,
    slot: HostedSlot,
    within: Duration,
}

impl DriverEnd {
    async fn after(self, result: Result<(), DriverError>) {
        let what = describe(&self.config);
        match result {
            Ok(()) => tracing::info!(component = "QUORUM", "Gave up the lease of the {what}"),
            Err(e @ DriverError::StopFailed(_)) => {
                tracing::error!(component = "QUORUM", "{e}");
                std::process::exit(EXIT_WITNESS_NOT_STOPPED);
            }
            Err(e) => {
                tracing::error!(
                    component = "QUORUM",
                    "the lease driver of the {what} stopped: {e}"
                );
                self.live.unhost(self.config.id);
                let Some(hosted) = self.slot.lock().await.take() else {
                    return;
                };
                let stopped = self.raft_rt.spawn(hosted.stop(self.within)).await;
                if let Err(e) = stopped
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    tracing::error!(component = "QUORUM", "the witness voter could not be stopped ({e}); this process must exit now so the witness store is closed");
                    std::process::exit(EXIT_WITNESS_NOT_STOPPED);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WitnessConfig {
        WitnessConfig {
            kind: WitnessKind::FileShare,
            path: "/w".into(),
            id: 3,
        }
    }

    fn timings() -> LeaseTimings {
        LeaseTimings::new(100, 500, 1500, 100).unwrap()
    }

    #[test]
    fn the_holder_of_a_live_lease_hosts_the_witness_and_an_expired_or_released_one_nobody() {
        let record = LeaseRecord {
            holder: 2,
            generation: 4,
            expiry_ms: 10_000,
            released: false,
        };
        let seen = |status: LeaseStatus, now| seen_from(&config(), timings(), &status, 1, now);
        let live = seen(LeaseStatus::Observing(Some(record)), 9_000);
        assert_eq!((live.hosting, live.holder), (false, Some(2)));
        let within_margin = seen(LeaseStatus::Observing(Some(record)), 10_050);
        assert_eq!(
            within_margin.holder,
            Some(2),
            "the margin is the holder's too"
        );
        let expired = seen(LeaseStatus::Observing(Some(record)), 10_100);
        assert_eq!(expired.holder, None);
        let released = LeaseRecord {
            released: true,
            ..record
        };
        assert_eq!(
            seen(LeaseStatus::Observing(Some(released)), 9_000).holder,
            None
        );
        let held = seen(
            LeaseStatus::Held {
                generation: 5,
                give_up_at_mono: 1,
            },
            0,
        );
        assert_eq!(
            (held.hosting, held.holder, held.held_generation),
            (true, Some(1), Some(5))
        );
        assert_eq!(seen(LeaseStatus::Claiming, 0).holder, None);
    }

    #[test]
    fn the_witness_vote_counts_where_it_runs_or_where_netft_sees_its_host() {
        let peers = BTreeMap::from([(2, NodeState::Up), (4, NodeState::Down), (6, NodeState::Up)]);
        let hearing = BTreeSet::from([2, 4]);
        let seen = |hosting, holder| Seen {
            config: Some(config()),
            hosting,
            holder,
            ..Seen::default()
        };
        let c = |s: Seen| counts(&s, &peers, &hearing);
        assert!(c(seen(true, Some(1))), "hosted here");
        assert!(c(seen(false, Some(2))), "on a node that is Up, both ways");
        assert!(!c(seen(false, Some(4))), "on a node that is Down");
        assert!(
            !c(seen(false, Some(6))),
            "on a node that does not hear this one"
        );
        assert!(!c(seen(false, Some(5))), "on a node NetFT has not seen");
        assert!(!c(seen(false, None)), "no live lease");
    }

    #[test]
    fn the_witness_voter_is_routed_wherever_its_host_is_reached() {
        let routing = Routing::direct();
        let voter = ClusterNode {
            name: WITNESS_NAME.into(),
            addr: HOSTED_ADDR.into(),
        };
        assert_eq!(routing.route(&voter).addr, HOSTED_ADDR, "no holder known");
        route_to(&routing, "n2", "192.0.2.2:3344");
        assert_eq!(routing.route(&voter).addr, "192.0.2.2:3344");
        routing.set_overrides(
            "virtual-adapter",
            BTreeMap::from([("n2".to_string(), "203.0.113.2:3344".to_string())]),
        );
        assert_eq!(
            routing.route(&voter).addr,
            "203.0.113.2:3344",
            "the host's virtual address once it has one"
        );
        let before = routing.generation();
        route_to(&routing, "n2", "192.0.2.2:3344");
        assert_eq!(routing.generation(), before, "the same holder is no change");
        route_to(&routing, "n1", "192.0.2.1:3344");
        assert_eq!(routing.route(&voter).addr, "192.0.2.1:3344");
    }
}
