//! The lease watcher: a thread of its own that reads rcm's grants from the lease socket, keeps the
//! lease book on CLOCK_MONOTONIC and starts the fence the moment the lease runs out. It never calls
//! plugin code, so a plugin stuck in a call cannot hold the fence off. Not the bookkeeping
//! (lease.rs) nor the fence (fence.rs).

use crate::fence::Fence;
use crate::lease::{Expiry, LeaseBook, Taken};
use crate::log::Logger;
use keelson_proto::{decode_frame, LeaseMessage};
use keelson_types::LogLevel;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

/// The watcher's state.
pub struct LeaseWatch {
    pub socket: UnixDatagram,
    pub fence: Arc<Fence>,
    pub logger: Logger,
}

impl LeaseWatch {
    pub fn spawn(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("lease-watch".into())
            .spawn(move || self.run())
            .map(|_| ())
    }

    /// Reads grants until the lease runs out, then fences (which exits). Returns only when the
    /// socket fails before any lease was held: such a host never fences, as without a lease socket.
    fn run(self) {
        let mut book = LeaseBook::new();
        let mut buf = [0u8; 256];
        loop {
            let now = keelson_sys::clock::monotonic_ns();
            if let Some(expiry) = book.expire(now) {
                self.fence.run(expiry);
            }
            if let Err(e) = self.socket.set_read_timeout(book.wait(now)) {
                return self.broken(&book, &e.to_string());
            }
            match self.socket.recv(&mut buf) {
                Ok(n) => self.take(&mut book, &buf[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(e) => return self.broken(&book, &e.to_string()),
            }
        }
    }

    /// One datagram: a grant goes into the book; anything else is logged and ignored.
    fn take(&self, book: &mut LeaseBook, datagram: &[u8]) {
        let grant = match decode_frame::<LeaseMessage>(datagram) {
            Ok(LeaseMessage::Grant(grant)) => grant,
            Err(e) => return self.log(LogLevel::Warn, format!("bad lease datagram ignored: {e}")),
        };
        match book.take(&grant, keelson_sys::clock::monotonic_ns()) {
            Taken::Renewed { held, first: true } => self.log(
                LogLevel::Info,
                format!(
                    "Lease from rcm taken: {} ms, renewed by rcm; if it runs out this host \
                     terminates its resources (each within {} ms) and exits.",
                    held.valid_for_ms, held.terminate_within_ms
                ),
            ),
            Taken::Renewed { .. } => {}
            Taken::Stale { seq, newest } => self.log(
                LogLevel::Warn,
                format!("lease grant {seq} ignored: grant {newest} is newer"),
            ),
            Taken::Invalid(why) => self.log(LogLevel::Warn, format!("{why}; ignored")),
            Taken::TooLate { .. } => {} // the fence has begun; it exits shortly
        }
    }

    /// The socket failed: without a lease nothing changes; with one, the lease can no longer be
    /// renewed, so the watcher waits out what is left of it and fences.
    fn broken(&self, book: &LeaseBook, error: &str) {
        let Some(held) = book.held() else {
            return self.log(
                LogLevel::Warn,
                format!("lease socket failed before any lease ({error}); this host will not fence"),
            );
        };
        self.log(
            LogLevel::Err,
            format!(
                "lease socket failed ({error}): no renewal can arrive; fencing when grant {} ends",
                held.seq
            ),
        );
        // A timer to the lease's end, not a synchronisation: nothing else can move it now.
        let left = held
            .ends_ns
            .saturating_sub(keelson_sys::clock::monotonic_ns());
        std::thread::sleep(std::time::Duration::from_nanos(left));
        let late_ns = keelson_sys::clock::monotonic_ns().saturating_sub(held.ends_ns);
        self.fence.run(Expiry { held, late_ns })
    }

    fn log(&self, level: LogLevel, message: String) {
        self.logger.log(None, level, message);
    }
}

/// The read timeout ran out (time to look at the lease again), or a signal interrupted the wait.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}
