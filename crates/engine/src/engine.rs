//! The `Engine` value: all resources, groups, hosts and live timers of one node, and `handle`, the one
//! entry point that turns `(now, Event)` into `Vec<Command>`. Helpers to emit commands live here too.
//! Not the rules themselves: admin.rs, lifecycle.rs, health.rs, failure.rs and host_death.rs hold them.

use crate::command::{ClusterEvent, Command, EventLevel, PersistChange};
use crate::error::{EngineError, Refusal};
use crate::event::Event;
use crate::group::Group;
use crate::hosts::HostTable;
use crate::ids::{GroupId, TimerId};
use crate::resource::Resource;
use crate::state::GroupState;
use crate::timer::{Timer, TimerKind};
use keelson_types::{LogLevel, ResourceId};
use std::collections::{BTreeMap, BTreeSet};

/// The pure core of the node service. See the crate documentation for how a shell drives it.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub(crate) resources: BTreeMap<ResourceId, Resource>,
    pub(crate) groups: BTreeMap<GroupId, Group>,
    pub(crate) resource_names: BTreeMap<String, ResourceId>,
    pub(crate) group_names: BTreeMap<String, GroupId>,
    pub(crate) hosts: HostTable,
    /// The live timer of each kind; a fired timer whose id is not here is stale.
    pub(crate) timers: BTreeMap<TimerKind, TimerId>,
    pub(crate) next_resource: u64,
    pub(crate) next_group: u64,
    pub(crate) next_timer: u64,
    pub(crate) now: u64,
    pub(crate) out: Vec<Command>,
    pub(crate) dirty_resources: BTreeSet<ResourceId>,
    pub(crate) dirty_groups: BTreeSet<GroupId>,
    /// Each group's state as last announced (GroupStateChanged is sent when it differs).
    pub(crate) announced: BTreeMap<GroupId, GroupState>,
    /// This node's name in its cluster (empty on a single node): it runs the groups it owns and
    /// only holds the others' configuration.
    pub(crate) local_node: String,
    /// In a cluster: this node lost quorum (its groups are terminated and nothing runs here until
    /// it regains it).
    pub(crate) quorum_lost: bool,
}

/// The Persist commands taken out of `commands`, in order.
fn take_persists(commands: &mut Vec<Command>) -> Vec<PersistChange> {
    let mut changes = Vec::new();
    commands.retain(|c| match c {
        Command::Persist(change) => {
            changes.push(change.clone());
            false
        }
        _ => true,
    });
    changes
}

/// What an administrator event is about, by name (resolved to its group after it is applied: a
/// group or resource it creates exists only then).
enum AdminTarget {
    Group(String),
    Resource(String),
}

fn admin_target(event: &Event) -> Option<AdminTarget> {
    use AdminTarget::{Group, Resource};
    Some(match event {
        Event::CreateGroup { name, .. }
        | Event::DeleteGroup { name }
        | Event::OnlineGroup { name }
        | Event::OfflineGroup { name } => Group(name.clone()),
        Event::SetGroupProperty { group, .. } | Event::SetGroup { group, .. } => {
            Group(group.clone())
        }
        Event::CreateResource(spec) => Resource(spec.name.clone()),
        Event::DeleteResource { name }
        | Event::OnlineResource { name }
        | Event::OfflineResource { name }
        | Event::FailResource { name } => Resource(name.clone()),
        Event::SetResourceProperty { resource, .. }
        | Event::SetResource { resource, .. }
        | Event::AddDependency { resource, .. }
        | Event::RemoveDependency { resource, .. } => Resource(resource.clone()),
        Event::CallDone { .. }
        | Event::TimerFired { .. }
        | Event::HostStarted { .. }
        | Event::HostDied { .. }
        | Event::HealthFailed { .. }
        | Event::FailureReported { .. } => return None,
    })
}

/// How much of the node one event can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Admin requests and host events: anything.
    All,
    /// A group-level timer: that group.
    Group(GroupId),
    /// A call result or resource timer: its group, and only if some resource changed state.
    Resource(GroupId),
}

