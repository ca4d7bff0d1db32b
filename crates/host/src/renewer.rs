//! The lease renewer: one OS thread of its own (not a task of rcm's single-threaded runtime, so a
//! core busy in a slow commit does not stop it; only a frozen process does, which is the point) that
//! sends every leased host a fresh grant every third of the lease over the host's lease socket.
//! A host whose socket is gone (it exited) is dropped; one that does not read (stopped, or fencing)
//! is kept. Not the grants' content (lease.rs) nor what a host does when they stop (rhs/fence.rs).

use crate::lease::HostLease;
use keelson_proto::{encode, LeaseMessage};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One leased host.
struct Holder {
    pid: u32,
    socket: Arc<UnixDatagram>,
    /// The last grant's number.
    seq: u64,
}

#[derive(Default)]
struct State {
    holders: Vec<Holder>,
    stop: bool,
}

struct Inner {
    lease: HostLease,
    state: Mutex<State>,
    wake: Condvar,
}

/// The renewer; its thread stops when this is dropped.
pub struct LeaseRenewer {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LeaseRenewer {
    /// Starts the thread that renews `lease` for every host added.
    pub fn start(lease: HostLease) -> std::io::Result<LeaseRenewer> {
        let inner = Arc::new(Inner {
            lease,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let worker = inner.clone();
        let thread = std::thread::Builder::new()
            .name("host-lease".into())
            .spawn(move || worker.run())?;
        Ok(LeaseRenewer {
            inner,
            thread: Some(thread),
        })
    }

    pub fn lease(&self) -> HostLease {
        self.inner.lease
    }

    /// Leases host `pid` through its end of the lease socket: its first grant goes at once.
    pub fn add(&self, pid: u32, socket: Arc<UnixDatagram>) {
        let mut holder = Holder {
            pid,
            socket,
            seq: 0,
        };
        if self.inner.renew(&mut holder) {
            self.inner.lock().holders.push(holder);
        }
    }

    /// How many hosts hold a lease.
    pub fn holders(&self) -> usize {
        self.inner.lock().holders.len()
    }
}

impl Drop for LeaseRenewer {
    fn drop(&mut self) {
        self.inner.lock().stop = true;
        self.inner.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every third of the lease, a grant to each host, until stopped.
    fn run(&self) {
        let every = self.lease.renew_every();
        let mut due = Instant::now() + every;
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            if state.stop {
                return;
            }
            if now < due {
                state = self
                    .wake
                    .wait_timeout(state, due - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            self.warn_if_late(now - due, state.holders.len());
            state.holders.retain_mut(|h| self.renew(h));
            due = now + every;
        }
    }

    /// The next grant to `holder`; false when its host is gone (its socket refuses).
    fn renew(&self, holder: &mut Holder) -> bool {
        holder.seq += 1;
        let grant = self
            .lease
            .grant(holder.seq, keelson_sys::clock::monotonic_ns());
        let frame = encode(&LeaseMessage::Grant(grant)).expect("a grant encodes");
        match holder.socket.send(&frame) {
            Ok(_) => true,
            // Its queue is full: the host is not reading (stopped, or fencing). It keeps its place.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            Err(e) => {
                tracing::debug!(
                    component = "RCM",
                    "resource host {} holds no lease any more: {e}",
                    holder.pid
                );
                false
            }
        }
    }

    fn warn_if_late(&self, late: Duration, holders: usize) {
        if late >= self.lease.alarming_delay() && holders > 0 {
            tracing::warn!(
                component = "RCM",
                "Host lease renewal ran {} ms late (lease {} ms): this process was frozen or starved; \
                 its {holders} resource hosts may have fenced themselves.",
                late.as_millis(),
                self.lease.valid_for().as_millis()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_proto::decode_frame;

    fn next_grant(socket: &UnixDatagram) -> keelson_proto::LeaseGrant {
        let mut buf = [0u8; 128];
        let n = socket.recv(&mut buf).expect("a grant within the timeout");
        let LeaseMessage::Grant(grant) = decode_frame(&buf[..n]).unwrap();
        grant
    }

    #[test]
    fn a_host_gets_a_grant_at_once_then_every_third_of_the_lease() {
        let renewer = LeaseRenewer::start(HostLease::new(150, 40).unwrap()).unwrap();
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let before = keelson_sys::clock::monotonic_ns();
        renewer.add(7, Arc::new(ours));
        let first = next_grant(&theirs);
        assert_eq!(
            (first.seq, first.valid_for_ms, first.terminate_within_ms),
            (1, 150, 40)
        );
        assert!(first.granted_at_ns >= before);
        let start = Instant::now();
        let second = next_grant(&theirs);
        let third = next_grant(&theirs);
        assert_eq!((second.seq, third.seq), (2, 3));
        let gap_ms = (third.granted_at_ns - second.granted_at_ns) / 1_000_000;
        assert!(
            (45..150).contains(&gap_ms),
            "renewed every {gap_ms} ms, not every 50"
        );
        assert!(start.elapsed() < Duration::from_millis(150 * 3));
        assert_eq!(renewer.holders(), 1);
    }

    #[test]
    fn a_host_whose_socket_is_gone_is_dropped_and_a_silent_one_kept() {
        let renewer = LeaseRenewer::start(HostLease::new(30, 10).unwrap()).unwrap();
        let (gone, gone_peer) = UnixDatagram::pair().unwrap();
        let (silent, _silent_peer) = UnixDatagram::pair().unwrap();
        gone.set_nonblocking(true).unwrap();
        silent.set_nonblocking(true).unwrap();
        renewer.add(1, Arc::new(gone));
        renewer.add(2, Arc::new(silent));
        assert_eq!(renewer.holders(), 2);
        drop(gone_peer);
        // The silent host never reads: its queue fills and it is kept. Bounded wait for the drop.
        let start = Instant::now();
        while renewer.holders() != 1 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the gone host stayed"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(200) {
            assert_eq!(renewer.holders(), 1, "the silent host was dropped");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn dropping_the_renewer_stops_its_thread() {
        let renewer = LeaseRenewer::start(HostLease::default()).unwrap();
        let start = Instant::now();
        drop(renewer);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "it did not wait out a renewal"
        );
    }
}
