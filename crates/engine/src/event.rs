//! What the shell feeds into the engine: administrator requests (by name) and what happened outside
//! (call results, timers, hosts starting and dying, by id). Not their transport (crates/proto).

use crate::ids::HostId;
use crate::timer::Timer;
use keelson_types::{GroupProperties, Op, ResourceId, ResourceProperties, StatusKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A new resource, as the administrator describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSpec {
    pub name: String,
    pub group: String,
    pub type_name: String,
    /// The plugin implementing `type_name` (resolved by the shell; used in logs and event 1230).
    pub plugin: String,
    pub properties: ResourceProperties,
    /// Private parameters for the plugin.
    pub params: BTreeMap<String, String>,
    /// Names of resources in the same group it depends on.
    pub depends_on: Vec<String>,
}

/// One input to the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    // ---- administrator requests: refused with an `EngineError` and no change when invalid ----
    CreateGroup {
        name: String,
        properties: GroupProperties,
    },
    /// Refused while the group holds resources.
    DeleteGroup {
        name: String,
    },
    CreateResource(ResourceSpec),
    /// Refused unless the resource is Offline or Failed, and while others depend on it.
    DeleteResource {
        name: String,
    },
    /// `name` is a resource property name (`RestartAction`, …), `value` its text; validated.
    SetResourceProperty {
        resource: String,
        name: String,
        value: String,
    },
    /// One administrator `resource set`: common properties, private parameters set and removed,
    /// validated as a whole and applied together or not at all. A parameter change reopens an
    /// Offline resource at once and an Online one at its next online.
    SetResource {
        resource: String,
        properties: Vec<(String, String)>,
        params: Vec<(String, String)>,
        unset_params: Vec<String>,
    },
    /// One administrator `group set`: every property validated, then all set or none.
    SetGroup {
        group: String,
        properties: Vec<(String, String)>,
    },
    SetGroupProperty {
        group: String,
        name: String,
        value: String,
    },
    /// `resource` will depend on `provider` (same group, no cycle).
    AddDependency {
        resource: String,
        provider: String,
    },
    RemoveDependency {
        resource: String,
        provider: String,
    },
    /// Bring the resource (and everything it depends on) online.
    OnlineResource {
        name: String,
    },
    /// Take the resource (and everything depending on it) offline.
    OfflineResource {
        name: String,
    },
    OnlineGroup {
        name: String,
    },
    OfflineGroup {
        name: String,
    },
    /// Simulate a failure of an Online resource: handled exactly like a failed IsAlive.
    FailResource {
        name: String,
    },

    // ---- what happened outside: never refused; stale or unknown ones are ignored ----
    /// A `Command::Call` (or `Command::Open`, with `op: Op::Open`) returned with `status` (Ok, or
    /// what kind of failure: Misconfigured is never restarted, NotInstalled leaves the node).
    CallDone {
        resource: ResourceId,
        op: Op,
        status: StatusKind,
        message: String,
    },
    /// A health check the host ran by the plan of a `Command::Poll` failed (after a failed LooksAlive
    /// the host runs IsAlive at once by itself), with its status (NotRunning: cleanly down).
    HealthFailed {
        resource: ResourceId,
        op: Op,
        status: StatusKind,
        message: String,
    },
    /// A `Command::ScheduleTimer` timer is due.
    TimerFired {
        timer: Timer,
    },
    /// The host of slot `host` runs as process `pid` (its resources' MonitorProcessId).
    HostStarted {
        host: HostId,
        pid: u32,
    },
    /// The host of slot `host` is gone. `offender` is the resource and entry point blamed for it
    /// (crash or deadlock report), `None` when nobody is (killed from outside, failed to start…).
    /// Without an `offender`, `offending_plugin` names the plugin whose code crashed on a thread of
    /// its own: each of its resources in that host is an offender.
    HostDied {
        host: HostId,
        offender: Option<(ResourceId, Op)>,
        offending_plugin: Option<String>,
        cause: String,
    },
    /// The resource's plugin reported by itself that it failed (`report_failure`): handled at once
    /// like a failed IsAlive; ignored (and logged) unless the resource is Online and polled.
    FailureReported {
        resource: ResourceId,
        message: String,
    },
}

impl Event {
    /// True for administrator requests (the ones that can be refused).
    pub fn is_admin(&self) -> bool {
        !matches!(
            self,
            Event::CallDone { .. }
                | Event::HealthFailed { .. }
                | Event::FailureReported { .. }
                | Event::TimerFired { .. }
                | Event::HostStarted { .. }
                | Event::HostDied { .. }
        )
    }
}