impl Engine {
    /// An engine with no groups and no resources.
    pub fn new() -> Self {
        Engine::default()
    }

    /// Names this node in its cluster: from now on it runs only the groups it owns (and those with
    /// no owner); groups it creates are its own.
    pub fn set_local_node(&mut self, name: &str) {
        self.local_node = name.to_string();
    }

    /// True when group `id` runs on this node: always on a single node; in a cluster, when this
    /// node owns it, no previous owner is still releasing it, and this node has quorum.
    pub(crate) fn hosted_here(&self, id: GroupId) -> bool {
        let Some(g) = self.groups.get(&id) else {
            return false;
        };
        if self.local_node.is_empty() {
            return true;
        }
        g.owner == self.local_node && g.placement.releasing_from.is_empty() && !self.quorum_lost
    }

    /// Handles one event at time `now` (ms, from any monotonic origin; a smaller `now` than before is
    /// treated as the previous one). Returns the commands to execute, in order. An administrator
    /// request that is refused returns the error and leaves the engine exactly as it was: it is
    /// validated as a whole first (`admin_changes`), without mutating or copying the engine.
    pub fn handle(&mut self, now: u64, event: Event) -> Result<Vec<Command>, EngineError> {
        if let Some(planned) = self.admin_changes(&event) {
            planned?;
        }
        Ok(self.apply(now, event))
    }

    /// Handles an administrator event whose database changes must be durable before it counts:
    /// `commit` gets every change in one batch (the shell writes them in one transaction) before the
    /// engine changes at all. If the event is refused, or `commit` fails, the engine is left exactly
    /// as it was and nothing is to be done; otherwise the returned commands (without the Persist
    /// ones, already committed) are carried out as usual. For an event that is not an
    /// administrator's, it is applied first and what it persists is committed after.
    pub fn handle_committed<E>(
        &mut self,
        now: u64,
        event: Event,
        commit: impl FnOnce(&[PersistChange]) -> Result<(), E>,
    ) -> Result<Vec<Command>, Refusal<E>> {
        let Some(planned) = self.admin_changes(&event) else {
            let mut commands = self.apply(now, event);
            let changes = take_persists(&mut commands);
            commit(&changes).map_err(Refusal::Storage)?;
            return Ok(commands);
        };
        let changes = planned.map_err(Refusal::Engine)?;
        commit(&changes).map_err(Refusal::Storage)?;
        let mut commands = self.apply(now, event);
        let applied = take_persists(&mut commands);
        debug_assert!(
            crate::plan::same_changes(&applied, &changes),
            "the dry run and the event disagree: planned {changes:?}, applied {applied:?}"
        );
        Ok(commands)
    }

    /// Carries out an event already validated (or one that cannot be refused).
    fn apply(&mut self, now: u64, event: Event) -> Vec<Command> {
        self.now = self.now.max(now);
        // Call results and timers concern one resource, and everything they can change lives in its
        // group (dependencies never cross groups): look at that group only, not at the whole node, and
        // not even at it when no resource changed state (a healthy health check). An administrator
        // request changes one group too.
        let target = admin_target(&event);
        let before = target.as_ref().and_then(|t| self.group_of_target(t));
        let scope = self.scope_of(&event);
        if let Err(e) = self.dispatch(event) {
            // Validation said yes: a rule checked in admin.rs but not in plan.rs. Never silent.
            debug_assert!(false, "a validated event was refused: {e}");
            self.log(
                LogLevel::Err,
                format!("internal error: a validated request was refused: {e}"),
            );
        }
        let scope = match target {
            Some(target) => match self.group_of_target(&target).or(before) {
                Some(g) => Scope::Group(g),
                None => Scope::Group(GroupId(0)),
            },
            None => scope,
        };
        let changed = || {
            self.out
                .iter()
                .any(|c| matches!(c, Command::ResourceStateChanged { .. }))
        };
        let groups: Option<Vec<GroupId>> = match scope {
            Scope::All => None,
            Scope::Group(g) => Some(vec![g]),
            Scope::Resource(g) if changed() => Some(vec![g]),
            Scope::Resource(_) => Some(vec![]),
        };
        match &groups {
            None => self.reconcile_all(),
            Some(gs) => {
                for g in gs {
                    if self.groups.contains_key(g) {
                        self.reconcile(*g);
                    }
                }
            }
        }
        self.flush_persist();
        self.notify_group_changes(groups);
        std::mem::take(&mut self.out)
    }

