//! The Pacemaker contender: three nodes (pcmk_node.rs) on the lab's two networks, corosync 3 over
//! knet with both networks as links, token 1000 ms (KEELSON_FAILOVER_TOKEN_MS), corosync's other
//! defaults (so consensus and the token coefficient for 3 nodes apply), votequorum with 3 votes
//! and no two_node; stonith-enabled=false, no-quorum-policy=stop, resource-stickiness=100 (so the
//! Dummy stays where the bench put it), one ocf:pacemaker:Dummy with a 5 s monitor. Configured
//! with the low-level tools only (crm_attribute, cibadmin, crm_resource; crm_mon and crmadmin to
//! read). Not the nodes' processes (pcmk_node.rs) or the timing (measure.rs).

use crate::contender::{Contender, Death, Detection, Logged, Placement};
use crate::lab::Lab;
use crate::pcmk_node::PcmkNode;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const NODES: usize = 3;
const RESOURCE: &str = "dummy";
/// A first start includes Pacemaker's dc-deadtime (20 s by default) before the first election.
const START_LIMIT: Duration = Duration::from_secs(120);
/// A node rejoining, or the Dummy moving, until the cluster is quiet again.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);
/// The pause between two looks while the bench waits for the cluster to settle (not measured).
const SETTLE_POLL: Duration = Duration::from_millis(100);

pub struct Pacemaker {
    nodes: Vec<PcmkNode>,
    token_ms: u32,
    versions: String,
}

impl Pacemaker {
    /// Boots the three nodes, waits for them to form a cluster with a DC, configures it and starts
    /// the Dummy.
    pub fn start(lab: &Lab, dir: &Path, token_ms: u32, versions: String) -> Result<Self, String> {
        assert_eq!(lab.nodes, NODES, "the lab must have {NODES} nodes");
        let script = dir.join("node.sh");
        std::fs::write(&script, crate::pcmk_node::BOOT_SCRIPT)
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let mut nodes = Vec::new();
        for i in 1..=NODES {
            let conf = corosync_conf(token_ms, &PcmkNode::corosync_log(dir, i));
            nodes.push(PcmkNode::prepare(dir, &script, i, lab.netns(i), &conf)?);
        }
        let mut cluster = Pacemaker {
            nodes,
            token_ms,
            versions,
        };
        for node in &mut cluster.nodes {
            node.boot()?;
        }
        let started = Instant::now();
        cluster.wait_until(START_LIMIT, "3 nodes online with a DC", |c| {
            Ok(c.any_live()?.status()?.all_online(NODES))
        })?;
        cluster.configure()?;
        cluster.wait_quiet(START_LIMIT, None)?;
        println!(
            "pacemaker: cluster formed and the Dummy started in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(cluster)
    }

    fn configure(&self) -> Result<(), String> {
        let node = self.any_live()?;
        for (kind, name, value) in [
            ("crm_config", "stonith-enabled", "false"),
            ("crm_config", "no-quorum-policy", "stop"),
            ("rsc_defaults", "resource-stickiness", "100"),
        ] {
            node.run(&[
                "crm_attribute",
                "--type",
                kind,
                "--name",
                name,
                "--update",
                value,
            ])?;
        }
        let primitive = format!(
            r#"<primitive id="{RESOURCE}" class="ocf" provider="pacemaker" type="Dummy"><operations><op id="{RESOURCE}-monitor-5s" name="monitor" interval="5s" timeout="20s"/></operations></primitive>"#
        );
        node.run(&[
            "cibadmin",
            "--create",
            "--scope",
            "resources",
            "--xml-text",
            &primitive,
        ])?;
        Ok(())
    }

    fn node(&self, i: usize) -> &PcmkNode {
        &self.nodes[i - 1]
    }

    fn any_live(&self) -> Result<&PcmkNode, String> {
        self.nodes
            .iter()
            .find(|n| n.is_up())
            .ok_or_else(|| "no node is up".to_string())
    }

    fn index_of(name: &str) -> Result<usize, String> {
        name.strip_prefix("node")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=NODES).contains(n))
            .ok_or_else(|| format!("crm_mon names a node '{name}' the bench did not create"))
    }

    /// Whether the cluster is quiet: every node online, a DC in S_IDLE (no transition running),
    /// and the Dummy started on exactly one node (on `on`, if given).
    fn quiet(&self, on: Option<usize>) -> Result<bool, String> {
        let node = self.any_live()?;
        let status = node.status()?;
        let started = status.started_on(RESOURCE);
        let placed = match on {
            Some(i) => started == [self.node(i).name.as_str()],
            None => started.len() == 1,
        };
        let Some(dc) = status.dc().filter(|_| status.all_online(NODES) && placed) else {
            return Ok(false);
        };
        let state = node.run(&["crmadmin", "--status", dc])?;
        Ok(state.contains("S_IDLE"))
    }

    fn wait_quiet(&self, limit: Duration, on: Option<usize>) -> Result<(), String> {
        let what = match on {
            Some(i) => format!("the cluster quiet with the Dummy on node{i}"),
            None => "the cluster quiet with the Dummy on one node".to_string(),
        };
        self.wait_until(limit, &what, |c| c.quiet(on))
    }

    /// Polls `done` every SETTLE_POLL until it holds, for at most `limit`; errors from `done` are
    /// retried (the cluster is changing) and the last one is quoted if time runs out.
    fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&Self) -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut last_error = None;
        loop {
            match done(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("{}: {}", n.name, n.boot_log()))
                    .collect();
                return Err(format!(
                    "pacemaker: no {what} within {limit:?} (last error: {}; boot logs: {})",
                    last_error.as_deref().unwrap_or("none"),
                    logs.join("; ")
                ));
            }
            std::thread::sleep(SETTLE_POLL);
        }
    }

    /// A runtime totem value as corosync reports it (corosync-cmapctl -g KEY on a live node).
    fn totem(&self, key: &str) -> Result<f64, String> {
        let out = self.any_live()?.run(&["corosync-cmapctl", "-g", key])?;
        out.rsplit_once('=')
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("corosync-cmapctl -g {key}: unexpected '{}'", out.trim()))
    }
}

