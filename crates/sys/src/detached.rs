//! Starting a process outside the caller's process tree, so it outlives the caller: a double fork
//! (the intermediate child exits at once, so the process is reparented to init or the nearest
//! subreaper and never waits as the caller's zombie), a session and process group of its own
//! (setsid), no parent-death signal, optionally a cgroup v2 of its own, stdin from /dev/null and
//! stdout/stderr to a given file, every other descriptor closed, default signal dispositions and
//! mask, then a user, a working directory and an exec with an explicit environment. Failures
//! before the exec come back as the step that failed and its errno. Between fork and exec only
//! async-signal-safe system calls run and nothing is allocated. Not supervision: the caller
//! watches the process through the returned pidfd. Submodules: the pidfd, the cgroup, the user.

pub mod cgroup;
pub mod identity;
pub mod pidfd;

use identity::Identity;
use pidfd::Pidfd;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to start.
#[derive(Debug)]
pub struct Launch {
    /// The executable, as a path (no PATH search here).
    pub program: PathBuf,
    /// argv, argv[0] included.
    pub args: Vec<String>,
    /// The whole environment of the process (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Where it starts (entered after the user switch, so the user must be able to enter it).
    pub working_dir: PathBuf,
    /// The user to switch to; None keeps the caller's.
    pub identity: Option<Identity>,
    /// Receives stdout and stderr (open it with append).
    pub output: File,
    /// A cgroup's cgroup.procs, opened for writing, that the process joins before anything else.
    pub cgroup_procs: Option<File>,
}

/// A started process: a pidfd on it and its start time (field 22 of /proc/PID/stat), which tells
/// it apart from a later process with the same pid.
#[derive(Debug)]
pub struct Launched {
    pub pidfd: Pidfd,
    pub start_time: u64,
}

/// The step of a launch that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Building argv/envp (a NUL byte in a string).
    Arguments,
    /// The pipes and /dev/null the launch needs.
    Setup,
    Fork,
    Session,
    Cgroup,
    Output,
    Groups,
    Gid,
    Uid,
    WorkingDirectory,
    Exec,
    /// The process did not report back within the limit.
    Start,
}

impl Stage {
    const ALL: [Stage; 12] = [
        Stage::Arguments,
        Stage::Setup,
        Stage::Fork,
        Stage::Session,
        Stage::Cgroup,
        Stage::Output,
        Stage::Groups,
        Stage::Gid,
        Stage::Uid,
        Stage::WorkingDirectory,
        Stage::Exec,
        Stage::Start,
    ];

    fn code(self) -> u32 {
        Stage::ALL.iter().position(|s| *s == self).unwrap_or(0) as u32 + 1
    }

    fn from_code(code: u32) -> Stage {
        let index = code.saturating_sub(1) as usize;
        Stage::ALL.get(index).copied().unwrap_or(Stage::Start)
    }

    fn describe(self) -> &'static str {
        match self {
            Stage::Arguments => "prepare the arguments",
            Stage::Setup => "prepare the launch",
            Stage::Fork => "fork",
            Stage::Session => "start a session (setsid)",
            Stage::Cgroup => "join its cgroup",
            Stage::Output => "redirect stdin/stdout/stderr",
            Stage::Groups => "set supplementary groups",
            Stage::Gid => "set the group id",
            Stage::Uid => "set the user id",
            Stage::WorkingDirectory => "enter the working directory",
            Stage::Exec => "execute the program",
            Stage::Start => "start",
        }
    }
}

/// A launch that failed: the step and the error.
#[derive(Debug)]
pub struct LaunchError {
    pub stage: Stage,
    pub error: io::Error,
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot {}: {}", self.stage.describe(), self.error)
    }
}

impl std::error::Error for LaunchError {}

fn failed(stage: Stage) -> impl FnOnce(io::Error) -> LaunchError {
    move |error| LaunchError { stage, error }
}

/// Starts `launch` detached and returns once it has executed its program (or failed to), waiting
/// at most `limit` for that.
pub fn launch(launch: &Launch, limit: Duration) -> Result<Launched, LaunchError> {
    let deadline = Instant::now() + limit;
    let image = Image::build(launch).map_err(failed(Stage::Arguments))?;
    let fds = Fds::open(launch).map_err(failed(Stage::Setup))?;
    let raw = fds.raw(&image);
    // SAFETY: fork in a possibly multi-threaded process: the child runs only `intermediate`, which
    // makes async-signal-safe system calls on memory prepared above (no allocation, no locks) and
    // ends in _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(failed(Stage::Fork)(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: in the child of fork; see above.
        unsafe { intermediate(&raw) }
    }
    let Fds {
        report, release, ..
    } = fds;
    let intermediate = Intermediate {
        pid,
        release: Some(release.parent),
    };
    drop(report.child);
    drop(release.child);
    let reader = Reports { fd: report.parent };
    finish(intermediate, &reader, deadline)
}

