//! `resource create` throughput on one node and in a cluster, the single node as the same run's
//! baseline: sequential creates over the control socket (as the creation-rate section sends them)
//! on (a) a single node, (b) the same node after `cluster create` (a one-node cluster on 127.0.0.1,
//! any free raft port) and, as root, (c) a 3-node cluster in three network namespaces on two bridged
//! networks (benches/netft's lab), sent to the leader and, separately, to a follower (forwarded
//! writes). Prints creates/s and p50/p99 per create, each batch beside the store's own durable
//! commit rate measured interleaved with it. Not the single-node creation rate by size (rcm_scale's
//! `creation_rates`).

use crate::cleanup::{self, Item};
use crate::lab::Lab;
use crate::{common, env_or, Baseline, Node};
use keelson_proto::ControlRequest as R;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Resources per group, as populate and the creation-rate section lay them out.
const PER_GROUP: usize = 100;
/// Untimed creates (in a group of their own) before each timed batch.
const WARMUP_CREATES: usize = 50;
/// How long the three nodes may take to agree on three voters after the joins.
const JOIN_LIMIT: Duration = Duration::from_secs(30);
/// How long every node may take to list every resource created.
const REPLICATION_LIMIT: Duration = Duration::from_secs(60);

/// One timed batch of creates.
struct Batch {
    /// Per create, microseconds.
    creates: Vec<f64>,
    /// The interleaved durable commit straight into the store, microseconds.
    store: Vec<f64>,
}

impl Batch {
    fn per_second(samples: &[f64]) -> f64 {
        samples.len() as f64 / (samples.iter().sum::<f64>() / 1e6)
    }

    fn rate(&self) -> f64 {
        Batch::per_second(&self.creates)
    }

    fn print(&self, what: &str, baseline: Option<&Batch>) {
        let s = common::summarize(self.creates.clone());
        let ratio = match baseline {
            Some(b) => format!(
                "; {:.2}× the single node's rate, p50 {:.1}×",
                self.rate() / b.rate(),
                s.p50 / common::summarize(b.creates.clone()).p50
            ),
            None => " (the baseline)".into(),
        };
        println!(
            "{what:<34}: {:7.0} creates/s  p50 {:6.2} ms  p99 {:6.2} ms{ratio}  (store alone, interleaved: {:.0} /s)",
            self.rate(),
            s.p50 / 1e3,
            s.p99 / 1e3,
            Batch::per_second(&self.store)
        );
    }
}

/// Creates `count` resources on `node` into fresh groups `<tag>-g<i>` of PER_GROUP (after
/// WARMUP_CREATES untimed ones), each timed right after one durable commit into `store`.
fn measure(node: &Node, tag: &str, count: usize, store: &mut Baseline) -> Batch {
    let group = |i: usize| {
        let name = format!("{tag}-g{i}");
        node.ok(R::GroupCreate {
            name: name.clone(),
            properties: vec![],
        });
        name
    };
    let create = |group: &str, i: usize| R::ResourceCreate {
        name: format!("{group}-r{i}"),
        type_name: "dummy".into(),
        group: group.to_string(),
        params: vec![],
        properties: vec![],
    };
    let warmup = group(0);
    for i in 0..WARMUP_CREATES {
        node.ok(create(&warmup, i));
    }
    let mut batch = Batch {
        creates: Vec::with_capacity(count),
        store: Vec::with_capacity(count),
    };
    let mut current = String::new();
    for i in 0..count {
        if i % PER_GROUP == 0 {
            current = group(1 + i / PER_GROUP);
        }
        batch.store.push(store.commit().as_secs_f64() * 1e6);
        let request = create(&current, i % PER_GROUP);
        let t = Instant::now();
        node.ok(request);
        batch.creates.push(t.elapsed().as_secs_f64() * 1e6);
    }
    batch
}

