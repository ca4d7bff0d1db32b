//! Small process-level primitives: signals to other processes, thread ids, parent-death signal,
//! core-dump limit, and /proc queries for tests and reports. Not spawning (child.rs).

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Sends `signal` to process `pid`. A process that is already gone is not an error.
pub fn kill(pid: u32, signal: Signal) -> io::Result<()> {
    match nix::sys::signal::kill(Pid::from_raw(pid as i32), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sends `signal` to every process of process group `pgid`. A group that is gone is not an error.
pub fn kill_group(pgid: u32, signal: Signal) -> io::Result<()> {
    match nix::sys::signal::killpg(Pid::from_raw(pgid as i32), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The calling thread's kernel thread id.
pub fn gettid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

/// The calling process id.
pub fn getpid() -> u32 {
    std::process::id()
}

/// Asks for SIGKILL when the parent dies (for a process that was not prepared by child.rs).
pub fn set_parent_death_kill() -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL)).map_err(io::Error::from)
}

/// Turns core dumps off for this process (a crashing plugin should not litter the disk).
pub fn disable_core_dumps() -> io::Result<()> {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(io::Error::from)
}

/// Number of open file descriptors of this process (from /proc/self/fd).
pub fn open_fd_count() -> io::Result<usize> {
    // One entry is the directory handle read_dir itself holds.
    Ok(std::fs::read_dir("/proc/self/fd")?
        .count()
        .saturating_sub(1))
}

/// Child processes of `pid` that are zombies (state Z), from /proc.
pub fn zombie_children(pid: u32) -> io::Result<Vec<u32>> {
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fields) = stat_fields(&format!("/proc/{child}/stat")) else {
            continue;
        };
        let state = fields.first().map(String::as_str);
        let ppid = fields.get(1).and_then(|p| p.parse::<u32>().ok());
        if state == Some("Z") && ppid == Some(pid) {
            zombies.push(child);
        }
    }
    Ok(zombies)
}

/// Resident set size of `pid` in bytes (VmRSS from /proc/PID/status).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS in /proc status"))
}

/// Whether process `pid` exists (and is not a zombie).
pub fn is_alive(pid: u32) -> bool {
    match stat_fields(&format!("/proc/{pid}/stat")) {
        Ok(fields) => fields.first().map(String::as_str) != Some("Z"),
        Err(_) => false,
    }
}

/// The fields of a `/proc/…/stat` file after `pid (comm)`: state is field 0, ppid 1, utime 11,
/// stime 12. The command name may contain spaces and parentheses, so it is skipped by its last ')'.
pub fn stat_fields(path: &str) -> io::Result<Vec<String>> {
    let stat = std::fs::read_to_string(path)?;
    let after = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: no ')'")))?;
    Ok(after.split_whitespace().map(str::to_string).collect())
}

/// Ends the process at once with `code`: no atexit handlers, no destructors, no waiting for threads
/// (a hung plugin thread must not keep a doomed host alive).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Sets close-on-exec on `fd` so processes a plugin starts do not inherit it.
pub fn set_cloexec(fd: impl AsFd) -> io::Result<()> {
    add_fd_flag(
        fd.as_fd().as_raw_fd(),
        libc::F_GETFD,
        libc::F_SETFD,
        libc::FD_CLOEXEC,
    )
}

/// Takes ownership of an inherited descriptor number (e.g. fd 3 from the parent), setting
/// close-on-exec on it. Fails if `fd` is not open.
///
/// # Safety
///
/// Nothing else in this process may own or close `fd`: the returned `OwnedFd` closes it on drop.
pub unsafe fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    add_fd_flag(fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
    // SAFETY: `fd` is open (fcntl succeeded) and, per this function's contract, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Puts `fd` in non-blocking mode.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    add_fd_flag(
        fd.as_fd().as_raw_fd(),
        libc::F_GETFL,
        libc::F_SETFL,
        libc::O_NONBLOCK,
    )
}

/// Reads one of `fd`'s flag words with `get` and writes it back with `flag` added with `set`.
fn add_fd_flag(fd: RawFd, get: libc::c_int, set: libc::c_int, flag: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl on an fd number with a flag-word command; an invalid fd gives EBADF, reported.
    let flags = unsafe { libc::fcntl(fd, get) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, set, flags | flag) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes an exclusive, non-blocking `flock` on `path` (created if missing) and returns the open file;
/// the lock lasts as long as the file stays open. `WouldBlock` means another process holds it.
pub fn lock_exclusive(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o640)
        .open(path)?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Sets the process's file-mode creation mask (e.g. 0o027: nothing it creates is readable by others
/// or writable by its group) and returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    use nix::sys::stat::{umask, Mode};
    umask(Mode::from_bits_truncate(mask as libc::mode_t)).bits() as u32
}

/// The effective user id of this process.
pub fn geteuid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Raises the soft open-file limit to the hard limit (a node with thousands of resources holds a
/// socket per resource); returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard.max(soft))
}

/// CPU time (user + system) process `pid` has used so far, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> io::Result<std::time::Duration> {
    let fields = stat_fields(&format!("/proc/{pid}/stat"))?;
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(std::time::Duration::from_millis(
        (ticks(11) + ticks(12)) * 1000 / hz,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn stat_fields_skip_the_command_name() {
        let fields = super::stat_fields(&format!("/proc/{}/stat", std::process::id())).unwrap();
        assert!(matches!(fields[0].as_str(), "R" | "S"), "{fields:?}");
        assert!(fields[1].parse::<u32>().is_ok(), "ppid: {fields:?}");
        assert!(super::stat_fields("/proc/self/no-such-file").is_err());
    }

    #[test]
    fn typed_fd_flags_are_set_and_adopting_a_closed_fd_fails() {
        use std::os::fd::{AsRawFd, IntoRawFd};
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        super::set_nonblocking(&a).unwrap();
        let flags = nix::fcntl::fcntl(a.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_ne!(flags & libc::O_NONBLOCK, 0);
        let raw = b.into_raw_fd();
        // SAFETY: `raw` was just released by `b`; nothing else owns it.
        let adopted = unsafe { super::adopt_fd(raw) }.unwrap();
        assert_eq!(adopted.as_raw_fd(), raw);
        drop(adopted);
        // SAFETY: `raw` is closed now, so adopting it must fail and owns nothing.
        assert!(unsafe { super::adopt_fd(raw) }.is_err());
    }

    #[test]
    fn killing_a_process_that_is_gone_is_not_an_error() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        super::kill(pid, super::Signal::SIGKILL).unwrap();
    }
}
