//! Primitives for test journals that several processes in several network namespaces append to:
//! the CLOCK_MONOTONIC instant (clock.rs; every namespace on one machine shares it), the identity of the
//! calling thread's network namespace, and an append of one line under an exclusive `flock`. Not
//! what a journal holds (the journal plugin) nor how it is checked (the tests).

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Nanoseconds on CLOCK_MONOTONIC (the clock module's).
pub use crate::clock::monotonic_ns;

/// The inode of the calling thread's network namespace (what `stat -L /proc/self/ns/net` shows,
/// and `stat /var/run/netns/NAME` for a named one).
pub fn netns_inode() -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").map(|m| m.ino())
}

/// Appends `line` (and a newline) to `path` (created 0640 if missing) while holding an exclusive
/// `flock` on it, so lines from several processes never interleave.
pub fn append_locked(path: &Path, line: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)?;
    // SAFETY: flock on a descriptor we own; it blocks until the lock is ours.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    // The lock goes with the descriptor when `file` is dropped.
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_forward_and_lines_append_whole() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a);
        assert!(netns_inode().unwrap() > 0);
        let dir = std::env::temp_dir().join(format!("keelson-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        append_locked(&path, &format!("{t} {i} {}", "x".repeat(500))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 400);
        assert!(text.lines().all(|l| l.ends_with(&"x".repeat(500))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
