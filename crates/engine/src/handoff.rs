//! One node's side of group ownership in a cluster: a group runs here only while this node owns it,
//! no previous owner is still releasing it, and this node has quorum. A group that does not run
//! here is taken offline (dependents first), its Failed resources terminated, and its resources
//! closed; once nothing of it runs here, a node
//! that is the group's `releasing_from` reports the release to the leader (once per placement
//! epoch). Losing quorum terminates every group here at once (event 1177). Not the decisions of
//! who owns what (placement/, on the leader) nor the transport of reports (rcm).

use crate::command::{Command, EventLevel, PlacementReport};
use crate::engine::Engine;
use crate::graph;
use crate::ids::GroupId;
use crate::state::ResourceState;
use crate::timer::TimerKind;
use keelson_types::{GroupRecord, LogLevel, Op, ResourceId};

const QUORUM_LOST: &str = "The Cluster service on this node lost quorum: every clustered role it \
     hosted is terminated, and none runs here until quorum is regained.";

fn down(state: ResourceState) -> bool {
    matches!(state, ResourceState::Offline | ResourceState::Failed)
}

impl Engine {
    /// A group that must not run here (another node owns it, a previous owner still releases it,
    /// or quorum is lost): takes it down, closes its resources, and reports the release if this
    /// node is the one releasing it.
    pub(crate) fn release(&mut self, gid: GroupId) {
        let g = self
            .groups
            .get_mut(&gid)
            .expect("group id from the engine's tables");
        g.failed_over = false;
        let members: Vec<ResourceId> = g.members.iter().copied().collect();
        self.cancel(TimerKind::GroupRetry(gid));
        for m in &members {
            self.cancel(TimerKind::Restart(*m));
            self.cancel(TimerKind::Retry(*m));
            if self.res(*m).state == ResourceState::Failed {
                self.res_mut(*m).released_failure = true;
            }
            let dependents_down = graph::direct_dependents(&self.resources, *m)
                .iter()
                .all(|d| down(self.res(*d).state));
            if self.res(*m).state == ResourceState::Online && dependents_down {
                self.start_offline(*m);
                let leaving = self.res(*m).state == ResourceState::OfflinePending;
                self.res_mut(*m).release_offline = leaving;
            }
        }
        if !members.iter().all(|m| down(self.res(*m).state)) {
            return; // the rest comes with the Offline results
        }
        // A Failed resource may still run (its offline failed, its IsAlive did): terminate it
        // before anyone else may start it.
        for m in &members {
            let r = self.res(*m);
            if r.state == ResourceState::Failed
                && r.host.is_some()
                && !r.outstanding.contains(&Op::Terminate)
            {
                let name = r.name.clone();
                self.log(
                    LogLevel::Warn,
                    format!("Terminating failed resource '{name}': its group leaves this node."),
                );
                self.call(*m, Op::Terminate);
            }
        }
        if !members.iter().all(|m| self.released(*m)) {
            return; // waits for the Terminate results
        }
        for m in &members {
            if self.res(*m).host.is_some() {
                self.close(*m);
            }
        }
        self.report_release(gid);
    }

    /// A group that runs here (again): members left Failed when it last left this node (or by an
    /// Offline its leaving started, failing after a cancelled hand-off brought it back) start
    /// afresh, once no Terminate of theirs is under way.
    pub(crate) fn resume_released(&mut self, gid: GroupId) {
        let members: Vec<ResourceId> = self.groups[&gid].members.iter().copied().collect();
        for m in members {
            let r = self.res(m);
            if r.released_failure && !r.outstanding.contains(&Op::Terminate) {
                let r = self.res_mut(m);
                r.released_failure = false;
                r.restarts.clear();
                if r.state == ResourceState::Failed {
                    self.set_state(m, ResourceState::Offline);
                }
            }
        }
    }

    /// The resource runs nothing here: Offline (or Failed and closed) with no Terminate under way.
    fn released(&self, id: ResourceId) -> bool {
        let r = self.res(id);
        let stopped = r.state == ResourceState::Offline
            || (r.state == ResourceState::Failed && r.host.is_none());
        stopped && !r.outstanding.contains(&Op::Terminate)
    }

    /// A Terminate returned: a Failed resource of a group that does not run here is now Offline,
    /// and the group's release may go on.
    pub(crate) fn terminate_done(&mut self, id: ResourceId) {
        let gid = self.res(id).group;
        if self.hosted_here(gid) {
            return self.reconcile(gid); // it came back meanwhile: resume_released
        }
        if self.res(id).state == ResourceState::Failed {
            self.set_state(id, ResourceState::Offline);
        }
        self.release(gid);
    }

