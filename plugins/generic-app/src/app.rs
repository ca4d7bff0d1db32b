//! One app process of a resource: started detached (keelson_sys::detached) with its output
//! appended to the resource's log file and, where cgroup v2 is writable, in a cgroup of its own;
//! found again from the pid file (same pid and start time) by a later host; stopped with SIGTERM
//! to its process group, then SIGKILL (and cgroup.kill) after the stop timeout. Not the policy of
//! when (lib.rs) and not health probes (health.rs).

use crate::config::{CommandLine, Config};
use crate::pidfile::{PidFile, PidRecord};
use keelson_plugin::Error;
use keelson_sys::detached::cgroup::Cgroup;
use keelson_sys::detached::pidfd::{Exit, Pidfd, Woke};
use keelson_sys::detached::{self, Launch, Stage};
use keelson_sys::Signal;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a SIGKILLed process (or cgroup) may take to be gone before that is an error.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A running (or just exited) app process of ours.
#[derive(Debug)]
pub struct App {
    pub pidfd: Arc<Pidfd>,
    pub start_time: u64,
    pub cgroup: Option<Cgroup>,
}

/// The log file every app process of the resource appends to.
pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("app.log")
}

/// Opens the log for appending (created 0640).
pub fn open_log(state_dir: &Path) -> Result<File, Error> {
    let path = log_path(state_dir);
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(&path)
        .map_err(|e| Error::new(format!("log file {}: {e}", path.display())))
}

/// The last non-empty line of the log (at most 200 characters), for error messages.
pub fn last_log_line(state_dir: &Path) -> Option<String> {
    let text = std::fs::read(log_path(state_dir)).ok()?;
    let tail = &text[text.len().saturating_sub(4096)..];
    let text = String::from_utf8_lossy(tail);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.chars().take(200).collect())
}

impl App {
    pub fn pid(&self) -> u32 {
        self.pidfd.pid()
    }

    fn record(&self) -> PidRecord {
        PidRecord {
            pid: self.pid(),
            start_time: self.start_time,
            cgroup: self.cgroup.as_ref().map(|c| c.dir().to_path_buf()),
        }
    }

    /// The process the pid file names, if it is still that process (pid and start time match and
    /// it is no zombie): a pidfd taken on it, checked again after opening (a pid reused between
    /// the check and the open is caught).
    pub fn adopt(record: &PidRecord) -> Option<App> {
        if !detached::is_same_process(record.pid, record.start_time) {
            return None;
        }
        let pidfd = Pidfd::open(record.pid).ok()?;
        if !detached::is_same_process(record.pid, record.start_time) {
            return None;
        }
        Some(App {
            pidfd: Arc::new(pidfd),
            start_time: record.start_time,
            cgroup: record.cgroup.clone().map(Cgroup::at),
        })
    }

    /// Starts `command` for the resource and records it in the pid file (a process that cannot
    /// be recorded is killed: an app we could not find again must not run).
    pub fn start(
        config: &Config,
        command: &CommandLine,
        state_dir: &Path,
        resource: &str,
        cgroup: Option<Cgroup>,
    ) -> Result<App, Error> {
        let identity = config.identity()?;
        let env = config.environment_for(&identity, resource);
        let program = config.program(command, &env, "CommandLine")?;
        let mut log = open_log(state_dir)?;
        writeln!(log, "keelson: starting {}", command.line)
            .map_err(|e| Error::new(format!("log file: {e}")))?;
        let cgroup_procs = match &cgroup {
            Some(c) => Some(c.procs_for_join().map_err(|e| Error::new(e.to_string()))?),
            None => None,
        };
        let launch = Launch {
            program,
            args: command.words.clone(),
            env,
            working_dir: config.working_dir.clone(),
            identity: config.user.is_some().then_some(identity),
            output: log,
            cgroup_procs,
        };
        let limit = config.start_timeout.max(Duration::from_secs(10));
        let launched =
            detached::launch(&launch, limit).map_err(|e| launch_error(config, command, e))?;
        let app = App {
            pidfd: Arc::new(launched.pidfd),
            start_time: launched.start_time,
            cgroup,
        };
        if let Err(e) = PidFile::in_dir(state_dir).write(&app.record()) {
            let killed = match app.kill() {
                Ok(()) => "it was killed".to_string(),
                Err(k) => format!("killing it failed too: {}", k.message()),
            };
            return Err(Error::new(format!(
                "cannot record process {} in its pid file ({e}); {killed}",
                app.pid()
            )));
        }
        Ok(app)
    }

    /// Whether the process has exited, and how.
    pub fn exit(&self) -> Result<Option<Exit>, Error> {
        self.pidfd
            .exit_status()
            .map_err(|e| Error::new(format!("process {}: {e}", self.pid())))
    }

