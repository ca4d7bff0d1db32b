//! Fencing before takeover (issue 10, FenceAgent): three nodes in three network namespaces on two
//! networks (tests/common/lab.rs), a fence agent written by the test that records its stdin and
//! the CLOCK_MONOTONIC instant of each call (the kernel's `now at N nsecs` of /proc/timer_list,
//! the clock the journal resource stamps its lines with) and fails its first two calls. kill -9
//! of the owner n2: the leader runs the agent with action=off and plug/port/nodename=n2, logs and
//! raises each failure (event 1700), retries after FenceRetryDelay, raises the success (1701), and
//! only then is the group started elsewhere: the new owner's online begins after the agent's
//! successful call, and the journal never shows the group Online on two nodes. The leader killed
//! itself: the next leader fences it before its group moves. An agent that always fails: the
//! group waits past the lease for as long as the node is down, and fencing stops when it is back.
//! Root only: fails in CI without it. Also, without root: bad FenceAgent values are refused
//! naming the value, and nothing changes.

mod common;

use common::lab::{root_or_skip, Lab};
use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(40);
/// Long enough that the third (successful) call comes after n2's quorum lease has run out
/// (about 3.3 s after it is Down at SameSubnetDelay 200 ms), so the fence is what holds the
/// takeover back.
const RETRY_DELAY_MS: u64 = 2_500;

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what} not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn set(pairs: &[(&str, &str)]) -> R {
    R::ClusterSet {
        properties: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The group as `rcm` shows it: (owner, state), or None while it does not know it.
fn group(rcm: &Rcm, name: &str) -> Option<(String, String)> {
    match rcm.request(R::GroupGet { name: name.into() }).first() {
        Some(keelson_proto::ControlReply::Json(text)) => {
            let v: Value = serde_json::from_str(text).ok()?;
            Some((
                v["owner_node"].as_str()?.to_string(),
                v["state"].as_str()?.to_string(),
            ))
        }
        _ => None,
    }
}

/// An executable file `name` in `dir` holding `body`.
fn script(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A fence agent that appends `N CLOCK_MONOTONIC_NS ok|fail` to `calls` and keeps its stdin in
/// `stdin.N`; its first `failures` calls fail (exit 1, a reason on stderr), the later ones
/// succeed. The instant is read last, just before it exits.
fn recording_agent(dir: &Path, failures: u32) -> PathBuf {
    let d = dir.display();
    let body = format!(
        r#"#!/bin/sh
n=$(( $(cat {d}/calls 2>/dev/null | wc -l) + 1 ))
cat > {d}/stdin.$n
now() {{ sed -n 's/^now at \([0-9]*\) nsecs$/\1/p;/^now at/q' /proc/timer_list; }}
if [ $n -le {failures} ]; then
    echo "$n $(now) fail" >> {d}/calls
    echo "Failed: Unable to reach the power switch of $(sed -n 's/^plug=//p' {d}/stdin.$n) (test call $n)" >&2
    exit 1
fi
echo "Success: Powered OFF"
echo "$n $(now) ok" >> {d}/calls
exit 0
"#
    );
    script(dir, "fence_recorder", &body, 0o755)
}

/// The agent's calls: (number, CLOCK_MONOTONIC ns, succeeded).
fn calls(dir: &Path) -> Vec<(u32, u64, bool)> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "agent record {l:?}");
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2] == "ok")
        })
        .collect()
}

