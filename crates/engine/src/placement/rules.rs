//! The placement rules: node states and leases, moves (administrator, drain, failure, node loss,
//! failback), the failover threshold and the restart-then-failover ladder, and the hand-off
//! bookkeeping (`releasing_from`). Not the owner choice arithmetic (choose.rs) nor the window
//! (window.rs).

use super::choose::choose_owner;
use super::event::{MoveReason, PlacementError};
use super::placer::Placer;
use super::window::failback_allowed;
use crate::command::EventLevel;
use keelson_types::{GroupMove, LogLevel};

impl Placer {
    pub(crate) fn node_up(&mut self, node: &str) {
        let Some(s) = self.nodes.get_mut(node) else {
            return self.unknown_node(node);
        };
        s.up = true;
        s.lease_expired = false;
    }

    pub(crate) fn node_down(&mut self, node: &str) {
        let Some(s) = self.nodes.get_mut(node) else {
            return self.unknown_node(node);
        };
        s.up = false;
    }

    pub(crate) fn lease_expired(&mut self, node: &str) {
        let Some(s) = self.nodes.get_mut(node) else {
            return self.unknown_node(node);
        };
        if s.up {
            let msg = format!("Ignoring the lease expiry of node '{node}': it is Up.");
            return self.log(LogLevel::Warn, msg);
        }
        s.lease_expired = true;
        self.log(
            LogLevel::Info,
            format!("Node '{node}' is Down and its quorum lease expired: its groups move."),
        );
    }

    fn unknown_node(&mut self, node: &str) {
        let msg = format!("Ignoring a report about node '{node}': not a member.");
        self.log(LogLevel::Warn, msg);
    }

    fn member(&self, node: &str) -> Result<(), PlacementError> {
        match self.status(node) {
            Some(_) => Ok(()),
            None => Err(PlacementError::UnknownNode(node.to_string())),
        }
    }