    /// Emits the release report of `gid` once per placement epoch, if this node is releasing it.
    fn report_release(&mut self, gid: GroupId) {
        let g = &self.groups[&gid];
        let epoch = g.placement.epoch;
        if self.local_node.is_empty()
            || g.placement.releasing_from != self.local_node
            || g.reported_release == Some(epoch)
        {
            return;
        }
        let (name, owner) = (g.name.clone(), g.owner.clone());
        self.groups
            .get_mut(&gid)
            .expect("group id from the engine's tables")
            .reported_release = Some(epoch);
        self.log(
            LogLevel::Info,
            format!("Group '{name}' is Offline here: released to node '{owner}' (placement epoch {epoch})."),
        );
        self.out.push(Command::Placement(PlacementReport::Released {
            group: name,
            node: self.local_node.clone(),
            epoch,
        }));
    }

    /// Every release this node can report now (groups it is releasing, nothing of them running
    /// here): for a shell that re-sends them to a new leader. Nothing changes.
    pub fn pending_releases(&self) -> Vec<PlacementReport> {
        if self.local_node.is_empty() {
            return Vec::new();
        }
        self.groups
            .values()
            .filter(|g| g.placement.releasing_from == self.local_node)
            .filter(|g| g.members.iter().all(|m| self.released(*m)))
            .map(|g| PlacementReport::Released {
                group: g.name.clone(),
                node: self.local_node.clone(),
                epoch: g.placement.epoch,
            })
            .collect()
    }

    /// The database record of group `name` as this node holds it (owner and placement included:
    /// what `group get` shows on any node).
    pub fn group_record(&self, name: &str) -> Option<GroupRecord> {
        let id = self.group_names.get(name)?;
        Some(self.groups[id].record())
    }

    /// This node lost quorum at `now`: every resource up here is terminated at once, dependents
    /// first (Terminate call, then Offline, no restart policy), event 1177 is raised, and nothing
    /// runs here until [`Engine::regain_quorum`]. Call it before the node's quorum lease ends.
    pub fn lose_quorum(&mut self, now: u64) -> Vec<Command> {
        self.now = self.now.max(now);
        if !self.quorum_lost {
            self.quorum_lost = true;
            self.log(
                LogLevel::Err,
                format!(
                    "Node '{}' lost quorum: terminating its groups.",
                    self.local_node
                ),
            );
            self.raise(1177, EventLevel::Critical, QUORUM_LOST.into(), None, None);
            let groups: Vec<GroupId> = self.groups.keys().copied().collect();
            for g in groups {
                self.terminate_group(g);
            }
        }
        self.finish_all()
    }

    /// This node has quorum again and has applied the committed log up to the leader's commit
    /// index (call it only then): the groups it owns may run again.
    pub fn regain_quorum(&mut self, now: u64) -> Vec<Command> {
        self.now = self.now.max(now);
        if self.quorum_lost {
            self.quorum_lost = false;
            self.log(
                LogLevel::Info,
                format!("Node '{}' regained quorum.", self.local_node),
            );
        }
        self.finish_all()
    }

    fn finish_all(&mut self) -> Vec<Command> {
        self.reconcile_all();
        self.flush_persist();
        self.notify_group_changes(None);
        std::mem::take(&mut self.out)
    }

    /// Terminates every member that is up, each only once nothing depending on it is up, then
    /// every Failed one still open (it may still run).
    fn terminate_group(&mut self, gid: GroupId) {
        let members: Vec<ResourceId> = self.groups[&gid].members.iter().copied().collect();
        for _ in 0..=members.len() {
            let next = members.iter().copied().find(|m| {
                !down(self.res(*m).state)
                    && graph::direct_dependents(&self.resources, *m)
                        .iter()
                        .all(|d| down(self.res(*d).state))
            });
            let Some(m) = next else { break };
            self.terminate(m);
        }
        for m in members {
            let r = self.res(m);
            if r.state == ResourceState::Failed
                && r.host.is_some()
                && !r.outstanding.contains(&Op::Terminate)
            {
                self.terminate(m);
            }
        }
    }

    fn terminate(&mut self, id: ResourceId) {
        self.cancel_resource_timers(id);
        self.res_mut(id)
            .outstanding
            .retain(|op| matches!(op, Op::Open | Op::Terminate));
        let name = self.res(id).name.clone();
        self.log(
            LogLevel::Warn,
            format!("Terminating resource '{name}': this node lost quorum."),
        );
        self.call(id, Op::Terminate);
        if self.res(id).state != ResourceState::Failed {
            self.set_state(id, ResourceState::Offline);
        }
    }
}
