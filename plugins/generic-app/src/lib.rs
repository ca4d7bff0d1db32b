//! The `generic-app` resource type: any program as a cluster resource. Online starts the
//! CommandLine outside the host's process tree (double fork, its own session and process group,
//! a cgroup of its own where cgroup v2 is writable) so a host's death leaves it running, records
//! it in <state_dir>/pid (pid + start time) and appends its output to <state_dir>/app.log; a new
//! host's online finds it there and adopts it without a restart. LooksAlive: the process lives
//! (its pidfd); IsAlive: also the HealthCommand and/or the TCP probe; a watcher thread reports
//! the process's exit at once. Offline: SIGTERM to the group, SIGKILL after StopTimeout;
//! terminate: SIGKILL at once. Not a supervisor of its own: restarts are the node's policy.
#![forbid(unsafe_code)]

mod app;
mod config;
mod health;
mod pidfile;
mod watcher;
mod words;

use app::App;
use config::Config;
use keelson_plugin::{export_plugin, Error, Host, Param, Params, Resource, TypeDefaults};
use keelson_sys::detached::cgroup::Cgroup;
use keelson_sys::detached::pidfd::Woke;
use pidfile::PidFile;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use watcher::Watcher;

/// Every parameter of the type: `keelson plugin describe generic-app` prints this table.
const PARAMS: &[Param] = &[
    Param::string("CommandLine")
        .required()
        .describe("the program and its arguments, split like a shell's words (quotes, backslashes) but with no shell: write sh -c '...' for one"),
    Param::path("WorkingDirectory")
        .default("/")
        .describe("the directory the program starts in (entered as User)"),
    Param::string("Environment")
        .default("")
        .describe("NAME=VALUE entries separated by newlines or ';', added to a clean environment (PATH, HOME, USER, LOGNAME, KEELSON_RESOURCE)"),
    Param::string("User")
        .default("")
        .describe("the user (name or uid) the program runs as, with its groups; empty: the node's own user"),
    Param::integer("StopTimeout")
        .min(0)
        .max(3_600_000)
        .default("10000")
        .describe("ms offline waits after SIGTERM to the process group before SIGKILL"),
    Param::integer("StartWindow")
        .min(0)
        .max(600_000)
        .default("500")
        .describe("ms the process must keep running after its start, or online fails with its exit status"),
    Param::integer("StartTimeout")
        .min(0)
        .max(3_600_000)
        .default("30000")
        .describe("ms online waits for the first passing health check when one is set (0: does not wait)"),
    Param::string("HealthCommand")
        .default("")
        .describe("a command run like the app by IsAlive; exit status 0 within HealthTimeoutMs passes"),
    Param::integer("HealthTcpPort")
        .min(1)
        .max(65535)
        .describe("IsAlive connects to this TCP port of HealthTcpHost within HealthTimeoutMs"),
    Param::address("HealthTcpHost")
        .default("127.0.0.1")
        .describe("the address the TCP probe connects to"),
    Param::integer("HealthTimeoutMs")
        .min(1)
        .max(600_000)
        .default("5000")
        .describe("ms each health probe may take"),
];

/// One generic-app resource.
pub struct GenericApp {
    config: Config,
    host: Host,
    state_dir: PathBuf,
    name: String,
    app: Option<App>,
    watcher: Option<Watcher>,
    /// This instance's last health check failed: the node's restart (an online with no offline
    /// before it) must replace the process, not adopt it again.
    unhealthy: bool,
}

impl GenericApp {
    fn pid_file(&self) -> PidFile {
        PidFile::in_dir(&self.state_dir)
    }

    /// The app process we know of: the one this instance started or adopted, else the one the
    /// pid file names if it still runs. A pid file naming a process that is gone is cleaned up
    /// (what is left in its cgroup is killed, the file removed).
    fn find(&mut self) -> Result<Option<&App>, Error> {
        let exited = match &self.app {
            Some(app) => app.exit()?.is_some(),
            None => false,
        };
        if exited {
            let gone = self.app.take().map(|a| a.cgroup);
            self.clean_up(gone.flatten())?;
        }
        if self.app.is_none() {
            let Some(record) = self.pid_file().read().map_err(Error::new)? else {
                return Ok(None);
            };
            match App::adopt(&record) {
                Some(app) => {
                    self.host.info(&format!(
                        "found process {} (started by an earlier host) running: adopted",
                        record.pid
                    ));
                    self.app = Some(app);
                }
                None => {
                    self.host.info(&format!(
                        "pid file names process {}, which is gone: starting afresh",
                        record.pid
                    ));
                    self.clean_up(record.cgroup.map(Cgroup::at))?;
                }
            }
        }
        Ok(self.app.as_ref())
    }

