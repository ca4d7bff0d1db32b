//! One resource's runtime record inside the engine: identity, properties, dependencies, state, where
//! it is hosted and which calls are outstanding. Not its transitions (engine handlers) and not views.

use crate::command::ResourceRecord;
use crate::ids::{GroupId, HostId};
use crate::last_error::LastError;
use crate::restart::RestartHistory;
use crate::state::ResourceState;
use keelson_types::{HealthPlan, Op, ResourceId, ResourceProperties};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub(crate) struct Resource {
    pub id: ResourceId,
    pub name: String,
    pub group: GroupId,
    pub type_name: String,
    pub plugin: String,
    pub props: ResourceProperties,
    /// Private parameters, the plugin's own (passed to its open as a JSON object of strings).
    pub params: BTreeMap<String, String>,
    /// Parameters changed while open: close and reopen before the next online.
    pub reopen: bool,
    /// Resources (same group) this one depends on.
    pub depends_on: BTreeSet<ResourceId>,
    /// The reverse: resources that depend on this one directly (kept with `depends_on`, so finding
    /// dependents never scans the node).
    pub dependents: BTreeSet<ResourceId>,
    pub state: ResourceState,
    /// The administrator's wish (persistent).
    pub want_online: bool,
    /// The host slot it is open (or being opened) in.
    pub host: Option<HostId>,
    /// Re-open counter: 0 for the first open, +1 for every open after that (the `gen(N)` in logs).
    pub gen: u64,
    pub opened_once: bool,
    /// Calls sent and not yet answered; results for anything else are stale and ignored.
    pub outstanding: BTreeSet<Op>,
    /// The health plan its host polls by (handed when it came Online), None when not polling.
    pub health_plan: Option<HealthPlan>,
    pub restarts: RestartHistory,
    /// Failed when its group left this node (its restart or retry was cancelled): if the group
    /// comes back, it starts afresh.
    pub released_failure: bool,
    /// Its Offline under way was started by its group leaving this node: should that Offline fail,
    /// it is a released failure, even if the group came back meanwhile (a cancelled hand-off).
    pub release_offline: bool,
    /// Each entry point's last failure (in memory only, never cleared).
    pub last_errors: BTreeMap<Op, LastError>,
}

impl Resource {
    /// A new, Offline, unhosted resource.
    pub fn new(
        id: ResourceId,
        name: String,
        group: GroupId,
        type_name: String,
        plugin: String,
    ) -> Self {
        Resource {
            id,
            name,
            group,
            type_name,
            plugin,
            props: ResourceProperties::default(),
            params: BTreeMap::new(),
            reopen: false,
            depends_on: BTreeSet::new(),
            dependents: BTreeSet::new(),
            state: ResourceState::Offline,
            want_online: false,
            host: None,
            gen: 0,
            opened_once: false,
            outstanding: BTreeSet::new(),
            health_plan: None,
            restarts: RestartHistory::default(),
            released_failure: false,
            release_offline: false,
            last_errors: BTreeMap::new(),
        }
    }

    /// The deadline for a call of `op`: PendingTimeout for Online/Offline, DeadlockTimeout otherwise.
    pub fn deadline_for(&self, op: Op) -> u64 {
        match op {
            Op::Online | Op::Offline => self.props.pending_timeout_ms,
            _ => self.props.deadlock_timeout_ms,
        }
    }

    /// The health plan its properties give now.
    pub fn health_plan(&self) -> HealthPlan {
        HealthPlan {
            looks_alive_ms: self.props.looks_alive_poll_interval_ms,
            is_alive_ms: self.props.is_alive_poll_interval_ms,
            deadline_ms: self.props.deadlock_timeout_ms,
        }
    }

    /// The database record, given the names of the group and of the providers.
    pub fn record(&self, group: &str, depends_on: Vec<String>) -> ResourceRecord {
        ResourceRecord {
            name: self.name.clone(),
            type_name: self.type_name.clone(),
            plugin: self.plugin.clone(),
            group: group.to_string(),
            properties: self.props.non_default_map(),
            params: self.params.clone(),
            depends_on,
            want_online: self.want_online,
        }
    }
}
