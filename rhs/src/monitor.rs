//! The deadlock monitor: every resource thread publishes its outstanding call in a lock-free slot; one
//! monitor thread wakes at the earliest deadline, and when a call outlives it, logs the WSFC lines,
//! raises `DeadlockDetected` on the alarm pipe and ends the process (unless the fence has begun: then
//! the fence ends it). Not crash handling (crash.rs),
//! nor the overdue-or-sleep decision itself (scan.rs, pure).

use crate::log::Logger;
use crate::scan::{self, Running, Verdict, MIN_TICK};
use keelson_proto::HostAlarm;
use keelson_types::{LogLevel, Op, ResourceId};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One resource's outstanding call, written by its thread, read by the monitor.
pub struct CallSlot {
    pub resource: ResourceId,
    pub name: String,
    /// Start time in ns since the monitor's epoch, plus one; 0 = no call running.
    started_ns: AtomicU64,
    op: AtomicU8,
    deadline_ms: AtomicU64,
}

/// Watches every slot; shared by all threads.
pub struct Monitor {
    epoch: Instant,
    slots: Mutex<Vec<Arc<CallSlot>>>,
    /// Smallest deadline ever seen; sets how often the monitor looks while calls run.
    min_deadline_ms: AtomicU64,
    wake: Condvar,
    logger: Logger,
}

impl Monitor {
    pub fn new(logger: Logger) -> Arc<Monitor> {
        Arc::new(Monitor {
            epoch: Instant::now(),
            slots: Mutex::new(Vec::new()),
            min_deadline_ms: AtomicU64::new(u64::MAX),
            wake: Condvar::new(),
            logger,
        })
    }

    /// Adds a slot for a newly opened resource.
    pub fn register(&self, resource: ResourceId, name: String) -> Arc<CallSlot> {
        let slot = Arc::new(CallSlot {
            resource,
            name,
            started_ns: AtomicU64::new(0),
            op: AtomicU8::new(0),
            deadline_ms: AtomicU64::new(u64::MAX),
        });
        self.lock_slots().push(slot.clone());
        slot
    }

    /// Removes a closed resource's slot.
    pub fn unregister(&self, slot: &Arc<CallSlot>) {
        self.lock_slots().retain(|s| !Arc::ptr_eq(s, slot));
    }

    /// Publishes the start of a call. Wakes the monitor only when this deadline is the smallest yet.
    pub fn begin(&self, slot: &CallSlot, op: Op, deadline_ms: u64) {
        slot.op.store(op as u8, Ordering::Relaxed);
        slot.deadline_ms.store(deadline_ms, Ordering::Relaxed);
        slot.started_ns.store(self.now_ns(), Ordering::Release);
        if self
            .min_deadline_ms
            .fetch_min(deadline_ms, Ordering::AcqRel)
            > deadline_ms
        {
            // Rare (a new smallest deadline): take the lock so the notify cannot fall between the
            // monitor's scan and its wait.
            let _guard = self.lock_slots();
            self.wake.notify_one();
        }
    }

    /// Publishes the end of the current call.
    pub fn end(&self, slot: &CallSlot) {
        slot.started_ns.store(0, Ordering::Release);
    }

    /// Milliseconds since the monitor started (the host's monotonic clock for health polling).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Vec<Arc<CallSlot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The monitor thread's loop; returns only by ending the process.
    pub fn run(self: Arc<Monitor>) {
        let mut guard = self.lock_slots();
        loop {
            let (overdue, sleep) = self.scan(&guard);
            // Once the fence has begun it owns the exit (and its status); a call overrunning now is
            // its business.
            if let Some((slot, op, elapsed_ns)) = overdue.filter(|_| !crate::fence::fencing()) {
                drop(guard);
                self.declare_deadlock(&slot, op, elapsed_ns);
            }
            guard = self
                .wake
                .wait_timeout(guard, sleep)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Finds an overdue call (scan.rs decides), else how long to sleep before the next deadline
    /// could pass.
    fn scan(&self, slots: &[Arc<CallSlot>]) -> (Option<(Arc<CallSlot>, Op, u64)>, Duration) {
        let running = slots.iter().enumerate().filter_map(|(i, slot)| {
            let started_ns = slot.started_ns.load(Ordering::Acquire);
            (started_ns != 0).then(|| Running {
                slot: i,
                started_ns,
                deadline_ms: slot.deadline_ms.load(Ordering::Relaxed),
                op: Op::from_u8(slot.op.load(Ordering::Relaxed)),
            })
        });
        let now = self.now_ns();
        match scan::scan(now, self.min_deadline_ms.load(Ordering::Acquire), running) {
            Verdict::Sleep(sleep) => (None, sleep),
            Verdict::Overdue {
                slot,
                op,
                elapsed_ns,
            } => {
                let slot = &slots[slot];
                // The call may have ended (and another begun) since it was read: not blamed, and
                // the monitor looks again at once.
                let started = now.saturating_sub(elapsed_ns);
                if slot.started_ns.load(Ordering::Acquire) == started {
                    (Some((slot.clone(), op, elapsed_ns)), MIN_TICK)
                } else {
                    (None, MIN_TICK)
                }
            }
        }
    }

    /// Logs the WSFC deadlock lines, tells the parent, and ends the process.
    fn declare_deadlock(&self, slot: &CallSlot, op: Op, elapsed_ns: u64) -> ! {
        let name = &slot.name;
        self.logger.log(
            Some(slot.resource),
            LogLevel::Err,
            format!(
                "RhsCall::DeadlockMonitor: Call {} timed out for resource '{name}'.",
                op.upper()
            ),
        );
        crate::crash::raise_alarm(&HostAlarm::DeadlockDetected {
            resource: slot.resource,
            op,
            elapsed_ns,
        });
        self.logger.log(
            Some(slot.resource),
            LogLevel::Err,
            format!("Resource {name} handling deadlock. Cleaning current operation and terminating RHS process."),
        );
        keelson_sys::process::exit_now(crate::EXIT_DEADLOCK)
    }
}
