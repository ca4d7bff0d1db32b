//! The lease machine's tokio shell: ticks it, runs its witness I/O on a blocking thread (one
//! operation at a time, the rest queued, so a hung share never stalls the ticks that give the lease
//! up), starts and stops the witness voter through `WitnessHooks`, and publishes the lease status.
//! Not the decisions (lease.rs) and not the witness voter itself (host.rs, via the hooks).

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::fence::LeaseFence;
use crate::lease::{HeldLease, LeaseAction, LeaseEvent, LeaseMachine, LeaseStatus, LogLevel, Now};
use crate::store::LeaseStore;

/// Where the driver gets the time.
pub trait Clock: Send + 'static {
    fn now(&self) -> Now;
}

/// The real clocks: monotonic from `Instant` (since the clock was made), wall from `SystemTime`.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl SystemClock {
    /// A closed fence on this clock, for the witness voter's storage; give it to the driver
    /// (`LeaseDriver::with_fence`) and to `HostedWitness::start`.
    pub fn fence(&self) -> LeaseFence {
        LeaseFence::new(self.origin)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Now {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Now {
            mono_ms: self.origin.elapsed().as_millis() as u64,
            wall_ms: wall,
        }
    }
}

/// What the node does when the lease says so: run or close the witness voter, write a log line.
pub trait WitnessHooks: Send + 'static {
    /// Start the witness voter under `lease` (e.g. `HostedWitness::start`) and route the witness
    /// id's RPCs to it.
    fn start_hosting(
        &mut self,
        lease: HeldLease,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Stop routing to the witness voter and close it within `within` (e.g. `HostedWitness::stop`).
    /// An error means it may still run: the driver then stops with `DriverError::StopFailed`.
    fn stop_hosting(
        &mut self,
        reason: String,
        within: Duration,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// One cluster-log line from the lease machine.
    fn log(&mut self, level: LogLevel, line: String);
}

/// Why the driver stopped before releasing the lease.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The witness voter could not be closed: it may still run on storage another node may open
    /// once the lease expires. The process must exit at once (so the kernel closes the store).
    #[error("the witness voter could not be stopped ({0}); this process must exit now so the witness store is closed")]
    StopFailed(String),
    /// A witness operation panicked; the witness handle is gone with it.
    #[error("a witness operation panicked: {0}")]
    IoPanicked(String),
}

type IoTask<S> = JoinHandle<(S, LeaseEvent)>;

/// Runs one node's lease machine against one witness.
pub struct LeaseDriver<S: LeaseStore + 'static, H: WitnessHooks, C: Clock> {
    machine: LeaseMachine,
    store: Option<S>,
    io: Option<IoTask<S>>,
    queued: VecDeque<LeaseAction>,
    events: VecDeque<LeaseEvent>,
    hooks: H,
    clock: C,
    tick: Duration,
    status: watch::Sender<LeaseStatus>,
    fence: Option<LeaseFence>,
}

