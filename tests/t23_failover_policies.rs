//! The failover policies of issue 10 (item 6), end to end: three real keelson-rcm nodes in network
//! namespaces on two networks (tests/common/lab.rs), each test on a lab of its own, with every
//! group's resource a `journal` one (every online, offline and terminate instant from every node in
//! one file, so the journal alone shows where it ran and that it never ran on two nodes at once).
//! One network cut moves and restarts nothing; a node with all its links cut (the leader, or not)
//! offlines its groups (1177) and the others take them; a frozen rcm's (the leader's, or not)
//! hosts fence themselves and the group comes up elsewhere, never again on the frozen node when
//! it is continued (even with RestartDelay 0); a resource past RestartThreshold with
//! RestartAndFailover climbs the restart-then-failover ladder (post [13]) until it has failed on
//! every node; more than FailoverThreshold failovers within FailoverPeriod leave it Failed (1254),
//! older ones do not count; RestartAction=Restart never moves it (post [8]); AutoFailbackType=Allow
//! moves it back to its preferred owner, and only inside the failback window. Timings are small
//! through properties (heartbeats every 200 ms, host lease 900 ms, health polls 100 ms); measured
//! times are printed. Root only: fails in CI without it. Not the placement rules themselves
//! (crates/engine/tests/placement.rs) nor AutoFailbackType=Prevent (t19).

mod common;

use common::lab::{root_or_skip, Lab};
use common::rcm::{holds_for, wait_for, Rcm};
use keelson_plugin_journal::check::{self, Interval, Line};
use keelson_proto::ControlRequest as R;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
/// The journal resources' alive period, and the same in ns for the checker.
const ALIVE_MS: u64 = 20;
/// Each host's lease from its rcm and its TERMINATE budget: below the takeover argument's bound
/// at SameSubnetDelay 200 ms (rcm/src/cluster/takeover.rs), so takeovers wait about 0.9 s.
const HOST_LEASE: &str = "900";
const FENCE_BUDGET: &str = "300";
/// How long a test watches for something that must not happen: past detection (about 1 s) and
/// the takeover wait (about 0.9 s) with room to spare.
const QUIET: Duration = Duration::from_secs(3);

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A lab of three nodes n1..n3 in one cluster, heartbeats every 200 ms, all Up everywhere.
struct Cluster {
    /// None while a node is down. Declared first: the nodes stop before their lab goes.
    nodes: Vec<Option<Rcm>>,
    lab: Lab,
    dir: PathBuf,
}

impl Cluster {
    fn new(tag: &str) -> Cluster {
        Cluster::with_timing(tag, &[])
    }

    /// A cluster with these cluster properties as well (e.g. a longer SameSubnetThreshold).
    fn with_timing(tag: &str, extra: &[(&str, &str)]) -> Cluster {
        let lab = Lab::create(tag, 3);
        let n1 = boot(&lab, 0, Rcm::new_dir(&format!("t23{tag}-n1")));
        n1.ok(R::ClusterCreate {
            name: "lab".into(),
            nodes: (0..3).map(Lab::node_spec).collect(),
            virtual_subnet: Some("203.0.113.0/24".into()),
        });
        let key = n1.dir.join("cluster.key").to_string_lossy().into_owned();
        let mut nodes = vec![n1];
        for i in 1..3 {
            let n = boot(&lab, i, Rcm::new_dir(&format!("t23{tag}-n{}", i + 1)));
            n.ok(R::NodeJoin {
                cluster: "192.0.2.1".into(),
                key_file: key.clone(),
                name: None,
            });
            nodes.push(n);
        }
        // Right after the joins the leader may not yet hear a majority acknowledge it (the
        // joined nodes' raft restarts): the change is refused whole, and asked again.
        let mut properties = pairs(&[
            ("TestOnlyLowerLimits", "1"),
            ("SameSubnetDelay", "200"),
            ("CrossSubnetDelay", "200"),
        ]);
        properties.extend(pairs(extra));
        let timing = R::ClusterSet { properties };
        let mut refusals = Vec::new();
        wait_for("the heartbeat timing set", LIMIT, || {
            match nodes[0].request(timing.clone()).into_iter().next() {
                Some(keelson_proto::ControlReply::Done { .. }) => true,
                Some(keelson_proto::ControlReply::Error { message })
                    if message.contains("not enough for a quorum") =>
                {
                    refusals.push(message);
                    false
                }
                other => panic!("cluster set: {other:?}"),
            }
        });
        if !refusals.is_empty() {
            println!(
                "cluster set refused {} time(s) before it was taken",
                refusals.len()
            );
        }
        // Each node restarts its raft for the new timing (heartbeat 100 ms): until it has, it
        // lags behind.
        for n in &nodes {
            wait_for("raft on the new timing, with a leader", LIMIT, || {
                let status = n.ok(R::ClusterStatus);
                status["raft_heartbeat_ms"] == 100 && status["leader"] != ""
            });
        }
        let dir = nodes[0].dir.clone();
        let nodes = nodes.into_iter().map(Some).collect();
        let c = Cluster { lab, nodes, dir };
        for i in 0..3 {
            c.wait_all_up_on(i);
        }
        c
    }

