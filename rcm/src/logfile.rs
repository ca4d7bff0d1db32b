//! One append-only line file in the data directory, the way cluster.log, events.jsonl and audit.log
//! all work: created 0640 from the start, each line written whole (with its newline, in one write) or
//! not at all (a failed or short write is cut back off), rotated by size (`name.1` … `name.N`), with
//! a live feed of written lines and a bounded tail reader. Not what goes into a line (clusterlog.rs,
//! events.rs, audit.rs).

pub mod tail;

pub use tail::Tail;

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Mode of every log file: the owner writes, the socket's group reads, nobody else.
pub const LOG_FILE_MODE: u32 = 0o640;
/// After a failed rotation, how long lines keep going to the current file before trying again.
const ROTATE_RETRY: Duration = Duration::from_secs(10);

/// How writing to one log file is going, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriteHealth {
    /// The file's name in the data directory.
    pub file: String,
    /// Lines that could not be written (each cut back off, so no torn line stays).
    pub write_failures: u64,
    /// The last write or rotation error, if any.
    pub last_error: Option<String>,
}

/// An open, rotating, append-only line file.
pub struct LogFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    state: Mutex<State>,
    failures: AtomicU64,
    feed: Option<broadcast::Sender<String>>,
}

struct State {
    file: File,
    /// Set when a failed write could not be cut back: cut before the next write.
    torn_at: Option<u64>,
    /// A failed rotation is retried only after this instant.
    rotate_after: Option<Instant>,
    /// Whether the last write failed (so the first failure of a run is reported once).
    failing: bool,
    last_error: Option<String>,
}

impl LogFile {
    /// Opens (appending, creating with mode 0640) `<dir>/<name>`; `feed` is the capacity of the live
    /// feed of written lines (0: none).
    pub fn open(
        dir: &Path,
        name: &str,
        max_bytes: u64,
        keep: u32,
        feed: usize,
    ) -> io::Result<LogFile> {
        let path = dir.join(name);
        let file = open_append(&path)?;
        tighten_mode(&file)?;
        Ok(LogFile {
            path,
            max_bytes,
            keep,
            state: Mutex::new(State {
                file,
                torn_at: None,
                rotate_after: None,
                failing: false,
                last_error: None,
            }),
            failures: AtomicU64::new(0),
            feed: (feed > 0).then(|| broadcast::channel(feed).0),
        })
    }

    /// Appends `line` and its newline in one write, rotating first if the file would outgrow
    /// `max_bytes`. On any failure (ENOSPC, a short write) the file is cut back to its length before
    /// the write, the failure is counted, and the error returned. The line goes to the live feed
    /// either way (followers see what happened even when the disk is full).
    pub fn append(&self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.append_locked(&mut state, &bytes);
        match &result {
            Ok(()) => state.failing = false,
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if !state.failing {
                    say_on_stderr(&format!("cannot write {}: {e}", self.path.display()));
                }
                state.failing = true;
                state.last_error = Some(keelson_types::io_reason(e));
            }
        }
        if let Some(feed) = &self.feed {
            // Under the lock, so a tail snapshot taken under it sees each line exactly once.
            let _ = feed.send(line.to_string());
        }
        result
    }

    fn append_locked(&self, state: &mut State, bytes: &[u8]) -> io::Result<()> {
        if let Some(len) = state.torn_at {
            state.file.set_len(len)?;
            state.torn_at = None;
        }
        let mut before = state.file.metadata()?.len();
        if before > 0 && before + bytes.len() as u64 > self.max_bytes {
            self.rotate_locked(state);
            before = state.file.metadata()?.len();
        }
        let written = write_whole(&mut state.file, bytes);
        if written.is_ok() {
            return written;
        }
        if state.file.set_len(before).is_err() {
            state.torn_at = Some(before);
        }
        written
    }

    /// Rotates unless a recent rotation failed; a failure is remembered, never fatal: lines keep
    /// going to the file that is open.
    fn rotate_locked(&self, state: &mut State) {
        if state.rotate_after.is_some_and(|t| Instant::now() < t) {
            return;
        }
        match self.rotate_files() {
            Ok(fresh) => {
                state.file = fresh;
                state.rotate_after = None;
            }
            Err(e) => {
                state.rotate_after = Some(Instant::now() + ROTATE_RETRY);
                state.last_error = Some(format!("cannot rotate: {}", keelson_types::io_reason(&e)));
                say_on_stderr(&format!("cannot rotate {}: {e}", self.path.display()));
            }
        }
    }

    /// name.(k) -> .(k+1), name -> .1; returns the new empty file.
    fn rotate_files(&self) -> io::Result<File> {
        for k in (1..self.keep).rev() {
            let from = rotated(&self.path, k);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, k + 1))?;
            }
        }
        let gone = if self.keep > 0 {
            std::fs::rename(&self.path, rotated(&self.path, 1))
        } else {
            std::fs::remove_file(&self.path)
        };
        match gone {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        open_append(&self.path)
    }

    /// Opens the current file and its rotated ones as they are right now (under the write lock, so
    /// no rotation or half-written line is in between), and subscribes to the live feed at the same
    /// instant when `follow` is set: every line is either in the tail or on the feed, once.
    pub fn open_tail(
        &self,
        follow: bool,
    ) -> io::Result<(Tail, Option<broadcast::Receiver<String>>)> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let tail = Tail::open(&self.path, self.keep)?;
        let live = match (&self.feed, follow) {
            (Some(feed), true) => Some(feed.subscribe()),
            _ => None,
        };
        drop(state);
        Ok((tail, live))
    }

    /// The last `n` lines, collected (the API streams instead).
    #[cfg(test)]
    pub fn tail(&self, n: usize) -> io::Result<Vec<String>> {
        let (tail, _) = self.open_tail(false)?;
        let mut lines = Vec::new();
        tail.stream(n, |line| {
            lines.push(line);
            true
        })?;
        Ok(lines)
    }

    /// New lines as they are appended (None for a file without a live feed).
    pub fn subscribe(&self) -> Option<broadcast::Receiver<String>> {
        self.feed.as_ref().map(|f| f.subscribe())
    }

    /// The file's name in the data directory.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Lines that could not be written since start.
    pub fn write_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Failures so far and the last error.
    pub fn health(&self) -> WriteHealth {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        WriteHealth {
            file: self.name(),
            write_failures: self.write_failures(),
            last_error: state.last_error.clone(),
        }
    }
}

