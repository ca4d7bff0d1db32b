//! The rhs's log: every line goes up the control socket as a `Log` frame (rcm writes it to the
//! cluster log with this process's pid and the writing thread's id) and, with --log-stderr, to stderr
//! in cluster-log format. Not the cluster log file itself: that is rcm's.

use keelson_proto::{encode, HostReply};
use keelson_types::{LogLevel, ResourceId};
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
        ControlWriter { stream: Arc::new(Mutex::new(stream)) }
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
            eprintln!("{pid:08x}.{tid:08x}::{} {level} [RHS] {message}", wall_clock());
        }
        self.control.send(&HostReply::Log { resource, level, tid, message });
    }

    pub fn control(&self) -> &ControlWriter {
        &self.control
    }
}

/// `YYYY/MM/DD-HH:MM:SS.mmm` in UTC, from the system clock.
fn wall_clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}/{m:02}/{d:02}-{:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }
}