/// After the fork, in the caller: the grandchild's pid, a pidfd on it (taken while the
/// intermediate still lives, so the pid cannot have been reused), the release of the
/// intermediate, then the grandchild's verdict: EOF on the report pipe (its exec closed it) or
/// a failed step.
fn finish(
    mut intermediate: Intermediate,
    reports: &Reports,
    deadline: Instant,
) -> Result<Launched, LaunchError> {
    let pid = match reports.next(deadline).map_err(failed(Stage::Start))? {
        Report::Pid(pid) => pid,
        Report::Failed(stage, errno) => {
            return Err(failed(stage)(io::Error::from_raw_os_error(errno)))
        }
        Report::Closed => {
            return Err(failed(Stage::Fork)(io::Error::other(
                "the intermediate process ended without a word",
            )))
        }
    };
    let pidfd = Pidfd::open(pid).map_err(failed(Stage::Start))?;
    let start_time = start_time(pid).map_err(failed(Stage::Start))?;
    intermediate.release_and_reap();
    match reports.next(deadline) {
        Ok(Report::Closed) => Ok(Launched { pidfd, start_time }),
        Ok(Report::Failed(stage, errno)) => Err(failed(stage)(io::Error::from_raw_os_error(errno))),
        Ok(Report::Pid(_)) => Err(failed(Stage::Start)(io::Error::other(
            "a second pid report",
        ))),
        Err(e) => {
            // It hangs before its exec (a working directory on a dead mount): stop it.
            let _gone_or_going = pidfd.signal_group(nix::sys::signal::Signal::SIGKILL);
            Err(failed(Stage::Start)(e))
        }
    }
}

/// The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn start_time(pid: u32) -> io::Result<u64> {
    let fields = crate::process::stat_fields(&format!("/proc/{pid}/stat"))?;
    // stat_fields starts at field 3 (state), so field 22 is index 19.
    fields
        .get(19)
        .and_then(|f| f.parse::<u64>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/stat: no start time"),
            )
        })
}

/// Whether `pid` is a live (not zombie) process that started at `start_time`: the same process
/// as one seen before, not a later one that reuses its pid.
pub fn is_same_process(pid: u32, start_time: u64) -> bool {
    let Ok(fields) = crate::process::stat_fields(&format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = fields.first().map(String::as_str) == Some("Z");
    !zombie && fields.get(19).and_then(|f| f.parse::<u64>().ok()) == Some(start_time)
}

/// argv, envp and paths as C strings, and the pointer arrays execve takes, built before the fork.
struct Image {
    program: CString,
    working_dir: CString,
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    groups: Vec<libc::gid_t>,
    identity: Option<(libc::uid_t, libc::gid_t)>,
}

impl Image {
    fn build(launch: &Launch) -> io::Result<Image> {
        let c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("NUL byte in {:?}", String::from_utf8_lossy(bytes)),
                )
            })
        };
        let args = launch
            .args
            .iter()
            .map(|a| c(a.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let env = launch
            .env
            .iter()
            .map(|(k, v)| c(format!("{k}={v}").as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let pointers = |strings: &[CString]| {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Ok(Image {
            program: c(launch.program.as_os_str().as_bytes())?,
            working_dir: c(OsStr::as_bytes(launch.working_dir.as_os_str()))?,
            argv: pointers(&args),
            envp: pointers(&env),
            _args: args,
            _env: env,
            groups: launch
                .identity
                .as_ref()
                .map(|i| i.groups.clone())
                .unwrap_or_default(),
            identity: launch.identity.as_ref().map(|i| (i.uid, i.gid)),
        })
    }
}

/// Both ends of one channel: `parent` stays with the caller, `child` goes to the children.
struct Pair {
    parent: OwnedFd,
    child: OwnedFd,
}

/// The descriptors of a launch, each above the standard three (so the child's dup2 onto 0..2
/// cannot clobber one) and close-on-exec.
struct Fds {
    dev_null: OwnedFd,
    output: OwnedFd,
    cgroup: Option<OwnedFd>,
    /// child -> caller: the grandchild's pid (from the intermediate) or a failed step.
    report: Pair,
    /// caller -> intermediate: "you may exit now" (a socket, so a send never raises SIGPIPE).
    release: Pair,
}

impl Fds {
    fn open(launch: &Launch) -> io::Result<Fds> {
        let dev_null = File::options().read(true).write(true).open("/dev/null")?;
        let (report_read, report_write) = pipe()?;
        let (release_parent, release_child) = socket_pair()?;
        Ok(Fds {
            dev_null: above_stdio(dev_null.as_fd())?,
            output: above_stdio(launch.output.as_fd())?,
            cgroup: launch
                .cgroup_procs
                .as_ref()
                .map(|f| above_stdio(f.as_fd()))
                .transpose()?,
            report: Pair {
                parent: above_stdio(report_read.as_fd())?,
                child: above_stdio(report_write.as_fd())?,
            },
            release: Pair {
                parent: above_stdio(release_parent.as_fd())?,
                child: above_stdio(release_child.as_fd())?,
            },
        })
    }

    fn raw<'a>(&self, image: &'a Image) -> Raw<'a> {
        Raw {
            image,
            dev_null: self.dev_null.as_raw_fd(),
            output: self.output.as_raw_fd(),
            cgroup: self.cgroup.as_ref().map_or(-1, |f| f.as_raw_fd()),
            report_read: self.report.parent.as_raw_fd(),
            report_write: self.report.child.as_raw_fd(),
            release_send: self.release.parent.as_raw_fd(),
            release_wait: self.release.child.as_raw_fd(),
        }
    }
}

/// What the children use: raw numbers and pointers only.
struct Raw<'a> {
    image: &'a Image,
    dev_null: RawFd,
    output: RawFd,
    cgroup: RawFd,
    report_read: RawFd,
    report_write: RawFd,
    release_send: RawFd,
    release_wait: RawFd,
}

