//! A thread of the plugin's own that, while a RequireDNS=1 network-name is online, looks its
//! records up every WatchInterval and, when they are gone or wrong (or the server stops
//! answering), records it for LooksAlive and tells the node at once with `Host::report_failure`
//! instead of waiting for the next IsAlive. Stopped and joined when dropped (by offline,
//! terminate and close), so it never calls the host after close; a lookup in flight then
//! finishes first, within its DnsTimeout. Not the check (registrar.rs).

use crate::health::Health;
use crate::registrar::Registrar;
use keelson_plugin::Host;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// The running watcher; dropping it stops it.
pub struct Watcher {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn start(
        registrar: Registrar,
        every: Duration,
        health: Health,
        host: Host,
    ) -> std::io::Result<Watcher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("network-name-watch".into())
            .spawn(move || {
                // Each turn waits `every` for a stop; it ends on a stop or after its one report
                // (the restart's online starts a new watcher).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    match registrar.check() {
                        Ok(()) => health.set_ok(),
                        Err(why) => {
                            health.set_failed(&why);
                            host.report_failure(&why);
                            return;
                        }
                    }
                }
            })?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }

    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // A send fails only when the thread has already ended; the join is what matters.
        let _already_ended = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _no_panic_to_report = thread.join();
        }
    }
}
