//! The keelson contender: three keelson-rcm nodes (keelson_node.rs) on the lab's two networks, n1
//! having created the cluster with both networks' addresses of each node and n2, n3 joined, one
//! group with one dummy resource (LooksAlive every 5 s, its default: like Pacemaker's monitor
//! here), AutoFailbackType Prevent (the default: the group stays where it went). Two timings: (a)
//! keelson's defaults (SameSubnetDelay 1000 ms, Threshold 5), (b) the heartbeat Delay chosen so
//! that keelson's detection equals Pacemaker's as measured in the same run. keelson's group view
//! is each node's own (a node that does not run the group shows it Offline), so a poll asks the
//! observer who owns the group and the owner whether it runs it. Not the nodes' processes
//! (keelson_node.rs) or the timing (measure.rs).

use crate::contender::{Contender, Death, Detection, Logged, Placement};
use crate::keelson_node::KeelsonNode;
use crate::lab::Lab;
use keelson_proto::view::Group;
use keelson_proto::ControlRequest as R;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const NODES: usize = 3;
const GROUP: &str = "web";
/// Forming the cluster, or a node rejoining, or the group moving, until the cluster is quiet.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);
/// The pause between two looks while the bench waits for the cluster to settle (not measured).
const SETTLE_POLL: Duration = Duration::from_millis(50);
/// keelson's default heartbeat timing (WSFC's): SameSubnetDelay and SameSubnetThreshold.
pub const DEFAULT_DELAY_MS: u64 = 1000;
pub const DEFAULT_THRESHOLD: u64 = 5;
/// The host lease and fence budget keelson-rcm runs with by default (--host-lease,
/// --host-fence-budget), which the takeover wait covers.
const HOST_LEASE_MS: u64 = 3000;
const FENCE_BUDGET_MS: u64 = 1000;
/// The fence budget at a matched Delay: the dummy's TERMINATE takes about a millisecond, and half
/// a second leaves room for the contact lease at Pacemaker's detection (takeover.rs).
const MATCHED_FENCE_BUDGET_MS: u64 = 500;

/// The heartbeat timing a cluster runs with: the same Delay and Threshold on both route kinds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub delay_ms: u64,
    pub threshold: u64,
    /// Set through `cluster set` (with TestOnlyLowerLimits=1), or keelson's defaults.
    pub set: bool,
    /// keelson-rcm's --host-lease and --host-fence-budget on every node.
    pub host_lease_ms: u64,
    pub fence_budget_ms: u64,
}

impl Timing {
    pub fn defaults() -> Timing {
        Timing {
            delay_ms: DEFAULT_DELAY_MS,
            threshold: DEFAULT_THRESHOLD,
            set: false,
            host_lease_ms: HOST_LEASE_MS,
            fence_budget_ms: FENCE_BUDGET_MS,
        }
    }

    /// The Delay at keelson's default Threshold whose detection is closest to `detection_ms`,
    /// with a fence budget of 500 ms and the longest host lease (in whole 100 ms, at most the
    /// default) that a frozen node's hosts fence themselves within before the earliest Down,
    /// (T - 1/2) x D, less the budget and half a Delay of margin: so the takeover adds no wait
    /// for them (rcm/src/cluster/takeover.rs).
    pub fn matching(detection_ms: f64) -> Timing {
        let threshold = DEFAULT_THRESHOLD;
        let delay_ms = (detection_ms / (threshold as f64 + 0.5)).round() as u64;
        let earliest_down = threshold * delay_ms - delay_ms / 2;
        let lease = earliest_down.saturating_sub(MATCHED_FENCE_BUDGET_MS + delay_ms / 2);
        Timing {
            delay_ms,
            threshold,
            set: true,
            host_lease_ms: (lease / 100 * 100).clamp(100, HOST_LEASE_MS),
            fence_budget_ms: MATCHED_FENCE_BUDGET_MS,
        }
    }

    /// The route-down rule: a route is Down when heartbeat T, due T × D after the last one
    /// heard, is half a Delay late.
    pub fn detection_ms(&self) -> u64 {
        self.delay_ms * self.threshold + self.delay_ms / 2
    }

    /// The rcm arguments for this timing's host lease and fence budget.
    pub fn rcm_args(&self) -> Vec<String> {
        vec![
            "--host-lease".into(),
            self.host_lease_ms.to_string(),
            "--host-fence-budget".into(),
            self.fence_budget_ms.to_string(),
        ]
    }