    fn group_of_target(&self, target: &AdminTarget) -> Option<GroupId> {
        match target {
            AdminTarget::Group(name) => self.gid(name).ok(),
            AdminTarget::Resource(name) => self.rid(name).ok().map(|id| self.res(id).group),
        }
    }

    fn dispatch(&mut self, event: Event) -> Result<(), EngineError> {
        match event {
            Event::CreateGroup { name, properties } => self.create_group(name, properties),
            Event::DeleteGroup { name } => self.delete_group(&name),
            Event::CreateResource(spec) => self.create_resource(spec),
            Event::DeleteResource { name } => self.delete_resource(&name),
            Event::SetResourceProperty {
                resource,
                name,
                value,
            } => self.set_resource_property(&resource, &name, &value),
            Event::SetResource {
                resource,
                properties,
                params,
                unset_params,
            } => self.set_resource(&resource, &properties, params, &unset_params),
            Event::SetGroupProperty { group, name, value } => {
                self.set_group(&group, &[(name, value)])
            }
            Event::SetGroup { group, properties } => self.set_group(&group, &properties),
            Event::AddDependency { resource, provider } => {
                self.add_dependency(&resource, &provider)
            }
            Event::RemoveDependency { resource, provider } => {
                self.remove_dependency(&resource, &provider)
            }
            Event::OnlineResource { name } => self.online_resource(&name),
            Event::OfflineResource { name } => self.offline_resource(&name),
            Event::OnlineGroup { name } => self.online_group(&name),
            Event::OfflineGroup { name } => self.offline_group(&name),
            Event::FailResource { name } => self.fail_resource(&name),
            Event::CallDone {
                resource,
                op,
                status,
                message,
            } => {
                self.call_done(resource, op, status, &message);
                Ok(())
            }
            Event::HealthFailed {
                resource,
                op,
                status,
                message,
            } => {
                self.health_failed(resource, op, status, &message);
                Ok(())
            }
            Event::FailureReported { resource, message } => {
                self.failure_reported(resource, &message);
                Ok(())
            }
            Event::TimerFired { timer } => {
                self.timer_fired(timer);
                Ok(())
            }
            Event::HostStarted { host, pid } => {
                self.hosts.set_pid(host, pid);
                Ok(())
            }
            Event::HostDied {
                host,
                offender,
                offending_plugin,
                cause,
            } => {
                self.host_died(host, offender, offending_plugin.as_deref(), &cause);
                Ok(())
            }
        }
    }

    // ---- lookups ----

    pub(crate) fn rid(&self, name: &str) -> Result<ResourceId, EngineError> {
        self.resource_names
            .get(name)
            .copied()
            .ok_or_else(|| EngineError::UnknownResource(name.to_string()))
    }

    pub(crate) fn gid(&self, name: &str) -> Result<GroupId, EngineError> {
        self.group_names
            .get(name)
            .copied()
            .ok_or_else(|| EngineError::UnknownGroup(name.to_string()))
    }

    pub(crate) fn res(&self, id: ResourceId) -> &Resource {
        &self.resources[&id]
    }

    pub(crate) fn res_mut(&mut self, id: ResourceId) -> &mut Resource {
        self.resources
            .get_mut(&id)
            .expect("resource id from the engine's own tables")
    }

    pub(crate) fn group_name_of(&self, id: ResourceId) -> String {
        self.groups
            .get(&self.res(id).group)
            .map(|g| g.name.clone())
            .unwrap_or_default()
    }

