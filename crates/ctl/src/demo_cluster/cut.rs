//! The network cut of `keelson demo cluster`: net1 is cut under the group's owner (its switch port
//! set down), every node is seen to take the routes over that address Down, the demo then watches
//! for three detection periods that the group stays Online on its owner, its resource is neither
//! restarted nor re-hosted and the client never loses it, and heals the link. Not the failover
//! (failover.rs).

use super::*;

/// cluster.log lines worth showing while a network is cut.
const NETWORK_LINES: [&str; 5] = [
    "] Route from",
    "[NM] Node",
    "[TM] Network",
    "Group 'web' state",
    "Resource 'web-service' state",
];
/// Interface and network events (unreachable, failed, partitioned, down, up) and node removal.
const NETWORK_EVENTS: [u64; 7] = [1125, 1126, 1127, 1128, 1129, 1130, 1135];

impl Demo<'_> {
    pub(super) async fn cut_network(&mut self, prober: &Prober, owner: usize) -> Result<()> {
        let name = node_name(owner);
        let addr = Lab::node_addr(owner, CUT_NET);
        let (pid_before, onlines_before) = self.resource_marks(owner).await?;
        let t_cut = unix_ms();
        self.lab.set_port(owner, CUT_NET, false)?;
        self.say.step(&format!(
            "cut net1 under {name}: its switch port {} is down, {addr} is unreachable",
            Lab::port(owner, CUT_NET)
        ));
        wait_for(&format!("every route over {addr} Down"), async || {
            self.routes_over(&addr, "Down").await
        })
        .await?;
        let down_ms = unix_ms() - t_cut;
        let window = Duration::from_millis(3 * self.detection_ms());
        self.say.step(&format!(
            "every node has the routes over {addr} Down ({down_ms} ms after the cut); watching for 3 detection periods ({} ms)",
            window.as_millis()
        ));
        let stayed = self.watch_owner(owner, window).await?;
        let (pid_after, onlines_after) = self.resource_marks(owner).await?;
        let state_after = self.nodes[owner].group(GROUP).await?.state;
        let left_online = format!("Resource '{RESOURCE}' state Online ->");
        let restarts = log_rows(&name, &self.nodes[owner].cluster_log()?, t_cut, |l| {
            l.contains(&left_online)
        })
        .len();
        let all_up = self.all_up().await?;
        let seen = prober.seen();
        let client_changes = seen.changes_after(t_cut).count();
        let still = seen.serving();

        let t_heal = unix_ms();
        self.lab.set_port(owner, CUT_NET, true)?;
        wait_for(&format!("every route over {addr} Up again"), async || {
            self.routes_over(&addr, "Up").await
        })
        .await?;
        let healed_ms = unix_ms() - t_heal;
        let mut timeline = Timeline::new(t_cut, &format!("net1 cut under {name}"));
        timeline.push(t_heal, "demo", &format!("net1 healed under {name}"));
        self.network_rows(&mut timeline, t_cut)?;
        timeline.extend(client_rows(&prober.seen(), t_cut));

        let moved = !stayed || state_after != "Online";
        self.say.step(&format!(
            "after {} ms with net1 cut: group '{GROUP}' still Online on {name}, host pid {} -> {}, ONLINE calls {onlines_before} -> {onlines_after}, {restarts} restarts, all three nodes Up; the client saw {client_changes} changes (still {})",
            window.as_millis(),
            shown_pid(pid_before),
            shown_pid(pid_after),
            still.keys().cloned().collect::<Vec<_>>().join(", "),
        ));
        self.say.step(&format!(
            "net1 healed under {name}: every route over {addr} Up again {healed_ms} ms later"
        ));
        self.say.line("timeline of the cut (ms since the cut):");
        timeline.print(&mut |l| self.say.line(l));

        let owner_after = self.nodes[(owner + 1) % NODES]
            .group(GROUP)
            .await?
            .owner_node;
        let moved = moved || owner_after != name;
        let r = &mut self.report;
        r.check("network cut: the group stayed Online on its owner", !moved);
        r.check(
            "network cut: the resource was not restarted (same host pid, no new ONLINE call, no state change)",
            pid_before == pid_after && onlines_before == onlines_after && restarts == 0,
        );
        r.check(
            "network cut: no node was lost (all three Up, quorum)",
            all_up,
        );
        r.check(
            "network cut: the client never lost the service (no change in who answered)",
            client_changes == 0 && still.contains_key(&name),
        );
        r.fields.insert(
            "cut".into(),
            json!({
                "node": name,
                "network": "net1",
                "address": addr,
                "port": Lab::port(owner, CUT_NET),
                "routes_down_ms": down_ms,
                "watched_ms": window.as_millis() as u64,
                "owner_before": name,
                "owner_after": owner_after,
                "state_after": state_after,
                "moved": moved,
                "host_pid_before": pid_before,
                "host_pid_after": pid_after,
                "online_calls_before": onlines_before,
                "online_calls_after": onlines_after,
                "restarts": restarts,
                "all_up": all_up,
                "client_changes": client_changes,
                "healed_ms": healed_ms,
                "timeline": timeline.to_json(),
            }),
        );
        Ok(())
    }

    /// Every route of every running node whose local or remote end is `addr` is in `state`, and
    /// there is at least one.
    async fn routes_over(&self, addr: &str, state: &str) -> Result<bool> {
        let mut any = false;
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            for route in node.routes().await? {
                if host_of(&route.local) == addr || host_of(&route.remote) == addr {
                    any = true;
                    if route.state != state {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(any)
    }

    /// Watches for `window` that every running node names `owner` the owner and that it runs the
    /// group Online; false as soon as either fails.
    async fn watch_owner(&self, owner: usize, window: Duration) -> Result<bool> {
        let start = Instant::now();
        while start.elapsed() < window {
            if !self.online_on(owner).await? {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.online_on(owner).await
    }

    /// The network lines and events of every node since `since_ms`.
    fn network_rows(&self, timeline: &mut Timeline, since_ms: u64) -> Result<()> {
        for node in &self.nodes {
            let log = node.cluster_log()?;
            timeline.extend(log_rows(&node.name, &log, since_ms, |l| {
                NETWORK_LINES.iter().any(|k| l.contains(k))
            }));
            let events = node.events()?;
            timeline.extend(event_rows(&node.name, &events, since_ms, &NETWORK_EVENTS));
        }
        Ok(())
    }
}

/// `192.0.2.1` of `192.0.2.1:~3343~` or `192.0.2.1:3343` (IPv4, as the demo uses).
fn host_of(endpoint: &str) -> &str {
    endpoint.split(':').next().unwrap_or(endpoint)
}

pub(super) fn shown_pid(pid: Option<u32>) -> String {
    pid.map_or_else(|| "none".to_string(), |p| p.to_string())
}