    fn properties(&self) -> Vec<(String, String)> {
        let (d, t) = (self.delay_ms.to_string(), self.threshold.to_string());
        [
            ("TestOnlyLowerLimits", "1"),
            ("SameSubnetDelay", d.as_str()),
            ("SameSubnetThreshold", t.as_str()),
            ("CrossSubnetDelay", d.as_str()),
            ("CrossSubnetThreshold", t.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

pub struct Keelson {
    nodes: Vec<KeelsonNode>,
    timing: Timing,
    label: &'static str,
    /// Raft's timing in force, as `cluster status` reports it (derived from the NetFT settings).
    raft: String,
}

/// target/release (the bench binary is target/release/deps/failover-…), or KEELSON_TARGET_DIR;
/// it must hold keelson-rcm, keelson-rhs and the dummy plugin.
pub fn target_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("KEELSON_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()
            .map_err(|e| format!("the bench's own path: {e}"))?
            .ancestors()
            .nth(2)
            .ok_or("the bench binary is not in target/<profile>/deps")?
            .to_path_buf(),
    };
    for file in ["keelson-rcm", "keelson-rhs", "libkeelson_plugin_dummy.so"] {
        if !dir.join(file).is_file() {
            return Err(format!(
                "{} is missing: build the release binaries first (cargo build --release --workspace)",
                dir.join(file).display()
            ));
        }
    }
    Ok(dir)
}

impl Keelson {
    /// Boots the three nodes, forms the cluster, sets `timing` if it is not the defaults, and
    /// brings the group Online.
    pub fn start(
        lab: &Lab,
        dir: &Path,
        timing: Timing,
        label: &'static str,
    ) -> Result<Self, String> {
        assert_eq!(lab.nodes, NODES, "the lab must have {NODES} nodes");
        let target = target_dir()?;
        let mut nodes = Vec::new();
        for i in 1..=NODES {
            nodes.push(KeelsonNode::prepare(
                dir,
                i,
                lab.netns(i),
                &target,
                timing.rcm_args(),
            )?);
        }
        let mut cluster = Keelson {
            nodes,
            timing,
            label,
            raft: String::new(),
        };
        let started = Instant::now();
        for node in &mut cluster.nodes {
            node.boot()?;
        }
        cluster.form()?;
        cluster.create_group()?;
        cluster.wait_quiet(None)?;
        let status = cluster.nodes[0].cluster_status()?;
        cluster.raft = format!(
            "raft heartbeat {} ms, election timeout {}..{} ms",
            status.raft_heartbeat_ms, status.raft_election_min_ms, status.raft_election_max_ms
        );
        println!(
            "keelson {label}: cluster formed and the group Online in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(cluster)
    }

    fn form(&self) -> Result<(), String> {
        let addrs = |i: usize| (0..2).map(|k| Lab::addr(i, k).to_string()).collect();
        let first = &self.nodes[0];
        first.change(R::ClusterCreate {
            name: "failover".into(),
            nodes: (1..=NODES).map(|i| (format!("n{i}"), addrs(i))).collect(),
            virtual_subnet: Some("203.0.113.0/24".into()),
        })?;
        let key = first.data.join("cluster.key");
        for node in &self.nodes[1..] {
            node.change(R::NodeJoin {
                cluster: Lab::addr(1, 0).to_string(),
                key_file: key.to_string_lossy().into_owned(),
                name: None,
            })?;
        }
        if self.timing.set {
            self.wait_until("the three nodes Up everywhere", |c| c.all_up())?;
            first.change(R::ClusterSet {
                properties: self.timing.properties(),
            })?;
        }
        self.wait_until("the three nodes Up everywhere", |c| c.all_up())
    }

    fn create_group(&self) -> Result<(), String> {
        let first = &self.nodes[0];
        first.change(R::GroupCreate {
            name: GROUP.into(),
            properties: vec![],
        })?;
        first.change(R::ResourceCreate {
            name: format!("{GROUP}-dummy"),
            type_name: "dummy".into(),
            group: GROUP.into(),
            params: vec![],
            properties: vec![],
        })?;
        first.change(R::GroupOnline { name: GROUP.into() })?;
        Ok(())
    }

    fn node(&self, i: usize) -> &KeelsonNode {
        &self.nodes[i - 1]
    }

    fn any_live(&self) -> Result<&KeelsonNode, String> {
        self.nodes
            .iter()
            .find(|n| n.is_up())
            .ok_or_else(|| "no node is up".to_string())
    }

    fn index_of(name: &str) -> Result<usize, String> {
        name.strip_prefix('n')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=NODES).contains(n))
            .ok_or_else(|| format!("keelson names a node '{name}' the bench did not create"))
    }

    fn group_on(&self, node: &KeelsonNode) -> Result<Group, String> {
        node.group(GROUP)
    }

    /// Every node runs and lists the three nodes Up.
    fn all_up(&self) -> Result<bool, String> {
        for node in &self.nodes {
            if !node.is_up() {
                return Ok(false);
            }
            let list = node.node_list()?;
            let up = list.nodes.iter().filter(|n| n.state == "Up").count();
            if up != NODES {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether the cluster is quiet: every node up with the three Up, a leader, every node naming
    /// the same owner (`on`, if given), which runs the group Online while no other node does.
    fn quiet(&self, on: Option<usize>) -> Result<bool, String> {
        if !self.all_up()? {
            return Ok(false);
        }
        let status = self.nodes[0].cluster_status()?;
        if status.leader.is_empty() || !status.quorum_ok {
            return Ok(false);
        }
        let views: Vec<Group> = self
            .nodes
            .iter()
            .map(|n| self.group_on(n))
            .collect::<Result<_, _>>()?;
        let owner = &views[0].owner_node;
        let same_owner = views.iter().all(|g| &g.owner_node == owner);
        let Ok(owner) = Self::index_of(owner) else {
            return Ok(false);
        };
        let online_only_there = views
            .iter()
            .enumerate()
            .all(|(i, g)| (g.state == "Online") == (i + 1 == owner));
        Ok(same_owner && online_only_there && on.is_none_or(|n| n == owner))
    }

    fn wait_quiet(&self, on: Option<usize>) -> Result<(), String> {
        let what = match on {
            Some(i) => format!("the cluster quiet with the group Online on n{i}"),
            None => "the cluster quiet with the group Online on one node".to_string(),
        };
        self.wait_until(&what, |c| c.quiet(on))
    }

    /// Polls `done` every SETTLE_POLL until it holds, for at most SETTLE_LIMIT; errors are retried
    /// (the cluster is changing) and the last one is quoted if time runs out.
    fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&Self) -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + SETTLE_LIMIT;
        let mut last_error = None;
        loop {
            match done(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "keelson {}: no {what} within {SETTLE_LIMIT:?} (last error: {})",
                    self.label,
                    last_error.as_deref().unwrap_or("none")
                ));
            }
            std::thread::sleep(SETTLE_POLL);
        }
    }
}

impl Contender for Keelson {
    fn name(&self) -> String {
        format!("keelson {} ({})", env!("CARGO_PKG_VERSION"), self.label)
    }

