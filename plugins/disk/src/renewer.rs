//! The renewal thread: rewrites our lease record every LeaseMs/4 (renewal counter + 1), after
//! checking that the record is still ours; if it was taken, or cannot be renewed for half a lease
//! (so the node stops using the disk before another node's lease wait can end), it marks the lease
//! lost, runs the caller's fence (stop using the disk) and reports the failure to the host once. Never blocks on the device itself (its I/O runs
//! on the worker lane with a deadline), so stopping it is quick. Not the acquisition (lease.rs).

use crate::lease::{LeaseIo, Refusal};
use crate::record::{LeaseRecord, LeaseState, Sector};
use keelson_plugin::Host;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to do at once when the lease is lost (stop using the disk); says what it did, if anything.
pub type Fence = Box<dyn Fn() -> Option<String> + Send>;

/// What the renewals last saw.
#[derive(Debug)]
pub struct LeaseHealth {
    pub record: LeaseRecord,
    pub last_renewed: Instant,
    pub lost: Option<String>,
}

/// A running renewal thread; stopped and joined on drop.
pub struct Renewer {
    pub health: Arc<Mutex<LeaseHealth>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Renewer {
    /// Starts renewing `record` (just acquired) every lease/4; `fence` runs on the thread when the
    /// lease is lost, before the report.
    pub fn start(
        io: LeaseIo,
        record: LeaseRecord,
        host: Host,
        fence: Fence,
    ) -> Result<Renewer, String> {
        let health = Arc::new(Mutex::new(LeaseHealth {
            record,
            last_renewed: Instant::now(),
            lost: None,
        }));
        let (stop, stopped) = mpsc::channel();
        let shared = health.clone();
        let thread = std::thread::Builder::new()
            .name("disk-renewer".into())
            .spawn(move || renew_until_stopped(io, shared, stopped, host, fence))
            .map_err(|e| format!("cannot start the lease renewal thread: {e}"))?;
        Ok(Renewer {
            health,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Ok while the lease is ours and renewed within half a lease.
    pub fn check(&self, lease: Duration) -> Result<(), String> {
        let h = self.health.lock().expect("lease health lock");
        if let Some(lost) = &h.lost {
            return Err(lost.clone());
        }
        let age = h.last_renewed.elapsed();
        if age > lease / 2 {
            return Err(format!(
                "lease not renewed for {} ms (LeaseMs {})",
                age.as_millis(),
                lease.as_millis()
            ));
        }
        Ok(())
    }

    /// The last record written.
    pub fn record(&self) -> LeaseRecord {
        self.health
            .lock()
            .expect("lease health lock")
            .record
            .clone()
    }

    /// Stops and joins the thread (at most one I/O deadline), returning the last record.
    pub fn stop(mut self) -> LeaseRecord {
        self.halt();
        self.record()
    }

    fn halt(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn renew_until_stopped(
    io: LeaseIo,
    health: Arc<Mutex<LeaseHealth>>,
    stopped: mpsc::Receiver<()>,
    host: Host,
    fence: Fence,
) {
    let lease = io.claim.lease;
    let interval = (lease / 4).max(Duration::from_millis(10));
    loop {
        match stopped.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let current = health.lock().expect("lease health lock").record.clone();
        match renew_once(&io, &current) {
            Ok(next) => {
                let mut h = health.lock().expect("lease health lock");
                h.record = next;
                h.last_renewed = Instant::now();
            }
            Err(Renewal::Taken(why)) => return lose(&health, &host, &fence, why),
            Err(Renewal::Failed(why)) => {
                let age = health
                    .lock()
                    .expect("lease health lock")
                    .last_renewed
                    .elapsed();
                if age > lease / 2 {
                    let why = format!(
                        "disk {}: lease not renewed for {} ms (LeaseMs {}): {why}",
                        io.area.device.display(),
                        age.as_millis(),
                        lease.as_millis()
                    );
                    return lose(&health, &host, &fence, why);
                }
            }
        }
    }
}

fn lose(health: &Mutex<LeaseHealth>, host: &Host, fence: &Fence, why: String) {
    health.lock().expect("lease health lock").lost = Some(why.clone());
    host.error(&why);
    if let Some(done) = fence() {
        host.warn(&done);
    }
    host.report_failure(&why);
}

enum Renewal {
    Taken(String),
    Failed(String),
}

/// One renewal: read, check it is still ours, write renewals + 1.
fn renew_once(io: &LeaseIo, current: &LeaseRecord) -> Result<LeaseRecord, Renewal> {
    let io_failed = |r: Refusal| Renewal::Failed(r.message(&io.area.device.display().to_string()));
    match io.read().map_err(io_failed)? {
        Sector::Record(r)
            if r.holder == current.holder
                && r.incarnation == current.incarnation
                && r.state == LeaseState::Held => {}
        other => {
            let who = match other {
                Sector::Record(r) => format!("node {} ({:?})", r.holder, r.state),
                Sector::Blank => "a blank sector".into(),
                Sector::Corrupt(why) => format!("a corrupt record ({why})"),
            };
            return Err(Renewal::Taken(format!(
                "disk {}: lease lost: the record now holds {who}",
                io.area.device.display()
            )));
        }
    }
    let next = io.ours(current.generation, current.renewals + 1, LeaseState::Held);
    io.write(next.clone()).map_err(io_failed)?;
    Ok(next)
}
