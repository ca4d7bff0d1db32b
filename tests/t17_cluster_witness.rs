//! Two real keelson-rcm nodes in two network namespaces joined by two networks (two bridges in a
//! switch namespace of the test's own, 192.0.2.0/24 and 198.51.100.0/24) and a witness every
//! namespace sees: a file-share witness (a directory under the test's temp dir) or a disk witness
//! (a loop device over a file there). Node Majority first; bad witness paths are refused naming
//! them with nothing changed; with the witness the cluster is Node and File Share (or Disk)
//! Majority with 3 voters; kill -9 the node hosting the witness voter: the survivor takes the lease
//! after expiry and margin, regains quorum and commits; the killed node restarts and catches up;
//! then the other node is killed and the first survives likewise; last the witness is removed (and
//! the share set again). Everything the test creates is removed, even when it fails. Root only:
//! fails in CI without it. The two tests take turns (one lab at a time on a loaded machine).

mod common;

use common::lab::{root_or_skip, Lab};
use common::rcm::Rcm;
use keelson_proto::{ControlReply, ControlRequest as R};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
/// From a kill to the survivor's first commit: the lease's takeover wait (about 2 s at the timings
/// set below) plus a raft election (its timeouts follow the same settings: about 1 s), with room
/// for a loaded machine.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(45);
/// The heartbeat Delay the test sets (test-only lower limits).
const DELAY_MS: u64 = 100;
/// One lab at a time.
static ONE_LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lease timings of Delay 100 ms and `threshold` (LeaseTimings::from_netft): renew every
/// Delay, lease Delay x Threshold + 1 s (the least stop budget), margin one Delay. The cluster
/// starts at `threshold + 1` and is set to `threshold` while the witness runs.
struct Timings {
    threshold: u64,
}

impl Timings {
    /// Raft's shortest election timeout at `threshold` (raft_timing): (Threshold + 1) x Delay + two
    /// heartbeats (Delay / 2 each) + Delay.
    fn election_min_ms(&self) -> u64 {
        (self.threshold + 1) * DELAY_MS + DELAY_MS + DELAY_MS
    }
    fn renew_ms(&self) -> u64 {
        DELAY_MS
    }
    fn lease_ms(&self) -> u64 {
        DELAY_MS * self.threshold + 1000
    }
    fn margin_ms(&self) -> u64 {
        DELAY_MS
    }
}

/// The witness under test, removed (detached) on drop.
enum Witness {
    /// A directory.
    Share(PathBuf),
    /// A loop device over a file.
    Disk { device: PathBuf, backing: PathBuf },
}

impl Witness {
    fn share() -> Witness {
        let dir = scratch("share");
        std::fs::create_dir_all(&dir).unwrap();
        Witness::Share(dir)
    }

    /// A 64 MiB loop device (the least a disk witness takes), or why there is none.
    fn disk() -> Result<Witness, String> {
        let backing = scratch("disk.img");
        let file = std::fs::File::create(&backing).unwrap();
        file.set_len(64 << 20).unwrap();
        drop(file);
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&backing)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let device = String::from_utf8_lossy(&o.stdout).trim().to_string();
                Ok(Witness::Disk {
                    device: PathBuf::from(device),
                    backing,
                })
            }
            other => {
                if let Err(e) = std::fs::remove_file(&backing) {
                    eprintln!("cleanup: remove {}: {e}", backing.display());
                }
                Err(format!("losetup --find --show: {other:?}"))
            }
        }
    }

    fn path(&self) -> String {
        match self {
            Witness::Share(dir) => dir.display().to_string(),
            Witness::Disk { device, .. } => device.display().to_string(),
        }
    }

    fn model(&self) -> String {
        match self {
            Witness::Share(_) => {
                format!(
                    "Node and File Share Majority (file-share witness {})",
                    self.path()
                )
            }
            Witness::Disk { .. } => {
                format!("Node and Disk Majority (disk witness {})", self.path())
            }
        }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        match self {
            Witness::Share(dir) => {
                if let Err(e) = std::fs::remove_dir_all(&*dir) {
                    eprintln!("cleanup: remove {}: {e}", dir.display());
                }
            }
            Witness::Disk { device, backing } => {
                let status = Command::new("losetup").arg("-d").arg(&*device).status();
                if !matches!(status, Ok(s) if s.success()) {
                    eprintln!("cleanup: losetup -d {}: {status:?}", device.display());
                }
                if let Err(e) = std::fs::remove_file(&*backing) {
                    eprintln!("cleanup: remove {}: {e}", backing.display());
                }
            }
        }
    }
}

