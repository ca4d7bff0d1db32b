//! The node service's one tracing subscriber: the cluster-log layer, plus a journald layer on
//! systemd installs, each behind its own RUST_LOG-style filter (default: INFO and above, so DBG
//! lines only when asked, e.g. `RUST_LOG=debug` or `--log-filter keelson_rcm=debug`). Not the line
//! format (layer.rs).

use super::layer::ClusterLogLayer;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// Whether to send diagnostics to the systemd journal too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journald {
    /// Asked for with `--journald`: not reaching the journal is an error.
    Required,
    /// Started by systemd with its output on the journal (JOURNAL_STREAM set): used if reachable.
    IfAvailable,
    /// Neither.
    Off,
}

impl Journald {
    /// `--journald`, else whether systemd connected our output to the journal.
    pub fn choose(flag: bool, journal_stream: Option<&std::ffi::OsStr>) -> Journald {
        match (flag, journal_stream.is_some_and(|s| !s.is_empty())) {
            (true, _) => Journald::Required,
            (false, true) => Journald::IfAvailable,
            (false, false) => Journald::Off,
        }
    }
}

/// A filter from a RUST_LOG-style `spec`; everything it does not name is at INFO and above (a bare
/// level in `spec`, like `warn` or `debug`, replaces that default).
pub fn filter(spec: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .with_regex(false)
        .parse(format!("{DEFAULT_LEVEL},{spec}"))
        .map_err(|e| format!("invalid log filter '{spec}': {e}"))
}

/// What every target logs unless the filter says otherwise.
const DEFAULT_LEVEL: LevelFilter = LevelFilter::INFO;

/// What the subscriber will be, checked before the node service touches its data directory: a
/// valid filter, and the journal reached if it is wanted.
pub struct Plan {
    spec: String,
    journal: Option<tracing_journald::Layer>,
    /// Why the journal is not used although systemd runs us, to log once installed.
    pub note: Option<String>,
}

impl Plan {
    /// Checks `spec` and connects to the journal as `journald` says. Errors: a bad filter, or
    /// journald required but unreachable.
    pub fn new(spec: &str, journald: Journald) -> Result<Plan, String> {
        filter(spec)?;
        let (journal, note) = match (journald, tracing_journald::layer()) {
            (Journald::Off, _) => (None, None),
            (_, Ok(layer)) => (
                Some(layer.with_syslog_identifier("keelson-rcm".into())),
                None,
            ),
            (Journald::Required, Err(e)) => {
                return Err(format!("--journald: cannot reach the systemd journal: {e}"))
            }
            (Journald::IfAvailable, Err(e)) => (
                None,
                Some(format!("not logging to the systemd journal: {e}")),
            ),
        };
        Ok(Plan {
            spec: spec.to_string(),
            journal,
            note,
        })
    }

    /// Makes `cluster_log` (and the journal layer, if planned) this process's global subscriber.
    pub fn install(self, cluster_log: ClusterLogLayer) -> Result<(), String> {
        let journal = match self.journal {
            Some(layer) => Some(layer.with_filter(filter(&self.spec)?)),
            None => None,
        };
        let subscriber = tracing_subscriber::registry()
            .with(cluster_log.with_filter(filter(&self.spec)?))
            .with(journal);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| format!("cannot install the log subscriber: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn journald_is_used_when_asked_or_when_systemd_runs_us() {
        assert_eq!(Journald::choose(true, None), Journald::Required);
        assert_eq!(
            Journald::choose(false, Some(OsStr::new("8:1234"))),
            Journald::IfAvailable
        );
        assert_eq!(Journald::choose(false, Some(OsStr::new(""))), Journald::Off);
        assert_eq!(Journald::choose(false, None), Journald::Off);
    }

    #[test]
    fn a_bad_filter_is_refused_by_name() {
        let err = filter("keelson_rcm=loud").unwrap_err();
        assert!(
            err.contains("invalid log filter 'keelson_rcm=loud'"),
            "{err}"
        );
        assert!(filter("").is_ok() && filter("warn,keelson_rcm::api=debug").is_ok());
    }
}
