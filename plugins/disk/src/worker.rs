//! Runs blocking disk I/O on a thread of its own with a deadline, so a hung device (a thread stuck
//! in D state) makes the call fail at its deadline instead of hanging the caller; while one such
//! thread is still stuck, later calls fail at once instead of piling up more stuck threads. Not
//! the I/O itself.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One lane of deadline-bounded work (one per kind of I/O: lease, probe).
#[derive(Clone, Debug)]
pub struct Worker {
    name: &'static str,
    busy_since: Arc<Mutex<Option<Instant>>>,
}

impl Worker {
    pub fn new(name: &'static str) -> Worker {
        Worker {
            name,
            busy_since: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `work` on a fresh thread and waits at most `limit` for its answer. Fails naming the
    /// deadline when it does not answer in time, and at once while an earlier one is still stuck.
    pub fn run<T: Send + 'static>(
        &self,
        limit: Duration,
        work: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        {
            let mut busy = self.busy_since.lock().expect("worker lock");
            if let Some(since) = *busy {
                return Err(format!(
                    "{} I/O is still stuck after {} ms",
                    self.name,
                    since.elapsed().as_millis()
                ));
            }
            *busy = Some(Instant::now());
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let busy = self.busy_since.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("disk-{}", self.name))
            .spawn(move || {
                let answer = work();
                *busy.lock().expect("worker lock") = None;
                // The caller may have given up (deadline passed): nobody to tell then.
                tx.send(answer).ok();
            });
        if let Err(e) = spawned {
            *self.busy_since.lock().expect("worker lock") = None;
            return Err(format!("cannot start a {} I/O thread: {e}", self.name));
        }
        match rx.recv_timeout(limit) {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "{} I/O did not answer within {} ms",
                self.name,
                limit.as_millis()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_in_time_is_returned() {
        let w = Worker::new("probe");
        assert_eq!(w.run(Duration::from_secs(5), || Ok(7)).unwrap(), 7);
        assert_eq!(w.run(Duration::from_secs(5), || Ok(8)).unwrap(), 8);
    }

    #[test]
    fn a_stuck_call_fails_at_its_deadline_and_the_next_fails_at_once() {
        let w = Worker::new("probe");
        let (release, gate) = mpsc::channel::<()>();
        let started = Instant::now();
        let err = w
            .run(Duration::from_millis(100), move || {
                gate.recv().ok();
                Ok(())
            })
            .unwrap_err();
        assert!(err.contains("within 100 ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let again = Instant::now();
        let err = w.run(Duration::from_secs(10), || Ok(())).unwrap_err();
        assert!(err.contains("still stuck"), "{err}");
        assert!(again.elapsed() < Duration::from_millis(500));
        release.send(()).unwrap();
        let freed = (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            w.busy_since.lock().unwrap().is_none()
        });
        assert!(freed, "the worker never finished");
        assert!(w.run(Duration::from_secs(5), || Ok(())).is_ok());
    }
}
