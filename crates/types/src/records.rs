//! Resources and groups as the cluster database keeps them: what the engine persists and restores
//! from, and what crates/store writes. Plain data; not the live state (crates/engine).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A resource as persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub name: String,
    pub type_name: String,
    /// The plugin implementing `type_name` when the record was written (re-resolved at start).
    #[serde(default)]
    pub plugin: String,
    pub group: String,
    /// Common properties that differ from their defaults, by PascalCase name.
    pub properties: BTreeMap<String, String>,
    /// Private parameters passed to the plugin (kept by the node service, not the engine).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Names of the resources (same group) it depends on, sorted.
    pub depends_on: Vec<String>,
    /// Whether the administrator wants it online.
    pub want_online: bool,
}

/// A group as persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    /// Common properties that differ from their defaults, by PascalCase name.
    pub properties: BTreeMap<String, String>,
    /// Whether the administrator last brought the group online (true) or offline (false).
    pub want_online: bool,
    /// The node that runs it, by name; empty on a single node (it runs there).
    #[serde(default)]
    pub owner: String,
    /// Where it is in a hand-off between nodes, its failovers and its last move: written only by
    /// the cluster leader's placement core (crates/engine, placement), read by every node.
    #[serde(default)]
    pub placement: GroupPlacement,
}

/// The placement state of one group, replicated with it. `epoch` orders the leader's writes: a
/// record whose epoch is lower than the one held carries stale placement (an administrator's
/// upsert built on an old view) and its `owner` and `placement` are ignored (see
/// [`GroupRecord::merge_placement`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPlacement {
    /// Bumped by the leader for every placement change it commits.
    #[serde(default)]
    pub epoch: u64,
    /// The previous owner, still taking the group offline: the owner starts it only once this is
    /// empty. The previous owner clears it (through the leader) when all its resources are
    /// Offline; the leader clears it by itself only after that node's quorum lease expired.
    #[serde(default)]
    pub releasing_from: String,
    /// When it failed over because of a failure (wall-clock ms), within its FailoverPeriod.
    #[serde(default)]
    pub failovers: Vec<u64>,
    /// Nodes where a resource of it failed past its RestartThreshold (node, wall-clock ms),
    /// within its FailoverPeriod: the restart-then-failover ladder does not go back there.
    #[serde(default)]
    pub failed_on: Vec<(String, u64)>,
    /// Left Failed by the leader (FailoverThreshold exceeded, or failed on every node).
    #[serde(default)]
    pub failed: bool,
    /// The last move, if it ever moved.
    #[serde(default)]
    pub last_move: Option<GroupMove>,
    /// The group's state as a node that owned it last reported it (`Request::ReportGroupState`,
    /// written by the state machine, never by the leader's placement core). It describes the
    /// current placement only while its epoch and node are the record's (see
    /// [`GroupPlacement::reported_state`]).
    #[serde(default)]
    pub owner_state: Option<OwnerState>,
}

/// A group's state as its owner reported it through the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerState {
    /// The reporting node (the owner at `epoch`).
    pub node: String,
    /// The placement epoch it held then.
    pub epoch: u64,
    /// `Online`, `Offline`, `PartialOnline`, `Failed` or `Pending`.
    pub state: String,
    /// When (the reporter's wall clock, ms).
    pub at_ms: u64,
}

/// One move of a group between nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMove {
    /// The node it left (empty: it had no owner).
    pub from: String,
    pub to: String,
    /// Why, in words: `node lost`, `failure`, `administrator`, `drain`, `failback`, `assigned`.
    pub reason: String,
    /// When (wall-clock ms).
    pub at_ms: u64,
}

impl GroupPlacement {
    /// The state `owner` reported for this placement (same epoch, same node), if it did.
    pub fn reported_state(&self, owner: &str) -> Option<&OwnerState> {
        self.owner_state
            .as_ref()
            .filter(|s| s.epoch == self.epoch && s.node == owner)
    }

    /// Failovers within the `period_ms` (FailoverPeriod) before `now_ms` (wall clock): the count
    /// FailoverThreshold is held against, as `group get` shows it.
    pub fn failovers_in_period(&self, now_ms: u64, period_ms: u64) -> usize {
        self.failovers
            .iter()
            .filter(|t| now_ms.saturating_sub(**t) < period_ms)
            .count()
    }
}

impl GroupRecord {
    /// This record as committed over `held`, the one a replica holds: its owner and placement are
    /// taken only if its placement epoch is not older than the held one (the rest is always taken).
    pub fn merge_placement(&self, held: &GroupRecord) -> GroupRecord {
        if self.placement.epoch >= held.placement.epoch {
            return self.clone();
        }
        GroupRecord {
            owner: held.owner.clone(),
            placement: held.placement.clone(),
            ..self.clone()
        }
    }
}

/// One change to the cluster database, as the engine emits it and the store writes it. Puts carry
/// the whole record (upsert).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordChange {
    PutResource(ResourceRecord),
    DeleteResource(String),
    PutGroup(GroupRecord),
    DeleteGroup(String),
}

impl RecordChange {
    /// What the change is about: (is a group, name). Two changes with one key replace each other.
    pub fn key(&self) -> (bool, &str) {
        match self {
            RecordChange::PutResource(r) => (false, &r.name),
            RecordChange::DeleteResource(n) => (false, n),
            RecordChange::PutGroup(g) => (true, &g.name),
            RecordChange::DeleteGroup(n) => (true, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(owner: &str, epoch: u64, want_online: bool) -> GroupRecord {
        GroupRecord {
            name: "g".into(),
            want_online,
            owner: owner.into(),
            placement: GroupPlacement {
                epoch,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn an_older_placement_epoch_keeps_the_held_owner_but_takes_the_rest() {
        let held = record("b", 3, false);
        let stale = record("a", 2, true);
        let merged = stale.merge_placement(&held);
        assert_eq!(merged.owner, "b");
        assert_eq!(merged.placement.epoch, 3);
        assert!(merged.want_online);
        let newer = record("c", 4, false);
        assert_eq!(newer.merge_placement(&held), newer);
        let same = record("b", 3, true);
        assert_eq!(same.merge_placement(&held), same);
    }

    #[test]
    fn failovers_count_within_the_period_only() {
        let p = GroupPlacement {
            failovers: vec![1_000, 5_000, 9_000],
            ..Default::default()
        };
        assert_eq!(p.failovers_in_period(10_000, 6_000), 2);
        assert_eq!(p.failovers_in_period(10_000, 1_000), 0);
        assert_eq!(p.failovers_in_period(10_000, 100_000), 3);
    }

    #[test]
    fn records_without_placement_still_read() {
        let g: GroupRecord =
            serde_json::from_str(r#"{"name":"g","properties":{},"want_online":true}"#).unwrap();
        assert_eq!(g.placement, GroupPlacement::default());
    }
}
