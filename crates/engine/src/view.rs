//! Read-only views of the engine for the shell's API (`keelson resource get`, `group get`) and for
//! tests, plus the invariant check. Not mutation: every change goes through `Engine::handle`.

use crate::engine::Engine;
use crate::ids::{GroupId, HostId};
use crate::last_error::LastError;
use crate::state::{GroupState, ResourceState};
use keelson_types::{GroupProperties, Op, ResourceId, ResourceProperties};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One resource as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceView {
    pub id: ResourceId,
    pub name: String,
    pub group: String,
    pub type_name: String,
    pub plugin: String,
    pub state: ResourceState,
    pub want_online: bool,
    pub properties: ResourceProperties,
    /// Private parameters.
    pub params: BTreeMap<String, String>,
    /// Names of the resources it depends on, sorted.
    pub depends_on: Vec<String>,
    /// The host slot it is open in.
    pub host: Option<HostId>,
    /// The pid of that host (read-only `MonitorProcessId`), once known.
    pub monitor_process_id: Option<u32>,
    /// The `gen(N)` counter: how many times it was re-opened.
    pub gen: u64,
    /// Calls sent and not answered yet.
    pub outstanding: Vec<Op>,
    /// Each entry point's last failure, if it ever failed (kept in memory, never cleared).
    pub last_errors: BTreeMap<Op, LastError>,
}

/// One group as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub id: GroupId,
    pub name: String,
    pub state: GroupState,
    pub want_online: bool,
    pub properties: GroupProperties,
    /// Names of its resources, in creation order.
    pub resources: Vec<String>,
    /// The node that runs it (empty: this one, on a single node).
    pub owner: String,
}

/// One host slot as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    pub id: HostId,
    pub pid: Option<u32>,
    /// The resource it is a separate monitor for; `None` for the default host.
    pub dedicated_to: Option<ResourceId>,
    pub resources: Vec<ResourceId>,
}

impl Engine {
    /// The name of the group resource `id` belongs to, without building a view.
    pub fn group_of(&self, id: ResourceId) -> Option<&str> {
        let r = self.resources.get(&id)?;
        self.groups.get(&r.group).map(|g| g.name.as_str())
    }

    /// The name of resource `id`, without building a view.
    pub fn resource_name(&self, id: ResourceId) -> Option<&str> {
        self.resources.get(&id).map(|r| r.name.as_str())
    }

    /// The resource called `name`.
    pub fn resource(&self, name: &str) -> Option<ResourceView> {
        self.resource_by_id(*self.resource_names.get(name)?)
    }

    /// The resource with id `id`.
    pub fn resource_by_id(&self, id: ResourceId) -> Option<ResourceView> {
        let r = self.resources.get(&id)?;
        let mut depends_on: Vec<String> = r
            .depends_on
            .iter()
            .map(|d| self.res(*d).name.clone())
            .collect();
        depends_on.sort();
        Some(ResourceView {
            id,
            name: r.name.clone(),
            group: self.group_name_of(id),
            type_name: r.type_name.clone(),
            plugin: r.plugin.clone(),
            state: r.state,
            want_online: r.want_online,
            properties: r.props.clone(),
            params: r.params.clone(),
            depends_on,
            host: r.host,
            monitor_process_id: r.host.and_then(|h| self.hosts.get(h)?.pid),
            gen: r.gen,
            outstanding: r.outstanding.iter().copied().collect(),
            last_errors: r.last_errors.clone(),
        })
    }

    /// Every resource, in id (creation) order.
    pub fn resources(&self) -> Vec<ResourceView> {
        self.resources
            .keys()
            .filter_map(|id| self.resource_by_id(*id))
            .collect()
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<GroupView> {
        let id = *self.group_names.get(name)?;
        let g = &self.groups[&id];
        Some(GroupView {
            id: g.id,
            name: g.name.clone(),
            state: self.derive_group_state(id),
            want_online: g.want_online,
            properties: g.props.clone(),
            resources: g
                .members
                .iter()
                .map(|r| self.res(*r).name.clone())
                .collect(),
            owner: g.owner.clone(),
        })
    }

    /// Every group, in id (creation) order.
    pub fn groups(&self) -> Vec<GroupView> {
        self.groups
            .values()
            .filter_map(|g| self.group(&g.name))
            .collect()
    }

    /// Every live host slot, in id order.
    pub fn hosts(&self) -> Vec<HostView> {
        self.hosts
            .iter()
            .map(|(id, h)| HostView {
                id: *id,
                pid: h.pid,
                dedicated_to: h.dedicated_to,
                resources: h.members.iter().copied().collect(),
            })
            .collect()
    }

    /// Checks the engine's invariants; the message names the first one broken. Meant for tests and
    /// debug assertions: (a) a resource is Online only if everything it depends on is Online;
    /// (b) a resource is open in at most one host, the one it records; dependencies stay in one group.
    pub fn check_invariants(&self) -> Result<(), String> {
        for r in self.resources.values() {
            for d in &r.dependents {
                if !self.res(*d).depends_on.contains(&r.id) {
                    return Err(format!(
                        "'{}' lists a dependent that does not depend on it",
                        r.name
                    ));
                }
            }
            for p in &r.depends_on {
                let provider = self.res(*p);
                if !provider.dependents.contains(&r.id) {
                    return Err(format!(
                        "'{}' depends on '{}', which does not list it as a dependent",
                        r.name, provider.name
                    ));
                }
                if r.state == ResourceState::Online && provider.state != ResourceState::Online {
                    return Err(format!(
                        "'{}' is Online but its provider '{}' is {}",
                        r.name, provider.name, provider.state
                    ));
                }
                if provider.group != r.group {
                    return Err(format!(
                        "'{}' depends on '{}' in another group",
                        r.name, provider.name
                    ));
                }
            }
        }
        let mut seen: BTreeMap<ResourceId, HostId> = BTreeMap::new();
        for (hid, h) in self.hosts.iter() {
            for m in &h.members {
                if let Some(other) = seen.insert(*m, *hid) {
                    return Err(format!("resource {m} is open in both {other} and {hid}"));
                }
                if self.resources.get(m).and_then(|r| r.host) != Some(*hid) {
                    return Err(format!(
                        "{hid} lists resource {m}, which does not record it"
                    ));
                }
            }
        }
        for r in self.resources.values() {
            if r.host.is_some_and(|h| seen.get(&r.id) != Some(&h)) {
                return Err(format!(
                    "'{}' records {:?}, which does not list it",
                    r.name, r.host
                ));
            }
        }
        Ok(())
    }
}
