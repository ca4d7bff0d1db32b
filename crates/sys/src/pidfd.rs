//! Waiting for a child process to exit with a deadline, through a pidfd (pidfd_open + poll), so a
//! caller can hold a process it started to a time limit without polling. Not spawning, reaping or
//! killing (std's `Child` and process.rs do those).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A descriptor that becomes readable when process `pid` (a child of ours, not yet reaped) exits.
pub fn open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the process behind `pidfd` has exited or `deadline` passes; true when it exited.
/// Interrupted waits are resumed; the loop ends at the deadline at the latest.
pub fn wait_exit(pidfd: &OwnedFd, deadline: Instant) -> io::Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack, count 1, for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready > 0 {
            return Ok(true);
        }
        if ready == 0 {
            return Ok(false);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted || left == Duration::ZERO {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn an_exiting_child_is_seen_and_a_sleeping_one_times_out() {
        let mut quick = std::process::Command::new("true").spawn().unwrap();
        let fd = super::open(quick.id()).unwrap();
        assert!(super::wait_exit(&fd, Instant::now() + Duration::from_secs(10)).unwrap());
        quick.wait().unwrap();
        let mut slow = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = super::open(slow.id()).unwrap();
        let started = Instant::now();
        assert!(!super::wait_exit(&fd, started + Duration::from_millis(100)).unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
        slow.kill().unwrap();
        slow.wait().unwrap();
    }
}