    /// After the process has gone: its cgroup's leftovers killed and removed, the pid file removed.
    fn clean_up(&self, cgroup: Option<Cgroup>) -> Result<(), Error> {
        if let Some(cgroup) = cgroup {
            app::kill_cgroup(&cgroup)?;
        }
        self.pid_file()
            .remove()
            .map_err(|e| Error::new(format!("pid file: {e}")))
    }

    fn start(&mut self) -> Result<(), Error> {
        let cgroup = match app::new_cgroup(&self.state_dir, &self.name) {
            Ok(cgroup) => cgroup,
            Err(why) => {
                self.host
                    .info(&format!("no cgroup of its own ({why}): process group only"));
                None
            }
        };
        self.host.set_status(10);
        let started = App::start(
            &self.config,
            &self.config.command,
            &self.state_dir,
            &self.name,
            cgroup.clone(),
        )
        .map_err(|e| match cgroup.as_ref().map(app::kill_cgroup) {
            Some(Err(c)) => Error::with_kind(e.kind(), format!("{}; {}", e.message(), c.message())),
            _ => e,
        })?;
        let pid = started.pid();
        self.host.info(&format!(
            "started process {pid}: {}",
            self.config.command.line
        ));
        self.app = Some(started);
        self.wait_for_start(pid)
    }

    /// The start window (the process must not exit), then the first passing health probe.
    fn wait_for_start(&mut self, pid: u32) -> Result<(), Error> {
        let Some(app) = &self.app else { return Ok(()) };
        let window = self.config.start_window;
        if app
            .pidfd
            .wait_exit(window)
            .map_err(|e| Error::new(e.to_string()))?
            == Woke::Exited
        {
            return Err(self.exited_at_start(
                pid,
                &format!("within StartWindow ({} ms)", window.as_millis()),
            ));
        }
        self.host.set_status(50);
        if !health::has_probe(&self.config) || self.config.start_timeout.is_zero() {
            return Ok(());
        }
        let deadline = Instant::now() + self.config.start_timeout;
        // Bounded by StartTimeout: each turn probes, then waits at most 100 ms on the pidfd (so
        // an exit ends the wait at once).
        loop {
            let verdict = health::probe(&self.config, &self.state_dir, &self.name);
            let Some(app) = &self.app else { return Ok(()) };
            let Err(failure) = verdict else { return Ok(()) };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let mut note = |m: &str| self.host.warn(m);
                let stopped = app.stop(self.config.stop_timeout, &mut note);
                let gone = self.app.take().and_then(|a| a.cgroup);
                self.clean_up(gone)?;
                stopped?;
                return Err(Error::new(format!(
                    "the health check did not pass within StartTimeout ({} ms): {}; process {pid} was stopped",
                    self.config.start_timeout.as_millis(),
                    failure.message()
                )));
            }
            let turn = left.min(Duration::from_millis(100));
            if app
                .pidfd
                .wait_exit(turn)
                .map_err(|e| Error::new(e.to_string()))?
                == Woke::Exited
            {
                return Err(self.exited_at_start(pid, "before its health check passed"));
            }
        }
    }

    /// Online's error for a process that exited while starting (and the clean-up after it).
    fn exited_at_start(&mut self, pid: u32, when: &str) -> Error {
        let app = self.app.take();
        let how = app
            .as_ref()
            .and_then(|a| a.exit().ok().flatten())
            .map_or("an unknown status".to_string(), |e| e.to_string());
        let cleaned = self.clean_up(app.and_then(|a| a.cgroup));
        let context = health::context(&self.state_dir);
        let mut message = format!(
            "CommandLine '{}': process {pid} exited {when} with {how}{context}",
            self.config.command.line
        );
        if let Err(e) = cleaned {
            message.push_str(&format!("; clean-up: {}", e.message()));
        }
        Error::new(message)
    }

    /// Starts the watcher on the current process unless one runs.
    fn watch(&mut self) -> Result<(), Error> {
        if self.watcher.as_ref().is_some_and(Watcher::running) {
            return Ok(());
        }
        self.watcher = None;
        let Some(app) = &self.app else { return Ok(()) };
        let watcher = Watcher::start(app.pidfd.clone(), self.host)
            .map_err(|e| Error::new(format!("cannot start the watcher thread: {e}")))?;
        self.watcher = Some(watcher);
        Ok(())
    }

    /// Stops the process (gracefully, or at once) and forgets it.
    fn stop(&mut self, graceful: bool) -> Result<(), Error> {
        self.watcher = None; // first: our own stop is no failure to report
        let timeout = self.config.stop_timeout;
        let host = self.host;
        let Some(app) = self.find()? else {
            return Ok(());
        };
        let pid = app.pid();
        let mut note = |m: &str| host.warn(m);
        if graceful {
            host.info(&format!(
                "stopping process {pid}: SIGTERM to its process group"
            ));
            app.stop(timeout, &mut note)?;
        } else {
            host.info(&format!(
                "terminating process {pid}: SIGKILL to its process group"
            ));
            app.kill()?;
        }
        let gone = self.app.take().and_then(|a| a.cgroup);
        self.clean_up(gone)
    }

    /// LooksAlive's check: the process has not exited (one poll of its pidfd).
    fn process_check(&self) -> Result<(), Error> {
        let Some(app) = &self.app else {
            return Err(self.not_running());
        };
        match app.exit()? {
            None => Ok(()),
            Some(exit) => Err(Error::not_running(format!(
                "process {} exited with {exit}",
                app.pid()
            ))),
        }
    }

    fn not_running(&self) -> Error {
        Error::not_running(format!("{} is not running", self.config.command.line))
    }
}