impl Contender for Pacemaker {
    fn name(&self) -> String {
        format!("Pacemaker + corosync ({})", self.versions)
    }

    fn settings(&self) -> String {
        format!(
            "corosync knet, 2 links, token {} ms configured, 3 votes (no two_node); stonith-enabled=false, no-quorum-policy=stop, resource-stickiness=100; ocf:pacemaker:Dummy, monitor 5 s",
            self.token_ms
        )
    }

    fn leader_word(&self) -> &'static str {
        "DC"
    }

    fn detection(&mut self) -> Result<Detection, String> {
        let token = self.totem("runtime.config.totem.token")?;
        let consensus = self.totem("runtime.config.totem.consensus")?;
        let configured = self.totem("totem.token")?;
        Ok(Detection {
            ms: token + consensus,
            how: format!("corosync's runtime token {token:.0} ms (totem.token {configured:.0} + the 3-node token coefficient) + consensus {consensus:.0} ms, from corosync-cmapctl"),
        })
    }

    fn placement(&mut self) -> Result<Placement, String> {
        let status = self.any_live()?.status()?;
        let started = status.started_on(RESOURCE);
        let [owner] = started.as_slice() else {
            return Err(format!(
                "the Dummy is started on {started:?}, not on exactly one node"
            ));
        };
        let dc = status.dc().ok_or("crm_mon reports no DC")?;
        Ok(Placement {
            owner: Self::index_of(owner)?,
            leader: Self::index_of(dc)?,
        })
    }

    fn place(&mut self, node: usize) -> Result<(), String> {
        if self.placement()?.owner == node {
            return self.wait_quiet(SETTLE_LIMIT, Some(node));
        }
        let target = self.node(node).name.clone();
        let live = self.any_live()?;
        live.run(&[
            "crm_resource",
            "--resource",
            RESOURCE,
            "--move",
            "--node",
            &target,
        ])?;
        self.wait_quiet(SETTLE_LIMIT, Some(node))?;
        // The move's location constraint goes; stickiness keeps the Dummy where it is now.
        self.any_live()?
            .run(&["crm_resource", "--resource", RESOURCE, "--clear"])?;
        self.wait_quiet(SETTLE_LIMIT, Some(node))
    }

    fn kill(&mut self, node: usize) -> Result<Death, String> {
        let killed = self.nodes[node - 1].kill()?;
        Ok(Death {
            at: killed.at,
            wall: killed.wall,
            what: killed.processes.join(", "),
        })
    }

    fn online_on(&mut self, observer: usize) -> Result<Vec<usize>, String> {
        let status = self.node(observer).status()?;
        status
            .started_on(RESOURCE)
            .into_iter()
            .map(Self::index_of)
            .collect()
    }

    fn logged(
        &mut self,
        observer: usize,
        dead: usize,
        new_owner: usize,
        since: SystemTime,
    ) -> Result<Logged, String> {
        let corosync = self.node(observer).corosync_log_text()?;
        let pacemaker = self.node(new_owner).pacemaker_log_text()?;
        let dead_id = dead.to_string();
        let membership_without_dead = |line: &str| {
            line.contains("A new membership")
                && line
                    .split_once("was formed. Members left:")
                    .is_some_and(|(_, left)| left.split_whitespace().any(|id| id == dead_id))
        };
        let started = format!("Result of start operation for {RESOURCE} on node{new_owner}: ok");
        Ok(Logged {
            gone: first_logged_after(&corosync, since, membership_without_dead),
            online: first_logged_after(&pacemaker, since, |line| line.contains(&started)),
        })
    }

    fn restore(&mut self, node: usize) -> Result<(), String> {
        self.nodes[node - 1].boot()?;
        self.wait_quiet(SETTLE_LIMIT, None)
    }
}