impl<S: LeaseStore + 'static, H: WitnessHooks, C: Clock> LeaseDriver<S, H, C> {
    /// A driver ticking `machine` every `tick` (a fraction of the renewal period, e.g. a tenth).
    pub fn new(machine: LeaseMachine, store: S, hooks: H, clock: C, tick: Duration) -> Self {
        let (status, _) = watch::channel(machine.status());
        LeaseDriver {
            machine,
            store: Some(store),
            io: None,
            queued: VecDeque::new(),
            events: VecDeque::new(),
            hooks,
            clock,
            tick,
            status,
            fence: None,
        }
    }

    /// Keeps `fence` open exactly while the lease is held, up to its give-up deadline (the fence
    /// must come from the same clock, `SystemClock::fence`).
    pub fn with_fence(mut self, fence: LeaseFence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// The lease status as it changes (for `keelson cluster quorum` and the quorum count).
    pub fn status(&self) -> watch::Receiver<LeaseStatus> {
        self.status.subscribe()
    }

    /// Runs until the lease is released after `release` fires (or its sender is dropped). The fence
    /// is closed whenever it returns.
    pub async fn run(mut self, release: oneshot::Receiver<()>) -> Result<(), DriverError> {
        let fence = self.fence.clone();
        let result = self.run_until_released(release).await;
        if let Some(fence) = fence {
            fence.close();
        }
        result
    }

    async fn run_until_released(
        &mut self,
        release: oneshot::Receiver<()>,
    ) -> Result<(), DriverError> {
        let mut release = Some(release);
        let mut ticks = tokio::time::interval(self.tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.events.push_back(LeaseEvent::Tick),
                done = wait_io(&mut self.io), if self.io.is_some() => {
                    self.io = None;
                    let (store, event) = done.map_err(|e| DriverError::IoPanicked(e.to_string()))?;
                    self.store = Some(store);
                    self.events.push_back(event);
                }
                _ = wait_release(&mut release), if release.is_some() => {
                    release = None;
                    self.events.push_back(LeaseEvent::ReleaseRequested);
                }
            }
            self.drain().await?;
            if self.machine.done() && self.io.is_none() && self.queued.is_empty() {
                return Ok(());
            }
        }
    }

    async fn drain(&mut self) -> Result<(), DriverError> {
        while let Some(event) = self.events.pop_front() {
            let actions = self.machine.handle(self.clock.now(), event);
            // The fence follows the machine before its actions run: a voter started by
            // StartHosting may write at once (openraft applies what its store committed and had
            // not applied yet), and one being stopped must not write any more.
            self.follow_fence();
            for action in actions {
                self.execute(action).await?;
            }
        }
        self.follow_fence();
        self.status.send_replace(self.machine.status());
        self.start_io();
        Ok(())
    }

    /// Opens the fence up to the give-up deadline while the lease is held, closes it otherwise.
    fn follow_fence(&self) {
        let Some(fence) = &self.fence else {
            return;
        };
        match self.machine.status() {
            LeaseStatus::Held {
                give_up_at_mono, ..
            } => fence.open_until(give_up_at_mono),
            _ => fence.close(),
        }
    }

    async fn execute(&mut self, action: LeaseAction) -> Result<(), DriverError> {
        match action {
            LeaseAction::Log { level, line } => self.hooks.log(level, line),
            LeaseAction::StartHosting { .. } => {
                let lease = self
                    .machine
                    .held()
                    .expect("StartHosting comes only with the lease held");
                if let Err(e) = self.hooks.start_hosting(lease).await {
                    self.events.push_back(LeaseEvent::HostingFailed(e));
                }
            }
            LeaseAction::StopHosting { reason } => {
                let within = Duration::from_millis(self.machine.timings().stop_budget_ms());
                self.hooks
                    .stop_hosting(reason, within)
                    .await
                    .map_err(DriverError::StopFailed)?;
                self.events.push_back(LeaseEvent::HostingStopped);
            }
            io => self.queued.push_back(io),
        }
        Ok(())
    }

    fn start_io(&mut self) {
        if self.io.is_some() || self.queued.is_empty() {
            return;
        }
        let Some(mut store) = self.store.take() else {
            return;
        };
        let action = self.queued.pop_front().expect("checked non-empty");
        self.io = Some(tokio::task::spawn_blocking(move || {
            let event = perform(&mut store, action);
            (store, event)
        }));
    }
}

/// One witness operation, its answer as the machine's event.
fn perform<S: LeaseStore>(store: &mut S, action: LeaseAction) -> LeaseEvent {
    let text = |e: crate::store::WitnessError| e.to_string();
    match action {
        LeaseAction::Read => LeaseEvent::Read(store.read().map_err(text)),
        LeaseAction::Claim { previous, record } => {
            LeaseEvent::Claimed(store.claim(previous.as_ref(), &record).map_err(text))
        }
        LeaseAction::Renew(record) => LeaseEvent::Renewed(store.renew(&record).map_err(text)),
        LeaseAction::Release(record) => LeaseEvent::Released(store.renew(&record).map_err(text)),
        other => unreachable!("not a witness operation: {other:?}"),
    }
}

