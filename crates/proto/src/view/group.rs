//! The views of groups: `group get` ([`Group`], with its properties) and one row of `group list`
//! ([`GroupSummary`]). Not the engine's own `keelson_engine::GroupView`, which rcm reads to fill
//! these, and not the groups of `status` (see [`StatusGroup`](super::StatusGroup)).

use super::Properties;
use serde::{Deserialize, Serialize};

/// `group get`. Fields in alphabetical order (see the module doc of `view`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Group {
    pub name: String,
    pub owner_node: String,
    /// Common properties (e.g. `FailoverThreshold` as the text `nodes-1` until it is set).
    pub properties: Properties,
    /// Names of its resources.
    pub resources: Vec<String>,
    pub state: String,
}

/// One row of `group list`. Fields in alphabetical order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupSummary {
    pub name: String,
    pub owner_node: String,
    pub resources: Vec<String>,
    pub state: String,
}