/// Administrator changes measure() commits: its groups, the warm-up and the timed creates.
fn changes_of(count: usize) -> u64 {
    (1 + count.div_ceil(PER_GROUP) + WARMUP_CREATES + count) as u64
}

fn applied_index(node: &Node) -> u64 {
    node.ok(R::ClusterStatus)["applied_index"]
        .as_u64()
        .expect("cluster status has applied_index")
}

/// Measures `measure` on a cluster node and checks that every change went through the cluster
/// database (its applied index moved by at least one entry per change).
fn measure_committed(node: &Node, tag: &str, count: usize, store: &mut Baseline) -> Batch {
    let before = applied_index(node);
    let batch = measure(node, tag, count, store);
    let moved = applied_index(node) - before;
    assert!(
        moved >= changes_of(count),
        "{tag}: {} changes acknowledged but the applied index moved by {moved}",
        changes_of(count)
    );
    batch
}

/// The whole section.
pub fn run(target: &Path) {
    let count = env_or("KEELSON_SCALE_CLUSTER_CREATES", 1_000);
    println!(
        "\n== resource create throughput: single node, one-node cluster, 3-node cluster ==\n\
         {count} sequential `resource create` requests over the control socket per line, in groups \
         of {PER_GROUP}, after {WARMUP_CREATES} untimed; each timed right after one durable commit \
         straight into a store of its own"
    );
    let mut store = Baseline::new();
    // Removed by the Ctrl-C handler too, once (c) has installed it.
    let store_dir = Item::Dir(store.dir.clone());
    cleanup::register(store_dir.clone());
    let dir = std::env::temp_dir().join(format!("keelson-scale-cluster1-{}", std::process::id()));
    let node = Node::start_in(
        target,
        dir,
        None,
        &["--node-name", "n1", "--raft-port", "0"],
    );
    let single = measure(&node, "single", count, &mut store);
    single.print("(a) single node, no cluster", None);
    node.ok(R::ClusterCreate {
        name: "bench".into(),
        nodes: vec![("n1".into(), vec!["127.0.0.1".into()])],
        virtual_subnet: None,
    });
    let one = measure_committed(&node, "one", count, &mut store);
    one.print("(b) same node, one-node cluster", Some(&single));
    drop(node);
    if let Err(why) = can_build_namespaces() {
        println!("(c) 3-node cluster                : skipped ({why})");
        drop(store);
        cleanup::forget(&store_dir);
        return;
    }
    let three = ThreeNodes::start(target);
    let leader = three.leader();
    let follower = three.follower();
    let at_leader = measure_committed(&three.nodes[leader], "leader", count, &mut store);
    at_leader.print(
        &format!("(c) 3 nodes, to the leader ({})", three.name(leader)),
        Some(&single),
    );
    let at_follower = measure_committed(&three.nodes[follower], "follower", count, &mut store);
    at_follower.print(
        &format!("(c) 3 nodes, to a follower ({})", three.name(follower)),
        Some(&single),
    );
    let total = 2 * (count + WARMUP_CREATES);
    three.wait_everywhere(total);
    println!("    all {total} resources listed on all three nodes");
    drop(three);
    drop(store);
    cleanup::forget(&store_dir);
}

fn can_build_namespaces() -> Result<(), String> {
    if keelson_sys::process::geteuid() != 0 {
        return Err("needs root to create network namespaces, veth pairs and bridges".into());
    }
    match std::process::Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`ip -V` failed: {}", out.status)),
        Err(e) => Err(format!("cannot run `ip` (iproute2): {e}")),
    }
}

/// A cluster node in a lab namespace, registered for clean-up on Ctrl-C.
struct LabNode {
    node: Option<Node>,
    pid: u32,
}

impl LabNode {
    fn start(target: &Path, dir: PathBuf, lab: &Lab, i: usize) -> LabNode {
        let name = format!("n{i}");
        let node = Node::start_in(target, dir, Some(&lab.netns(i)), &["--node-name", &name]);
        let pid = node.pid();
        cleanup::register(Item::Process(pid));
        LabNode {
            node: Some(node),
            pid,
        }
    }

