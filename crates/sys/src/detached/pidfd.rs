//! A process file descriptor (pidfd_open(2)) for a process that is not our child: whether it has
//! exited (the fd polls readable), waiting for that with a deadline or a wake-up fd, signalling it
//! or its process group without a pid-reuse race, and its exit status where the kernel still has
//! it. Not spawning (detached.rs) and not reaping: the process's parent reaps it.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A handle on one process that stays valid (refers to that process, never to a later one with
/// the same pid) for as long as it is open.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: u32,
}

/// How a process ended, as far as the kernel still knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called exit with this code.
    Code(i32),
    /// A signal ended it (number, and whether it dumped core).
    Signal(i32, bool),
    /// It ended, but its status is gone (reaped by its parent, on a kernel without pidfd exit info).
    Unknown,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "status {code}"),
            Exit::Signal(sig, core) => {
                let name = Signal::try_from(*sig).map(|s| s.as_str()).unwrap_or("?");
                let core = if *core { ", core dumped" } else { "" };
                write!(f, "signal {sig} ({name}{core})")
            }
            Exit::Unknown => write!(f, "an unknown status (already reaped by its parent)"),
        }
    }
}

impl Exit {
    /// Decodes a wait(2) status word.
    pub fn from_wait_status(status: i32) -> Exit {
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Exit::Signal(libc::WTERMSIG(status), libc::WCOREDUMP(status))
        } else {
            Exit::Unknown
        }
    }
}

/// What ended a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// The process exited.
    Exited,
    /// The wake-up fd became readable or hung up.
    Woken,
    /// The deadline passed first.
    TimedOut,
}

impl Pidfd {
    /// Opens a pidfd for `pid` (close-on-exec). ESRCH: no such process.
    pub fn open(pid: u32) -> io::Result<Pidfd> {
        let raw_pid = libc::pid_t::try_from(pid)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("pid {pid}")))?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw_pid, 0 as libc::c_uint) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a new descriptor that nothing else owns (pidfds are
        // close-on-exec from birth).
        let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        Ok(Pidfd { fd, pid })
    }

    /// The pid the handle was opened for.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process has exited (it may still be a zombie waiting for its parent).
    pub fn has_exited(&self) -> io::Result<bool> {
        Ok(self.wait_exit(Duration::ZERO)? == Woke::Exited)
    }

    /// Waits up to `limit` for the process to exit: `Exited` or `TimedOut`.
    pub fn wait_exit(&self, limit: Duration) -> io::Result<Woke> {
        self.wait(None, Some(limit))
    }

    /// Waits until the process exits, `wake` becomes readable (or its other end is closed), or
    /// `limit` passes (None: no deadline). The exit wins when both happened.
    pub fn wait_exit_or(&self, wake: BorrowedFd<'_>, limit: Option<Duration>) -> io::Result<Woke> {
        self.wait(Some(wake), limit)
    }

    fn wait(&self, wake: Option<BorrowedFd<'_>>, limit: Option<Duration>) -> io::Result<Woke> {
        let deadline = limit.map(|l| Instant::now() + l);
        // Bounded: each turn either returns or was interrupted by a signal (EINTR), and the
        // remaining time shrinks every turn.
        loop {
            let mut fds = vec![PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            if let Some(wake) = wake {
                fds.push(PollFd::new(wake, PollFlags::POLLIN));
            }
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => poll_timeout(d.saturating_duration_since(Instant::now())),
            };
            match poll(&mut fds, timeout) {
                Ok(0) => return Ok(Woke::TimedOut),
                Ok(_) => {
                    let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                    if ready(&fds[0]) {
                        return Ok(Woke::Exited);
                    }
                    return Ok(Woke::Woken);
                }
                Err(nix::errno::Errno::EINTR) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(Woke::TimedOut);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends `signal` to the process. One that has exited already is not an error.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        self.send(signal, 0)
    }

    /// Sends `signal` to the process group of the process (one started by `detached::launch` is
    /// its group's leader), through the pidfd where the kernel can (Linux 6.9+), so a reused pid is
    /// never hit while the leader lives; after the leader has exited, to the group by its id
    /// (the id stays reserved while any member is left). A group that is gone is not an error.
    pub fn signal_group(&self, signal: Signal) -> io::Result<()> {
        match self.send(signal, libc::PIDFD_SIGNAL_PROCESS_GROUP) {
            Ok(()) if !self.has_exited()? => Ok(()),
            Ok(()) => crate::process::kill_group(self.pid, signal),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                crate::process::kill_group(self.pid, signal)
            }
            Err(e) => Err(e),
        }
    }

    fn send(&self, signal: Signal, flags: libc::c_uint) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with our open pidfd, a valid signal number, no siginfo (null)
        // and flags; no memory is written.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                flags,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ESRCH) => Ok(()),
            _ => Err(err),
        }
    }

    /// How the process ended: None while it runs. Asked of the pidfd itself (Linux 6.15+ keeps the
    /// status with it, even after the parent reaped the process), else read from /proc while the
    /// process is still a zombie; `Exit::Unknown` when neither has it.
    pub fn exit_status(&self) -> io::Result<Option<Exit>> {
        if !self.has_exited()? {
            return Ok(None);
        }
        if let Some(status) = self.pidfd_exit_info() {
            return Ok(Some(Exit::from_wait_status(status)));
        }
        Ok(Some(zombie_exit_code(self.pid).unwrap_or(Exit::Unknown)))
    }

    /// The wait status from PIDFD_GET_INFO with PIDFD_INFO_EXIT, when the kernel gives it.
    fn pidfd_exit_info(&self) -> Option<i32> {
        // SAFETY: pidfd_info is plain integers; all-zero is a valid value.
        let mut info: libc::pidfd_info = unsafe { std::mem::zeroed() };
        info.mask = libc::PIDFD_INFO_EXIT as u64;
        // SAFETY: PIDFD_GET_INFO reads and writes one pidfd_info, whose size the request number
        // encodes, through the pointer we pass; `info` lives across the call.
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::PIDFD_GET_INFO as _,
                &mut info as *mut libc::pidfd_info,
            )
        };
        (rc == 0 && info.mask & libc::PIDFD_INFO_EXIT as u64 != 0).then_some(info.exit_code)
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The exit code field (52) of /proc/PID/stat of a zombie: its wait status.
fn zombie_exit_code(pid: u32) -> Option<Exit> {
    let fields = crate::process::stat_fields(&format!("/proc/{pid}/stat")).ok()?;
    if fields.first().map(String::as_str) != Some("Z") {
        return None;
    }
    // stat_fields starts at field 3 (state), so field 52 is index 49.
    let status = fields.get(49)?.parse::<i32>().ok()?;
    Some(Exit::from_wait_status(status))
}

