//! The `ocf` resource type: runs an OCF resource agent (Debian's resource-agents, or any agent
//! under an OCF root) the way Pacemaker does. online = `start` (after a `monitor` that says it is
//! not already running), offline = `stop`, LooksAlive = `monitor` at OCF_CHECK_LEVEL 0, IsAlive =
//! `monitor` at OCF_CHECK_LEVEL 10, validate = the agent's meta-data checks then `validate-all`.
//! Each action has a deadline (the meta-data's timeout or the resource's override) and its own
//! process group, killed whole at the deadline. The type declares no static parameters (an
//! agent's parameters are only known from its meta-data), so `validate` does the whole check. Not
//! a Pacemaker: no promotable clones, notifications or reloads.
#![forbid(unsafe_code)]

mod config;
mod exit;
mod metadata;
mod runner;

use config::Config;
use keelson_plugin::{export_plugin, Error, Host, Params, Resource, TypeDefaults, NO_DEFAULTS};
use metadata::Metadata;
use runner::Runner;
use std::time::Duration;

/// The deadline of `meta-data` itself, and of an action the meta-data gives no timeout for.
const FALLBACK_TIMEOUT: Duration = Duration::from_secs(20);
/// At most this many lines of an action's output go to the cluster log.
const LOG_LINES: usize = 5;

/// One OCF resource: its configuration, the agent ready to run and the meta-data's timeouts.
pub struct Ocf {
    config: Config,
    runner: Runner,
    meta: Metadata,
    host: Host,
}

impl Ocf {
    /// Reads and parses the agent's meta-data (runs `<agent> meta-data` within FALLBACK_TIMEOUT).
    fn read_metadata(config: &Config, runner: &Runner) -> Result<Metadata, Error> {
        let label = config.label();
        let outcome = runner.run("meta-data", 0, FALLBACK_TIMEOUT)?;
        if outcome.timed_out || outcome.code != Some(0) {
            exit::verdict(&label, "meta-data", &outcome)?;
            return Err(Error::new(format!("{label}: meta-data failed")));
        }
        Metadata::parse(&label, &outcome.output).map_err(Error::misconfigured)
    }

    fn deadline(config: &Config, meta: &Metadata, action: &str) -> Duration {
        config
            .timeouts
            .get(action)
            .or_else(|| meta.timeouts.get(action))
            .copied()
            .unwrap_or(FALLBACK_TIMEOUT)
    }

    /// Runs `action`, logs a few lines of what it said, and maps its exit code.
    fn act(&self, action: &str, check_level: u32) -> Result<(), Error> {
        let deadline = Ocf::deadline(&self.config, &self.meta, action);
        let outcome = self.runner.run(action, check_level, deadline)?;
        let verdict = exit::verdict(&self.config.label(), action, &outcome);
        self.log_output(action, &outcome.output, verdict.is_err());
        verdict
    }

    fn log_output(&self, action: &str, output: &str, failed: bool) {
        let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
        let skip = lines.len().saturating_sub(LOG_LINES);
        for line in &lines[skip..] {
            let text = format!("{} {action}: {}", self.config.label(), truncate(line));
            if failed {
                self.host.warn(&text);
            } else {
                self.host.info(&text);
            }
        }
    }
}

fn truncate(line: &str) -> String {
    line.chars().take(300).collect()
}

impl Resource for Ocf {
    const TYPE_NAME: &'static std::ffi::CStr = c"ocf";
    // PARAMS stays None: an agent's parameters are known only from its meta-data, so validate
    // checks them all (docs/types/ocf.md says why).
    const DEFAULTS: TypeDefaults = TypeDefaults {
        looks_alive_poll_interval_ms: Some(10_000),
        is_alive_poll_interval_ms: Some(60_000),
        ..NO_DEFAULTS
    };

    fn validate(params: &Params) -> Result<(), Error> {
        let config = Config::parse(params)?;
        let runner = config.runner(None, None)?;
        let meta = Ocf::read_metadata(&config, &runner)?;
        meta.check(&config.label(), &config.reskeys)
            .map_err(Error::invalid)?;
        let deadline = Ocf::deadline(&config, &meta, "validate-all");
        let outcome = runner.run("validate-all", 0, deadline)?;
        exit::verdict(&config.label(), "validate-all", &outcome)
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        let config = Config::parse(params)?;
        let state_dir = host.state_dir();
        let runner = config.runner(host.resource_name().as_deref(), state_dir.as_deref())?;
        let meta = Ocf::read_metadata(&config, &runner)?;
        Ok(Ocf {
            config,
            runner,
            meta,
            host,
        })
    }