    fn n(&self, i: usize) -> &Rcm {
        self.nodes[i].as_ref().expect("the node runs")
    }

    fn wait_all_up_on(&self, i: usize) {
        for peer in ["n1", "n2", "n3"] {
            wait_for(&format!("{peer} Up on n{}", i + 1), LIMIT, || {
                self.n(i).node_state(peer) == "Up"
            });
        }
    }

    /// The network namespace inode of node `i` (what its journal lines carry).
    fn netns(&self, i: usize) -> u64 {
        std::fs::metadata(self.lab.netns_path(i))
            .expect("the node's namespace")
            .ino()
    }

    /// Node index of a netns inode, for messages.
    fn node_of(&self, netns: u64) -> String {
        (0..3)
            .find(|i| self.netns(*i) == netns)
            .map(|i| format!("n{}", i + 1))
            .unwrap_or_else(|| format!("netns {netns}"))
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal")
    }

    /// The fail switch of `label`'s resource (see the journal plugin's `fail_when`).
    fn fail_path(&self, label: &str) -> PathBuf {
        self.dir.join(format!("fail-{label}"))
    }

    /// Makes `label`'s resource fail its health checks on nodes `on` (indices).
    fn fail_on(&self, label: &str, on: &[usize]) {
        let text: String = on.iter().map(|i| format!("{}\n", self.netns(*i))).collect();
        std::fs::write(self.fail_path(label), text).expect("the fail switch");
    }

    /// Creates group `group` on node `at` (its owner) with `group_props`, and a journal resource
    /// `<group>-app` labelled `group` with `resource_props`, and brings it Online there.
    fn journal_group(
        &self,
        at: usize,
        group: &str,
        group_props: &[(&str, &str)],
        resource_props: &[(&str, &str)],
    ) {
        let n = self.n(at);
        n.ok(R::GroupCreate {
            name: group.into(),
            properties: pairs(group_props),
        });
        let journal = self.journal_path().to_string_lossy().into_owned();
        let fail = self.fail_path(group).to_string_lossy().into_owned();
        let alive = ALIVE_MS.to_string();
        n.ok(R::ResourceCreate {
            name: format!("{group}-app"),
            type_name: "journal".into(),
            group: group.into(),
            params: pairs(&[
                ("journal", &journal),
                ("label", group),
                ("alive_ms", &alive),
                ("fail_when", &fail),
            ]),
            properties: pairs(resource_props),
        });
        n.ok(R::GroupOnline { name: group.into() });
        self.wait_group_on(group, at, "Online");
    }

    /// Waits until every running node agrees `group` is owned by `owner` and the owner shows it in
    /// `state`; the time it took.
    fn wait_group_on(&self, group: &str, owner: usize, state: &str) -> Duration {
        let name = format!("n{}", owner + 1);
        wait_for(&format!("{group} {state} on {name}"), LIMIT, || {
            self.n(owner).group_owner_state(group) == Some((name.clone(), state.into()))
                && self
                    .nodes
                    .iter()
                    .flatten()
                    .all(|n| n.group_owner_state(group).map(|g| g.0) == Some(name.clone()))
        })
    }

    /// The node (index) that owns `group` as `from` shows it, once it is not `not` and that owner
    /// shows it Online; the time it took.
    fn wait_moved_off(&self, group: &str, from: usize, not: usize) -> (usize, Duration) {
        let mut to = usize::MAX;
        let took = wait_for(&format!("{group} Online off n{}", not + 1), LIMIT, || {
            let Some((owner, _)) = self.n(from).group_owner_state(group) else {
                return false;
            };
            let Some(i) = (0..3).find(|i| owner == format!("n{}", i + 1)) else {
                return false;
            };
            to = i;
            i != not
                && self
                    .n(i)
                    .group_owner_state(group)
                    .is_some_and(|g| g.1 == "Online")
        });
        (to, took)
    }