/// Writes `bytes` in one write when it can; after a short write (a nearly full disk) the rest is
/// tried once more, under the same lock, so the caller learns the real reason (ENOSPC) and either
/// the whole line is there or the caller cuts it back.
fn write_whole(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        match file.write(&bytes[done..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
            Ok(n) if done == 0 && n < bytes.len() => done = n,
            Ok(n) if done + n == bytes.len() => return Ok(()),
            Ok(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write ({} of {} bytes)", done + n, bytes.len()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The one place left to say so when a log itself cannot be written. Unlike `eprintln!`, never
/// panics: stderr may be a file on the same full disk.
fn say_on_stderr(message: &str) {
    let _best_effort = writeln!(io::stderr(), "keelson-rcm: {message}");
}

/// Opens `path` for appending, creating it with [`LOG_FILE_MODE`] (never wider, whatever the umask
/// allows: the mode is given to `open` itself, not applied afterwards).
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_FILE_MODE)
        .open(path)
}

/// A file left by an older version with wider permissions is narrowed to 0640 (a new one already is).
/// Anything but a regular file (a device given as a log) is left alone.
fn tighten_mode(file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    let mode = meta.permissions().mode() & 0o777;
    if meta.is_file() && mode & !LOG_FILE_MODE != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & LOG_FILE_MODE))?;
    }
    Ok(())
}

/// `path` with `.k` appended (cluster.log.1).
pub fn rotated(path: &Path, k: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("keelson-logfile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn files_are_created_0640_and_rotated_ones_keep_it() {
        let dir = temp_dir("mode");
        let log = LogFile::open(&dir, "x.log", 100, 2, 0).unwrap();
        for i in 0..20 {
            log.append(&format!("line number {i:04}")).unwrap();
        }
        for name in ["x.log", "x.log.1", "x.log.2"] {
            let mode = std::fs::metadata(dir.join(name)).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o640, "{name}: {mode:o}");
        }
        assert!(!dir.join("x.log.3").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_older_world_readable_file_is_narrowed() {
        let dir = temp_dir("narrow");
        let path = dir.join("old.log");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        LogFile::open(&dir, "old.log", 1000, 1, 0).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_is_counted_and_leaves_no_torn_line() {
        // /dev/full fails every write with ENOSPC, like a full disk.
        let log = LogFile::open(Path::new("/dev"), "full", u64::MAX, 0, 4).unwrap();
        let mut feed = log.subscribe().unwrap();
        let err = log.append("lost").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ENOSPC), "{err}");
        let health = log.health();
        assert_eq!(health.write_failures, 1);
        assert!(health.last_error.unwrap().contains("space"), "{err}");
        log.append("lost too").unwrap_err();
        assert_eq!(log.write_failures(), 2);
        assert_eq!(feed.try_recv().unwrap(), "lost", "followers still see it");
    }

    /// errno for "No space left on device" on Linux.
    const ENOSPC: i32 = 28;
}