    fn settings(&self) -> String {
        let how = if self.timing.set {
            "set with cluster set TestOnlyLowerLimits=1"
        } else {
            "keelson's defaults"
        };
        format!(
            "2 networks, 3 voters; Same/CrossSubnetDelay {} ms, Same/CrossSubnetThreshold {} ({how}); host lease {} ms, fence budget {} ms{}; {}; one dummy resource, LooksAlive 5 s; AutoFailbackType Prevent",
            self.timing.delay_ms,
            self.timing.threshold,
            self.timing.host_lease_ms,
            self.timing.fence_budget_ms,
            if self.timing.set { "" } else { " (defaults)" },
            self.raft
        )
    }

    fn leader_word(&self) -> &'static str {
        "raft leader"
    }

    fn detection(&mut self) -> Result<Detection, String> {
        let t = self.timing;
        let (wait, line) = self.logged_takeover_timing()?;
        Ok(Detection {
            ms: t.detection_ms() as f64,
            how: format!(
                "Delay {} ms x Threshold {} + Delay/2 (a route is Down once heartbeat T is half a Delay late); then the takeover wait {wait} ms, as rcm logged it: \"{line}\": the group may start elsewhere {} ms after the kill at the earliest",
                t.delay_ms,
                t.threshold,
                t.detection_ms() - t.delay_ms + wait
            ),
        })
    }

