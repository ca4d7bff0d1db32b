//! The `Placer` value: the nodes as the leader sees them (Up, lease expired, paused), the groups'
//! committed records, the hour, and `handle`, the one entry point. Emitting helpers (commit a
//! record, raise, log) live here. Not the rules themselves (rules.rs).

use super::event::{PlacementError, PlacementEvent};
use crate::command::{ClusterEvent, Command, EventLevel, PersistChange};
use keelson_types::{GroupProperties, GroupRecord, LogLevel, RecordChange};
use std::collections::BTreeMap;

/// One node as the leader sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeStatus {
    pub up: bool,
    /// Down and its quorum lease has run out: it runs nothing.
    pub lease_expired: bool,
    pub paused: bool,
}

/// The cluster leader's placement core. Build it when this node becomes leader, from the committed
/// group records ([`Placer::new`]); feed it every [`PlacementEvent`]; commit the `Persist`
/// commands it returns through raft (and feed them back as `Committed` when they are).
#[derive(Clone, Debug, Default)]
pub struct Placer {
    pub(crate) nodes: BTreeMap<String, NodeStatus>,
    pub(crate) groups: BTreeMap<String, GroupRecord>,
    pub(crate) hour: Option<u32>,
    pub(crate) now: u64,
    pub(crate) out: Vec<Command>,
}

impl Placer {
    /// A core for the cluster members `nodes` (all Down until reported Up) and the committed
    /// `groups`.
    pub fn new(nodes: &[String], groups: &[GroupRecord]) -> Placer {
        Placer {
            nodes: nodes
                .iter()
                .map(|n| (n.clone(), NodeStatus::default()))
                .collect(),
            groups: groups.iter().map(|g| (g.name.clone(), g.clone())).collect(),
            ..Placer::default()
        }
    }

    /// Handles one event at wall-clock time `now` (ms). A refused administrator request (or a bad
    /// hour) returns the error and changes nothing. After every event, groups whose owner is gone
    /// are placed, hand-offs from expired nodes are cleared, and failbacks that are due happen.
    pub fn handle(
        &mut self,
        now: u64,
        event: PlacementEvent,
    ) -> Result<Vec<Command>, PlacementError> {
        let mut next = self.clone();
        next.now = next.now.max(now);
        next.dispatch(event)?;
        next.settle();
        let out = std::mem::take(&mut next.out);
        *self = next;
        Ok(out)
    }

    /// The group's record as the core holds it (its own commits included).
    pub fn group(&self, name: &str) -> Option<&GroupRecord> {
        self.groups.get(name)
    }

    /// Every group's record, by name.
    pub fn groups(&self) -> impl Iterator<Item = &GroupRecord> {
        self.groups.values()
    }

    fn dispatch(&mut self, event: PlacementEvent) -> Result<(), PlacementError> {
        match event {
            PlacementEvent::NodeUp { node } => self.node_up(&node),
            PlacementEvent::NodeDown { node } => self.node_down(&node),
            PlacementEvent::LeaseExpired { node } => self.lease_expired(&node),
            PlacementEvent::Pause { node, drain } => return self.pause(&node, drain),
            PlacementEvent::Resume { node } => return self.resume(&node),
            PlacementEvent::Move { group, to } => return self.move_request(&group, to.as_deref()),
            PlacementEvent::GroupFailed {
                group,
                node,
                resource,
            } => self.group_failed(&group, &node, &resource),
            PlacementEvent::Released { group, node, epoch } => self.released(&group, &node, epoch),
            PlacementEvent::Hour(h) if h < 24 => self.hour = Some(h),
            PlacementEvent::Hour(h) => return Err(PlacementError::BadHour(h)),
            PlacementEvent::Committed(changes) => self.follow(&changes),
        }
        Ok(())
    }

    /// Follows committed records: a group's owner and placement are taken unless older than held.
    fn follow(&mut self, changes: &[RecordChange]) {
        for change in changes {
            match change {
                RecordChange::PutGroup(r) => {
                    let merged = match self.groups.get(&r.name) {
                        Some(held) => r.merge_placement(held),
                        None => r.clone(),
                    };
                    self.groups.insert(r.name.clone(), merged);
                }
                RecordChange::DeleteGroup(name) => {
                    self.groups.remove(name);
                }
                RecordChange::PutResource(_) | RecordChange::DeleteResource(_) => {}
            }
        }
    }

    // ---- what the rules read ----

    pub(crate) fn status(&self, node: &str) -> Option<NodeStatus> {
        self.nodes.get(node).copied()
    }

    /// The node runs nothing any more: Down with its lease expired, or not a member at all.
    pub(crate) fn gone(&self, node: &str) -> bool {
        self.status(node).is_none_or(|s| !s.up && s.lease_expired)
    }

    /// Up and unpaused nodes, by name, not in `exclude`.
    pub(crate) fn eligible(&self, exclude: &[String]) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(n, s)| s.up && !s.paused && !exclude.contains(n))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// How many groups each node owns, `except` not counted.
    pub(crate) fn load(&self, except: &str) -> BTreeMap<String, usize> {
        let mut load = BTreeMap::new();
        for g in self.groups.values().filter(|g| g.name != except) {
            *load.entry(g.owner.clone()).or_insert(0) += 1;
        }
        load
    }

    pub(crate) fn props(&self, group: &str) -> GroupProperties {
        self.groups
            .get(group)
            .and_then(|g| GroupProperties::from_map(&g.properties).ok())
            .unwrap_or_default()
    }

    // ---- emitting ----

    /// Changes group `name`'s record with `change`, bumps its placement epoch and commits it.
    pub(crate) fn commit(&mut self, name: &str, change: impl FnOnce(&mut GroupRecord)) {
        let Some(g) = self.groups.get_mut(name) else {
            return;
        };
        change(g);
        g.placement.epoch += 1;
        let record = g.clone();
        self.out
            .push(Command::Persist(PersistChange::PutGroup(record)));
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        self.out.push(Command::Log {
            level,
            component: "RCM".to_string(),
            message,
        });
    }

    pub(crate) fn raise(&mut self, id: u32, level: EventLevel, message: String, group: &str) {
        self.out.push(Command::RaiseEvent(ClusterEvent {
            id,
            level,
            message,
            resource: None,
            group: Some(group.to_string()),
        }));
    }
}
