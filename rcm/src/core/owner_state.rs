//! The core's facet that tells the cluster the state of the groups this node owns: every change
//! of an owned group's state, and its state at each new placement epoch, is proposed as a
//! `ReportGroupState` (in the background), so that every node's `group get` shows where the group
//! really is and in what state, and `group move --wait` can wait for it. Not the placement itself
//! (placement_gate.rs) and not the views (views.rs).

use super::Core;
use keelson_types::{GroupRecord, OwnerState, RecordChange};

impl Core {
    /// `record`, which this node proposes as its owner, with its state here as the owner's report
    /// when it carries none for its placement yet (a group this node creates, or has when it makes
    /// the cluster): known now, so it rides in the same entry instead of one more.
    pub(super) fn with_own_state(&self, mut record: GroupRecord) -> GroupRecord {
        if record.owner != self.node || record.placement.reported_state(&self.node).is_some() {
            return record;
        }
        let state = self
            .engine
            .group(&record.name)
            .map_or_else(|| "Offline".to_string(), |g| g.state.to_string());
        record.placement.owner_state = Some(OwnerState {
            node: self.node.clone(),
            epoch: record.placement.epoch,
            state,
            at_ms: self.now(),
        });
        record
    }

    /// Group `name`'s state changed here: reported when this node owns it in a cluster.
    pub(super) fn report_owner_state(&mut self, name: &str) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let Some(record) = self.engine.group_record(name) else {
            return;
        };
        if record.owner != self.node {
            return;
        }
        let Some(view) = self.engine.group(name) else {
            return;
        };
        if view.state == keelson_engine::GroupState::Pending {
            // On its way: what it comes to (Online, Failed...) is what others wait for.
            return;
        }
        let state = OwnerState {
            node: self.node.clone(),
            epoch: record.placement.epoch,
            state: view.state.to_string(),
            at_ms: self.now(),
        };
        let already = record.placement.owner_state.as_ref().is_some_and(|s| {
            (s.node.as_str(), s.epoch, s.state.as_str())
                == (state.node.as_str(), state.epoch, state.state.as_str())
        });
        if !already {
            cluster.propose_request_in_background(keelson_raft::Request::ReportGroupState {
                group: name.to_string(),
                state,
            });
        }
    }

    /// Committed records: a group this node owns at a placement epoch it has not reported for yet
    /// gets its state reported (a move to it, or a leader's change of its placement).
    pub(super) fn report_new_placements(&mut self, changes: &[RecordChange]) {
        let owned: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                RecordChange::PutGroup(g)
                    if g.owner == self.node && g.placement.reported_state(&self.node).is_none() =>
                {
                    Some(g.name.clone())
                }
                _ => None,
            })
            .collect();
        for name in owned {
            self.report_owner_state(&name);
        }
    }
}
