//! The fence: when the lease from rcm runs out, TERMINATE every open resource, each on a thread of
//! its own within `min(its DeadlockTimeout, the grant's terminate budget)`, log what happened, raise
//! `Fenced` on the alarm pipe and exit with EXIT_FENCED, whatever the plugins do (a TERMINATE that
//! does not return in time is abandoned; the exit ends it). Once it starts, the deadlock monitor
//! stands down and no new resource opens. Not the lease bookkeeping (lease.rs) nor watching it
//! (lease_watch.rs); the gate that keeps calls apart is gate.rs.

use crate::gate::{CallGate, Terminated};
use crate::lease::Expiry;
use crate::log::Logger;
use keelson_abi::CallFn;
use keelson_proto::{HostAlarm, EXIT_FENCED};
use keelson_types::{LogLevel, ResourceId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the fence's log lines may take to leave before the process exits anyway (the parent,
/// frozen, may not be reading them).
const LOG_DRAIN: Duration = Duration::from_millis(200);

/// Set once the fence has begun; read by the deadlock monitor.
static FENCING: AtomicBool = AtomicBool::new(false);

/// True once the fence has begun: the process is about to exit with EXIT_FENCED.
pub fn fencing() -> bool {
    FENCING.load(Ordering::Acquire)
}

/// Every resource with a gate, and the fence procedure.
pub struct Fence {
    gates: Mutex<Vec<Arc<CallGate>>>,
    logger: Logger,
}

/// One resource's TERMINATE as the fence saw it.
struct Outcome {
    name: String,
    resource: ResourceId,
    budget: Duration,
    result: Option<(Terminated, Duration)>,
}

impl Fence {
    pub fn new(logger: Logger) -> Arc<Fence> {
        Arc::new(Fence {
            gates: Mutex::new(Vec::new()),
            logger,
        })
    }

    /// A gate for a resource about to OPEN; None once the fence has begun (the resource must not
    /// open).
    pub fn register(
        &self,
        resource: ResourceId,
        name: String,
        terminate: Option<CallFn>,
        deadline_ms: u64,
    ) -> Option<Arc<CallGate>> {
        let mut gates = self.lock();
        if fencing() {
            return None;
        }
        let gate = Arc::new(CallGate::new(resource, name, terminate, deadline_ms));
        gates.push(gate.clone());
        Some(gate)
    }

    /// Forgets a closed resource's gate.
    pub fn unregister(&self, gate: &Arc<CallGate>) {
        self.lock().retain(|g| !Arc::ptr_eq(g, gate));
    }

    /// Terminates every resource and exits with EXIT_FENCED.
    pub fn run(&self, expiry: Expiry) -> ! {
        let gates = {
            let gates = self.lock();
            FENCING.store(true, Ordering::Release);
            gates.clone()
        };
        let (log, drained) = spawn_reporter(self.logger.clone());
        let held = expiry.held;
        let late_ms = expiry.late_ns / 1_000_000;
        let line = format!(
            "Lease from rcm expired {late_ms} ms ago (grant {}, valid for {} ms, not renewed): rcm \
             is frozen or gone; terminating {} resources, each within {} ms at most, then exiting.",
            held.seq,
            held.valid_for_ms,
            gates.len(),
            held.terminate_within_ms
        );
        let _ = log.send((None, LogLevel::Err, line));
        let budget_cap = Duration::from_millis(held.terminate_within_ms);
        let outcomes = terminate_all(&gates, budget_cap);
        let terminated = outcomes.iter().filter(|o| o.is_done()).count();
        for o in &outcomes {
            let _ = log.send((Some(o.resource), o.level(), o.line()));
        }
        crate::crash::raise_alarm(&HostAlarm::Fenced {
            seq: held.seq,
            late_ms,
            resources: gates.len() as u32,
            terminated: terminated as u32,
        });
        let _ = log.send((
            None,
            LogLevel::Err,
            format!(
                "Fenced: {terminated} of {} resources terminated; terminating RHS process.",
                gates.len()
            ),
        ));
        drop(log);
        let _ = drained.recv_timeout(LOG_DRAIN);
        keelson_sys::process::exit_now(EXIT_FENCED)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<CallGate>>> {
        self.gates.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// TERMINATE on every gate at once, each on its own thread; waits until each has answered or its
/// budget (its DeadlockTimeout, at most `cap`) has passed, measured from the start.
fn terminate_all(gates: &[Arc<CallGate>], cap: Duration) -> Vec<Outcome> {
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let mut outcomes: Vec<Outcome> = gates
        .iter()
        .map(|g| Outcome {
            name: g.name.clone(),
            resource: g.resource,
            budget: Duration::from_millis(g.deadline_ms()).min(cap),
            result: None,
        })
        .collect();
    for (i, gate) in gates.iter().enumerate() {
        let (gate, tx) = (gate.clone(), tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("fence-{}", gate.resource.0))
            .stack_size(1 << 20)
            .spawn(move || {
                let _alt_stack = keelson_sys::crash::AltStack::install();
                let _ = tx.send((i, gate.terminate_for_fence()));
            });
        if spawned.is_err() {
            outcomes[i].budget = Duration::ZERO; // could not even try
        }
    }
    drop(tx);
    let until = start + outcomes.iter().map(|o| o.budget).max().unwrap_or_default();
    let mut pending = outcomes.len();
    while pending > 0 {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, result)) => {
                outcomes[i].result = Some(result);
                pending -= 1;
            }
            Err(_) => break, // the budget is spent (or every thread is gone)
        }
    }
    outcomes
}

impl Outcome {
    /// Nothing of it runs any more: TERMINATE succeeded within its budget, or it was not open.
    fn is_done(&self) -> bool {
        match &self.result {
            Some((Terminated::Returned { status: 0, .. }, took)) => *took <= self.budget,
            Some((Terminated::NotOpen, _)) => true,
            _ => false,
        }
    }

    fn level(&self) -> LogLevel {
        match &self.result {
            Some((Terminated::Returned { status: 0, .. }, took)) if *took <= self.budget => {
                LogLevel::Warn
            }
            Some((Terminated::NotOpen, _)) => LogLevel::Info,
            _ => LogLevel::Err,
        }
    }

    fn line(&self) -> String {
        let (name, budget) = (&self.name, self.budget.as_millis());
        match &self.result {
            None => format!(
                "Fence: TERMINATE of resource '{name}' did not return within {budget} ms \
                 (a call of it may still be running); exiting anyway."
            ),
            Some((Terminated::Returned { status: 0, .. }, took)) if *took <= self.budget => {
                format!(
                    "Fence: resource '{name}' terminated in {} ms.",
                    took.as_millis()
                )
            }
            Some((Terminated::Returned { status: 0, .. }, took)) => format!(
                "Fence: resource '{name}' terminated in {} ms, past its {budget} ms budget.",
                took.as_millis()
            ),
            Some((Terminated::Returned { status, message }, took)) => format!(
                "Fence: TERMINATE of resource '{name}' failed with status {status} in {} ms: {message}",
                took.as_millis()
            ),
            Some((Terminated::NotOpen, _)) => {
                format!("Fence: resource '{name}' was not open; nothing to terminate.")
            }
            Some((Terminated::NoEntryPoint, _)) => format!(
                "Fence: resource '{name}' has no TERMINATE entry point; the exit ends it."
            ),
        }
    }
}

type Line = (Option<ResourceId>, LogLevel, String);

/// A thread that logs the fence's lines, so the fence never blocks on a parent that does not read
/// (the returned receiver hears once every line sent before the sender dropped has been logged).
fn spawn_reporter(logger: Logger) -> (mpsc::Sender<Line>, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel::<Line>();
    let (done_tx, done_rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("fence-log".into())
        .spawn(move || {
            for (resource, level, message) in rx {
                logger.log(resource, level, message);
            }
            let _ = done_tx.send(());
        });
    if spawned.is_err() {
        // No reporter: the lines are lost, the alarm and the exit status still tell.
        return (mpsc::channel().0, mpsc::channel().1);
    }
    (tx, done_rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{c_char, c_void};
    use std::sync::atomic::AtomicU64;

    /// Released by the test so the hung TERMINATE's thread ends.
    static RELEASE: AtomicBool = AtomicBool::new(false);
    static OK_CALLS: AtomicU64 = AtomicU64::new(0);

    unsafe extern "C" fn terminate_ok(_: *mut c_void, _: *mut c_char, _: usize) -> i32 {
        OK_CALLS.fetch_add(1, Ordering::SeqCst);
        0
    }

    unsafe extern "C" fn terminate_hangs(_: *mut c_void, _: *mut c_char, _: usize) -> i32 {
        let start = Instant::now();
        while !RELEASE.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
        0
    }

    fn gate(id: u64, terminate: CallFn, deadline_ms: u64, open: bool) -> Arc<CallGate> {
        let gate = Arc::new(CallGate::new(
            ResourceId(id),
            format!("r{id}"),
            Some(terminate),
            deadline_ms,
        ));
        if open {
            gate.call(deadline_ms, |h| {
                *h = std::ptr::NonNull::<u8>::dangling().as_ptr().cast()
            });
        }
        gate
    }

    #[test]
    fn every_resource_is_terminated_at_once_and_a_hung_one_abandoned_at_its_budget() {
        let gates = vec![
            gate(1, terminate_ok, 5_000, true),
            gate(2, terminate_hangs, 5_000, true),
            gate(3, terminate_ok, 5_000, false),
            // Its DeadlockTimeout is below the cap: that is its budget.
            gate(4, terminate_hangs, 40, true),
        ];
        let start = Instant::now();
        let outcomes = terminate_all(&gates, Duration::from_millis(150));
        let took = start.elapsed();
        RELEASE.store(true, Ordering::SeqCst);
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_millis(1_500),
            "waited {took:?}, not the 150 ms budget"
        );
        assert_eq!(OK_CALLS.load(Ordering::SeqCst), 1, "only the open one");
        let budgets: Vec<u128> = outcomes.iter().map(|o| o.budget.as_millis()).collect();
        assert_eq!(budgets, [150, 150, 150, 40]);
        let done: Vec<bool> = outcomes.iter().map(Outcome::is_done).collect();
        assert_eq!(done, [true, false, true, false]);
        assert!(outcomes[0].line().contains("'r1' terminated in"));
        assert!(outcomes[1].line().contains("did not return within 150 ms"));
        assert!(outcomes[2].line().contains("was not open"));
        assert!(outcomes[3].line().contains("did not return within 40 ms"));
    }
}