/// corosync.conf for every node: knet over both networks (link 0 on 192.0.2.0/24, link 1 on
/// 198.51.100.0/24), no crypto (the lab is private), the given token, the rest corosync's defaults.
fn corosync_conf(token_ms: u32, log: &Path) -> String {
    let mut nodes = String::new();
    for i in 1..=NODES {
        nodes.push_str(&format!(
            "    node {{\n        name: node{i}\n        nodeid: {i}\n        ring0_addr: {}\n        ring1_addr: {}\n    }}\n",
            Lab::addr(i, 0),
            Lab::addr(i, 1)
        ));
    }
    format!(
        "totem {{\n    version: 2\n    cluster_name: keelsonfailover\n    transport: knet\n    token: {token_ms}\n    crypto_cipher: none\n    crypto_hash: none\n    interface {{\n        linknumber: 0\n    }}\n    interface {{\n        linknumber: 1\n    }}\n}}\nnodelist {{\n{nodes}}}\nquorum {{\n    provider: corosync_votequorum\n}}\nlogging {{\n    to_stderr: no\n    to_syslog: no\n    to_logfile: yes\n    logfile: {}\n    timestamp: hires\n}}\n",
        log.display()
    )
}

/// The instant of the first line of a corosync or pacemaker log after `after` that `matches`.
/// Both stamp their lines `Mon DD HH:MM:SS.mmm …` in UTC (node.sh sets TZ); the time of day is
/// read against `after`'s, and only lines within WINDOW_MS after it count.
fn first_logged_after(
    log: &str,
    after: SystemTime,
    matches: impl Fn(&str) -> bool,
) -> Option<SystemTime> {
    const DAY_MS: u64 = 86_400_000;
    const WINDOW_MS: u64 = 120_000;
    let after_ms = after.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    log.lines()
        .filter(|line| matches(line))
        .filter_map(|line| {
            let of_day = time_of_day_ms(line.split_whitespace().nth(2)?)?;
            let later = (of_day + DAY_MS - after_ms % DAY_MS) % DAY_MS;
            (later < WINDOW_MS).then_some(later)
        })
        .min()
        .map(|later| UNIX_EPOCH + Duration::from_millis(after_ms + later))
}

/// `HH:MM:SS.mmm` in milliseconds since midnight.
fn time_of_day_ms(stamp: &str) -> Option<u64> {
    let (hms, ms) = stamp.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let ms: u64 = ms.get(..3)?.parse().ok()?;
    Some(((h * 60 + m) * 60 + s) * 1000 + ms)
}