/// A duplicate of `fd` numbered 3 or more, close-on-exec.
fn above_stdio(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a borrowed, open descriptor returns a new one or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just created and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// One 8-byte message on the report pipe (a pipe write of it is atomic).
#[repr(C)]
#[derive(Clone, Copy)]
struct Wire {
    kind: u32,
    value: i32,
}

/// `Wire::kind` of the intermediate's pid message; other kinds are a `Stage`'s code.
const KIND_PID: u32 = 0;

enum Report {
    Pid(u32),
    Failed(Stage, i32),
    /// Every writer closed its end: the grandchild has executed its program.
    Closed,
}

/// The caller's end of the report pipe.
struct Reports {
    fd: OwnedFd,
}

impl Reports {
    /// The next report, waiting until `deadline` (TimedOut past it).
    fn next(&self, deadline: Instant) -> io::Result<Report> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut buf = [0u8; 8];
        let mut got = 0;
        // Bounded by the deadline: every turn waits at most what is left of it.
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the process did not execute its program in time",
                ));
            }
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(Report::Closed),
                Ok(0) => return Err(io::Error::other("a torn report")),
                Ok(n) => got += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let kind = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let value = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        Ok(match kind {
            KIND_PID => Report::Pid(value as u32),
            code => Report::Failed(Stage::from_code(code), value),
        })
    }
}

/// The intermediate child, seen from the caller: released and reaped once (on drop at the latest).
struct Intermediate {
    pid: libc::pid_t,
    release: Option<OwnedFd>,
}

impl Intermediate {
    fn release_and_reap(&mut self) {
        let Some(release) = self.release.take() else {
            return;
        };
        // SAFETY: send of one byte from a live buffer on our socket; MSG_NOSIGNAL: no SIGPIPE.
        // A failed send (the intermediate is gone) is fine: closing the socket releases it too.
        unsafe {
            libc::send(
                release.as_raw_fd(),
                b"1".as_ptr().cast(),
                1,
                libc::MSG_NOSIGNAL,
            )
        };
        drop(release);
        // The intermediate exits right after the release: reap it (bounded by that exit).
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a pointer to a live int.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break; // reaped, or ECHILD (someone set SIGCHLD to SIG_IGN)
            }
        }
    }
}

impl Drop for Intermediate {
    fn drop(&mut self) {
        self.release_and_reap();
    }
}

