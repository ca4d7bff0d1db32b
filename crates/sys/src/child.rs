//! Prepares a child process before exec: places inherited descriptors at fixed numbers, asks the
//! kernel to SIGKILL the child when its parent dies, and puts it in its own process group. Not
//! spawning or supervision: callers run the `Command`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Arranges for `fds[i].0` to appear as `fds[i].1` in the child (without close-on-exec) and for the
/// child to receive SIGKILL if the parent thread that spawned it dies. Targets must be >= 3 and
/// distinct. The `OwnedFd`s are moved into the pre-exec closure and closed in the parent when the
/// `Command` is dropped.
pub fn prepare(cmd: &mut Command, fds: Vec<(OwnedFd, RawFd)>) {
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe syscalls
    // (prctl, getppid, fcntl, dup2); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may already be gone; then nobody would ever kill us.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("parent died before exec"));
            }
            // First move every source above the targets' range so no dup2 clobbers a later source.
            let mut moved = [(-1, -1); 8];
            for (i, (fd, target)) in fds.iter().enumerate().take(8) {
                let high = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 64);
                if high < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = (high, *target);
            }
            for (high, target) in moved.iter().take(fds.len()) {
                if libc::dup2(*high, *target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(*high);
            }
            Ok(())
        });
    }
}

/// Makes the child a session leader (setsid) so it outlives the terminal and the process that
/// started it; used by `keelson node start` for the node service.
pub fn detach(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