#[test]
fn a_lost_owner_is_fenced_retried_until_it_succeeds_and_only_then_taken_over() {
    if !root_or_skip("t20") {
        return;
    }
    let agent_dir = Rcm::new_dir("t20-agent");
    let agent = recording_agent(&agent_dir, 2);
    // The agent reads the monotonic clock from /proc/timer_list: it must agree with the journal's.
    let probe = std::process::Command::new("sh")
        .arg("-c")
        .arg(r"sed -n 's/^now at \([0-9]*\) nsecs$/\1/p;/^now at/q' /proc/timer_list")
        .output()
        .unwrap();
    let before = keelson_sys::clock::monotonic_ns();
    let read: u64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        read <= before && before - read < 1_000_000_000,
        "/proc/timer_list {read} vs CLOCK_MONOTONIC {before}"
    );

    let lab = Lab::create("fe", 3);
    let n1 = lab.boot(0, Rcm::new_dir("t20-n1"));
    n1.ok(R::ClusterCreate {
        name: "lab".into(),
        nodes: (0..3).map(Lab::node_spec).collect(),
        virtual_subnet: Some("203.0.113.0/24".into()),
    });
    let key = n1.dir.join("cluster.key").to_string_lossy().into_owned();
    let mut n2 = lab.boot(1, Rcm::new_dir("t20-n2"));
    let n3 = lab.boot(2, Rcm::new_dir("t20-n3"));
    for n in [&n2, &n3] {
        n.ok(R::NodeJoin {
            cluster: "192.0.2.1".into(),
            key_file: key.clone(),
            name: None,
        });
    }
    let all_up = |nodes: [&Rcm; 3]| {
        for n in nodes {
            for peer in ["n1", "n2", "n3"] {
                wait_until(&format!("{peer} Up on {}", n.dir.display()), LIMIT, || {
                    n.node_state(peer) == "Up"
                });
            }
        }
    };
    // Every member Up and in touch before the first cluster-wide change, and again after it
    // (the heartbeat network restarts with the new timing).
    all_up([&n1, &n2, &n3]);
    let retry = RETRY_DELAY_MS.to_string();
    let agent_text = agent.to_string_lossy().into_owned();
    n1.ok(set(&[
        ("TestOnlyLowerLimits", "1"),
        ("SameSubnetDelay", "200"),
        ("CrossSubnetDelay", "200"),
        ("FenceAgent", &agent_text),
        ("FenceAgentOptions", "ipaddr=192.0.2.250,login=admin"),
        ("FenceTimeout", "5000"),
        ("FenceRetryDelay", &retry),
    ]));
    // Replicated: every node, a follower too, shows the agent (once it has applied the set).
    for n in [&n1, &n2, &n3] {
        wait_until("FenceAgent applied everywhere", LIMIT, || {
            let shown = n.request(R::ClusterGet {
                names: vec!["FenceAgent".into()],
            });
            matches!(shown.first(), Some(keelson_proto::ControlReply::Json(text))
            if serde_json::from_str::<Value>(text).is_ok_and(|v| {
                v["properties"]["FenceAgent"]["text"] == agent_text.as_str()
            }))
        });
    }
    all_up([&n1, &n2, &n3]);
    let journal = agent_dir.join("journal");
    n2.journal_group("web", &journal);
    wait_until("web Online on n2", LIMIT, || {
        group(&n2, "web") == Some(("n2".into(), "Online".into()))
    });
    assert!(calls(&agent_dir).is_empty(), "nobody fenced yet");

    let killed_ns = keelson_sys::clock::monotonic_ns();
    n2.kill9();
    wait_until("web Online on n1 or n3", LIMIT, || {
        group(&n1, "web").is_some_and(|(owner, _)| {
            owner != "n2"
                && group(if owner == "n1" { &n1 } else { &n3 }, "web")
                    .is_some_and(|(_, state)| state == "Online")
        })
    });
    let (owner, _) = group(&n1, "web").unwrap();

    // Three calls: two failures, then the success; none after it.
    let made = calls(&agent_dir);
    assert_eq!(
        made.iter().map(|c| (c.0, c.2)).collect::<Vec<_>>(),
        [(1, false), (2, false), (3, true)],
        "{made:?}"
    );
    let gap_ms = (made[2].1 - made[1].1) / 1_000_000;
    assert!(
        gap_ms >= RETRY_DELAY_MS - 50,
        "the retry came {gap_ms} ms after the failure, before FenceRetryDelay"
    );
    for n in 1..=3 {
        let stdin = std::fs::read_to_string(agent_dir.join(format!("stdin.{n}"))).unwrap();
        assert_eq!(
            stdin, "action=off\nplug=n2\nport=n2\nnodename=n2\nipaddr=192.0.2.250\nlogin=admin\n",
            "call {n}"
        );
    }
    let fenced_ns = made[2].1;

    // The leader ran it, and logged and raised each failure and the success.
    let leader_name = n1.ok(R::ClusterStatus)["leader"]
        .as_str()
        .unwrap()
        .to_string();
    let leader = if leader_name == "n1" { &n1 } else { &n3 };
    let log = leader.cluster_log();
    for attempt in [1, 2] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("Fencing node 'n2' failed (attempt {attempt})")))
            .unwrap_or_else(|| panic!("failure {attempt} in {leader_name}'s cluster.log:\n{log}"));
        assert!(line.contains("ERR [FENCE]"), "{line}");
        assert!(
            line.contains(&format!("exit status 1; its last line: 'Failed: Unable to reach the power switch of n2 (test call {attempt})'")),
            "{line}"
        );
    }
    let position = |text: &str| {
        log.find(text)
            .unwrap_or_else(|| panic!("'{text}' in {leader_name}'s cluster.log:\n{log}"))
    };
    let lease_out = position("has been Down for");
    let waits = position("Node 'n2''s quorum lease has expired but it is not fenced yet");
    let fenced = position("Node 'n2' was fenced (attempt 3");
    position("the agent said 'Success: Powered OFF'");
    assert!(
        lease_out < waits && waits < fenced,
        "the lease ran out first and the groups waited for the fence:\n{log}"
    );
    let events = leader.events();
    let with = |id: u64| {
        events
            .iter()
            .filter(|e| e["id"] == id && e["message"].as_str().unwrap_or("").contains("'n2'"))
            .count()
    };
    assert_eq!((with(1700), with(1701)), (2, 1), "{events:?}");

    // From the journal: the new owner's online began after the successful fence, and the group
    // was never Online on two nodes.
    let text = std::fs::read_to_string(&journal).expect("the journal");
    let lines = keelson_plugin_journal::check::parse(&text).expect("a well-formed journal");
    let intervals = keelson_plugin_journal::check::intervals(&lines, 20_000_000);
    let n2_netns = intervals.first().expect("web ran on n2").netns;
    let elsewhere: Vec<_> = intervals.iter().filter(|i| i.netns != n2_netns).collect();
    assert!(!elsewhere.is_empty(), "{intervals:?}");
    for i in &elsewhere {
        assert!(
            i.from_ns > fenced_ns,
            "{i} began before the fence succeeded at {fenced_ns} ns"
        );
    }
    let online_ns = elsewhere[0].online_ns.expect("online on the new owner");
    let overlaps = keelson_plugin_journal::check::overlaps(&intervals);
    assert!(
        overlaps.is_empty(),
        "web Online on two nodes at once: {overlaps:?}"
    );
    println!(
        "kill -9 of n2 to fence success {} ms (2 failures, FenceRetryDelay {RETRY_DELAY_MS} ms), \
         fence success to web Online on {owner} {} ms, kill to Online {} ms",
        (fenced_ns - killed_ns) / 1_000_000,
        (online_ns - fenced_ns) / 1_000_000,
        (online_ns - killed_ns) / 1_000_000
    );
    drop((n1, n2, n3));
    drop(lab);
    let _ = std::fs::remove_dir_all(&agent_dir);
}