/// A poll timeout for `left`, rounded up to whole milliseconds and capped at poll's maximum.
fn poll_timeout(left: Duration) -> PollTimeout {
    let ms = left.as_nanos().div_ceil(1_000_000);
    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::process::Command;

    #[test]
    fn a_running_process_has_not_exited_and_a_killed_one_reports_its_signal() {
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        let pidfd = Pidfd::open(child.id()).unwrap();
        assert!(!pidfd.has_exited().unwrap());
        assert_eq!(pidfd.exit_status().unwrap(), None);
        assert_eq!(
            pidfd.wait_exit(Duration::from_millis(20)).unwrap(),
            Woke::TimedOut
        );
        pidfd.signal(Signal::SIGKILL).unwrap();
        assert_eq!(
            pidfd.wait_exit(Duration::from_secs(10)).unwrap(),
            Woke::Exited
        );
        // Still a zombie (not reaped yet): /proc or the pidfd has the status.
        assert_eq!(
            pidfd.exit_status().unwrap(),
            Some(Exit::Signal(libc::SIGKILL, false))
        );
        child.wait().unwrap();
        // Reaped: only a kernel that keeps the status with the pidfd still knows it.
        let after = pidfd.exit_status().unwrap().unwrap();
        assert!(
            matches!(after, Exit::Signal(9, false) | Exit::Unknown),
            "{after:?}"
        );
        // Signalling an exited process is not an error.
        pidfd.signal(Signal::SIGTERM).unwrap();
    }

    #[test]
    fn an_exit_code_is_reported() {
        let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let pidfd = Pidfd::open(child.id()).unwrap();
        assert_eq!(
            pidfd.wait_exit(Duration::from_secs(10)).unwrap(),
            Woke::Exited
        );
        assert_eq!(pidfd.exit_status().unwrap(), Some(Exit::Code(7)));
        child.wait().unwrap();
    }

    #[test]
    fn a_wake_fd_ends_the_wait_and_so_does_closing_its_other_end() {
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        let pidfd = Pidfd::open(child.id()).unwrap();
        let (waker, wake) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut &waker, b"x").unwrap();
        assert_eq!(pidfd.wait_exit_or(wake.as_fd(), None).unwrap(), Woke::Woken);
        let (waker, wake) = UnixStream::pair().unwrap();
        drop(waker);
        assert_eq!(
            pidfd
                .wait_exit_or(wake.as_fd(), Some(Duration::from_secs(10)))
                .unwrap(),
            Woke::Woken
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_missing_process_cannot_be_opened() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let err = Pidfd::open(pid).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err}");
    }

    #[test]
    fn exits_read_well() {
        assert_eq!(Exit::Code(3).to_string(), "status 3");
        assert_eq!(Exit::Signal(9, false).to_string(), "signal 9 (SIGKILL)");
        assert_eq!(
            Exit::Signal(11, true).to_string(),
            "signal 11 (SIGSEGV, core dumped)"
        );
    }
}