impl Resource for GenericApp {
    const TYPE_NAME: &'static std::ffi::CStr = c"generic-app";
    const PARAMS: Option<&'static [Param]> = Some(PARAMS);
    /// The process check is one poll of a pidfd: every 5 s is cheap. Online waits up to
    /// StartTimeout (30 s) for a health check and a failed start stops the process within
    /// StopTimeout (10 s): 60 s covers both.
    const DEFAULTS: TypeDefaults = TypeDefaults {
        looks_alive_poll_interval_ms: Some(5_000),
        is_alive_poll_interval_ms: Some(30_000),
        pending_timeout_ms: Some(60_000),
        deadlock_timeout_ms: Some(120_000),
    };

    fn validate(params: &Params) -> Result<(), Error> {
        let config = Config::parse(params)?;
        if config.user.is_some() {
            config.identity().map_err(|e| Error::invalid(e.message()))?;
        }
        Ok(())
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        let config = Config::parse(params)?;
        let state_dir = host.state_dir().ok_or_else(|| {
            Error::not_installed(
                "the host gives this resource no state directory (keelson too old?)",
            )
        })?;
        let name = host.resource_name().unwrap_or_else(|| "app".into());
        Ok(GenericApp {
            config,
            host,
            state_dir,
            name,
            app: None,
            watcher: None,
            unhealthy: false,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        if self.unhealthy && self.find()?.is_some() {
            // The restart after a failed health check: the process runs but failed its check.
            self.host
                .info("replacing the process: its health check failed");
            self.stop(true)?;
        }
        self.unhealthy = false;
        if self.find()?.is_none() {
            self.start()?;
        }
        // Otherwise already running (a second online, or a new host after the old one died):
        // adopted as it is.
        self.watch()
    }

    fn offline(&mut self) -> Result<(), Error> {
        self.stop(true)
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        let verdict = self.process_check();
        self.unhealthy = verdict.is_err();
        verdict
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        let verdict = self
            .process_check()
            .and_then(|()| health::probe(&self.config, &self.state_dir, &self.name));
        self.unhealthy = verdict.is_err();
        verdict
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.stop(false)
    }

    fn close(mut self) {
        // The process keeps running (close is no offline); only the watcher stops.
        self.watcher = None;
    }
}

export_plugin!(name: c"generic-app", types: [GenericApp]);

#[cfg(test)]
mod tests;
