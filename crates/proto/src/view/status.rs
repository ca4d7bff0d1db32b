//! The `status` view: the node, its groups with their resources, the resource hosts, the calls
//! completed, the cluster database's health and each log file's write health. Not the plugin
//! catalogue (see `plugin`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `status`. Fields in alphabetical order (see the module doc of `view`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// Calls completed since rcm started, per entry point (upper case, e.g. `LOOKSALIVE`).
    pub calls_completed: BTreeMap<String, u64>,
    pub database: Database,
    pub groups: Vec<StatusGroup>,
    pub hosts: Vec<Host>,
    /// cluster.log, events.jsonl and audit.log, in that order.
    pub logs: Vec<LogHealth>,
    pub node: String,
    /// rcm's pid; 0 when the view does not say (a node service that predates the field).
    pub pid: u32,
}

/// One group in `status`, with its members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusGroup {
    pub name: String,
    pub owner_node: String,
    pub resources: Vec<Member>,
    pub state: String,
}

/// One resource of a group in `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    pub host_pid: Option<u32>,
    pub name: String,
    pub state: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// One resource host process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Host {
    /// Its pid, `null` until it is known.
    pub pid: Option<u32>,
    /// Names of the resources open in it.
    pub resources: Vec<String>,
    /// Whether it is a separate monitor (one resource of its own) rather than the shared host.
    pub separate: bool,
}

/// The cluster database: usable, or unavailable with the reason (changes are then refused).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Database {
    /// Only when unavailable: what that means for the administrator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Only when unavailable: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub state: DatabaseState,
    /// Changes applied in memory that the database does not hold yet.
    pub unsaved_changes: u64,
}

/// Whether the cluster database can be written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseState {
    #[default]
    Ok,
    Unavailable,
}

/// How writing one log file is going.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogHealth {
    /// Its name in the data directory.
    pub file: String,
    /// The last write or rotation error, `null` if none.
    pub last_error: Option<String>,
    /// Lines that could not be written.
    pub write_failures: u64,
}
