//! The cluster log, `<data-dir>/cluster.log`: one line per record in the WSFC format
//! `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm LEVEL [COMPONENT] message`, rotated by size (cluster.log.1 …
//! .N), with a live feed for `keelson log --follow`. Not events (events.rs) or audit (audit.rs).

use keelson_types::{format_log_line, LogLevel};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Rotate when the file would grow past this many bytes.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Rotated files kept (cluster.log.1 … cluster.log.5).
pub const DEFAULT_KEEP: u32 = 5;

/// The open cluster log.
pub struct ClusterLog {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Mutex<(File, u64)>,
    feed: broadcast::Sender<String>,
}

impl ClusterLog {
    /// Opens (appending) `<dir>/cluster.log`.
    pub fn open(dir: &Path, max_bytes: u64, keep: u32) -> std::io::Result<ClusterLog> {
        let path = dir.join("cluster.log");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(ClusterLog {
            path,
            max_bytes,
            keep,
            file: Mutex::new((file, size)),
            feed: broadcast::channel(4096).0,
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

    /// Writes one line on behalf of another process/thread (an rhs's own lines).
    pub fn log_as(&self, pid: u32, tid: u32, level: LogLevel, component: &str, message: &str) {
        let line = format_log_line(pid, tid, unix_ms(), level, component, message);
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.1 + line.len() as u64 + 1 > self.max_bytes && guard.1 > 0 {
            if let Ok(fresh) = self.rotate() {
                *guard = (fresh, 0);
            }
        }
        if writeln!(guard.0, "{line}").is_ok() {
            guard.1 += line.len() as u64 + 1;
        }
        drop(guard);
        let _ = self.feed.send(line);
    }

    /// cluster.log.(k) -> .(k+1), cluster.log -> .1; returns the new empty cluster.log.
    fn rotate(&self) -> std::io::Result<File> {
        for k in (1..self.keep).rev() {
            let from = rotated(&self.path, k);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, k + 1))?;
            }
        }
        if self.keep > 0 {
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    /// The last `n` lines, reaching into rotated files (cluster.log.1, .2, …) when the current one
    /// holds fewer.
    pub fn tail(&self, n: usize) -> std::io::Result<Vec<String>> {
        let mut lines = tail_lines(&self.path, n)?;
        for k in 1..=self.keep {
            if lines.len() >= n {
                break;
            }
            let Ok(mut older) = tail_lines(&rotated(&self.path, k), n - lines.len()) else {
                break;
            };
            older.append(&mut lines);
            lines = older;
        }
        Ok(lines)
    }

    /// New lines as they are written.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.feed.subscribe()
    }
}

fn rotated(path: &Path, k: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The last `n` lines of a text file, reading only as much of its end as needed.
pub fn tail_lines(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut chunk = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(start))?;
        let mut text = String::new();
        Read::by_ref(&mut file)
            .take(len - start)
            .read_to_string(&mut text)?;
        let mut lines: Vec<&str> = text.lines().collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // possibly cut in the middle
        }
        if lines.len() >= n || start == 0 {
            let from = lines.len().saturating_sub(n);
            return Ok(lines[from..].iter().map(|l| l.to_string()).collect());
        }
        chunk *= 4;
    }
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
        let current = tail_lines(&dir.join("cluster.log"), 100).unwrap();
        assert!(current.len() < 20, "rotation kept the current file small");
        // The tail reaches back into rotated files, in order.
        let tail = log.tail(8).unwrap();
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
}