    pub(crate) fn pause(&mut self, node: &str, drain: bool) -> Result<(), PlacementError> {
        self.member(node)?;
        self.nodes.get_mut(node).expect("member").paused = true;
        self.log(LogLevel::Info, format!("Node '{node}' is paused."));
        if !drain {
            return Ok(());
        }
        let owned: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.owner == node)
            .map(|g| g.name.clone())
            .collect();
        for group in owned {
            let to = self.choose(&group, &[node.to_string()]).ok_or_else(|| {
                PlacementError::CannotDrain {
                    node: node.to_string(),
                    group: group.clone(),
                }
            })?;
            self.move_group(&group, &to, MoveReason::Drain);
        }
        Ok(())
    }

    pub(crate) fn resume(&mut self, node: &str) -> Result<(), PlacementError> {
        self.member(node)?;
        self.nodes.get_mut(node).expect("member").paused = false;
        self.log(LogLevel::Info, format!("Node '{node}' is resumed."));
        Ok(())
    }

    /// `move G [--to N]`: to N (Up, unpaused), or to the best other node. Clears a Failed group's
    /// ladder: the administrator says where to try again.
    pub(crate) fn move_request(
        &mut self,
        group: &str,
        to: Option<&str>,
    ) -> Result<(), PlacementError> {
        let Some(g) = self.groups.get(group) else {
            return Err(PlacementError::UnknownGroup(group.to_string()));
        };
        let owner = g.owner.clone();
        let to = match to {
            Some(n) => {
                let s = self
                    .status(n)
                    .ok_or_else(|| PlacementError::UnknownNode(n.to_string()))?;
                if !s.up {
                    return Err(PlacementError::NodeNotUp(n.to_string()));
                }
                if s.paused {
                    return Err(PlacementError::NodePaused(n.to_string()));
                }
                n.to_string()
            }
            None => self
                .choose(group, std::slice::from_ref(&owner))
                .ok_or_else(|| PlacementError::NoTarget(group.to_string()))?,
        };
        let g = self.groups.get_mut(group).expect("checked above");
        let was_failed = g.placement.failed || !g.placement.failed_on.is_empty();
        g.placement.failed = false;
        g.placement.failed_on.clear();
        if to == owner && g.placement.releasing_from.is_empty() {
            let msg = format!("Group '{group}' is already on node '{to}'.");
            self.log(LogLevel::Info, msg);
            if was_failed {
                self.commit(group, |_| {});
            }
            return Ok(());
        }
        self.move_group(group, &to, MoveReason::Administrator);
        Ok(())
    }

    /// The owner reports a resource failed past its threshold with RestartAndFailover.
    pub(crate) fn group_failed(&mut self, group: &str, node: &str, resource: &str) {
        let Some(g) = self.groups.get(group) else {
            let msg = format!("Ignoring a failure report for unknown group '{group}'.");
            return self.log(LogLevel::Warn, msg);
        };
        if g.owner != node || !g.placement.releasing_from.is_empty() {
            let msg = format!(
                "Ignoring a failure report for group '{group}' from node '{node}': it is not running there."
            );
            return self.log(LogLevel::Info, msg);
        }
        let props = self.props(group);
        let (now, period) = (self.now, props.failover_period_ms);
        let threshold = props.effective_failover_threshold(self.nodes.len() as u32);
        let g = self.groups.get_mut(group).expect("checked above");
        g.placement
            .failovers
            .retain(|t| now.saturating_sub(*t) < period);
        g.placement
            .failed_on
            .retain(|(_, t)| now.saturating_sub(*t) < period);
        g.placement.failed_on.push((node.to_string(), now));
        let failovers = g.placement.failovers.len();
        let tried: Vec<String> = g
            .placement
            .failed_on
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        if failovers as u64 >= u64::from(threshold) {
            return self.past_threshold(group, resource, failovers, period);
        }
        let Some(to) = self.choose(group, &tried) else {
            return self.failed_everywhere(group, resource, &tried);
        };
        self.groups
            .get_mut(group)
            .expect("checked above")
            .placement
            .failovers
            .push(now);
        self.move_group(group, &to, MoveReason::Failure);
    }

    fn past_threshold(&mut self, group: &str, resource: &str, failovers: usize, period: u64) {
        self.commit(group, |g| g.placement.failed = true);
        let msg = format!(
            "Clustered role '{group}' has exceeded its failover threshold ({failovers} failovers within \
             {period} ms; resource '{resource}' failed again). It has exhausted the configured number of \
             failover attempts within the failover period of time allotted to it and will be left in a \
             failed state."
        );
        self.log(LogLevel::Err, msg.clone());
        self.raise(1254, EventLevel::Error, msg, group);
    }

    fn failed_everywhere(&mut self, group: &str, resource: &str, tried: &[String]) {
        self.commit(group, |g| g.placement.failed = true);
        let msg = format!(
            "Resource '{resource}' of group '{group}' failed on every node that can host it ({}): the group \
             stays Failed.",
            tried.join(", ")
        );
        self.log(LogLevel::Err, msg);
    }

    /// The previous owner has the group Offline: the new owner may start it.
    pub(crate) fn released(&mut self, group: &str, node: &str, epoch: u64) {
        let Some(g) = self.groups.get(group) else {
            return;
        };
        if g.placement.releasing_from != node || g.placement.epoch != epoch {
            return; // stale: another hand-off since, or already cleared
        }
        let msg = format!(
            "Group '{group}' released by node '{node}': '{}' may start it.",
            g.owner
        );
        self.log(LogLevel::Info, msg);
        self.commit(group, |g| g.placement.releasing_from.clear());
    }

    /// After every event: hand-offs from nodes that are gone are cleared, groups whose owner is
    /// gone (or that have none) are placed, and failbacks that are due happen.
    pub(crate) fn settle(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            self.clear_gone_release(&name);
            self.replace_gone_owner(&name);
            self.failback(&name);
        }
    }

    fn clear_gone_release(&mut self, name: &str) {
        let from = self.groups[name].placement.releasing_from.clone();
        if from.is_empty() || !self.gone(&from) {
            return;
        }
        let msg = format!(
            "Group '{name}': node '{from}' is Down and its lease expired, so it runs nothing: its hand-off is over."
        );
        self.log(LogLevel::Info, msg);
        self.commit(name, |g| g.placement.releasing_from.clear());
    }

    fn replace_gone_owner(&mut self, name: &str) {
        let owner = self.groups[name].owner.clone();
        if !owner.is_empty() && !self.gone(&owner) {
            return;
        }
        let Some(to) = self.choose(name, &[]) else {
            return; // nowhere to go yet; placed as soon as a node is Up
        };
        let reason = match owner.is_empty() {
            true => MoveReason::Assigned,
            false => MoveReason::NodeLost,
        };
        self.move_group(name, &to, reason);
    }

    /// AutoFailbackType=Allow: a group that failed over goes back to a more preferred owner that is
    /// Up and unpaused, inside the failback window.
    fn failback(&mut self, name: &str) {
        let props = self.props(name);
        let g = &self.groups[name];
        let failed_over = g
            .placement
            .last_move
            .as_ref()
            .is_some_and(|m| MoveReason::is_failover(&m.reason));
        if props.auto_failback_type != keelson_types::AutoFailbackType::Allow
            || !failed_over
            || g.placement.failed
            || !g.placement.releasing_from.is_empty()
            || !failback_allowed(
                props.failback_window_start,
                props.failback_window_end,
                self.hour,
            )
        {
            return;
        }
        let rank = |n: &str| props.preferred_owners.iter().position(|p| p == n);
        let tried: Vec<String> = g
            .placement
            .failed_on
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        let eligible = self.eligible(&tried);
        let best = props
            .preferred_owners
            .iter()
            .find(|p| eligible.contains(p))
            .cloned();
        let Some(best) = best else { return };
        let better = match rank(&g.owner) {
            Some(current) => rank(&best).is_some_and(|b| b < current),
            None => true,
        };
        if better {
            self.move_group(name, &best, MoveReason::Failback);
        }
    }

    /// The owner for `group` among the eligible nodes not in `exclude`.
    pub(crate) fn choose(&self, group: &str, exclude: &[String]) -> Option<String> {
        let preferred = self.props(group).preferred_owners;
        choose_owner(&preferred, &self.eligible(exclude), &self.load(group))
    }

    /// Commits `group`'s move to `to`: the previous owner releases it first unless it runs nothing
    /// (gone), a hand-off still in progress keeps its releasing node, and moving back to the
    /// releasing node cancels the hand-off. Raises event 1641.
    pub(crate) fn move_group(&mut self, group: &str, to: &str, reason: MoveReason) {
        let g = &self.groups[group];
        let from = g.owner.clone();
        let releasing = g.placement.releasing_from.clone();
        let releasing = if releasing == to {
            String::new()
        } else if !releasing.is_empty() {
            releasing
        } else if from.is_empty() || self.gone(&from) {
            String::new()
        } else {
            from.clone()
        };
        let at_ms = self.now;
        let last = GroupMove {
            from: from.clone(),
            to: to.to_string(),
            reason: reason.as_str().to_string(),
            at_ms,
        };
        self.commit(group, |g| {
            g.owner = to.to_string();
            g.placement.releasing_from = releasing;
            g.placement.last_move = Some(last);
        });
        let from_text = if from.is_empty() { "(none)" } else { &from };
        let msg = format!(
            "Clustered role '{group}' is moving from node '{from_text}' to node '{to}' ({}).",
            reason.as_str()
        );
        self.log(LogLevel::Info, msg.clone());
        self.raise(1641, EventLevel::Information, msg, group);
    }
}
