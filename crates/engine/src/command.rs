//! What the engine asks the shell to do: host and call requests, timers, cluster-log lines, cluster
//! events, database changes and state-change notifications. Not how they are done (rcm, crates/host,
//! crates/store).

use crate::ids::{GroupId, HostId};
use crate::state::{GroupState, ResourceState};
use crate::timer::Timer;
use keelson_types::{HealthPlan, LogLevel, Op, ResourceId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One effect for the shell to carry out, in the order given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Spawn a host process for slot `host`; report `Event::HostStarted` (or `Event::HostDied` if it
    /// could not start). `dedicated_to` is the resource it is a separate monitor for, if any.
    StartHost {
        host: HostId,
        dedicated_to: Option<ResourceId>,
    },
    /// Shut the host down: nothing is open in it any more.
    StopHost { host: HostId },
    /// Open the resource in the host (loading `plugin` there if needed). Report the result as
    /// `Event::CallDone { op: Op::Open, .. }`.
    Open {
        resource: ResourceId,
        host: HostId,
        name: String,
        type_name: String,
        plugin: String,
        /// Its private parameters, for the plugin's open.
        params: BTreeMap<String, String>,
        /// Deadline of the OPEN call (the resource's DeadlockTimeout now).
        deadline_ms: u64,
    },
    /// Close the resource in the host, with the deadline of its CLOSE call (the resource's
    /// DeadlockTimeout now, not the one it had when it was opened). No result is expected.
    Close {
        resource: ResourceId,
        host: HostId,
        deadline_ms: u64,
    },
    /// Call an entry point with a deadline (PendingTimeout for Online/Offline, DeadlockTimeout for
    /// the others, TERMINATE included: it is an ordinary call on the resource's socket). Report
    /// `Event::CallDone` when it returns.
    Call {
        resource: ResourceId,
        host: HostId,
        op: Op,
        deadline_ms: u64,
    },
    /// Poll the resource's health in its host by `plan` (sent when it comes Online and whenever its
    /// poll intervals or DeadlockTimeout change while Online), or stop polling (None: it left
    /// Online). Report a failed check as `Event::HealthFailed`; nothing else comes back.
    Poll {
        resource: ResourceId,
        host: HostId,
        plan: Option<HealthPlan>,
    },
    /// Feed `Event::TimerFired { timer }` back once the clock reaches `at` (ms).
    ScheduleTimer { at: u64, timer: Timer },
    /// Write one cluster-log line.
    Log {
        level: LogLevel,
        component: String,
        message: String,
    },
    /// Record one cluster event (events.jsonl, `keelson events`).
    RaiseEvent(ClusterEvent),
    /// Save this change to the cluster database.
    Persist(PersistChange),
    /// A resource was deleted: the shell forgets everything it kept about it (timings, secrets…),
    /// in one place.
    ResourceDeleted { resource: ResourceId, name: String },
    /// For the cluster leader's placement core (`placement::PlacementEvent`): forward it there.
    Placement(PlacementReport),
    /// A resource changed state (for watchers and the API; nothing to execute).
    ResourceStateChanged {
        resource: ResourceId,
        name: String,
        from: ResourceState,
        to: ResourceState,
    },
    /// A group changed state (for watchers and the API; nothing to execute).
    GroupStateChanged {
        group: GroupId,
        name: String,
        from: GroupState,
        to: GroupState,
    },
}

/// What a node tells the cluster leader about a group it holds (forwarded as a
/// `placement::PlacementEvent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacementReport {
    /// This node no longer owns `group` and all its resources here are Offline: the hand-off of
    /// placement epoch `epoch` may go on (`PlacementEvent::Released`).
    Released {
        group: String,
        node: String,
        epoch: u64,
    },
    /// `resource` of `group` failed past its RestartThreshold with RestartAndFailover on `node`,
    /// its owner: the group is Failed here and asks to fail over (`PlacementEvent::GroupFailed`).
    GroupFailed {
        group: String,
        node: String,
        resource: String,
    },
}

/// Severity of a cluster event, as the Windows event log names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventLevel {
    Critical,
    Error,
    Warning,
    Information,
}

impl fmt::Display for EventLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventLevel::Critical => "Critical",
            EventLevel::Error => "Error",
            EventLevel::Warning => "Warning",
            EventLevel::Information => "Information",
        })
    }
}

/// One numbered cluster event (WSFC ids where one exists: 1069, 1146, 1205, 1230, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEvent {
    pub id: u32,
    pub level: EventLevel,
    pub message: String,
    /// Name of the resource concerned, if any.
    pub resource: Option<String>,
    /// Name of the group concerned, if any.
    pub group: Option<String>,
}

pub use keelson_types::{GroupRecord, ResourceRecord};

/// One change to the cluster database (the one type for it, shared with crates/store).
pub use keelson_types::RecordChange as PersistChange;
