//! The views rcm sends in [`ControlReply::Json`](crate::ControlReply::Json) and the CLI renders:
//! one serde struct per view, filled by rcm and read by `keelson`, so both sides name every field
//! once. Not rendering (crates/ctl) and not where the facts come from (rcm reads the engine, the
//! store and the logs).
//!
//! The JSON is part of the interface (`keelson ... --json` prints it), so its shape is pinned by
//! golden tests (crates/proto/tests/view_golden.rs):
//! * fields are declared in alphabetical order, the order rcm has always sent them in (its views
//!   used to be `serde_json::Value` maps, which sort their keys) and the order `--json` prints;
//! * property values are JSON numbers and booleans where their text is one ([`PropertyValue`]);
//! * states are the engine's names for them (`Online`, `OnlinePending`, ...), as text, because the
//!   state types live in crates/engine, which this crate does not depend on.
//!
//! Every struct deserializes with missing fields defaulted (empty text, empty lists, 0), so a CLI
//! can still render a view from an older or a test node service; extra fields are ignored.

mod cluster;
mod group;
mod plugin;
mod quorum;
mod resource;
mod schema;
mod status;

pub use cluster::{
    AdapterPath, ClusterProperties, ClusterProperty, ClusterStatus, Finding, NetworkList, Node,
    NodeList, Route, Validation, VirtualAdapter,
};
pub use group::{Group, GroupMove, GroupSummary};
pub use plugin::{Conflict, PluginFile, PluginList};
pub use quorum::{Quorum, WitnessLease};
pub use resource::{CallStats, LastError, Resource, ResourceSummary};
pub use schema::{ParamView, TypeSchemaView};
pub use status::{Database, DatabaseState, Host, LogHealth, Member, Status, StatusGroup};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Common properties by name (PascalCase), sorted.
pub type Properties = BTreeMap<String, PropertyValue>;

/// One common property's value as a view shows it: its text as a number or a boolean where it is
/// one, else as text; `Unset` (JSON `null`) for a read-only value that is not known yet, e.g. the
/// `MonitorProcessId` of a resource that has no host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropertyValue {
    Number(u64),
    Flag(bool),
    Text(String),
    Unset,
}

impl PropertyValue {
    /// "5000" -> 5000, "true" -> true, anything else (e.g. "nodes-1", "-3") stays text.
    pub fn from_text(value: &str) -> PropertyValue {
        if let Ok(n) = value.parse::<u64>() {
            return PropertyValue::Number(n);
        }
        match value {
            "true" => PropertyValue::Flag(true),
            "false" => PropertyValue::Flag(false),
            _ => PropertyValue::Text(value.to_string()),
        }
    }

    /// `Number`, or `Unset` when there is no number.
    pub fn from_number(value: Option<u32>) -> PropertyValue {
        value.map_or(PropertyValue::Unset, |n| {
            PropertyValue::Number(u64::from(n))
        })
    }
}

impl std::fmt::Display for PropertyValue {
    /// As a table shows it: `-` for `Unset`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropertyValue::Number(n) => write!(f, "{n}"),
            PropertyValue::Flag(b) => write!(f, "{b}"),
            PropertyValue::Text(s) => f.write_str(s),
            PropertyValue::Unset => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PropertyValue as V;

    #[test]
    fn property_text_becomes_a_number_or_a_flag_where_it_is_one() {
        assert_eq!(V::from_text("5000"), V::Number(5000));
        assert_eq!(V::from_text("0"), V::Number(0));
        assert_eq!(V::from_text("true"), V::Flag(true));
        assert_eq!(V::from_text("false"), V::Flag(false));
        assert_eq!(V::from_text("nodes-1"), V::Text("nodes-1".into()));
        assert_eq!(V::from_text("-3"), V::Text("-3".into()));
        assert_eq!(V::from_text("True"), V::Text("True".into()));
        assert_eq!(V::from_text(""), V::Text(String::new()));
        assert_eq!(V::from_number(None), V::Unset);
        assert_eq!(V::from_number(Some(7)), V::Number(7));
        assert_eq!(V::Unset.to_string(), "-");
        assert_eq!(V::Text("Restart".into()).to_string(), "Restart");
    }
}
