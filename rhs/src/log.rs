//! The rhs's log: every line goes up the control socket as a `Log` frame (rcm writes it to the
//! cluster log with this process's pid and the writing thread's id) and, with --log-stderr, to stderr
//! in cluster-log format. Not the cluster log file itself: that is rcm's.

use keelson_proto::{encode, HostReply};
use keelson_types::{format_log_line, LogLevel, ResourceId};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

/// Serialised writer for the control socket, shared by every thread of the host.
#[derive(Clone)]
pub struct ControlWriter {
    stream: Arc<Mutex<UnixStream>>,
}

impl ControlWriter {
    pub fn new(stream: UnixStream) -> ControlWriter {
        ControlWriter {
            stream: Arc::new(Mutex::new(stream)),
        }
    }

    /// Sends one frame; a dead parent is ignored here (the control reader sees EOF and exits).
    pub fn send(&self, reply: &HostReply) {
        let Ok(frame) = encode(reply) else { return };
        let mut stream = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        let _ = stream.write_all(&frame);
    }
}

/// Log sink for the whole process.
#[derive(Clone)]
pub struct Logger {
    control: ControlWriter,
    stderr: bool,
}

impl Logger {
    pub fn new(control: ControlWriter, stderr: bool) -> Logger {
        Logger { control, stderr }
    }

    /// Logs one line under component RHS.
    pub fn log(&self, resource: Option<ResourceId>, level: LogLevel, message: String) {
        let tid = keelson_sys::process::gettid();
        if self.stderr {
            let pid = keelson_sys::process::getpid();
            eprintln!(
                "{}",
                format_log_line(pid, tid, unix_ms(), level, "RHS", &message)
            );
        }
        self.control.send(&HostReply::Log {
            resource,
            level,
            tid,
            message,
        });
    }

    pub fn control(&self) -> &ControlWriter {
        &self.control
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