    /// The journal's lines and intervals, checked: well formed, and no label ever online on two
    /// nodes at once.
    fn journal(&self) -> (Vec<Line>, Vec<Interval>) {
        let text = std::fs::read_to_string(self.journal_path()).expect("the journal");
        let lines = check::parse(&text).expect("a well-formed journal");
        let intervals = check::intervals(&lines, ALIVE_MS * 1_000_000);
        let overlaps = check::overlaps(&intervals);
        assert!(
            overlaps.is_empty(),
            "online on two nodes at once: {}",
            overlaps
                .iter()
                .map(|(a, b)| format!(
                    "{a} ({}) and {b} ({})",
                    self.node_of(a.netns),
                    self.node_of(b.netns)
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
        (lines, intervals)
    }

    /// How many times `label` began to come online on node `i`.
    fn onlines(&self, label: &str, i: usize) -> usize {
        let netns = self.netns(i);
        self.journal()
            .0
            .iter()
            .filter(|l| l.label == label && l.netns == netns && l.event == "online-begin")
            .count()
    }

    /// Every node's events numbered `id` about `group`, with the node's name.
    fn events_anywhere(&self, id: u64, group: &str) -> Vec<(String, serde_json::Value)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
            .flat_map(|(i, n)| {
                n.group_events(id, group)
                    .into_iter()
                    .map(move |e| (format!("n{}", i + 1), e))
            })
            .collect()
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
            .map(|(i, n)| format!("---- n{} cluster.log:\n{}", i + 1, n.cluster_log()))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in self.nodes.iter().flatten() {
                eprintln!("kept for a look: {}/cluster.log", n.dir.display());
            }
        }
    }
}

/// keelson-rcm as node `i` of `lab`, with the short host lease.
fn boot(lab: &Lab, i: usize, dir: PathBuf) -> Rcm {
    let name = format!("n{}", i + 1);
    Rcm::start_in_netns(
        dir,
        &lab.nodes[i],
        &[
            "--node-name",
            &name,
            "--host-lease",
            HOST_LEASE,
            "--host-fence-budget",
            FENCE_BUDGET,
        ],
    )
}

/// A group-moved event (1641) on some node saying `from` -> `to` for `reason`.
fn assert_moved_event(c: &Cluster, group: &str, from: &str, to: &str, reason: &str) {
    let want = format!("from node '{from}' to node '{to}' ({reason})");
    let events = c.events_anywhere(1641, group);
    assert!(
        events
            .iter()
            .any(|(_, e)| e["message"].as_str().is_some_and(|m| m.contains(&want))),
        "event 1641 '{want}' for {group}: {events:?}"
    );
}

/// The resource's call count for entry point `op` (e.g. ONLINE) as node `n` shows it.
/// From the journal: `victim` ran web once, and that interval ended (`how`: its hosts fenced
/// themselves, or it terminated web) before `to` began it. Returns both intervals.
fn handed_over(c: &Cluster, victim: usize, to: usize, how: &str) -> (Interval, Interval) {
    let (_, intervals) = c.journal();
    let on_victim: Vec<&Interval> = intervals
        .iter()
        .filter(|i| i.netns == c.netns(victim))
        .collect();
    let next = intervals
        .iter()
        .find(|i| i.netns == c.netns(to))
        .expect("an interval on the new owner");
    assert!(
        on_victim.len() == 1 && on_victim[0].closed && on_victim[0].to_ns <= next.from_ns,
        "n{}'s {how} before n{} began: {on_victim:?}, then {next}",
        victim + 1,
        to + 1
    );
    (on_victim[0].clone(), next.clone())
}

fn calls(n: &Rcm, resource: &str, op: &str) -> u64 {
    n.resource(resource)["call_stats"][op]["count"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn one_network_cut_moves_nothing_and_restarts_nothing() {
    if !root_or_skip("t23") {
        return;
    }
    let c = Cluster::new("pa");
    c.journal_group(1, "web", &[], &[("LooksAlivePollInterval", "100")]);
    let (n1, n2) = (c.n(0), c.n(1));
    let before = n2.resource("web-app");
    let onlines = calls(n2, "web-app", "ONLINE");
    let cut = Instant::now();
    c.lab.set_links(1, &["eth1"], false);
    // n1 sees its route to n2 on net1 go Down; n2 stays Up on the other network.
    let seen = wait_for("n1's route to n2 on net1 Down", LIMIT, || {
        let routes = n1.ok(R::NetworkList);
        routes["routes"].as_array().is_some_and(|r| {
            r.iter().any(|r| {
                r["node"] == "n2"
                    && r["remote"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("192.0.2."))
                    && r["state"] != "Up"
            })
        })
    });
    println!(
        "one network cut: n1 saw its net1 route to n2 Down {} ms after the cut",
        seen.as_millis()
    );
    holds_for("web stays on n2, Online, n2 Up", QUIET, || {
        n1.node_state("n2") == "Up"
            && n1.group_owner_state("web").map(|g| g.0).as_deref() == Some("n2")
            && n2.group_owner_state("web") == Some(("n2".into(), "Online".into()))
    });
    let after = n2.resource("web-app");
    assert_eq!(after["host_pid"], before["host_pid"], "same host");
    assert_eq!(
        calls(n2, "web-app", "ONLINE"),
        onlines,
        "no restart: {after:#}"
    );
    assert_eq!(
        calls(n2, "web-app", "TERMINATE"),
        0,
        "no terminate: {after:#}"
    );
    for id in [1069, 1177, 1205, 1641] {
        assert!(
            c.n(1).events().iter().all(|e| e["id"] != id),
            "no event {id} on n2: {:?}",
            c.n(1).events()
        );
    }
    assert!(c.events_anywhere(1641, "web").is_empty(), "no move");
    let (lines, intervals) = c.journal();
    let web: Vec<&Interval> = intervals.iter().filter(|i| i.label == "web").collect();
    assert_eq!(web.len(), 1, "one interval: {web:?}");
    assert_eq!(web[0].netns, c.netns(1), "on n2");
    assert!(web[0].online_ns.is_some(), "online");
    assert!(
        lines
            .iter()
            .all(|l| !matches!(l.event.as_str(), "offline" | "terminate" | "offline-begin")),
        "never offline or terminated"
    );
    let last_alive = lines.iter().map(|l| l.at_ns).max().unwrap_or(0);
    assert!(
        keelson_sys::journal::monotonic_ns() - last_alive < 1_000_000_000,
        "its heartbeat runs on: the interval is unbroken and still open"
    );
    c.lab.set_links(1, &["eth1"], true);
    println!(
        "one network cut: watched {} ms, no move, no restart",
        cut.elapsed().as_millis()
    );
}

#[test]
fn a_node_with_all_links_cut_offlines_its_groups_and_the_others_take_them() {
    if root_or_skip("t23") {
        all_links_cut("pb", 1);
    }
}

#[test]
fn the_leader_with_all_links_cut_offlines_its_groups_and_the_others_take_them() {
    if root_or_skip("t23") {
        all_links_cut("pl", 0);
    }
}

#[test]
fn a_frozen_rcm_has_its_hosts_fence_themselves_and_never_runs_the_group_again() {
    if root_or_skip("t23") {
        frozen("pc", 1);
    }
}

#[test]
fn a_frozen_leader_has_its_hosts_fence_themselves_and_never_runs_the_group_again() {
    if root_or_skip("t23") {
        frozen("pk", 0);
    }
}

/// The node (index) to watch the cluster from while `victim` is cut off or frozen.
fn observer(victim: usize) -> usize {
    if victim == 0 {
        1
    } else {
        0
    }
}

/// A cluster with group `web` Online on `victim`, which is (index 0) or is not the raft leader.
/// The cluster properties `timing` are set too.
fn cluster_with_web_timed(
    tag: &str,
    victim: usize,
    resource_props: &[(&str, &str)],
    timing: &[(&str, &str)],
) -> Cluster {
    let c = Cluster::with_timing(tag, timing);
    c.journal_group(victim, "web", &[], resource_props);
    let leader = c.n(victim).ok(R::ClusterStatus)["leader"].clone();
    assert_eq!(leader, "n1", "n1 created the cluster and leads it");
    c
}

/// All links of `victim` cut: it loses quorum (1177) and terminates web, another node takes it
/// after the lease, never both at once; healed, the victim follows and does not run it again.
fn all_links_cut(tag: &str, victim: usize) {
    all_links_cut_timed(tag, victim, &[]);
}

/// As `all_links_cut`, with the cluster properties `timing`; returns the cluster.
fn all_links_cut_timed(tag: &str, victim: usize, timing: &[(&str, &str)]) -> Cluster {
    let c = cluster_with_web_timed(tag, victim, &[], timing);
    let (v, name) = (c.n(victim), format!("n{}", victim + 1));
    let quorum_losses = || v.events().iter().filter(|e| e["id"] == 1177).count();
    let before = quorum_losses();
    let cut = Instant::now();
    c.lab.set_links(victim, &["eth1", "eth2"], false);
    let lost = wait_for(&format!("a new event 1177 on {name}"), LIMIT, || {
        quorum_losses() > before
    });
    let (to, _) = c.wait_moved_off("web", observer(victim), victim);
    let took = cut.elapsed();
    let to_name = format!("n{}", to + 1);
    println!(
        "all links of {name} cut: quorum lost there (1177) after {} ms, web Online on {to_name} after {} ms",
        lost.as_millis(),
        took.as_millis()
    );
    assert_ne!(
        v.group_owner_state("web").map(|g| g.1).as_deref(),
        Some("Online"),
        "{name} runs nothing without quorum"
    );
    assert_moved_event(&c, "web", &name, &to_name, "node lost");
    let (_, intervals) = c.journal();
    let on_victim: Vec<&Interval> = intervals
        .iter()
        .filter(|i| i.netns == c.netns(victim))
        .collect();
    assert!(
        on_victim.len() == 1 && on_victim[0].closed,
        "{name}'s interval ended (terminated), not cut short by a death: {on_victim:?}"
    );
    assert!(
        intervals
            .iter()
            .any(|i| i.netns == c.netns(to) && i.online_ns.is_some()),
        "online on {to_name}: {intervals:?}"
    );
    // Healed, the victim comes back and follows: it does not run the group again.
    c.lab.set_links(victim, &["eth1", "eth2"], true);
    wait_for(&format!("{name} Up again"), LIMIT, || {
        c.n(observer(victim)).node_state(&name) == "Up"
    });
    c.wait_group_on("web", to, "Online");
    holds_for(&format!("{name} does not run web again"), QUIET, || {
        v.group_owner_state("web").is_some_and(|g| g.1 != "Online")
    });
    assert_eq!(
        c.onlines("web", victim),
        1,
        "{name} brought it online once only"
    );
    c
}

/// `victim`'s rcm frozen (SIGSTOP) past detection: its hosts fence themselves (the journal
/// interval ends with the plugin's TERMINATE) before another node starts web; continued
/// (SIGCONT), the victim never runs it again, even with RestartDelay 0.
fn frozen(tag: &str, victim: usize) {
    frozen_timed(tag, victim, &[]);
}

/// As `frozen`, with the cluster properties `timing`; returns the cluster.
fn frozen_timed(tag: &str, victim: usize, timing: &[(&str, &str)]) -> Cluster {
    // Restarted at once: a node that took its hosts' fencing for a failure would run it again
    // before anything else could stop it.
    let c = cluster_with_web_timed(tag, victim, &[("RestartDelay", "0")], timing);
    let (v, name) = (c.n(victim), format!("n{}", victim + 1));
    let frozen = Instant::now();
    v.freeze(true);
    let (to, took) = c.wait_moved_off("web", observer(victim), victim);
    let to_name = format!("n{}", to + 1);
    println!(
        "rcm of {name} frozen: web Online on {to_name} {} ms after SIGSTOP",
        took.as_millis()
    );
    let (on_victim, next) = handed_over(&c, victim, to, "hosts fenced themselves");
    println!(
        "frozen {name}'s host terminated web {} ms before {to_name} began it",
        (next.from_ns - on_victim.to_ns) / 1_000_000
    );
    assert!(
        frozen.elapsed() > Duration::from_secs(1),
        "frozen past detection"
    );
    v.freeze(false);
    wait_for(&format!("{name} Up again"), LIMIT, || {
        c.n(observer(victim)).node_state(&name) == "Up"
    });
    wait_for(&format!("{name} following the move"), LIMIT, || {
        v.group_owner_state("web").map(|g| g.0) == Some(to_name.clone())
    });
    holds_for(&format!("{name} does not run web again"), QUIET, || {
        v.group_owner_state("web").is_some_and(|g| g.1 != "Online")
    });
    assert_eq!(
        c.onlines("web", victim),
        1,
        "{name} never brought web online again"
    );
    c.wait_group_on("web", to, "Online");
    c
}

#[test]
fn a_freeze_shorter_than_detection_fences_the_hosts_and_the_node_brings_its_group_back() {
    if !root_or_skip("t23") {
        return;
    }
    // Peers take a node Down only after 10 missed heartbeats (2 s); its hosts fence themselves
    // after 900 ms without a renewal.
    let c = Cluster::with_timing(
        "ph",
        &[
            ("SameSubnetThreshold", "10"),
            ("CrossSubnetThreshold", "10"),
        ],
    );
    c.journal_group(1, "web", &[], &[("RestartDelay", "0")]);
    let n2 = c.n(1);
    let frozen = Instant::now();
    n2.freeze(true);
    let n2_ended = || {
        c.journal()
            .1
            .iter()
            .any(|i| i.netns == c.netns(1) && i.closed)
    };
    let fenced = wait_for("n2's host fenced itself", LIMIT, n2_ended);
    n2.freeze(false);
    println!(
        "brief freeze of n2: its host fenced itself {} ms after SIGSTOP; continued then",
        fenced.as_millis()
    );
    // The owner's report may still say Online from before the freeze: wait for the journal's
    // second online on n2 too (under the contact lease a longer freeze also costs n2 its quorum
    // for a moment, and it brings the group back once it has it again).
    let thawed = Instant::now();
    wait_for("a second online of web on n2", LIMIT, || {
        c.onlines("web", 1) >= 2
    });
    c.wait_group_on("web", 1, "Online");
    let took = thawed.elapsed();
    println!(
        "web Online on n2 again {} ms after SIGCONT ({} ms after SIGSTOP)",
        took.as_millis(),
        frozen.elapsed().as_millis()
    );
    assert_eq!(c.n(0).node_state("n2"), "Up", "never taken Down");
    assert!(c.events_anywhere(1641, "web").is_empty(), "never moved");
    assert_eq!(c.onlines("web", 1), 2, "n2 brought it back itself");
    assert_eq!(c.onlines("web", 0) + c.onlines("web", 2), 0, "nowhere else");
}

/// Resource properties for failing fast: health checked every 100 ms, one restart after 50 ms.
const FAIL_FAST: [(&str, &str); 4] = [
    ("RestartThreshold", "1"),
    ("RestartDelay", "50"),
    ("LooksAlivePollInterval", "100"),
    ("IsAlivePollInterval", "100"),
];

fn fail_fast(action: &str) -> Vec<(&str, &str)> {
    let mut props = vec![("RestartAction", action)];
    props.extend(FAIL_FAST);
    props
}

#[test]
fn a_resource_past_its_restart_threshold_climbs_the_failover_ladder_until_failed_everywhere() {
    if !root_or_skip("t23") {
        return;
    }
    let c = Cluster::new("pd");
    let group = [("PreferredOwners", "n1,n2,n3"), ("FailoverThreshold", "5")];
    c.journal_group(0, "db", &group, &fail_fast("RestartAndFailover"));
    // Failing on n1: one restart there, then the group fails over to n2, where it is healthy.
    c.fail_on("db", &[0]);
    let took = c.wait_group_on("db", 1, "Online");
    println!(
        "db failing on n1: Online on n2 {} ms after the failure began",
        took.as_millis()
    );
    assert_eq!(c.onlines("db", 0), 2, "n1: online, then its one restart");
    let n1 = c.n(0);
    assert!(
        n1.group_events(1069, "db").len() >= 2,
        "1069 on n1 per failure: {:?}",
        n1.events()
    );
    assert!(
        !n1.group_events(1205, "db").is_empty(),
        "1205 on n1: {:?}",
        n1.events()
    );
    assert_moved_event(&c, "db", "n1", "n2", "failure");
    // Failing on every node: n2 gives it its own restart, then n3 (n1 failed it within the
    // period), which gives it its own; then it stays Failed there.
    c.fail_on("db", &[0, 1, 2]);
    let took = c.wait_group_on("db", 2, "Failed");
    println!(
        "db failing everywhere: Failed on n3 {} ms later, after n2 and n3 each restarted it",
        took.as_millis()
    );
    assert_moved_event(&c, "db", "n2", "n3", "failure");
    holds_for("db stays Failed on n3", QUIET, || {
        c.n(2).group_owner_state("db") == Some(("n3".into(), "Failed".into()))
            && c.n(0).group_owner_state("db").map(|g| g.0).as_deref() == Some("n3")
    });
    let counts: Vec<usize> = (0..3).map(|i| c.onlines("db", i)).collect();
    assert_eq!(
        counts,
        [2, 2, 2],
        "online-begins: each node's first online and its own restart"
    );
    for (i, n) in c.nodes.iter().flatten().enumerate().skip(1) {
        assert!(!n.group_events(1205, "db").is_empty(), "1205 on n{}", i + 1);
    }
    assert!(
        c.events_anywhere(1254, "db").is_empty(),
        "failed everywhere, not past its threshold"
    );
    assert!(
        c.n(2).cluster_log().contains("failed on every node"),
        "n3 says it failed on every node:\n{}",
        c.logs()
    );
}

#[test]
fn more_failovers_than_failover_threshold_within_its_period_leave_the_group_failed_with_1254() {
    if !root_or_skip("t23") {
        return;
    }
    let c = Cluster::new("pe");
    let group = [
        ("PreferredOwners", "n1,n2,n3"),
        ("FailoverThreshold", "1"),
        ("FailoverPeriod", "600000"),
    ];
    c.journal_group(0, "db", &group, &fail_fast("RestartAndFailover"));
    c.fail_on("db", &[0, 1]);
    let took = c.wait_group_on("db", 1, "Failed");
    println!(
        "FailoverThreshold 1: db failed over n1 -> n2, then Failed on n2 {} ms after the failures began",
        took.as_millis()
    );
    assert_moved_event(&c, "db", "n1", "n2", "failure");
    let raised = c.events_anywhere(1254, "db");
    assert!(
        raised.iter().any(|(node, _)| node == "n2"),
        "1254 on n2: {raised:?}\n{}",
        c.logs()
    );
    holds_for("db stays Failed on n2, never tried on n3", QUIET, || {
        c.n(1).group_owner_state("db") == Some(("n2".into(), "Failed".into()))
            && c.n(2).group_owner_state("db").map(|g| g.0).as_deref() == Some("n2")
    });
    assert_eq!(c.onlines("db", 2), 0, "n3 never ran it");
    assert_eq!(c.events_anywhere(1641, "db").len(), 1, "one move only");

    // A failover older than FailoverPeriod no longer counts (nor does the node it failed on):
    // the same threshold, a period of 1.5 s, and the second failure moves it again, back to n1.
    let group = [
        ("PreferredOwners", "n1,n2,n3"),
        ("FailoverThreshold", "1"),
        ("FailoverPeriod", "1500"),
    ];
    c.journal_group(0, "late", &group, &fail_fast("RestartAndFailover"));
    c.fail_on("late", &[0]);
    c.wait_group_on("late", 1, "Online");
    let moved = Instant::now();
    holds_for(
        "late Online on n2 for a FailoverPeriod",
        Duration::from_millis(1_700),
        || c.n(1).group_owner_state("late") == Some(("n2".into(), "Online".into())),
    );
    c.fail_on("late", &[1]);
    c.wait_group_on("late", 0, "Online");
    println!(
        "FailoverPeriod 1500 ms: late failed over n1 -> n2, and {} ms later n2 -> n1",
        moved.elapsed().as_millis()
    );
    assert_moved_event(&c, "late", "n2", "n1", "failure");
    assert!(
        c.events_anywhere(1254, "late").is_empty(),
        "not past its threshold"
    );
}

#[test]
fn restart_action_restart_never_moves_the_group() {
    if !root_or_skip("t23") {
        return;
    }
    let c = Cluster::new("pf");
    let group = [("PreferredOwners", "n1,n2,n3")];
    c.journal_group(0, "print", &group, &fail_fast("Restart"));
    c.fail_on("print", &[0]);
    let n1 = c.n(0);
    let took = wait_for("print-app Failed on n1", LIMIT, || {
        n1.resource("print-app")["state"] == "Failed"
    });
    println!(
        "RestartAction=Restart: print-app Failed on n1 {} ms after the failure began",
        took.as_millis()
    );
    holds_for("print stays on n1", QUIET, || {
        c.nodes
            .iter()
            .flatten()
            .all(|n| n.group_owner_state("print").map(|g| g.0).as_deref() == Some("n1"))
    });
    assert_eq!(c.onlines("print", 0), 2, "online, then its one restart");
    assert_eq!(
        c.onlines("print", 1) + c.onlines("print", 2),
        0,
        "nowhere else"
    );
    assert!(c.events_anywhere(1641, "print").is_empty(), "no move");
    assert!(
        n1.group_events(1205, "print").is_empty(),
        "no group failure"
    );
    assert!(
        n1.group_events(1069, "print").len() >= 2,
        "1069 per failure"
    );
}

/// The failback window [start, end) in local hours that includes `hour` (and the next one), or
/// excludes it (and the next one).
fn window(hour: u32, include: bool) -> (String, String) {
    let start = if include { hour } else { (hour + 2) % 24 };
    (start.to_string(), ((start + 2) % 24).to_string())
}

fn local_hour() -> u32 {
    keelson_sys::clock::local_hour().expect("the local hour")
}

/// n2 (the preferred owner) is lost (kill -9), the group fails over to n1, and n2 is booted
/// again on its data directory until n1 and n3 see it Up.
fn lose_and_bring_back_n2(c: &mut Cluster, group: &str) {
    lose_and_bring_back(c, group, 1, 0);
}

/// Node `lost` is killed (kill -9), `group` fails over to node `to`, and `lost` is booted again
/// on its data directory until every other node sees it Up.
fn lose_and_bring_back(c: &mut Cluster, group: &str, lost: usize, to: usize) {
    let name = format!("n{}", lost + 1);
    let mut node = c.nodes[lost].take().expect("the node runs");
    node.kill9();
    c.wait_group_on(group, to, "Online");
    assert_moved_event(c, group, &name, &format!("n{}", to + 1), "node lost");
    c.nodes[lost] = Some(boot(&c.lab, lost, node.keep_dir()));
    wait_for(&format!("{name} Up everywhere"), LIMIT, || {
        (0..3)
            .filter(|i| *i != lost)
            .all(|i| c.n(i).node_state(&name) == "Up")
    });
}

/// `group set` of the failback window, asked on n3 (not the leader, not an owner): the leader's
/// placer hears it as a committed record.
fn set_window(c: &Cluster, (start, end): (String, String)) {
    c.n(2).ok(R::GroupSet {
        name: "home".into(),
        properties: pairs(&[("FailbackWindowStart", &start), ("FailbackWindowEnd", &end)]),
    });
}

/// The windowed failback, at local hour `hour`: outside the window it stays on n1, then the window
/// is set to include the hour and it moves back. False when the hour changed meanwhile (then
/// what was seen proves nothing).
fn windowed_failback(c: &mut Cluster, hour: u32) -> bool {
    set_window(c, window(hour, false));
    lose_and_bring_back_n2(c, "home");
    wait_for("n2 following the move to n1", LIMIT, || {
        c.n(1).group_owner_state("home").map(|g| g.0).as_deref() == Some("n1")
    });
    holds_for(
        "home stays on n1 outside the failback window",
        QUIET,
        || {
            c.nodes
                .iter()
                .flatten()
                .all(|n| n.group_owner_state("home").map(|g| g.0).as_deref() == Some("n1"))
        },
    );
    if local_hour() != hour {
        return false;
    }
    let moves = c.events_anywhere(1641, "home").len();
    set_window(c, window(hour, true));
    let took = c.wait_group_on("home", 1, "Online");
    if local_hour() != hour {
        return false;
    }
    println!(
        "failback window {:?} includes hour {hour}: home back on n2 {} ms after the set",
        window(hour, true),
        took.as_millis()
    );
    assert!(c.events_anywhere(1641, "home").len() > moves);
    assert_moved_event(c, "home", "n1", "n2", "failback");
    true
}

#[test]
fn auto_failback_allow_moves_the_group_back_to_the_leader_it_lost() {
    if !root_or_skip("t23") {
        return;
    }
    // The preferred owner is the leader: its loss also moves the placement to a new leader.
    let mut c = Cluster::new("pi");
    let group = [
        ("PreferredOwners", "n1,n2,n3"),
        ("AutoFailbackType", "Allow"),
    ];
    c.journal_group(0, "home", &group, &[]);
    let back = Instant::now();
    lose_and_bring_back(&mut c, "home", 0, 1);
    let took = c.wait_group_on("home", 0, "Online");
    println!(
        "failback to the old leader n1: home back on n1 {} ms after it was Up again ({} ms in all)",
        took.as_millis(),
        back.elapsed().as_millis()
    );
    assert_moved_event(&c, "home", "n2", "n1", "failback");
    c.journal();
}

#[test]
fn auto_failback_allow_moves_the_group_back_inside_the_failback_window_only() {
    if !root_or_skip("t23") {
        return;
    }
    let mut c = Cluster::new("pg");
    let group = [
        ("PreferredOwners", "n2,n1,n3"),
        ("AutoFailbackType", "Allow"),
    ];
    c.journal_group(1, "home", &group, &[]);
    // No window: back on n2 once it is Up again.
    let back = Instant::now();
    lose_and_bring_back_n2(&mut c, "home");
    let took = c.wait_group_on("home", 1, "Online");
    println!(
        "failback without a window: home back on n2 {} ms after n2 was Up again ({} ms in all)",
        took.as_millis(),
        back.elapsed().as_millis()
    );
    assert_moved_event(&c, "home", "n1", "n2", "failback");
    // A window: it waits for it. The hour may turn mid-test: then once more.
    let first = local_hour();
    if !windowed_failback(&mut c, first) {
        let again = local_hour();
        assert!(windowed_failback(&mut c, again), "the hour changed twice");
    }
    c.journal();
}

/// Threshold 10 at Delay 200 with t23's host lease (900 ms) and fence budget (300 ms): the
/// takeover timing runs a contact lease (rcm/src/cluster/takeover.rs: W = 1900 - 300 - 100 =
/// 1500 ms), so a node that hears no majority gives its groups up before the others can take it
/// Down, and they start them the moment they do.
const CONTACT_LEASE: [(&str, &str); 2] = [
    ("SameSubnetThreshold", "10"),
    ("CrossSubnetThreshold", "10"),
];

/// Every node runs the contact lease and waits nothing after a Down.
fn assert_contact_lease_timing(c: &Cluster) {
    for (i, n) in c.nodes.iter().enumerate() {
        let log = n.as_ref().expect("the node runs").cluster_log();
        assert!(
            log.contains(
                "gives up its groups (contact lease; it says it hears a peer for 1300 ms)"
            ) && log.contains("has its groups started elsewhere after 0 ms more"),
            "n{}: no contact-lease takeover timing logged:\n{}",
            i + 1,
            c.logs()
        );
    }
}

/// How long after its Down the leader (n1) found `victim`'s lease expired, from its log line.
fn lease_expired_after_ms(c: &Cluster, victim: &str) -> Option<u64> {
    let log = c.n(0).cluster_log();
    let line = log.lines().rev().find(|l| {
        l.contains(&format!("Node '{victim}'")) && l.contains("its quorum lease has expired")
    })?;
    let ms = line
        .split("has been Down for ")
        .nth(1)?
        .split(" ms")
        .next()?;
    ms.parse().ok()
}

#[test]
fn with_a_contact_lease_a_node_with_all_links_cut_gives_up_its_groups_before_the_others_start_them_at_once(
) {
    if !root_or_skip("with_a_contact_lease_a_node_with_all_links_cut") {
        return;
    }
    let c = all_links_cut_timed("clcut", 1, &CONTACT_LEASE);
    assert_contact_lease_timing(&c);
    let waited = lease_expired_after_ms(&c, "n2");
    println!("contact lease: the leader found n2's lease expired {waited:?} ms after its Down");
    assert!(
        waited.is_some(),
        "no lease expiry for n2 on n1:\n{}",
        c.logs()
    );
}

#[test]
fn with_a_contact_lease_a_node_nobody_hears_gives_up_its_groups_before_the_others_start_them() {
    if !root_or_skip("with_a_contact_lease_a_node_nobody_hears")
        || !common::faults::nft_or_skip("t23 one-way")
    {
        return;
    }
    let victim = 1;
    let c = cluster_with_web_timed("cloneway", victim, &[], &CONTACT_LEASE);
    assert_contact_lease_timing(&c);
    let v = c.n(victim);
    let quorum_losses = || v.events().iter().filter(|e| e["id"] == 1177).count();
    let before = quorum_losses();
    let cut = Instant::now();
    // n2 still hears the others, but nobody hears n2: only their heartbeats' "hears you",
    // withdrawn after 1300 ms of silence, tell it.
    let drop =
        common::faults::NftDrop::one_way(&c.lab, victim, common::faults::Direction::Outbound);
    let lost = wait_for("a new event 1177 on n2", LIMIT, || quorum_losses() > before);
    let (to, took) = c.wait_moved_off("web", observer(victim), victim);
    println!(
        "nobody hears n2: quorum lost there (1177) after {} ms, web Online on n{} after {} ms",
        lost.as_millis(),
        to + 1,
        cut.elapsed().as_millis().max(took.as_millis())
    );
    handed_over(&c, victim, to, "terminated web");
    assert!(
        c.logs().contains("Node 'n2' (id 2) is down"),
        "the others took n2 Down:\n{}",
        c.logs()
    );
    drop.heal();
    wait_for("n2 Up again", LIMIT, || {
        c.n(observer(victim)).node_state("n2") == "Up"
    });
    holds_for("n2 does not run web again", QUIET, || {
        v.group_owner_state("web").is_some_and(|g| g.1 != "Online")
    });
}

#[test]
fn with_a_contact_lease_a_frozen_rcm_has_its_hosts_fence_themselves_before_the_others_start_the_group(
) {
    if !root_or_skip("with_a_contact_lease_a_frozen_rcm") {
        return;
    }
    let c = frozen_timed("clfrozen", 1, &CONTACT_LEASE);
    assert_contact_lease_timing(&c);
}