    /// Idempotent: a `monitor` that says it runs already means no `start`.
    fn online(&mut self) -> Result<(), Error> {
        match self.act("monitor", 0) {
            Ok(()) => {
                self.host.info(&format!(
                    "{}: already running (monitor exited 0); start not run",
                    self.config.label()
                ));
                Ok(())
            }
            Err(_) => self.act("start", 0),
        }
    }

    fn offline(&mut self) -> Result<(), Error> {
        self.act("stop", 0)
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        self.act("monitor", 0)
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        self.act("monitor", 10)
    }
}

export_plugin!(name: c"ocf", types: [Ocf]);

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_plugin::ErrorKind;
    use std::os::unix::fs::PermissionsExt;

    /// An OCF root with one agent `test:counter` that counts its starts in `$HA_RSCTMP/starts`.
    fn counter_root(dir: &std::path::Path) -> std::path::PathBuf {
        let agents = dir.join("resource.d/test");
        std::fs::create_dir_all(&agents).unwrap();
        let body = r#"#!/bin/sh
S="$HA_RSCTMP/$OCF_RESOURCE_INSTANCE.on"
case "$1" in
meta-data) cat <<X
<?xml version="1.0"?>
<resource-agent name="counter"><parameters>
<parameter name="level" required="1"><content type="integer"/></parameter>
</parameters><actions><action name="start" timeout="5s"/><action name="monitor" timeout="5s"/></actions></resource-agent>
X
 exit 0;;
start) echo x >> "$HA_RSCTMP/starts"; touch "$S"; exit 0;;
stop) rm -f "$S"; exit 0;;
monitor) [ -f "$S" ] && exit 0; exit 7;;
validate-all) [ "$OCF_RESKEY_level" -lt 100 ] && exit 0; echo "level too high" >&2; exit 6;;
*) exit 3;;
esac
"#;
        let path = agents.join("counter");
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir.to_path_buf()
    }

    fn params(root: &std::path::Path, level: &str) -> Params {
        Params::parse(&format!(
            r#"{{"Agent":"test:counter","OcfRoot":"{}","level":"{level}"}}"#,
            root.display()
        ))
        .unwrap()
    }

    #[test]
    fn validate_checks_meta_data_then_validate_all() {
        let dir = tempfile::tempdir().unwrap();
        let root = counter_root(dir.path());
        assert!(Ocf::validate(&params(&root, "3")).is_ok());
        let high = Ocf::validate(&params(&root, "300")).unwrap_err();
        assert_eq!(high.kind(), ErrorKind::Misconfigured);
        assert_eq!(
            high.message(),
            "ocf test:counter: validate-all exited 6 (OCF_ERR_CONFIGURED): level too high"
        );
        let not_int = Ocf::validate(&params(&root, "x")).unwrap_err();
        assert!(not_int.contains("'level'"), "{not_int}");
        let none = Params::parse(&format!(
            r#"{{"Agent":"test:counter","OcfRoot":"{}"}}"#,
            root.display()
        ))
        .unwrap();
        assert_eq!(
            Ocf::validate(&none).unwrap_err().message(),
            "ocf test:counter: missing required parameter 'level'"
        );
    }

    #[test]
    fn online_is_idempotent_and_offline_stops() {
        let dir = tempfile::tempdir().unwrap();
        let root = counter_root(dir.path());
        let state = tempfile::tempdir().unwrap();
        let host = Host::for_tests(state.path(), "n1", "c 1");
        let mut r = Ocf::open(&params(&root, "3"), host).unwrap();
        assert_eq!(r.looks_alive().unwrap_err().kind(), ErrorKind::NotRunning);
        r.online().unwrap();
        r.looks_alive().unwrap();
        r.is_alive().unwrap();
        let mut again = Ocf::open(&params(&root, "3"), host).unwrap();
        again.online().unwrap();
        let starts = std::fs::read_to_string(state.path().join("starts")).unwrap();
        assert_eq!(
            starts.lines().count(),
            1,
            "start ran again on an online resource"
        );
        again.offline().unwrap();
        again.offline().unwrap();
        assert_eq!(r.is_alive().unwrap_err().kind(), ErrorKind::NotRunning);
    }
}
