//! Resources and groups as the cluster database keeps them: what the engine persists and restores
//! from, and what crates/store writes. Plain data; not the live state (crates/engine).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A resource as persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub name: String,
    pub type_name: String,
    /// The plugin implementing `type_name` when the record was written (re-resolved at start).
    #[serde(default)]
    pub plugin: String,
    pub group: String,
    /// Common properties that differ from their defaults, by PascalCase name.
    pub properties: BTreeMap<String, String>,
    /// Private parameters passed to the plugin (kept by the node service, not the engine).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Names of the resources (same group) it depends on, sorted.
    pub depends_on: Vec<String>,
    /// Whether the administrator wants it online.
    pub want_online: bool,
}

/// A group as persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    /// Common properties that differ from their defaults, by PascalCase name.
    pub properties: BTreeMap<String, String>,
    /// Whether the administrator last brought the group online (true) or offline (false).
    pub want_online: bool,
    /// The node that runs it, by name; empty on a single node (it runs there).
    #[serde(default)]
    pub owner: String,
}

/// One change to the cluster database, as the engine emits it and the store writes it. Puts carry
/// the whole record (upsert).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordChange {
    PutResource(ResourceRecord),
    DeleteResource(String),
    PutGroup(GroupRecord),
    DeleteGroup(String),
}

impl RecordChange {
    /// What the change is about: (is a group, name). Two changes with one key replace each other.
    pub fn key(&self) -> (bool, &str) {
        match self {
            RecordChange::PutResource(r) => (false, &r.name),
            RecordChange::DeleteResource(n) => (false, n),
            RecordChange::PutGroup(g) => (true, &g.name),
            RecordChange::DeleteGroup(n) => (true, n),
        }
    }
}