/// A path of this test run under the temp dir.
fn scratch(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("keelson-t17-{}-{what}", std::process::id()))
}

fn wait_node(observer: &Rcm, node: &str, state: &str) {
    let start = Instant::now();
    while observer.node_state(node) != state {
        assert!(
            start.elapsed() < LIMIT,
            "node {node} never became {state} on {}\n{}",
            observer.dir.display(),
            observer.cluster_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn quorum(rcm: &Rcm) -> serde_json::Value {
    rcm.ok(R::ClusterQuorum { witness: None })
}

/// Waits until `rcm`'s quorum view satisfies `cond`; the view.
fn wait_quorum(
    rcm: &Rcm,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let view = quorum(rcm);
        if cond(&view) {
            return view;
        }
        assert!(
            start.elapsed() < LIMIT,
            "{what} never held on {}: {view:#}\n{}",
            rcm.dir.display(),
            rcm.cluster_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn group_exists(rcm: &Rcm, name: &str) -> bool {
    matches!(
        rcm.request(R::GroupGet { name: name.into() }).first(),
        Some(ControlReply::Json(_))
    )
}

fn wait_for_group(rcm: &Rcm, name: &str) {
    let start = Instant::now();
    while !group_exists(rcm, name) {
        assert!(
            start.elapsed() < LIMIT,
            "group '{name}' never reached node {}\n{}",
            rcm.dir.display(),
            rcm.cluster_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates group `name` on `rcm`, asking again while it is refused (no quorum yet, no leader
/// yet), until `limit`; the refusals seen.
fn commit_group(rcm: &Rcm, name: &str, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut refusals = Vec::new();
    loop {
        // A request that timed out may have been committed after all: look before asking again.
        if group_exists(rcm, name) {
            return refusals;
        }
        let reply = rcm.request(R::GroupCreate {
            name: name.into(),
            properties: vec![],
        });
        match reply.into_iter().next() {
            Some(ControlReply::Done { .. }) => return refusals,
            Some(ControlReply::Error { message }) => {
                if refusals.last() != Some(&message) {
                    refusals.push(message);
                }
            }
            other => panic!("group create answered {other:?}"),
        }
        assert!(
            start.elapsed() < limit,
            "{} could not commit group '{name}' within {limit:?}; refusals: {refusals:#?}\n{}",
            rcm.dir.display(),
            rcm.cluster_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills `victim` (it hosts the witness voter), checks `survivor` takes the lease and commits; the
/// victim's data directory.
fn lose_the_host(
    victim: Rcm,
    survivor: &Rcm,
    survivor_name: &str,
    group: &str,
    timings: &Timings,
) -> PathBuf {
    let mut victim = victim;
    let before = quorum(survivor);
    let generation = before["lease"]["generation"].as_u64().unwrap();
    victim.kill9();
    let killed = Instant::now();
    let view = wait_quorum(survivor, "the survivor hosts the witness", |v| {
        v["witness_host"] == survivor_name
    });
    let took_over = killed.elapsed();
    // The victim renewed at most one renewal period before the kill; nobody may take the lease
    // before it has stood unchanged for lease + margin.
    let earliest =
        Duration::from_millis(timings.lease_ms() + timings.margin_ms() - timings.renew_ms());
    assert!(
        took_over >= earliest,
        "the lease was taken {took_over:?} after the kill, before {earliest:?}"
    );
    // A write forwarded to the dead leader's virtual address would wait for its handshake's
    // timeout: wait until the survivor knows another leader (itself or the witness voter).
    let victim_name = if survivor_name == "n1" { "n2" } else { "n1" };
    let start = Instant::now();
    let leader = loop {
        let leader = survivor.ok(R::ClusterStatus)["leader"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !leader.is_empty() && leader != victim_name {
            break leader;
        }
        assert!(
            start.elapsed() < TAKEOVER_LIMIT,
            "no new leader on {survivor_name}\n{}",
            survivor.cluster_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let elected = killed.elapsed();
    let refusals = commit_group(survivor, group, TAKEOVER_LIMIT);
    let committed = killed.elapsed();
    assert!(view["quorum_ok"].as_bool().unwrap(), "{view:#}");
    assert_eq!(view["votes"], 2, "itself and the witness: {view:#}");
    assert!(
        view["lease"]["generation"].as_u64().unwrap() > generation,
        "a takeover is a new generation: {view:#}"
    );
    let log = survivor.cluster_log();
    assert!(
        log.contains("[QUORUM] This node now hosts the witness voter"),
        "the takeover is in cluster.log:\n{log}"
    );
    println!(
        "{survivor_name}: after kill -9 of the witness host, took the witness lease at {} ms, knew leader '{leader}' at {} ms, first committed at {} ms (refusals meanwhile: {refusals:?})",
        took_over.as_millis(),
        elected.as_millis(),
        committed.as_millis()
    );
    if std::env::var_os("KEELSON_T17_LOG").is_some() {
        println!("{survivor_name}'s cluster.log:\n{log}");
    }
    victim.keep_dir()
}

#[test]
fn two_nodes_and_a_file_share_witness_survive_the_loss_of_either_node() {
    if !root_or_skip("t17") {
        return;
    }
    let _turn = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    scenario("s", Witness::share(), &Timings { threshold: 5 });
}

/// The disk witness's claim waits three I/O bounds (a sixth of the give-up time each) and its I/O
/// is O_DIRECT | O_SYNC: a longer give-up time (Threshold 9: 900 ms) keeps renewals in time on a
/// loaded machine.
#[test]
fn two_nodes_and_a_disk_witness_survive_the_loss_of_either_node() {
    if !root_or_skip("t17") {
        return;
    }
    let _turn = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let witness = match Witness::disk() {
        Ok(witness) => witness,
        Err(why) => {
            assert!(!common::in_ci(), "CI=true but no loop device: {why}");
            eprintln!("skipped: no loop device ({why})");
            return;
        }
    };
    scenario("d", witness, &Timings { threshold: 9 });
}

/// The whole story against `witness`; `tag` keeps the names of one scenario's lab apart.
fn scenario(tag: &str, witness: Witness, timings: &Timings) {
    let lab = Lab::create(&format!("kw{tag}"), 2);
    let share = witness;
    let n1 = lab.boot(0, Rcm::new_dir(&format!("t17{tag}-n1")));

    n1.ok(R::ClusterCreate {
        name: "lab".into(),
        nodes: (0..2).map(Lab::node_spec).collect(),
        virtual_subnet: None,
    });
    let key = n1.dir.join("cluster.key").to_string_lossy().into_owned();
    let n2 = lab.boot(1, Rcm::new_dir(&format!("t17{tag}-n2")));
    n2.ok(R::NodeJoin {
        cluster: "192.0.2.1".into(),
        key_file: key,
        name: None,
    });
    wait_node(&n1, "n2", "Up");
    wait_node(&n2, "n1", "Up");
    // Small heartbeat timings (test-only): the lease follows them (at Threshold 5: renew 100 ms,
    // give up 500 ms, lease 1500 ms, margin 100 ms: a takeover 1600 ms after the last renewal);
    // one more than the threshold under test first.
    n1.ok(R::ClusterSet {
        properties: [
            ("TestOnlyLowerLimits", 1),
            ("SameSubnetDelay", DELAY_MS),
            ("SameSubnetThreshold", timings.threshold + 1),
            ("CrossSubnetDelay", DELAY_MS),
            ("CrossSubnetThreshold", timings.threshold + 1),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    });
    // Raft restarts on both nodes with the new timing (heartbeat Delay / 2), and the heartbeat
    // network with the new settings: wait until both hold quorum again.
    for n in [&n1, &n2] {
        let start = Instant::now();
        while n.ok(R::ClusterStatus)["raft_heartbeat_ms"] != DELAY_MS / 2 {
            assert!(
                start.elapsed() < LIMIT,
                "raft never took the new timing on {}",
                n.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        wait_quorum(n, "quorum with the new timing", |v| v["quorum_ok"] == true);
    }
    // ... and raft commits again (a restarted raft may refuse a read barrier for a moment).
    commit_group(&n1, "with-the-settings", LIMIT);
    wait_for_group(&n2, "with-the-settings");

    // Node Majority: two votes, both needed.
    for n in [&n1, &n2] {
        let view = quorum(n);
        assert_eq!(view["model"], "Node Majority", "{view:#}");
        assert_eq!(
            (view["votes_total"].as_u64(), view["needed"].as_u64()),
            (Some(2), Some(2))
        );
        assert_eq!(view["witness_id"], 0, "{view:#}");
    }

    // Bad witness paths are refused naming them, and change nothing.
    let plain = scratch("not-a-directory");
    std::fs::write(&plain, b"x").unwrap();
    let missing = scratch("missing");
    for (path, why) in [
        (
            &plain,
            "is neither a directory (file-share witness) nor a block device",
        ),
        (&missing, "No such file or directory"),
    ] {
        let shown = path.display().to_string();
        let e = n1.refused(R::ClusterQuorum {
            witness: Some(shown.clone()),
        });
        assert!(e.contains(&shown) && e.contains(why), "{e}");
        assert!(e.contains("nothing was changed"), "{e}");
    }
    let e = n2.refused(R::ClusterQuorum {
        witness: Some("relative/dir".into()),
    });
    assert!(
        e.contains("relative/dir") && e.contains("not an absolute path"),
        "{e}"
    );
    std::fs::remove_file(&plain).unwrap();
    for n in [&n1, &n2] {
        assert_eq!(quorum(n)["model"], "Node Majority");
    }
    let e = n1.refused(R::ClusterQuorum {
        witness: Some("none".into()),
    });
    assert!(e.contains("has no witness"), "{e}");

    // The witness: a third vote, its voter hosted by the node that set it.
    let dir = share.path();
    let done = n1.ok(R::ClusterQuorum {
        witness: Some(dir.clone()),
    });
    let model = share.model();
    assert!(done.as_str().unwrap().contains(&model), "{done}");
    for n in [&n1, &n2] {
        let view = wait_quorum(n, "three votes with the witness hosted by n1", |v| {
            v["votes_total"] == 3 && v["witness_host"] == "n1" && v["votes"] == 3
        });
        assert_eq!(view["model"], model.as_str(), "{view:#}");
        assert_eq!(view["voters"], serde_json::json!(["n1", "n2", "witness"]));
        let status = n.ok(R::ClusterStatus);
        let witness = status["witness"].as_str().unwrap();
        assert!(
            witness.contains(&dir) && witness.contains("hosted by n1"),
            "{status:#}"
        );
        assert_eq!(status["voters"].as_array().unwrap().len(), 3, "{status:#}");
    }
    let e = n2.refused(R::ClusterQuorum {
        witness: Some(dir.clone()),
    });
    assert!(e.contains("already has the"), "{e}");
    n2.ok(R::GroupCreate {
        name: "with-the-witness".into(),
        properties: vec![],
    });
    wait_for_group(&n1, "with-the-witness");
    if let Witness::Share(dir) = &share {
        assert!(
            dir.join("raft.redb").exists(),
            "the voter's store is on the share"
        );
    }

    // New heartbeat settings while the witness runs: raft restarts on both nodes (the voter's
    // host's server is replaced under it) and the lease drivers start again with the new timings
    // (the lease released and taken again, by either node).
    n2.ok(R::ClusterSet {
        properties: [
            ("SameSubnetThreshold", timings.threshold),
            ("CrossSubnetThreshold", timings.threshold),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    });
    for n in [&n1, &n2] {
        let start = Instant::now();
        while n.ok(R::ClusterStatus)["raft_election_min_ms"] != timings.election_min_ms() {
            assert!(
                start.elapsed() < LIMIT,
                "raft never took the new timing on {}",
                n.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let view = wait_quorum(&n1, "three votes again with the new timings", |v| {
        v["votes"] == 3 && v["witness_host"] != ""
    });
    let host = view["witness_host"].as_str().unwrap().to_string();
    wait_quorum(&n2, "n2 sees the same host", |v| {
        v["votes"] == 3 && v["witness_host"] == host.as_str()
    });
    commit_group(&n1, "with-new-timings", LIMIT);
    wait_for_group(&n2, "with-new-timings");

    // Lose the host of the witness voter: the other takes the lease and commits with it; the
    // host comes back and catches up. Then the same the other way round (the survivor hosts the
    // witness voter since its takeover).
    let mut nodes = [Some(n1), Some(n2)];
    let first = usize::from(host != "n1");
    for victim in [first, 1 - first] {
        let survivor = 1 - victim;
        let (victim_name, survivor_name) =
            (format!("n{}", victim + 1), format!("n{}", survivor + 1));
        let group = format!("after-losing-{victim_name}");
        let gone = nodes[victim].take().unwrap();
        let staying = nodes[survivor].as_ref().unwrap();
        let dir = lose_the_host(gone, staying, &survivor_name, &group, timings);
        let back = lab.boot(victim, dir);
        wait_for_group(&back, &group);
        wait_node(&back, &survivor_name, "Up");
        wait_node(staying, &victim_name, "Up");
        wait_quorum(
            &back,
            "the restarted node sees the witness on the survivor, 3 votes",
            |v| v["witness_host"] == survivor_name.as_str() && v["votes"] == 3,
        );
        nodes[victim] = Some(back);
    }
    let [Some(n1), Some(n2)] = nodes else {
        unreachable!("both nodes were restarted")
    };
    assert!(group_exists(&n2, "after-losing-n1") && group_exists(&n1, "after-losing-n2"));

    // Back to Node Majority: the witness voter leaves the membership.
    // (If the witness voter leads, the nodes elect a leader before the command answers.)
    let removing = Instant::now();
    let done = n2.ok_within(
        R::ClusterQuorum {
            witness: Some("none".into()),
        },
        Duration::from_secs(60),
    );
    println!(
        "the witness removed in {} ms",
        removing.elapsed().as_millis()
    );
    assert!(done.as_str().unwrap().contains("Node Majority"), "{done}");
    for n in [&n1, &n2] {
        let view = wait_quorum(n, "Node Majority again", |v| {
            v["model"] == "Node Majority" && v["votes_total"] == 2
        });
        assert_eq!(view["voters"], serde_json::json!(["n1", "n2"]), "{view:#}");
        assert_eq!(view["witness_host"], "", "{view:#}");
    }
    n1.ok(R::GroupCreate {
        name: "after-removing-the-witness".into(),
        properties: vec![],
    });
    wait_for_group(&n2, "after-removing-the-witness");
    // The same share again: the earlier voter's store is replaced, a new voter id is given out.
    // (A disk keeps its earlier voter's store: not set again here.)
    if matches!(share, Witness::Disk { .. }) {
        return;
    }
    let done = n1.ok(R::ClusterQuorum {
        witness: Some(dir.clone()),
    });
    assert!(done.as_str().unwrap().contains(&model), "{done}");
    let view = wait_quorum(&n2, "three votes again", |v| v["votes"] == 3);
    assert!(
        view["witness_id"].as_u64().unwrap() > 3,
        "ids are never reused: {view:#}"
    );
    n2.ok(R::GroupCreate {
        name: "with-the-witness-again".into(),
        properties: vec![],
    });
    wait_for_group(&n1, "with-the-witness-again");
    drop((n1, n2));
    drop(share);
    drop(lab);
}