async fn wait_io<S>(io: &mut Option<IoTask<S>>) -> Result<(S, LeaseEvent), tokio::task::JoinError> {
    match io {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

async fn wait_release(release: &mut Option<oneshot::Receiver<()>>) {
    match release {
        Some(rx) => {
            // Fired or dropped: either way the owner wants the lease given up.
            let _fired_or_dropped = rx.await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{ClaimOutcome, RenewOutcome};
    use crate::record::LeaseRecord;
    use crate::store::WitnessError;
    use crate::timings::LeaseTimings;
    use std::sync::{Arc, Mutex};

    /// A witness in memory.
    #[derive(Clone, Default)]
    struct MemoryWitness(Arc<Mutex<Option<LeaseRecord>>>);

    impl LeaseStore for MemoryWitness {
        fn describe(&self) -> String {
            "memory witness".into()
        }
        fn read(&mut self) -> Result<Option<LeaseRecord>, WitnessError> {
            Ok(*self.0.lock().unwrap())
        }
        fn claim(
            &mut self,
            previous: Option<&LeaseRecord>,
            record: &LeaseRecord,
        ) -> Result<ClaimOutcome, WitnessError> {
            let mut current = self.0.lock().unwrap();
            if current.as_ref() != previous {
                return Ok(ClaimOutcome::Lost(*current));
            }
            *current = Some(*record);
            Ok(ClaimOutcome::Won)
        }
        fn renew(&mut self, record: &LeaseRecord) -> Result<RenewOutcome, WitnessError> {
            let mut current = self.0.lock().unwrap();
            match *current {
                Some(c) if c.holder == record.holder && c.generation == record.generation => {
                    *current = Some(*record);
                    Ok(RenewOutcome::Renewed)
                }
                other => Ok(RenewOutcome::Lost(other)),
            }
        }
    }

    /// Hooks that note whether the fence let writes through when the voter started and stopped.
    struct FenceWatch {
        fence: LeaseFence,
        seen: Arc<Mutex<Vec<(&'static str, bool)>>>,
    }

    impl WitnessHooks for FenceWatch {
        async fn start_hosting(&mut self, _lease: HeldLease) -> Result<(), String> {
            let open = self.fence.check().is_ok();
            self.seen.lock().unwrap().push(("start", open));
            Ok(())
        }
        async fn stop_hosting(&mut self, _reason: String, _within: Duration) -> Result<(), String> {
            let open = self.fence.check().is_ok();
            self.seen.lock().unwrap().push(("stop", open));
            Ok(())
        }
        fn log(&mut self, _level: LogLevel, _line: String) {}
    }

    /// A voter started under the lease may write at once (openraft applies what its store
    /// committed before); one being stopped may not write any more.
    #[tokio::test]
    async fn the_fence_is_open_when_hosting_starts_and_closed_when_it_stops() {
        let clock = SystemClock::default();
        let fence = clock.fence();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hooks = FenceWatch {
            fence: fence.clone(),
            seen: seen.clone(),
        };
        let timings = LeaseTimings::new(10, 40, 80, 5).unwrap();
        let machine = LeaseMachine::new(1, timings);
        let driver = LeaseDriver::new(
            machine,
            MemoryWitness::default(),
            hooks,
            clock,
            Duration::from_millis(2),
        )
        .with_fence(fence.clone());
        let mut status = driver.status();
        let (release, rx) = oneshot::channel();
        let task = tokio::spawn(driver.run(rx));
        tokio::time::timeout(
            Duration::from_secs(10),
            status.wait_for(|s| matches!(s, LeaseStatus::Held { .. })),
        )
        .await
        .expect("the lease is taken within 10 s")
        .unwrap();
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("released within 10 s")
            .unwrap()
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![("start", true), ("stop", false)]
        );
        assert!(fence.check().is_err(), "closed once released");
    }
}
