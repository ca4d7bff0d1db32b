//! The views of resources: `resource get` ([`Resource`], with its properties, parameters, call
//! statistics and each entry point's last error) and one row of `resource list`
//! ([`ResourceSummary`]). Not the engine's own
//! `keelson_engine::ResourceView`, which rcm reads to fill these.

use super::Properties;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `resource get`. Fields in alphabetical order (see the module doc of `view`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    /// Per entry point (upper case, e.g. `LOOKSALIVE`), the recent calls' timings.
    pub call_stats: BTreeMap<String, CallStats>,
    /// Names of the resources it depends on, sorted.
    pub depends_on: Vec<String>,
    pub group: String,
    /// The pid of the host it is open in, `null` while it has none.
    pub host_pid: Option<u32>,
    /// The resource's id, which names its state directory.
    pub id: u64,
    /// Per entry point that ever failed (upper case, e.g. `ONLINE`), its last error: kept in memory
    /// by the node service that runs it, never cleared.
    pub last_errors: BTreeMap<String, LastError>,
    pub name: String,
    pub owner_node: String,
    /// Private parameters; the values of secret ones (see `keelson_types::is_secret_param`) are
    /// `***`.
    pub parameters: BTreeMap<String, String>,
    /// The plugin that provides its type.
    pub plugin: String,
    /// Common properties, with the read-only `MonitorProcessId`.
    pub properties: Properties,
    pub state: String,
    /// Its own directory on the node that answers, `<data-dir>/resources/<id>` (pid files, logs,
    /// lease records: the plugin's), when that node owns it; `null` otherwise.
    pub state_dir: Option<String>,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// One entry point's recent calls, in microseconds. Fields in alphabetical order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallStats {
    pub count: u64,
    pub last_us: u64,
    pub max_us: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// The last failure of one entry point. Fields in alphabetical order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LastError {
    /// When, as an ISO 8601 UTC time (`2026-03-01T12:00:00.000Z`).
    pub at: String,
    /// The plugin's message (secret values shown as `***`), or why the call got no answer.
    pub message: String,
    /// Its kind: `error`, `panic`, `invalid`, `misconfigured`, `not_installed`, `not_running`,
    /// `timeout`, `host_died` or `reported` (the plugin's own failure report).
    pub status: String,
}

/// One row of `resource list`. Fields in alphabetical order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceSummary {
    pub group: String,
    pub host_pid: Option<u32>,
    pub name: String,
    pub state: String,
    #[serde(rename = "type")]
    pub type_name: String,
}
