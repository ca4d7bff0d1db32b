//! The cluster log, `<data-dir>/cluster.log`: one line per record in the WSFC format
//! `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm LEVEL [COMPONENT] message`, rotated by size (cluster.log.1 …
//! .N), with a live feed for `keelson log --follow`. Not events (events.rs) or audit (audit.rs).

use crate::logfile::{LogFile, WriteHealth};
use keelson_types::{escape_for_log, format_log_line, LogLevel};
use std::path::Path;
use std::sync::Arc;

/// Rotate when the file would grow past this many bytes.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Rotated files kept (cluster.log.1 … cluster.log.5).
pub const DEFAULT_KEEP: u32 = 5;
/// Lines a slow `--follow` reader may fall behind before it is told some were dropped.
const FEED_CAPACITY: usize = 4096;

/// The open cluster log.
pub struct ClusterLog {
    file: Arc<LogFile>,
}

impl ClusterLog {
    /// Opens (appending, creating 0640) `<dir>/cluster.log`.
    pub fn open(dir: &Path, max_bytes: u64, keep: u32) -> std::io::Result<ClusterLog> {
        Ok(ClusterLog {
            file: Arc::new(LogFile::open(
                dir,
                "cluster.log",
                max_bytes,
                keep,
                FEED_CAPACITY,
            )?),
        })
    }

    /// Writes one line as this process, from the calling thread.
    pub fn log(&self, level: LogLevel, component: &str, message: &str) {
        self.log_as(
            std::process::id(),
            keelson_sys::process::gettid(),
            level,
            component,
            message,
        );
    }

    /// Writes one line on behalf of another process/thread (an rhs's own lines). The one sink of
    /// every cluster-log line: the component and message are escaped here, so no text from a
    /// plugin, a peer or a request can end the line or forge another. Never blocks on, panics on or
    /// returns a write error: a line that cannot be written is counted ([`ClusterLog::health`]).
    pub fn log_as(&self, pid: u32, tid: u32, level: LogLevel, component: &str, message: &str) {
        let line = format_log_line(
            pid,
            tid,
            unix_ms(),
            level,
            &escape_for_log(component),
            &escape_for_log(message),
        );
        // A failure is counted by the file and shown in status; there is nowhere else to log it.
        let _counted = self.file.append(&line);
    }

    /// The file, for tail reads.
    pub fn file(&self) -> Arc<LogFile> {
        self.file.clone()
    }

    /// Write failures and the last error.
    pub fn health(&self) -> WriteHealth {
        self.file.health()
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_wsfc_lines_rotates_by_size_and_tails() {
        let dir = std::env::temp_dir().join(format!("keelson-clog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = ClusterLog::open(&dir, 400, 2).unwrap();
        for i in 0..20 {
            log.log(LogLevel::Info, "RCM", &format!("line {i}"));
        }
        let current: Vec<String> = std::fs::read_to_string(dir.join("cluster.log"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert!(current.len() < 20, "rotation kept the current file small");
        // The tail reaches back into rotated files, in order.
        let tail = log.file().tail(8).unwrap();
        assert_eq!(tail.len(), 8);
        for (i, line) in tail.iter().enumerate() {
            assert!(
                line.ends_with(&format!(" INFO [RCM] line {}", 12 + i)),
                "{tail:?}"
            );
        }
        let prefix = &tail[2][..19];
        assert_eq!(&prefix[8..9], ".");
        assert_eq!(&prefix[17..19], "::");
        assert!(dir.join("cluster.log.1").exists() && dir.join("cluster.log.2").exists());
        assert!(!dir.join("cluster.log.3").exists());
        assert!(std::fs::metadata(dir.join("cluster.log")).unwrap().len() <= 400);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn untrusted_text_cannot_forge_a_line() {
        let dir = std::env::temp_dir().join(format!("keelson-clog-esc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = ClusterLog::open(&dir, 1 << 20, 1).unwrap();
        log.log_as(
            7,
            8,
            LogLevel::Info,
            "RHS",
            "open failed: '\nx'\n00000001.00000001::2026/01/01-00:00:00.000 ERR [RCM] forged\u{1b}[2J\u{202e}",
        );
        let text = std::fs::read_to_string(dir.join("cluster.log")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.ends_with("\\n00000001.00000001::2026/01/01-00:00:00.000 ERR [RCM] forged\\u{1b}[2J\\u{202e}\n"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
