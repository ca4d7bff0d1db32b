//! The `conformance_bad` resource type, for tests of `keelson plugin test`: with `mode=good` (the
//! default) a resource that keeps every rule (validate refuses unknown parameters and bad values,
//! online and offline are idempotent, health checks fail once offline); every other mode breaks
//! exactly one rule, so a test can show that plugin test names it. Parameters: `mode` (see
//! [`Mode`]) and `delay_ms` (how long `slow_looks_alive` sleeps and `hang_online` and
//! `hang_validate` hang, default 120). Not a model of any real resource.
#![forbid(unsafe_code)]

use keelson_plugin::{export_plugin, Error, Host, Params, Resource};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const KNOWN: [&str; 2] = ["mode", "delay_ms"];

/// Resources of this type open in this process now.
static OPEN_NOW: AtomicUsize = AtomicUsize::new(0);
/// Whether a resource of this type has been closed in this process.
static EVER_CLOSED: AtomicBool = AtomicBool::new(false);

/// Which rule to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keeps every rule.
    Good,
    /// A second online of an online resource fails.
    OnlineNotIdempotent,
    /// A second offline of an offline resource fails.
    OfflineNotIdempotent,
    /// Health checks pass after offline.
    AliveAfterOffline,
    /// looks_alive sleeps `delay_ms`.
    SlowLooksAlive,
    /// validate accepts everything, unknown parameters and bad values included.
    AcceptEverything,
    /// An open while another resource of the type is open fails.
    SecondOpenFails,
    /// An open after any resource of the type was closed fails.
    ReopenFails,
    /// online sleeps `delay_ms` (past a short PendingTimeout).
    HangOnline,
    /// validate sleeps `delay_ms` (past a short DeadlockTimeout).
    HangValidate,
}

impl Mode {
    const ALL: [(&'static str, Mode); 10] = [
        ("good", Mode::Good),
        ("online_not_idempotent", Mode::OnlineNotIdempotent),
        ("offline_not_idempotent", Mode::OfflineNotIdempotent),
        ("alive_after_offline", Mode::AliveAfterOffline),
        ("slow_looks_alive", Mode::SlowLooksAlive),
        ("accept_everything", Mode::AcceptEverything),
        ("second_open_fails", Mode::SecondOpenFails),
        ("reopen_fails", Mode::ReopenFails),
        ("hang_online", Mode::HangOnline),
        ("hang_validate", Mode::HangValidate),
    ];

    fn parse(name: &str) -> Result<Mode, String> {
        Mode::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = Mode::ALL.iter().map(|(n, _)| *n).collect();
                format!("mode '{name}': expected one of {}", names.join(", "))
            })
    }
}

/// Parsed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Config {
    mode: Mode,
    delay: Duration,
}

impl Config {
    fn parse(params: &Params) -> Result<Config, String> {
        params.reject_unknown(&KNOWN)?;
        let mode = Mode::parse(&params.str("mode").unwrap_or_else(|| "good".into()))?;
        let delay = Duration::from_millis(params.u64_or("delay_ms", 120)?);
        Ok(Config { mode, delay })
    }

    /// Like `parse`, but a bad value or unknown parameter falls back to the defaults (what
    /// `accept_everything` opens with).
    fn lenient(params: &Params) -> Config {
        let mode = params
            .str("mode")
            .and_then(|m| Mode::parse(&m).ok())
            .unwrap_or(Mode::Good);
        let delay = Duration::from_millis(params.u64_or("delay_ms", 120).unwrap_or(120));
        Config { mode, delay }
    }
}

/// One resource.
pub struct ConformanceBad {
    config: Config,
    online: bool,
    host: Host,
}

impl ConformanceBad {
    fn health(&self, check: &str) -> Result<(), Error> {
        if self.online || self.config.mode == Mode::AliveAfterOffline {
            Ok(())
        } else {
            Err(format!("conformance_bad: {check}: not online").into())
        }
    }
}

impl Resource for ConformanceBad {
    const TYPE_NAME: &'static std::ffi::CStr = c"conformance_bad";

    fn validate(params: &Params) -> Result<(), Error> {
        let lenient = Config::lenient(params);
        match lenient.mode {
            Mode::AcceptEverything => return Ok(()),
            Mode::HangValidate => std::thread::sleep(lenient.delay),
            _ => {}
        }
        Config::parse(params).map(|_| ()).map_err(Error::from)
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        let config = Config::parse(params).unwrap_or_else(|_| Config::lenient(params));
        if config.mode == Mode::ReopenFails && EVER_CLOSED.load(Ordering::SeqCst) {
            return Err("conformance_bad: cannot open again after a close".into());
        }
        let before = OPEN_NOW.fetch_add(1, Ordering::SeqCst);
        if config.mode == Mode::SecondOpenFails && before > 0 {
            OPEN_NOW.fetch_sub(1, Ordering::SeqCst);
            return Err("conformance_bad: another resource of this type is open".into());
        }
        Ok(ConformanceBad {
            config,
            online: false,
            host,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        if self.online && self.config.mode == Mode::OnlineNotIdempotent {
            return Err("conformance_bad: already online".into());
        }
        if self.config.mode == Mode::HangOnline {
            std::thread::sleep(self.config.delay);
        }
        self.online = true;
        self.host.info("conformance_bad online");
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        if !self.online && self.config.mode == Mode::OfflineNotIdempotent {
            return Err("conformance_bad: already offline".into());
        }
        self.online = false;
        Ok(())
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        if self.config.mode == Mode::SlowLooksAlive {
            std::thread::sleep(self.config.delay);
        }
        self.health("looks_alive")
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        self.health("is_alive")
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.online = false;
        Ok(())
    }
}

impl Drop for ConformanceBad {
    fn drop(&mut self) {
        OPEN_NOW.fetch_sub(1, Ordering::SeqCst);
        EVER_CLOSED.store(true, Ordering::SeqCst);
    }
}

export_plugin!(name: c"conformance-bad", types: [ConformanceBad]);

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        Params::parse(json).unwrap()
    }

    #[test]
    fn good_refuses_what_accept_everything_accepts() {
        assert!(ConformanceBad::validate(&params("{}")).is_ok());
        let bad = r#"{"colour":"red"}"#;
        assert!(ConformanceBad::validate(&params(bad))
            .unwrap_err()
            .contains("colour"));
        let lax = r#"{"mode":"accept_everything","colour":"red"}"#;
        assert!(ConformanceBad::validate(&params(lax)).is_ok());
        let err = ConformanceBad::validate(&params(r#"{"mode":"nope"}"#)).unwrap_err();
        assert!(err.contains("mode 'nope'"), "{err}");
    }

    #[test]
    fn a_good_resource_is_down_after_offline_and_idempotent() {
        let mut r = ConformanceBad::open(&params("{}"), Host::detached()).unwrap();
        assert!(r.looks_alive().is_err(), "not online yet");
        r.online().unwrap();
        r.online().unwrap();
        assert!(r.looks_alive().is_ok() && r.is_alive().is_ok());
        r.offline().unwrap();
        r.offline().unwrap();
        assert!(r.is_alive().unwrap_err().contains("not online"));
    }
}