    /// Graceful stop: SIGTERM to the process group, up to `timeout` for the process to exit, then
    /// SIGKILL to the group and its cgroup. Whatever is left of the group is killed once the
    /// process has exited. Returns whether it took the SIGKILL.
    pub fn stop(&self, timeout: Duration, note: &mut dyn FnMut(&str)) -> Result<bool, Error> {
        let pid = self.pid();
        self.pidfd
            .signal_group(Signal::SIGTERM)
            .map_err(|e| Error::new(format!("SIGTERM to process group {pid}: {e}")))?;
        let exited = self
            .pidfd
            .wait_exit(timeout)
            .map_err(|e| Error::new(format!("process {pid}: {e}")))?;
        let forced = exited == Woke::TimedOut;
        if forced {
            note(&format!(
                "process {pid} did not exit within StopTimeout ({} ms) of SIGTERM: SIGKILL",
                timeout.as_millis()
            ));
        }
        self.kill()?;
        Ok(forced)
    }

    /// SIGKILL to the process group and everything in the cgroup, then waits (bounded) until the
    /// process has exited and the cgroup is empty, and removes the cgroup.
    pub fn kill(&self) -> Result<(), Error> {
        let pid = self.pid();
        self.pidfd
            .signal_group(Signal::SIGKILL)
            .map_err(|e| Error::new(format!("SIGKILL to process group {pid}: {e}")))?;
        if let Some(cgroup) = &self.cgroup {
            kill_cgroup(cgroup)?;
        }
        match self.pidfd.wait_exit(KILL_WAIT) {
            Ok(Woke::Exited) => Ok(()),
            Ok(_) => Err(Error::new(format!(
                "process {pid} was still there {} s after SIGKILL",
                KILL_WAIT.as_secs()
            ))),
            Err(e) => Err(Error::new(format!("process {pid}: {e}"))),
        }
    }
}

/// Kills everything left in `cgroup` and removes it (bounded by KILL_WAIT).
pub fn kill_cgroup(cgroup: &Cgroup) -> Result<(), Error> {
    let dir = cgroup.dir().display().to_string();
    let fail = |e: std::io::Error| Error::new(format!("cgroup {dir}: {e}"));
    if cgroup.is_populated().map_err(fail)? {
        cgroup.kill_all().map_err(fail)?;
        if !cgroup.wait_empty(KILL_WAIT).map_err(fail)? {
            return Err(Error::new(format!(
                "cgroup {dir} still holds processes {} s after cgroup.kill",
                KILL_WAIT.as_secs()
            )));
        }
    }
    cgroup.remove().map_err(fail)
}

/// The cgroup a new process of the resource gets: keelson.slice/app-<name>-<hash>.scope under
/// the cgroup2 mount, the hash being of the state directory (unique per node data directory and
/// resource). None when there is no cgroup2 mount or it is not writable (the reason is returned
/// for a log line).
pub fn new_cgroup(state_dir: &Path, resource: &str) -> Result<Option<Cgroup>, String> {
    let Some(mount) = Cgroup::v2_mount().map_err(|e| format!("mountinfo: {e}"))? else {
        return Ok(None);
    };
    let name: String = resource
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let scope = format!(
        "app-{name}-{:016x}.scope",
        fnv1a(state_dir.as_os_str().as_encoded_bytes())
    );
    Cgroup::create(&mount, &Path::new("keelson.slice").join(scope))
        .map(Some)
        .map_err(|e| e.to_string())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A failed launch as an administrator reads it, with the status code that fits: a program or
/// directory missing here is NOT_INSTALLED (another node may have it).
fn launch_error(config: &Config, command: &CommandLine, e: detached::LaunchError) -> Error {
    let errno = e.error.raw_os_error();
    let missing = matches!(
        errno,
        Some(libc_errno::ENOENT | libc_errno::EACCES | libc_errno::ENOEXEC | libc_errno::ENOTDIR)
    );
    match e.stage {
        Stage::Exec if missing => Error::not_installed(format!(
            "CommandLine '{}': {}: {}",
            command.line, command.words[0], e.error
        )),
        Stage::WorkingDirectory if missing => Error::not_installed(format!(
            "WorkingDirectory '{}': {}",
            config.working_dir.display(),
            e.error
        )),
        Stage::Groups | Stage::Gid | Stage::Uid => Error::new(format!(
            "User '{}': {e}",
            config.user.as_deref().unwrap_or("")
        )),
        _ => Error::new(format!("CommandLine '{}': {e}", command.line)),
    }
}

/// The errno values launch errors are sorted by (Linux numbers; the plugin calls no libc).
mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
    pub const ENOTDIR: i32 = 20;
    pub const ENOEXEC: i32 = 8;
}
