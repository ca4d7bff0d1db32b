//! A cgroup v2 directory of our own for a detached process and everything it forks: found under
//! the first cgroup2 mount of this mount namespace, created, joined by the child before exec (the
//! child writes "0" to cgroup.procs), emptied at once with cgroup.kill, and removed once empty. Not
//! resource limits (no controller is enabled) and not cgroup v1.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One cgroup v2 directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// Where cgroup v2 is mounted in this mount namespace (from /proc/self/mountinfo), if it is.
    pub fn v2_mount() -> io::Result<Option<PathBuf>> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")?;
        Ok(info.lines().find_map(cgroup2_mount_point))
    }

    /// Creates (or finds) `relative` under the cgroup2 mount `mount`, parents included.
    pub fn create(mount: &Path, relative: &Path) -> io::Result<Cgroup> {
        let dir = mount.join(relative);
        std::fs::create_dir_all(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("cgroup {}: {e}", dir.display())))?;
        Ok(Cgroup { dir })
    }

    /// The cgroup at `dir` (one created earlier, e.g. by a host that has since died).
    pub fn at(dir: PathBuf) -> Cgroup {
        Cgroup { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// cgroup.procs opened for writing, close-on-exec: a child that writes "0" to it joins.
    pub fn procs_for_join(&self) -> io::Result<File> {
        let path = self.dir.join("cgroup.procs");
        OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Whether any process is in the cgroup (or below it), from cgroup.events. A cgroup that is
    /// gone holds nothing.
    pub fn is_populated(&self) -> io::Result<bool> {
        match std::fs::read_to_string(self.dir.join("cgroup.events")) {
            Ok(events) => Ok(events.lines().any(|l| l.trim() == "populated 1")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// SIGKILLs every process in the cgroup at once (cgroup.kill, Linux 5.14+). False when this
    /// kernel has no cgroup.kill or the cgroup is gone.
    pub fn kill_all(&self) -> io::Result<bool> {
        let path = self.dir.join("cgroup.kill");
        match OpenOptions::new().write(true).open(&path) {
            Ok(mut file) => {
                file.write_all(b"1")
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }

    /// Waits up to `limit` for the cgroup to hold no process (woken by cgroup.events changes).
    pub fn wait_empty(&self, limit: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + limit;
        let events = match File::open(self.dir.join("cgroup.events")) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        // Bounded by the deadline: each turn waits at most what is left of it.
        loop {
            if !self.is_populated()? {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let ms = left.as_millis().clamp(1, 1000) as u16;
            let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Removes the cgroup directory (it must hold no process). One that is gone already is done.
    pub fn remove(&self) -> io::Result<()> {
        match std::fs::remove_dir(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("cgroup {}: {e}", self.dir.display()),
            )),
        }
    }

    /// The cgroup `pid` is in, relative to the v2 mount (from /proc/PID/cgroup's "0::" line).
    pub fn of_process(pid: u32) -> io::Result<Option<PathBuf>> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(|p| PathBuf::from(p.trim_start_matches('/'))))
    }
}

/// The mount point of a mountinfo line whose filesystem type is cgroup2.
fn cgroup2_mount_point(line: &str) -> Option<PathBuf> {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
    let (left, right) = line.split_once(" - ")?;
    if right.split_whitespace().next()? != "cgroup2" {
        return None;
    }
    let point = left.split_whitespace().nth(4)?;
    Some(PathBuf::from(unescape_octal(point)))
}

/// mountinfo writes space, tab, newline and backslash as \ooo.
/// A mountinfo field with its octal escapes (`\040` for a space) undone; the disk plugin's
/// mountinfo reader uses it too.
pub fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_line_of_mountinfo_gives_its_mount_point() {
        let hybrid = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
        assert_eq!(
            cgroup2_mount_point(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu";
        assert_eq!(cgroup2_mount_point(v1), None);
        let shared = "30 22 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            cgroup2_mount_point(shared),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(unescape_octal(r"/a\040b"), "/a b");
    }

    #[test]
    fn a_cgroup_that_is_gone_is_empty_and_removed() {
        let gone = Cgroup::at(PathBuf::from("/nonexistent/keelson-cgroup"));
        assert!(!gone.is_populated().unwrap());
        assert!(gone.wait_empty(Duration::from_millis(10)).unwrap());
        assert!(!gone.kill_all().unwrap());
        gone.remove().unwrap();
    }
}
