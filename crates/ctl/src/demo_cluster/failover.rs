//! The node loss of `keelson demo cluster`: kill -9 of the owner's rcm, the wait until the group is
//! Online on another node and the client reaches it there, and the millisecond timeline from the
//! survivors' own logs (routes and the node Down, the quorum lease expired, event 1641, the group
//! Online) beside the client's outage; then the killed node's restart, its rejoining, and the group
//! staying where it is (AutoFailbackType Prevent). Not the network cut (cut.rs).

use super::cut::shown_pid;
use super::*;

/// cluster.log lines worth showing after a node loss.
const LOSS_LINES: [&str; 6] = [
    "] Route from",
    "[NM] Node",
    "its quorum lease has expired",
    "Group 'web' state",
    "Resource 'web-service' state",
    "demo-service listening",
];
const LOSS_EVENTS: [u64; 2] = [1135, 1641];

impl Demo<'_> {
    /// Kills the owner; returns the node the group moved to.
    pub(super) async fn kill_owner(&mut self, prober: &Prober, owner: usize) -> Result<usize> {
        let killed = node_name(owner);
        let leader = self.nodes[(owner + 1) % NODES]
            .cluster_status()
            .await?
            .leader;
        let instance = prober.seen().serving().get(&killed).cloned();
        let t_kill = unix_ms();
        self.nodes[owner].kill9().await?;
        self.say.step(&format!(
            "kill -9 of {killed}'s keelson-rcm (the group's owner; its hosts die with it)"
        ));
        wait_for(
            &format!("group '{GROUP}' Online on another node, and the client reaching it"),
            async || {
                Ok(match self.new_owner(owner).await? {
                    Some(n) => prober.seen().serving().contains_key(&node_name(n)),
                    None => false,
                })
            },
        )
        .await?;
        let new_owner = self
            .new_owner(owner)
            .await?
            .ok_or_else(|| anyhow!("the group left its new owner at once"))?;
        let moved_to = node_name(new_owner);
        let seen = prober.seen();
        let mut timeline = Timeline::new(t_kill, &format!("kill -9 of {killed}'s keelson-rcm"));
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let log = node.cluster_log()?;
            timeline.extend(log_rows(&node.name, &log, t_kill, |l| {
                LOSS_LINES.iter().any(|k| l.contains(k))
            }));
            timeline.extend(event_rows(
                &node.name,
                &node.events()?,
                t_kill,
                &LOSS_EVENTS,
            ));
        }
        timeline.extend(client_rows(&seen, t_kill));
        let outage = seen.silences_after(t_kill);
        let (last, first) = outage.first().copied().unwrap_or((t_kill, None));
        let points = json!({
            "route_down_ms": timeline.first("is down:"),
            "node_down_ms": timeline.first_where(|t| t.contains(&format!("[NM] Node '{killed}'")) && t.contains("is down")),
            "lease_expired_ms": timeline.first("its quorum lease has expired"),
            "moved_ms": timeline.first("event 1641"),
            "online_ms": timeline.first_where(|t| t.contains(&format!("Group '{GROUP}' state")) && t.ends_with("-> Online")),
            "client_last_answer_ms": timeline.since(last),
            "client_first_answer_ms": first.map(|f| timeline.since(f)),
            "client_outage_ms": first.map(|f| f - last),
        });
        self.say.line(&format!(
            "timeline of the loss of {killed} (ms since the kill):"
        ));
        timeline.print(&mut |l| self.say.line(l));
        let new_instance = seen.serving().get(&moved_to).cloned();
        let at = |key: &str| points[key].as_i64();
        let gap = |a: &str, b: &str| match (at(a), at(b)) {
            (Some(a), Some(b)) => (b - a).to_string(),
            _ => "?".to_string(),
        };
        let shown = |key: &str| at(key).map_or_else(|| "?".to_string(), |v| v.to_string());
        self.say.step(&format!(
            "group '{GROUP}' Online on {moved_to}: {killed} was Down on the survivors {} ms after the kill, its quorum lease expired {} ms later, the group was Online {} ms after that; the client was without the service for {} ms (its last answer from {killed} at {} ms, its first from {moved_to} at {} ms)",
            shown("node_down_ms"),
            gap("node_down_ms", "lease_expired_ms"),
            gap("lease_expired_ms", "online_ms"),
            shown("client_outage_ms"),
            shown("client_last_answer_ms"),
            shown("client_first_answer_ms"),
        ));
        let one_at_a_time = seen.changes.iter().all(|c| c.serving.len() <= 1);
        let r = &mut self.report;
        r.check(
            "node loss: the group is Online on another node",
            new_owner != owner,
        );
        r.check(
            "node loss: the survivors logged the node Down",
            !points["node_down_ms"].is_null(),
        );
        r.check(
            "node loss: the leader waited out the quorum lease",
            !points["lease_expired_ms"].is_null(),
        );
        r.check(
            "node loss: event 1641 records the move",
            !points["moved_ms"].is_null(),
        );
        r.check(
            "node loss: the client reached the service on the new owner",
            new_instance.is_some() && new_instance != instance,
        );
        r.check(
            "the client never got answers from two nodes at once",
            one_at_a_time,
        );
        let mut failover = json!({
            "killed": killed,
            "raft_leader": leader,
            "new_owner": moved_to,
            "instance_before": instance,
            "instance_after": new_instance,
            "timeline": timeline.to_json(),
        });
        if let (Some(obj), Some(extra)) = (failover.as_object_mut(), points.as_object()) {
            obj.extend(extra.clone());
        }
        r.fields.insert("failover".into(), failover);
        Ok(new_owner)
    }

    /// The node other than `old` that every running node names the owner and that runs the group.
    async fn new_owner(&self, old: usize) -> Result<Option<usize>> {
        let survivor = self
            .nodes
            .iter()
            .find(|n| n.is_running())
            .ok_or_else(|| anyhow!("no node is running"))?;
        let owner = survivor.group(GROUP).await?.owner_node;
        match index_of(&owner) {
            Some(i) if i != old && self.nodes[i].is_running() && self.online_on(i).await? => {
                Ok(Some(i))
            }
            _ => Ok(None),
        }
    }

    /// Restarts the killed node on its data directory: it rejoins, follows the move and does not
    /// run the group, which stays on `owner` serving the same instance.
    pub(super) async fn rejoin(
        &mut self,
        prober: &Prober,
        killed: usize,
        owner: usize,
    ) -> Result<()> {
        let name = node_name(killed);
        let instance = prober.seen().serving().get(&node_name(owner)).cloned();
        let t_boot = unix_ms();
        self.nodes[killed].boot().await?;
        wait_for(
            &format!("{name} back: all three Up on every node, in quorum"),
            async || self.all_up().await,
        )
        .await?;
        wait_for(
            &format!("{name} following the move to {}", node_name(owner)),
            async || Ok(self.nodes[killed].group(GROUP).await?.owner_node == node_name(owner)),
        )
        .await?;
        let rejoined_ms = unix_ms() - t_boot;
        let state_there = self.nodes[killed].group(GROUP).await?.state;
        let stayed = self.online_on(owner).await?;
        let (pid, _) = self.resource_marks(owner).await?;
        let serving = prober.seen().serving();
        let same = serving.get(&node_name(owner)) == instance.as_ref() && serving.len() == 1;
        self.say.step(&format!(
            "{name} restarted on its data directory: Up on every node again {rejoined_ms} ms later; it shows '{GROUP}' {state_there} and the group stays Online on {} (host pid {}), the client still served by the same instance",
            node_name(owner),
            shown_pid(pid)
        ));
        let r = &mut self.report;
        r.check(
            "rejoin: the group stays on its new owner (no failback)",
            stayed,
        );
        r.check(
            "rejoin: the returning node does not run the group",
            state_there != "Online",
        );
        r.check(
            "rejoin: the client is still served by the same instance",
            same,
        );
        r.fields.insert(
            "rejoin".into(),
            json!({
                "node": name,
                "rejoined_ms": rejoined_ms,
                "owner_after": node_name(owner),
                "state_on_rejoined": state_there,
                "moved": !stayed,
            }),
        );
        Ok(())
    }
}