    // ---- emitting ----

    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        self.out.push(Command::Log {
            level,
            component: "RCM".to_string(),
            message,
        });
    }

    pub(crate) fn raise(
        &mut self,
        id: u32,
        level: EventLevel,
        message: String,
        resource: Option<String>,
        group: Option<String>,
    ) {
        self.out.push(Command::RaiseEvent(ClusterEvent {
            id,
            level,
            message,
            resource,
            group,
        }));
    }

    /// Schedules `kind` at `at`, replacing (and so cancelling) any live timer of that kind.
    pub(crate) fn schedule(&mut self, kind: TimerKind, at: u64) {
        self.next_timer += 1;
        let id = TimerId(self.next_timer);
        self.timers.insert(kind, id);
        self.out.push(Command::ScheduleTimer {
            at,
            timer: Timer { id, kind },
        });
    }

    /// Cancels the live timer of `kind`, if any (when it fires it is ignored).
    pub(crate) fn cancel(&mut self, kind: TimerKind) {
        self.timers.remove(&kind);
    }

    /// True (and the timer forgotten) if `timer` is the live one of its kind.
    pub(crate) fn take_timer(&mut self, timer: Timer) -> bool {
        if self.timers.get(&timer.kind) == Some(&timer.id) {
            self.timers.remove(&timer.kind);
            return true;
        }
        false
    }

    pub(crate) fn mark_dirty(&mut self, id: ResourceId) {
        self.dirty_resources.insert(id);
        self.refresh_health_plan(id);
    }

    pub(crate) fn flush_persist(&mut self) {
        for id in std::mem::take(&mut self.dirty_resources) {
            if self.resources.contains_key(&id) {
                let record = self.record_of(id);
                self.out
                    .push(Command::Persist(PersistChange::PutResource(record)));
            }
        }
        for id in std::mem::take(&mut self.dirty_groups) {
            if let Some(g) = self.groups.get(&id) {
                self.out
                    .push(Command::Persist(PersistChange::PutGroup(g.record())));
            }
        }
    }

    // ---- group states ----

    /// The derived state of a group. A Failed member whose restart is scheduled (it is within its
    /// RestartThreshold and only waits out RestartDelay) does not make the group Failed. An empty
    /// group has nothing to wait for: it is Online once brought online, else Offline.
    pub(crate) fn derive_group_state(&self, id: GroupId) -> GroupState {
        let g = &self.groups[&id];
        if g.members.is_empty() && !g.failed_over {
            return if g.want_online {
                GroupState::Online
            } else {
                GroupState::Offline
            };
        }
        let members = g.members.iter().map(|r| {
            let restarting = self.timers.contains_key(&TimerKind::Restart(*r));
            (self.res(*r).state, restarting)
        });
        GroupState::derive_members(g.failed_over, members)
    }

    /// How much of the node `event` can change.
    fn scope_of(&self, event: &Event) -> Scope {
        let resource = match event {
            Event::CallDone { resource, .. }
            | Event::HealthFailed { resource, .. }
            | Event::FailureReported { resource, .. } => *resource,
            Event::TimerFired { timer } => match timer.kind {
                TimerKind::PendingTimeout(r) | TimerKind::Restart(r) | TimerKind::Retry(r) => r,
                TimerKind::GroupRetry(g) => return Scope::Group(g),
            },
            _ => return Scope::All,
        };
        match self.resources.get(&resource) {
            Some(r) => Scope::Resource(r.group),
            None => Scope::All,
        }
    }

    /// Announces groups (all of them for `None`) whose state differs from the last announcement.
    pub(crate) fn notify_group_changes(&mut self, groups: Option<Vec<GroupId>>) {
        let ids: Vec<GroupId> = match groups {
            Some(ids) => ids,
            None => {
                let live = &self.groups;
                self.announced.retain(|id, _| live.contains_key(id));
                self.groups.keys().copied().collect()
            }
        };
        for id in ids {
            let Some(g) = self.groups.get(&id) else {
                self.announced.remove(&id);
                continue;
            };
            let name = g.name.clone();
            let to = self.derive_group_state(id);
            let from = self.announced.insert(id, to).unwrap_or(to);
            if to != from {
                self.out.push(Command::GroupStateChanged {
                    group: id,
                    name,
                    from,
                    to,
                });
            }
        }
    }
}