#[test]
fn bad_fence_agents_are_refused_by_name_and_change_nothing() {
    let rcm = Rcm::start_in_with_args(
        Rcm::new_dir("t20-props"),
        &["--node-name", "n1", "--raft-port", "0"],
    );
    rcm.ok(R::ClusterCreate {
        name: "prod".into(),
        nodes: vec![("n1".into(), vec!["127.0.0.1".into()])],
        virtual_subnet: None,
    });
    let good = script(&rcm.dir, "fence_good", "#!/bin/sh\nexit 0\n", 0o755);
    let plain = script(&rcm.dir, "fence_plain", "#!/bin/sh\nexit 0\n", 0o644);
    let good = good.to_string_lossy().into_owned();
    let plain = plain.to_string_lossy().into_owned();
    let missing = rcm.dir.join("fence_missing").to_string_lossy().into_owned();
    let folder = rcm.dir.to_string_lossy().into_owned();
    let agent = |rcm: &Rcm| {
        let v = rcm.ok(R::ClusterGet {
            names: vec!["FenceAgent".into(), "FenceRetryDelay".into()],
        });
        (
            v["properties"]["FenceAgent"]["text"]
                .as_str()
                .unwrap()
                .to_string(),
            v["properties"]["FenceRetryDelay"]["value"]
                .as_u64()
                .unwrap(),
        )
    };
    assert_eq!(agent(&rcm), (String::new(), 5000), "no fencing by default");
    let index = || rcm.ok(R::ClusterStatus)["applied_index"].as_u64().unwrap();
    let before = index();
    for (value, why) in [
        (
            "fence_ipmilan".to_string(),
            "'fence_ipmilan' is not an absolute path".to_string(),
        ),
        (
            "./fence_good".to_string(),
            "'./fence_good' is not an absolute path".to_string(),
        ),
        (missing.clone(), format!("'{missing}': no such file")),
        (
            plain.clone(),
            format!("'{plain}' is not executable (mode 0644)"),
        ),
        (folder.clone(), format!("'{folder}' is not a file")),
        (
            format!("{plain} --ip 10.0.0.1"),
            format!("'{plain}' is not executable"),
        ),
    ] {
        let e = rcm.refused(set(&[("FenceAgent", &value)]));
        assert!(
            e.starts_with(&format!("FenceAgent '{value}': {why}")),
            "{value}: {e}"
        );
    }
    // All or nothing: a good agent with a bad delay is refused whole.
    let e = rcm.refused(set(&[("FenceAgent", &good), ("FenceRetryDelay", "5")]));
    assert!(e.starts_with("FenceRetryDelay 5 is out of range"), "{e}");
    let e = rcm.refused(set(&[("FenceAgentOptions", "passwd=hunter22")]));
    assert!(e.contains("passwd_script"), "{e}");
    assert_eq!(index(), before, "nothing committed");
    assert_eq!(agent(&rcm), (String::new(), 5000));

    rcm.ok(set(&[
        ("FenceAgent", &format!("{good} -v")),
        ("FenceRetryDelay", "300"),
    ]));
    assert_eq!(agent(&rcm), (format!("{good} -v"), 300));
    // Empty turns fencing off again.
    rcm.ok(set(&[("FenceAgent", "")]));
    assert_eq!(agent(&rcm), (String::new(), 300));
}