    fn node(&self) -> &Node {
        self.node.as_ref().expect("running until dropped")
    }
}

impl std::ops::Deref for LabNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        self.node()
    }
}

impl Drop for LabNode {
    fn drop(&mut self) {
        drop(self.node.take());
        cleanup::forget(&Item::Process(self.pid));
    }
}

/// The benchmark's temporary directory, registered for clean-up on Ctrl-C.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> ScratchDir {
        let dir =
            std::env::temp_dir().join(format!("keelson-scale-cluster3-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        cleanup::register(Item::Dir(dir.clone()));
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        cleanup::remove(&Item::Dir(self.0.clone()));
    }
}

/// Three rcm nodes in three namespaces of the lab, n1 having created the cluster and n2, n3
/// joined. Fields drop in order: the nodes (stopped last to first), the namespaces, the directory.
struct ThreeNodes {
    nodes: Vec<LabNode>,
    _lab: Lab,
    _dir: ScratchDir,
}

impl ThreeNodes {
    fn start(target: &Path) -> ThreeNodes {
        cleanup::remove_stale();
        cleanup::on_signal_remove_everything();
        let dir = ScratchDir::create();
        let lab = Lab::create(3).unwrap_or_else(|e| panic!("3-node cluster: {e}"));
        let mut three = ThreeNodes {
            nodes: Vec::new(),
            _lab: lab,
            _dir: dir,
        };
        for i in 1..=3 {
            let dir = three._dir.0.join(format!("n{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let node = LabNode::start(target, dir, &three._lab, i);
            three.nodes.push(node);
        }
        three.form();
        three
    }

    /// n1 creates the cluster of the three (both networks' addresses each); n2 and n3 join it.
    fn form(&self) {
        let addrs = |i: usize| (0..2).map(|k| Lab::addr(i, k).to_string()).collect();
        self.nodes[0].ok(R::ClusterCreate {
            name: "bench".into(),
            nodes: (1..=3).map(|i| (format!("n{i}"), addrs(i))).collect(),
            virtual_subnet: Some("203.0.113.0/24".into()),
        });
        let key = self.nodes[0].dir.join("cluster.key");
        for node in &self.nodes[1..] {
            node.ok(R::NodeJoin {
                cluster: Lab::addr(1, 0).to_string(),
                key_file: key.to_string_lossy().into_owned(),
                name: None,
            });
        }
        let start = Instant::now();
        loop {
            let status = self.nodes[0].ok(R::ClusterStatus);
            let voters = status["voters"].as_array().map_or(0, Vec::len);
            if voters == 3 && status["quorum_ok"] == true && status["leader"] != "" {
                return;
            }
            assert!(
                start.elapsed() < JOIN_LIMIT,
                "the cluster did not reach three voters: {status}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn name(&self, index: usize) -> String {
        format!("n{}", index + 1)
    }

    fn leader(&self) -> usize {
        let status = self.nodes[0].ok(R::ClusterStatus);
        let leader = status["leader"].as_str().unwrap_or_default();
        (0..3)
            .find(|i| self.name(*i) == leader)
            .unwrap_or_else(|| panic!("no leader among n1..n3: {status}"))
    }

    fn follower(&self) -> usize {
        let leader = self.leader();
        (0..3).find(|i| *i != leader).expect("three nodes")
    }

    /// Waits until every node lists at least `count` resources.
    fn wait_everywhere(&self, count: usize) {
        let start = Instant::now();
        for node in &self.nodes {
            loop {
                let listed = node.resource_count();
                if listed >= count {
                    break;
                }
                assert!(
                    start.elapsed() < REPLICATION_LIMIT,
                    "{} lists {listed} of {count} resources",
                    node.dir.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for ThreeNodes {
    fn drop(&mut self) {
        while let Some(node) = self.nodes.pop() {
            drop(node);
        }
    }
}
