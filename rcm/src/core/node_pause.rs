//! The core's facet for `keelson node pause NODE [--drain]` and `keelson node resume NODE`: the
//! paused flag lives in the node's entry in the cluster database, so every node and every future
//! leader knows it; a drain's moves are decided here (with a placement core over the committed
//! records, as `group move` is) and committed in the same entry as the pause, all or nothing. Not
//! the placement rules (crates/engine/src/placement) nor the waiting, which the CLI does by
//! watching the groups' reported states.

use super::Core;
use keelson_engine::placement::PlacementEvent;
use keelson_proto::ControlReply;
use keelson_types::RecordChange;

impl Core {
    /// `node pause NAME [--drain]`.
    pub(super) fn node_pause(&mut self, name: String, drain: bool) -> Result<ControlReply, String> {
        self.in_cluster()?;
        self.admit_cluster_change()?;
        let was_paused = self.member_entry(&name)?.paused;
        let (changes, rest) = self.decide_locally(PlacementEvent::Pause {
            node: name.clone(),
            drain,
        })?;
        let moving: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                RecordChange::PutGroup(g) if g.owner != name => Some(g.name.clone()),
                _ => None,
            })
            .collect();
        if was_paused && changes.is_empty() {
            return Ok(done(format!("node '{name}' is already paused")));
        }
        self.commit_pause(&name, true, changes)?;
        self.execute(rest);
        tracing::info!(
            component = "RCM",
            "Administrator paused node '{name}'{}",
            if drain { " and drains it" } else { "" }
        );
        Ok(done(match (drain, moving.is_empty()) {
            (false, _) => format!("node '{name}' paused: no group is placed on it"),
            (true, true) => format!("node '{name}' paused: it owns no group"),
            (true, false) => format!("node '{name}' paused; moving off it: {}", moving.join(", ")),
        }))
    }

    /// `node resume NAME`.
    pub(super) fn node_resume(&mut self, name: String) -> Result<ControlReply, String> {
        self.in_cluster()?;
        self.admit_cluster_change()?;
        if !self.member_entry(&name)?.paused {
            return Ok(done(format!("node '{name}' is not paused")));
        }
        self.commit_pause(&name, false, Vec::new())?;
        tracing::info!(component = "RCM", "Administrator resumed node '{name}'");
        Ok(done(format!(
            "node '{name}' resumed: groups may be placed on it again"
        )))
    }

    /// Node `name`'s entry, if it is a member (joined).
    fn member_entry(&self, name: &str) -> Result<keelson_raft::NodeEntry, String> {
        let info = self.in_cluster()?.info();
        let entry = info
            .nodes
            .get(name)
            .ok_or_else(|| format!("no node named '{name}' in cluster '{}'", info.name))?;
        if entry.id.is_none() {
            return Err(format!(
                "node '{name}' has not joined cluster '{}' yet",
                info.name
            ));
        }
        Ok(entry.clone())
    }

    fn commit_pause(
        &mut self,
        name: &str,
        paused: bool,
        changes: Vec<RecordChange>,
    ) -> Result<(), String> {
        self.in_cluster()?
            .propose(keelson_raft::Request::SetNodePaused {
                name: name.to_string(),
                paused,
                changes,
            })
            .map_err(|e| format!("{e}; nothing was changed"))?;
        self.catch_up();
        Ok(())
    }
}

fn done(message: String) -> ControlReply {
    ControlReply::Done { message }
}
