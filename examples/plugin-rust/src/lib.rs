//! The `marker` resource type, the Rust example of docs/plugins.md: while online, a file at
//! `path` holds `text`. Online writes it (and leaves an identical one alone, so a second online
//! disrupts nothing), offline removes it (a missing file is already offline), looks_alive checks
//! that the file exists (one stat: cheap), is_alive that it holds the text. The parameters are
//! declared in `PARAMS`, so the host refuses an unknown name, a missing `path`, a relative path or a
//! `max_bytes` outside 1..=4096 before this code runs, and fills in the defaults; `validate` adds
//! the one rule the schema cannot say (the text fits in `max_bytes`). While online, a thread of
//! the plugin's own checks the file every `watch_ms` and, when it is gone, tells the node at once
//! with `Host::report_failure` instead of waiting for the next poll. Not a real service.
#![forbid(unsafe_code)]

use keelson_plugin::{
    export_plugin, Error, Host, Param, Params, Resource, TypeDefaults, NO_DEFAULTS,
};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// Every parameter of the type: `keelson plugin describe marker` prints this table.
const PARAMS: &[Param] = &[
    Param::path("path")
        .required()
        .describe("the marker file, written while online"),
    Param::string("text")
        .default("keelson")
        .describe("what the marker file holds"),
    Param::integer("max_bytes")
        .min(1)
        .max(4096)
        .default("256")
        .describe("the longest text accepted"),
    Param::integer("watch_ms")
        .min(0)
        .max(60_000)
        .default("200")
        .describe("how often a watcher thread checks the file while online (0: no watcher)"),
];

/// The parameters, read once; `validate` and `open` share this. The values arrive as strings,
/// already checked against `PARAMS` and with its defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    path: PathBuf,
    text: String,
    watch: Option<Duration>,
}

impl Config {
    fn parse(params: &Params) -> Result<Config, Error> {
        let path = PathBuf::from(params.str("path").ok_or("path: required")?);
        let text = params.str("text").unwrap_or_else(|| "keelson".into());
        let max_bytes = params.u64_or("max_bytes", 256)?;
        if text.len() as u64 > max_bytes {
            return Err(Error::misconfigured(format!(
                "text: {} bytes, more than max_bytes {max_bytes}",
                text.len()
            )));
        }
        let watch_ms = params.u64_or("watch_ms", 200)?;
        let watch = (watch_ms > 0).then(|| Duration::from_millis(watch_ms));
        Ok(Config { path, text, watch })
    }
}

/// A thread of the plugin's own that reports the marker file's loss at once. Stopped (and joined)
/// when dropped: by offline, terminate and close, so it never calls `host` after `close`.
struct Watcher {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    fn start(path: PathBuf, every: Duration, host: Host) -> std::io::Result<Watcher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("marker-watch".into())
            .spawn(move || {
                // Each turn waits `every` for a stop; it ends on a stop or after its one report
                // (online starts a new watcher).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if !path.exists() {
                        host.report_failure(&format!("{} is missing", path.display()));
                        return;
                    }
                }
            })?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }

    fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // A send fails only when the thread has already ended; the join is what matters.
        let _already_ended = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _no_panic_to_report = thread.join();
        }
    }
}

/// One marker resource.
pub struct Marker {
    config: Config,
    host: Host,
    watcher: Option<Watcher>,
}

impl Marker {
    fn holds_text(&self) -> bool {
        std::fs::read_to_string(&self.config.path).is_ok_and(|t| t == self.config.text)
    }

    /// Starts the watcher unless one is running (or `watch_ms` is 0).
    fn watch(&mut self) -> Result<(), Error> {
        let Some(every) = self.config.watch else {
            return Ok(());
        };
        if self.watcher.as_ref().is_some_and(Watcher::running) {
            return Ok(());
        }
        self.watcher = None; // joins a watcher that ended after its report
        let watcher = Watcher::start(self.config.path.clone(), every, self.host)
            .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
        self.watcher = Some(watcher);
        Ok(())
    }

    fn missing(&self) -> Error {
        Error::not_running(format!("{} is missing", self.config.path.display()))
    }
}

impl Resource for Marker {
    const TYPE_NAME: &'static std::ffi::CStr = c"marker";
    const PARAMS: Option<&'static [Param]> = Some(PARAMS);
    /// Writing a file takes milliseconds: a stuck online is failed after 10 s, not 180 s.
    const DEFAULTS: TypeDefaults = TypeDefaults {
        pending_timeout_ms: Some(10_000),
        ..NO_DEFAULTS
    };

    fn validate(params: &Params) -> Result<(), Error> {
        Config::parse(params)?;
        Ok(())
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        // Open only reads the parameters: it must not bring anything online.
        Ok(Marker {
            config: Config::parse(params)?,
            host,
            watcher: None,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        if self.holds_text() {
            // Already online (a second online, or a new host after the old one died): leave it.
            return self.watch();
        }
        self.host.set_status(50);
        std::fs::write(&self.config.path, &self.config.text)
            .map_err(|e| format!("cannot write {}: {e}", self.config.path.display()))?;
        self.host
            .info(&format!("marker {} written", self.config.path.display()));
        self.watch()
    }

    fn offline(&mut self) -> Result<(), Error> {
        self.watcher = None; // stopped first: removing the file is no failure
        match std::fs::remove_file(&self.config.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", self.config.path.display()).into()),
        }
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        match self.config.path.try_exists() {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.missing()),
            Err(e) => Err(format!("cannot stat {}: {e}", self.config.path.display()).into()),
        }
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        if self.holds_text() {
            Ok(())
        } else if !self.config.path.exists() {
            Err(self.missing())
        } else {
            Err(format!(
                "{} does not hold the marker text",
                self.config.path.display()
            )
            .into())
        }
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.offline()
    }
}

export_plugin!(name: c"marker", types: [Marker]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_is_one_the_host_accepts() {
        keelson_plugin::schema::<Marker>()
            .check_declaration()
            .expect("PARAMS and DEFAULTS");
    }
}