/// The journal's intervals of `label`, checked for overlaps; (the first node's netns, the
/// intervals elsewhere).
fn moved_intervals(journal: &Path) -> (u64, Vec<keelson_plugin_journal::check::Interval>) {
    let text = std::fs::read_to_string(journal).expect("the journal");
    let lines = keelson_plugin_journal::check::parse(&text).expect("a well-formed journal");
    let intervals = keelson_plugin_journal::check::intervals(&lines, 20_000_000);
    let overlaps = keelson_plugin_journal::check::overlaps(&intervals);
    assert!(
        overlaps.is_empty(),
        "Online on two nodes at once: {overlaps:?}"
    );
    let first = intervals.first().expect("it ran on its first owner").netns;
    let elsewhere = intervals.into_iter().filter(|i| i.netns != first).collect();
    (first, elsewhere)
}

#[test]
fn a_new_leader_fences_the_lost_leader_itself_before_taking_its_groups() {
    if !root_or_skip("t20") {
        return;
    }
    let agent_dir = Rcm::new_dir("t20-agent-leader");
    let agent = recording_agent(&agent_dir, 0);
    let lab = Lab::create("fl", 3);
    let mut n1 = lab.boot(0, Rcm::new_dir("t20l-n1"));
    n1.ok(R::ClusterCreate {
        name: "lab".into(),
        nodes: (0..3).map(Lab::node_spec).collect(),
        virtual_subnet: Some("203.0.113.0/24".into()),
    });
    let key = n1.dir.join("cluster.key").to_string_lossy().into_owned();
    let n2 = lab.boot(1, Rcm::new_dir("t20l-n2"));
    let n3 = lab.boot(2, Rcm::new_dir("t20l-n3"));
    for n in [&n2, &n3] {
        n.ok(R::NodeJoin {
            cluster: "192.0.2.1".into(),
            key_file: key.clone(),
            name: None,
        });
    }
    let all_up = |nodes: [&Rcm; 3]| {
        for n in nodes {
            for peer in ["n1", "n2", "n3"] {
                wait_until(&format!("{peer} Up on {}", n.dir.display()), LIMIT, || {
                    n.node_state(peer) == "Up"
                });
            }
        }
    };
    all_up([&n1, &n2, &n3]);
    let agent_text = agent.to_string_lossy().into_owned();
    n1.ok(set(&[
        ("TestOnlyLowerLimits", "1"),
        ("SameSubnetDelay", "200"),
        ("CrossSubnetDelay", "200"),
        ("FenceAgent", &agent_text),
    ]));
    all_up([&n1, &n2, &n3]);
    assert_eq!(
        n2.ok(R::ClusterStatus)["leader"],
        "n1",
        "n1 created it and leads"
    );
    // n1, the leader, owns the group.
    let journal = agent_dir.join("journal");
    n1.journal_group("db", &journal);
    wait_until("db Online on n1", LIMIT, || {
        group(&n1, "db") == Some(("n1".into(), "Online".into()))
    });

    let killed_ns = keelson_sys::clock::monotonic_ns();
    n1.kill9();
    wait_until("db Online on n2 or n3", LIMIT, || {
        group(&n2, "db").is_some_and(|(owner, _)| {
            owner != "n1"
                && group(if owner == "n2" { &n2 } else { &n3 }, "db")
                    .is_some_and(|(_, state)| state == "Online")
        })
    });
    let leader_name = n2.ok(R::ClusterStatus)["leader"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(leader_name, "n1");
    let leader = if leader_name == "n2" { &n2 } else { &n3 };
    let made = calls(&agent_dir);
    assert_eq!(made.len(), 1, "one call, by the new leader: {made:?}");
    let stdin = std::fs::read_to_string(agent_dir.join("stdin.1")).unwrap();
    assert_eq!(stdin, "action=off\nplug=n1\nport=n1\nnodename=n1\n");
    let log = leader.cluster_log();
    assert!(
        log.contains("Node 'n1' was fenced (attempt 1"),
        "the new leader {leader_name} fenced n1:\n{log}"
    );
    let (_, elsewhere) = moved_intervals(&journal);
    let fenced_ns = made[0].1;
    assert!(!elsewhere.is_empty());
    for i in &elsewhere {
        assert!(i.from_ns > fenced_ns, "{i} began before n1 was fenced");
    }
    println!(
        "kill -9 of the leader n1 to fenced by {leader_name} {} ms, to db Online elsewhere {} ms",
        (fenced_ns - killed_ns) / 1_000_000,
        (elsewhere[0]
            .online_ns
            .unwrap_or(0)
            .saturating_sub(killed_ns))
            / 1_000_000
    );
    drop((n1, n2, n3));
    drop(lab);
    let _ = std::fs::remove_dir_all(&agent_dir);
}

#[test]
fn a_fence_that_keeps_failing_holds_the_groups_until_the_node_is_back() {
    if !root_or_skip("t20") {
        return;
    }
    let agent_dir = Rcm::new_dir("t20-agent-failing");
    let agent = recording_agent(&agent_dir, u32::MAX);
    let lab = Lab::create("ff", 3);
    let n1 = lab.boot(0, Rcm::new_dir("t20f-n1"));
    n1.ok(R::ClusterCreate {
        name: "lab".into(),
        nodes: (0..3).map(Lab::node_spec).collect(),
        virtual_subnet: Some("203.0.113.0/24".into()),
    });
    let key = n1.dir.join("cluster.key").to_string_lossy().into_owned();
    let mut n2 = lab.boot(1, Rcm::new_dir("t20f-n2"));
    let n3 = lab.boot(2, Rcm::new_dir("t20f-n3"));
    for n in [&n2, &n3] {
        n.ok(R::NodeJoin {
            cluster: "192.0.2.1".into(),
            key_file: key.clone(),
            name: None,
        });
    }
    let all_up = |nodes: [&Rcm; 3]| {
        for n in nodes {
            for peer in ["n1", "n2", "n3"] {
                wait_until(&format!("{peer} Up on {}", n.dir.display()), LIMIT, || {
                    n.node_state(peer) == "Up"
                });
            }
        }
    };
    all_up([&n1, &n2, &n3]);
    let agent_text = agent.to_string_lossy().into_owned();
    n1.ok(set(&[
        ("TestOnlyLowerLimits", "1"),
        ("SameSubnetDelay", "200"),
        ("CrossSubnetDelay", "200"),
        ("FenceAgent", &agent_text),
        ("FenceRetryDelay", "400"),
    ]));
    all_up([&n1, &n2, &n3]);
    let journal = agent_dir.join("journal");
    n2.journal_group("web", &journal);
    wait_until("web Online on n2", LIMIT, || {
        group(&n2, "web") == Some(("n2".into(), "Online".into()))
    });
    assert_eq!(n1.ok(R::ClusterStatus)["leader"], "n1");

    n2.kill9();
    // The lease runs out while the fence keeps failing: the groups wait, and the retries go on.
    let waiting = "Node 'n2''s quorum lease has expired but it is not fenced yet";
    wait_until("the lease out and the groups waiting", LIMIT, || {
        n1.cluster_log().contains(waiting)
    });
    let so_far = calls(&agent_dir).len();
    wait_until("two more attempts after the lease ran out", LIMIT, || {
        calls(&agent_dir).len() >= so_far + 2
    });
    assert!(calls(&agent_dir).iter().all(|c| !c.2), "every call failed");
    assert_eq!(
        group(&n1, "web").map(|g| g.0).as_deref(),
        Some("n2"),
        "an unfenced node's group never moves"
    );
    for n in [&n1, &n3] {
        assert_ne!(group(n, "web").map(|g| g.1).as_deref(), Some("Online"));
    }
    let failures = n1
        .events()
        .iter()
        .filter(|e| e["id"] == 1700 && e["message"].as_str().unwrap_or("").contains("'n2'"))
        .count();
    assert!(
        failures >= so_far,
        "{failures} events 1700 for {so_far}+ failures"
    );

    // n2 comes back: fencing it stops, and its group is Online there again.
    let n2 = lab.boot(1, n2.keep_dir());
    wait_until("n1 logs that n2 is back unfenced", LIMIT, || {
        n1.cluster_log()
            .contains("Node 'n2' is Up again before it was fenced")
    });
    let at_up = calls(&agent_dir).len();
    wait_until("web Online on n2 again", LIMIT, || {
        group(&n2, "web") == Some(("n2".into(), "Online".into()))
    });
    assert!(
        calls(&agent_dir).len() <= at_up + 1,
        "no new attempt once n2 is Up (one may have been running)"
    );
    let (_, elsewhere) = moved_intervals(&journal);
    assert!(
        elsewhere.is_empty(),
        "web never ran elsewhere: {elsewhere:?}"
    );
    println!(
        "{} failed fence attempts against n2 while it was down; its group waited on it",
        calls(&agent_dir).len()
    );
    drop((n1, n2, n3));
    drop(lab);
    let _ = std::fs::remove_dir_all(&agent_dir);
}

#[test]
fn a_prompt_fence_lets_the_groups_move_before_the_lease_would_have_run_out() {
    if !root_or_skip("t20") {
        return;
    }
    let agent_dir = Rcm::new_dir("t20-agent-prompt");
    let agent = recording_agent(&agent_dir, 0);
    let lab = Lab::create("fp", 3);
    let mut nodes = lab.boot_cluster("t20p", 200, LIMIT);
    let agent_text = agent.to_string_lossy().into_owned();
    nodes[0].ok(set(&[("FenceAgent", &agent_text)]));
    let journal = agent_dir.join("journal");
    nodes[1].journal_group("web", &journal);
    wait_until("web Online on n2", LIMIT, || {
        group(&nodes[1], "web") == Some(("n2".into(), "Online".into()))
    });
    let leader = nodes[0].ok(R::ClusterStatus)["leader"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(leader, "n2", "n1 created the cluster and leads");

    let killed_ns = keelson_sys::clock::monotonic_ns();
    nodes[1].kill9();
    wait_until("web Online on n1 or n3", LIMIT, || {
        [0usize, 2]
            .iter()
            .any(|i| group(&nodes[*i], "web") == Some((format!("n{}", i + 1), "Online".into())))
    });
    let made = calls(&agent_dir);
    assert_eq!(made.len(), 1, "fenced once: {made:?}");
    // On the leader: fenced, then moved, before its lease would have run out (the takeover wait
    // at Delay 200 ms is over 3 s: a successful fence means the node is off, so it is not waited).
    let log = nodes[0].cluster_log();
    let at = |needle: &str| log.find(needle);
    let fenced = at("Node 'n2' was fenced (attempt 1").expect("fenced line");
    let moved = at("Clustered role 'web' is moving from node 'n2'").expect("the move");
    assert!(fenced < moved, "fenced before the move:\n{log}");
    if let Some(lease) = at("Node 'n2' (id 2) has been Down for") {
        assert!(moved < lease, "moved before the lease ran out:\n{log}");
    }
    let (_, elsewhere) = moved_intervals(&journal);
    assert!(!elsewhere.is_empty());
    for i in &elsewhere {
        assert!(i.from_ns > made[0].1, "{i} began before n2 was fenced");
    }
    println!(
        "kill -9 of n2 to fenced {} ms, to web Online elsewhere {} ms (Delay 200 ms: detection about 1 s; the lease wait, not needed, would have been 3.3 s more)",
        (made[0].1 - killed_ns) / 1_000_000,
        (elsewhere[0].online_ns.unwrap_or(0).saturating_sub(killed_ns)) / 1_000_000
    );
    drop(nodes);
    drop(lab);
    let _ = std::fs::remove_dir_all(&agent_dir);
}
