//! What the leader's placement core is told (node states and leases, administrator requests,
//! reports from owners, the hour, committed records) and why it refuses a request. Not the rules.

use keelson_types::RecordChange;
use serde::{Deserialize, Serialize};

/// One input to the placement core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacementEvent {
    /// The node's heartbeats say it is Up (again).
    NodeUp { node: String },
    /// The node's heartbeats say it is Down: its groups wait for its lease to expire.
    NodeDown { node: String },
    /// The Down node's quorum lease has expired: it runs nothing any more.
    LeaseExpired { node: String },
    /// Administrator: no group is placed on the node; with `drain`, its groups all move off.
    Pause { node: String, drain: bool },
    /// Administrator: the node takes groups again.
    Resume { node: String },
    /// Administrator: `move G [--to N]`.
    Move { group: String, to: Option<String> },
    /// The owner `node` reports a resource of `group` failed past its RestartThreshold with
    /// RestartAndFailover (`PlacementReport::GroupFailed`).
    GroupFailed {
        group: String,
        node: String,
        resource: String,
    },
    /// The previous owner `node` has all of `group` Offline (`PlacementReport::Released`).
    Released {
        group: String,
        node: String,
        epoch: u64,
    },
    /// The local wall-clock hour (0-23), for failback windows.
    Hour(u32),
    /// Records committed through raft (by anyone), in order: the core follows them.
    Committed(Vec<RecordChange>),
}

impl From<crate::command::PlacementReport> for PlacementEvent {
    /// What a node's engine reports, as the leader's placement core hears it.
    fn from(report: crate::command::PlacementReport) -> PlacementEvent {
        use crate::command::PlacementReport as R;
        match report {
            R::Released { group, node, epoch } => PlacementEvent::Released { group, node, epoch },
            R::GroupFailed {
                group,
                node,
                resource,
            } => PlacementEvent::GroupFailed {
                group,
                node,
                resource,
            },
        }
    }
}

impl PlacementEvent {
    /// True for administrator requests (the ones that can be refused).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            PlacementEvent::Pause { .. }
                | PlacementEvent::Resume { .. }
                | PlacementEvent::Move { .. }
        )
    }
}

/// Why a move, in the record (`GroupMove::reason`) and event 1641.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveReason {
    /// It had no owner.
    Assigned,
    /// Its owner was lost (Down, lease expired).
    NodeLost,
    /// A resource failed past its RestartThreshold.
    Failure,
    Administrator,
    Drain,
    Failback,
}

impl MoveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveReason::Assigned => "assigned",
            MoveReason::NodeLost => "node lost",
            MoveReason::Failure => "failure",
            MoveReason::Administrator => "administrator",
            MoveReason::Drain => "drain",
            MoveReason::Failback => "failback",
        }
    }

    /// True for the moves a failback may undo.
    pub fn is_failover(reason: &str) -> bool {
        [MoveReason::NodeLost, MoveReason::Failure, MoveReason::Drain]
            .iter()
            .any(|r| r.as_str() == reason)
    }
}

/// A refused request or report; the core is left exactly as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("unknown group '{0}'")]
    UnknownGroup(String),
    #[error("unknown node '{0}'")]
    UnknownNode(String),
    #[error("node '{0}' is not Up")]
    NodeNotUp(String),
    #[error("node '{0}' is paused")]
    NodePaused(String),
    #[error("no other node can take group '{0}' (none is Up and unpaused)")]
    NoTarget(String),
    #[error("cannot drain node '{node}': no other node can take group '{group}'")]
    CannotDrain { node: String, group: String },
    #[error("hour {0} is not 0-23")]
    BadHour(u32),
}
