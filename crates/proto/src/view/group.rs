//! The views of groups: `group get` ([`Group`], with its properties) and one row of `group list`
//! ([`GroupSummary`]). Not the engine's own `keelson_engine::GroupView`, which rcm reads to fill
//! these, and not the groups of `status` (see [`StatusGroup`](super::StatusGroup)).

use super::Properties;
use serde::{Deserialize, Serialize};

/// `group get`. Fields in alphabetical order (see the module doc of `view`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Group {
    /// The FailoverThreshold in force (`nodes-1` resolved to a number).
    pub failover_threshold: u64,
    /// Failovers (after a failure) within its FailoverPeriod, up to now: FailoverThreshold is held
    /// against this count.
    pub failovers_in_period: u64,
    /// Its last move between nodes, if it ever moved.
    pub last_move: Option<GroupMove>,
    /// Left Failed by the cluster (past its FailoverThreshold, or failed on every node) until an
    /// administrator moves or brings it online again.
    pub left_failed: bool,
    pub name: String,
    pub owner_node: String,
    /// The state its owner reports for its current placement (on the owner: its state there);
    /// empty until the owner has reported it.
    pub owner_state: String,
    /// The placement epoch of the owner's last report through the cluster (None: none yet); equal
    /// to `placement_epoch` once every node can see the owner's state for the current placement.
    pub owner_state_epoch: Option<u64>,
    /// Bumped by every placement decision (a move, a hand-off step, a failover verdict).
    pub placement_epoch: u64,
    /// PreferredOwners, in order.
    pub preferred_owners: Vec<String>,
    /// Common properties (e.g. `FailoverThreshold` as the text `nodes-1` until it is set).
    pub properties: Properties,
    /// The previous owner while it is still taking the group offline (a move in progress).
    pub releasing_from: String,
    /// Names of its resources.
    pub resources: Vec<String>,
    /// Its state on the node answering (Offline on a node that does not own it).
    pub state: String,
}

/// One move of a group between nodes. Fields in alphabetical order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupMove {
    /// When, ISO 8601 UTC.
    pub at: String,
    /// The node it left (empty: it had no owner).
    pub from: String,
    /// `node lost`, `failure`, `administrator`, `drain`, `failback` or `assigned`.
    pub reason: String,
    pub to: String,
}

/// One row of `group list`. Fields in alphabetical order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupSummary {
    pub name: String,
    pub owner_node: String,
    /// As in [`Group::owner_state`].
    pub owner_state: String,
    pub resources: Vec<String>,
    /// Its state on the node answering.
    pub state: String,
}