/// The intermediate child: forks the grandchild, reports its pid, waits to be released, exits.
///
/// # Safety
/// Only in the child of fork; `raw` must point to memory prepared before the fork.
unsafe fn intermediate(raw: &Raw<'_>) -> ! {
    // SAFETY: the whole body makes async-signal-safe system calls only (close, fork, write, read, _exit)
    // on descriptors and memory prepared before the fork; nothing is allocated.
    unsafe {
        libc::close(raw.report_read);
        libc::close(raw.release_send);
        let pid = libc::fork();
        if pid == 0 {
            grandchild(raw);
        }
        if pid < 0 {
            report(raw.report_write, Stage::Fork.code(), errno());
            libc::_exit(1);
        }
        report(raw.report_write, KIND_PID, pid);
        let mut byte = 0u8;
        // Bounded: ends on the caller's byte, or on EOF once the caller's end is closed.
        while libc::read(raw.release_wait, (&mut byte as *mut u8).cast(), 1) < 0
            && errno() == libc::EINTR
        {}
        libc::_exit(0)
    }
}

/// The grandchild: becomes the detached process and executes the program.
///
/// # Safety
/// Only in the child of the intermediate's fork; as for `intermediate`.
unsafe fn grandchild(raw: &Raw<'_>) -> ! {
    let image = raw.image;
    // SAFETY: the whole body makes async-signal-safe system calls only (setsid, prctl, write, sigaction,
    // sigprocmask, dup2, close_range, setgroups, setgid, setuid, chdir, execve, _exit) on
    // descriptors and memory prepared before the fork; nothing is allocated.
    unsafe {
        let fail = |stage: Stage| -> ! {
            report(raw.report_write, stage.code(), errno());
            libc::_exit(127)
        };
        libc::close(raw.release_wait);
        if libc::setsid() < 0 {
            fail(Stage::Session);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
        if raw.cgroup >= 0 && libc::write(raw.cgroup, b"0".as_ptr().cast(), 1) != 1 {
            fail(Stage::Cgroup);
        }
        default_signals();
        if libc::dup2(raw.dev_null, 0) < 0
            || libc::dup2(raw.output, 1) < 0
            || libc::dup2(raw.output, 2) < 0
        {
            fail(Stage::Output);
        }
        close_all_but(raw.report_write);
        if let Some((uid, gid)) = image.identity {
            if libc::setgroups(image.groups.len(), image.groups.as_ptr()) != 0 {
                fail(Stage::Groups);
            }
            if libc::setgid(gid) != 0 {
                fail(Stage::Gid);
            }
            if libc::setuid(uid) != 0 {
                fail(Stage::Uid);
            }
        }
        if libc::chdir(image.working_dir.as_ptr()) != 0 {
            fail(Stage::WorkingDirectory);
        }
        libc::execve(
            image.program.as_ptr(),
            image.argv.as_ptr(),
            image.envp.as_ptr(),
        );
        fail(Stage::Exec)
    }
}

/// Every signal back to its default action, none blocked (an ignored signal stays ignored across
/// exec: the Rust runtime ignores SIGPIPE, and a host may block some). The raw rt_sigaction
/// system call, because libc's wrapper refuses the numbers it reserves for itself (32, 33), which
/// may be ignored too.
///
/// # Safety
/// Only between fork and exec (it changes the whole process's dispositions).
unsafe fn default_signals() {
    // The kernel's struct sigaction, all zero: SIG_DFL, no flags, no restorer, an empty mask.
    let default_action = [0u64; 4];
    let mask_bytes = std::mem::size_of::<u64>();
    // SAFETY: rt_sigaction reads the zeroed structure above (large enough for every layout) and
    // writes nothing (null old action); errors for SIGKILL and SIGSTOP are ignored.
    // sigprocmask takes a stack-allocated, emptied set.
    unsafe {
        for signal in 1..=64 {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                mask_bytes,
            );
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// Closes every descriptor above 2 except `keep` (which is close-on-exec).
///
/// # Safety
/// Only between fork and exec.
unsafe fn close_all_but(keep: RawFd) {
    let keep = keep as libc::c_uint;
    // SAFETY: close_range closes descriptor numbers only; a failure (an old kernel) leaves the
    // close-on-exec ones to the exec.
    unsafe {
        if keep > 3 {
            libc::close_range(3, keep - 1, 0);
        }
        libc::close_range(keep + 1, libc::c_uint::MAX, 0);
    }
}

/// Writes one report (8 bytes, atomic on a pipe).
///
/// # Safety
/// Async-signal-safe; `fd` is the report pipe's write end.
unsafe fn report(fd: RawFd, kind: u32, value: i32) {
    let wire = Wire { kind, value };
    // SAFETY: write of a live, 8-byte stack value.
    unsafe {
        libc::write(
            fd,
            (&wire as *const Wire).cast(),
            std::mem::size_of::<Wire>(),
        )
    };
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot; reading it is async-signal-safe.
    unsafe { *libc::__errno_location() }
}

#[cfg(test)]
mod tests;
