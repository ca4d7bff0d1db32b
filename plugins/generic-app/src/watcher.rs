//! A thread of the plugin's own per online resource that waits on the app's pidfd and reports
//! the app's exit to the node at once (Host::report_failure) instead of at the next poll. Stopped
//! and joined on drop (offline, terminate, close), so it never calls the host after close. Not
//! health checking (lib.rs, health.rs).

use keelson_plugin::Host;
use keelson_sys::detached::pidfd::{Pidfd, Woke};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct Watcher {
    /// Dropping it wakes the thread (its end sees the hang-up).
    stop: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn start(pidfd: Arc<Pidfd>, host: Host) -> std::io::Result<Watcher> {
        let (stop, stopped) = UnixStream::pair()?;
        let thread = std::thread::Builder::new()
            .name("generic-app-watch".into())
            .spawn(move || watch(&pidfd, &stopped, host))?;
        Ok(Watcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Whether the thread still waits (it ends after its one report).
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// One wait: the exit (reported) or the stop, whichever comes first.
fn watch(pidfd: &Pidfd, stopped: &UnixStream, host: Host) {
    let pid = pidfd.pid();
    match pidfd.wait_exit_or(stopped.as_fd(), None) {
        Ok(Woke::Exited) => {
            let how = match pidfd.exit_status() {
                Ok(Some(exit)) => exit.to_string(),
                Ok(None) => "an unknown status".to_string(),
                Err(e) => format!("an unreadable status ({e})"),
            };
            host.report_failure(&format!("process {pid} exited with {how}"));
        }
        Ok(_) => {}
        Err(e) => host.warn(&format!(
            "cannot watch process {pid}: {e}; the polls still check it"
        )),
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _no_panic_to_report = thread.join();
        }
    }
}