    fn placement(&mut self) -> Result<Placement, String> {
        let node = self.any_live()?;
        let status = node.cluster_status()?;
        let group = self.group_on(node)?;
        Ok(Placement {
            owner: Self::index_of(&group.owner_node)?,
            leader: Self::index_of(&status.leader)?,
        })
    }

    fn place(&mut self, node: usize) -> Result<(), String> {
        if self.placement()?.owner != node {
            self.any_live()?.change(R::GroupMove {
                name: GROUP.into(),
                to: Some(format!("n{node}")),
            })?;
        }
        self.wait_quiet(Some(node))
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
        let seen = self.group_on(self.node(observer))?;
        let owner = Self::index_of(&seen.owner_node)?;
        let runs = if owner == observer {
            seen.state == "Online"
        } else if self.node(owner).is_up() {
            let there = self.group_on(self.node(owner))?;
            there.owner_node == seen.owner_node && there.state == "Online"
        } else {
            false
        };
        Ok(if runs { vec![owner] } else { vec![] })
    }

    fn logged(
        &mut self,
        observer: usize,
        dead: usize,
        new_owner: usize,
        since: SystemTime,
    ) -> Result<Logged, String> {
        let events = self.node(observer).events_text()?;
        let log = self.node(new_owner).cluster_log_text()?;
        let removed = format!("Cluster node 'n{dead}' was removed");
        let gone = events
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| {
                e["id"] == 1135 && e["message"].as_str().is_some_and(|m| m.contains(&removed))
            })
            .filter_map(|e| iso_time(e["time"].as_str()?))
            .find(|at| after_kill(*at, since));
        let online_line = format!("Group '{GROUP}' state ");
        let online = log
            .lines()
            .filter(|line| line.contains(&online_line) && line.trim_end().ends_with("-> Online"))
            .filter_map(cluster_log_time)
            .find(|at| after_kill(*at, since));
        Ok(Logged { gone, online })
    }

    fn restore(&mut self, node: usize) -> Result<(), String> {
        self.nodes[node - 1].boot()?;
        self.wait_quiet(None)
    }
}

impl Drop for Keelson {
    fn drop(&mut self) {
        while let Some(node) = self.nodes.pop() {
            drop(node);
        }
    }
}

/// A log stamp (to the millisecond, rounded down) at or after the kill, within two minutes.
fn after_kill(at: SystemTime, kill: SystemTime) -> bool {
    let at_ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let kill_ms = kill.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    at_ms >= kill_ms && at_ms < kill_ms + 120_000
}

/// `2026-12-01T14:19:00.123Z` (an event's time).
fn iso_time(text: &str) -> Option<SystemTime> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    civil_time(date, '-', time)
}

/// `PID.TID::2026/12/01-14:19:00.123 LEVEL [COMPONENT] message` (a cluster.log line).
fn cluster_log_time(line: &str) -> Option<SystemTime> {
    let stamp = line.split_once("::")?.1.split_whitespace().next()?;
    let (date, time) = stamp.split_once('-')?;
    civil_time(date, '/', time)
}

/// A UTC date (`YYYY<sep>MM<sep>DD`) and time of day (`HH:MM:SS.mmm`) as an instant.
fn civil_time(date: &str, sep: char, time: &str) -> Option<SystemTime> {
    let mut d = date.split(sep).map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, ms) = time.split_once('.')?;
    let mut t = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, s) = (t.next()??, t.next()??, t.next()??);
    let ms: u64 = ms.get(..3)?.parse().ok()?;
    let days = u64::try_from(days_from_civil(y, m, day)).ok()?;
    let of_day = ((h * 60 + mi) * 60 + s) * 1000 + ms;
    Some(UNIX_EPOCH + Duration::from_millis(days * 86_400_000 + of_day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Keelson {
    /// The takeover timing rcm runs with, from n1's latest "Takeover timing:" line: the wait after
    /// a Down (ms) and the line's text.
    fn logged_takeover_timing(&self) -> Result<(u64, String), String> {
        let log = self.nodes[0].cluster_log_text()?;
        let line = log
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once("Takeover timing: ")
                    .map(|(_, text)| text.to_string())
            })
            .ok_or("n1's cluster.log has no \"Takeover timing:\" line")?;
        let wait = line
            .rsplit_once("after ")
            .and_then(|(_, tail)| tail.split(" ms more").next())
            .and_then(|ms| ms.parse().ok())
            .ok_or_else(|| format!("no wait in the takeover timing line: {line}"))?;
        Ok((wait, line))
    }
}
