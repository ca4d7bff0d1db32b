//! The cluster log, `<data-dir>/cluster.log`: one line per record in the WSFC format
//! `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm LEVEL [COMPONENT] message`, rotated by size (cluster.log.1 …
//! .N), with a live feed for `keelson log --follow`. Lines come from `tracing` events through the
//! layer in layer.rs; subscriber.rs installs it (with RUST_LOG-style filtering and journald). Not
//! events (events.rs) or audit (audit.rs).

mod layer;
pub mod subscriber;

pub use layer::ClusterLogLayer;

use crate::logfile::{LogFile, WriteHealth};
#[cfg(test)]
use keelson_types::LogLevel;
use std::path::Path;
use std::sync::Arc;

/// Rotate when the file would grow past this many bytes.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Rotated files kept (cluster.log.1 … cluster.log.5).
pub const DEFAULT_KEEP: u32 = 5;
/// Lines a slow `--follow` reader may fall behind before it is told some were dropped.
const FEED_CAPACITY: usize = 4096;
/// The component of a line whose event names none.
const DEFAULT_COMPONENT: &str = "RCM";

/// A `tracing` event at a [`LogLevel`] chosen at run time (DBG is DEBUG); the rest as for
/// `tracing::event!`.
#[macro_export]
macro_rules! event_at {
    ($level:expr, $($rest:tt)+) => {
        match $level {
            keelson_types::LogLevel::Err => tracing::error!($($rest)+),
            keelson_types::LogLevel::Warn => tracing::warn!($($rest)+),
            keelson_types::LogLevel::Info => tracing::info!($($rest)+),
            keelson_types::LogLevel::Dbg => tracing::debug!($($rest)+),
        }
    };
}

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

    /// The tracing layer that writes this file, stamped with the system clock.
    pub fn layer(&self) -> ClusterLogLayer {
        ClusterLogLayer::new(self.file.clone(), DEFAULT_COMPONENT, unix_ms)
    }

    /// A `tracing` event as this process (the tests' shorthand; the service uses tracing macros).
    #[cfg(test)]
    pub fn log(&self, level: LogLevel, component: &str, message: &str) {
        event_at!(level, component, "{message}");
    }

    /// A `tracing` event on behalf of another process/thread (an rhs's own lines); see `log`.
    #[cfg(test)]
    pub fn log_as(&self, pid: u32, tid: u32, level: LogLevel, component: &str, message: &str) {
        event_at!(level, pid, tid, component, "{message}");
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
    use keelson_types::format_log_line;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;

    /// A fresh directory for one test.
    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("keelson-clog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Makes `log`'s layer this thread's subscriber until the guard drops.
    fn trace_into(log: &ClusterLog) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(log.layer()))
    }

    fn lines(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("cluster.log"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// A fixed clock: 2026/11/26-07:37:22.123 UTC.
    fn fixed_clock() -> u64 {
        1_795_678_642_123
    }

    #[test]
    fn events_become_todays_lines_byte_for_byte() {
        let dir = temp_dir("exact");
        let log = ClusterLog::open(&dir, 1 << 20, 1).unwrap();
        let layer = ClusterLogLayer::new(log.file(), DEFAULT_COMPONENT, fixed_clock);
        let _trace = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        let span = tracing::info_span!("request", resource = "web", group = "g1");
        let _entered = span.enter();
        tracing::info!("node service ready on {}", "/x/rcm.sock");
        tracing::warn!(component = "API", peer_uid = 7, "refused a connection");
        tracing::error!(
            pid = 0xf1cu32,
            tid = 0xf28u32,
            component = "RHS",
            "open failed"
        );
        tracing::debug!(pid = 42u32, tid = 0u32, component = "RHS", "stderr: x");
        tracing::trace!("very fine");
        let (pid, tid) = (std::process::id(), keelson_sys::process::gettid());
        let ms = fixed_clock();
        assert_eq!(
            lines(&dir),
            vec![
                format_log_line(
                    pid,
                    tid,
                    ms,
                    LogLevel::Info,
                    "RCM",
                    "node service ready on /x/rcm.sock"
                ),
                format_log_line(pid, tid, ms, LogLevel::Warn, "API", "refused a connection"),
                format_log_line(0xf1c, 0xf28, ms, LogLevel::Err, "RHS", "open failed"),
                format_log_line(42, 0, ms, LogLevel::Dbg, "RHS", "stderr: x"),
                format_log_line(pid, tid, ms, LogLevel::Dbg, "RCM", "very fine"),
            ]
        );
        assert_eq!(
            lines(&dir)[2],
            "00000f1c.00000f28::2026/11/26-07:37:22.123 ERR [RHS] open failed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_facade_writes_what_the_old_log_methods_wrote() {
        let dir = temp_dir("facade");
        let log = ClusterLog::open(&dir, 1 << 20, 1).unwrap();
        let layer = ClusterLogLayer::new(log.file(), DEFAULT_COMPONENT, fixed_clock);
        let _trace = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        log.log(LogLevel::Warn, "API", "one");
        log.log_as(7, 8, LogLevel::Dbg, "RHS", "two");
        let (pid, tid, ms) = (
            std::process::id(),
            keelson_sys::process::gettid(),
            fixed_clock(),
        );
        assert_eq!(
            lines(&dir),
            vec![
                format_log_line(pid, tid, ms, LogLevel::Warn, "API", "one"),
                format_log_line(7, 8, ms, LogLevel::Dbg, "RHS", "two"),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_component_field_cannot_forge_a_line_either() {
        let dir = temp_dir("esc-component");
        let log = ClusterLog::open(&dir, 1 << 20, 1).unwrap();
        let layer = ClusterLogLayer::new(log.file(), DEFAULT_COMPONENT, fixed_clock);
        let _trace = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        let component = "RHS] x\n00000001.00000001::2026/01/01-00:00:00.000 ERR [RCM";
        tracing::info!(pid = 1u32, tid = 2u32, component, "a\rb\u{7}\u{1b}[2J");
        let text = std::fs::read_to_string(dir.join("cluster.log")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(
            text,
            "00000001.00000002::2026/11/26-07:37:22.123 INFO \
             [RHS] x\\n00000001.00000001::2026/01/01-00:00:00.000 ERR [RCM] a\\rb\\u{7}\\u{1b}[2J\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn filters_keep_info_and_above_unless_told_otherwise() {
        let cases: [(&str, &[&str]); 5] = [
            (
                "",
                &[
                    "INFO [RCM] rcm info",
                    "WARN [RCM] rcm warn",
                    "INFO [RCM] other info",
                ],
            ),
            (
                "debug",
                &[
                    "DBG [RCM] rcm debug",
                    "INFO [RCM] rcm info",
                    "WARN [RCM] rcm warn",
                    "DBG [RCM] other debug",
                    "INFO [RCM] other info",
                ],
            ),
            ("warn", &["WARN [RCM] rcm warn"]),
            (
                "keelson_rcm=warn",
                &["WARN [RCM] rcm warn", "INFO [RCM] other info"],
            ),
            (
                "other=debug",
                &[
                    "INFO [RCM] rcm info",
                    "WARN [RCM] rcm warn",
                    "DBG [RCM] other debug",
                    "INFO [RCM] other info",
                ],
            ),
        ];
        for (i, (spec, expected)) in cases.iter().enumerate() {
            let dir = temp_dir(&format!("filter-{i}"));
            let log = ClusterLog::open(&dir, 1 << 20, 1).unwrap();
            let filtered = log.layer().with_filter(subscriber::filter(spec).unwrap());
            let _trace =
                tracing::subscriber::set_default(tracing_subscriber::registry().with(filtered));
            tracing::debug!("rcm debug");
            tracing::info!("rcm info");
            tracing::warn!("rcm warn");
            tracing::debug!(target: "other", "other debug");
            tracing::info!(target: "other", "other info");
            let got: Vec<String> = lines(&dir)
                .iter()
                .map(|l| l.split_once(' ').unwrap().1.to_string())
                .collect();
            assert_eq!(got, *expected, "filter '{spec}'");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn writes_wsfc_lines_rotates_by_size_and_tails() {
        let dir = std::env::temp_dir().join(format!("keelson-clog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = ClusterLog::open(&dir, 400, 2).unwrap();
        let _trace = trace_into(&log);
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
        let _trace = trace_into(&log);
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
