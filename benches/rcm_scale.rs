//! keelson-rcm at scale, beside baselines measured in the same run:
//! * 10,000 dummy resources in 100 groups on one node (KEELSON_SCALE_GROUPS × KEELSON_SCALE_PER_GROUP):
//!   time to create them (each creation a durable database commit) and to bring all groups Online;
//! * the creation rate (one durable commit each) with 1,000 and with all resources existing, against
//!   the store's own durable commit rate measured in the same run (the cost of an administrator
//!   request is what it touches, so the two rates should be within 20 % of each other);
//! * rcm and host RSS, against the same rcm with nothing configured;
//! * idle CPU at the default polling (LooksAlive every 5 s, IsAlive every 60 s), against the empty rcm
//!   and against a supervisor that polls every resource itself over its socket (the design before
//!   health polling moved into the host), both in the same run;
//! * health-check throughput with LooksAlivePollInterval lowered to 10 ms on every resource, against a
//!   raw process-to-process Unix-socket ping-pong.
//!
//! * `resource create` throughput on one node, on a one-node cluster and (as root) on a 3-node
//!   cluster in network namespaces, to the leader and to a follower, against the single node in the
//!   same run (rcm_scale/cluster_rate.rs).
//!
//! Run with `scripts/bench` (release binaries); KEELSON_SCALE_ONLY=rates runs the creation rates
//! alone, KEELSON_SCALE_ONLY=cluster the cluster throughput alone (KEELSON_SCALE_CLUSTER_CREATES=N
//! creates per line, 1,000 by default). KEELSON_SCALE_HOLD_SECS=N pauses N s once everything
//! is Online (before measuring), to attach a profiler to the printed rcm pid.

mod common;

// The network namespaces and their clean-up on Ctrl-C are netft's (benches/netft).
#[allow(dead_code)]
#[path = "netft/cleanup.rs"]
mod cleanup;
#[path = "rcm_scale/cluster_rate.rs"]
mod cluster_rate;
#[allow(dead_code)]
#[path = "netft/lab.rs"]
mod lab;

use keelson_client::{Client, ClientError};
use keelson_proto::{ControlReply, ControlRequest as R};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IDLE_WINDOW: Duration = Duration::from_secs(10);
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(5);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if common::is_echo_child() {
        return common::echo_child();
    }
    if let Some(n) = std::env::var_os(SUPERVISOR_POLL_CHILD) {
        return supervisor_poll_child(n.to_string_lossy().parse().expect("a count"));
    }
    let groups = env_or("KEELSON_SCALE_GROUPS", 100);
    let per_group = env_or("KEELSON_SCALE_PER_GROUP", 100);
    let total = groups * per_group;
    let target = common::target_dir();
    let only = std::env::var("KEELSON_SCALE_ONLY").unwrap_or_default();
    if !["", "rates", "cluster"].contains(&only.as_str()) {
        eprintln!("KEELSON_SCALE_ONLY must be 'rates' or 'cluster' (or unset), not '{only}'");
        std::process::exit(2);
    }
    println!(
        "keelson rcm_scale: {total} dummy resources in {groups} groups ({} binaries)",
        common::profile()
    );
    match only.as_str() {
        "rates" => return creation_rates(&target, total),
        "cluster" => return cluster_rate::run(&target),
        _ => {}
    }
    println!("\n== default polling (LooksAlive every 5 s, IsAlive every 60 s) ==");
    let rcm = Node::start(&target, "default");
    let empty_rss = keelson_sys::process::rss_bytes(rcm.pid()).unwrap();
    let empty_cpu = cpu_share(&[rcm.pid()], IDLE_WINDOW);
    let (created, online) = rcm.populate(groups, per_group, &[]);
    println!(
        "create (one durable commit each) : {:8.2} s  ({:.0} resources/s)",
        created.as_secs_f64(),
        total as f64 / created.as_secs_f64()
    );

    println!(
        "all groups Online                : {:8.3} s  (from the first GroupOnline request)",
        online.as_secs_f64()
    );
    let hold = env_or("KEELSON_SCALE_HOLD_SECS", 0);
    if hold > 0 {
        println!("holding {hold} s for profiling: rcm pid {}", rcm.pid());
        std::thread::sleep(Duration::from_secs(hold as u64));
    }
    let hosts = rcm.host_pids();
    let rss = keelson_sys::process::rss_bytes(rcm.pid()).unwrap();
    let host_rss: u64 = hosts
        .iter()
        .filter_map(|p| keelson_sys::process::rss_bytes(*p).ok())
        .sum();
    println!(
        "rcm RSS                          : {:8.1} MB (empty rcm: {:.1} MB; target <= 150 MB)",
        common::mb(rss),
        common::mb(empty_rss)
    );
    println!(
        "host RSS ({} host)                : {:8.1} MB",
        hosts.len(),
        common::mb(host_rss)
    );
    let before = rcm.looks_alive_total();
    let t = Instant::now();
    let rcm_cpu = cpu_share(&[rcm.pid()], IDLE_WINDOW);
    let host_cpu = cpu_share(&hosts, IDLE_WINDOW);
    let rate = (rcm.looks_alive_total() - before) as f64 / t.elapsed().as_secs_f64();
    drop(rcm);
    let (old_supervisor_cpu, old_host_cpu) = supervisor_polling_baseline(total);
    println!("idle CPU, rcm                    : {:8.2} % of one core (empty rcm: {:.2} %; target < 0.5 %)", rcm_cpu, empty_cpu);
    println!(
        "idle CPU, hosts                  : {:8.2} % of one core (target < 2 %)",
        host_cpu
    );
    println!(
        "  baseline, same run: the supervisor polling every resource itself, one round trip per \
         check (the design before host-side polling): supervisor {old_supervisor_cpu:.2} %, host \
         {old_host_cpu:.2} % of one core"
    );
    println!(
        "health checks meanwhile          : {:8.0} LOOKSALIVE/s (expected {:.0}/s)",
        rate,
        total as f64 / 5.0
    );

    creation_rates(&target, total);
    cluster_rate::run(&target);

    println!("\n== throughput: LooksAlivePollInterval=10 on every resource ==");
    let rcm = Node::start(&target, "fast");
    rcm.populate(groups, per_group, &[("LooksAlivePollInterval", "10")]);
    std::thread::sleep(Duration::from_secs(1));
    let before = rcm.looks_alive_total();
    let t = Instant::now();
    std::thread::sleep(THROUGHPUT_WINDOW);
    let checks = (rcm.looks_alive_total() - before) as f64 / t.elapsed().as_secs_f64();
    println!(
        "health-check throughput          : {:8.0} LOOKSALIVE/s (offered {:.0}/s)",
        checks,
        total as f64 * 100.0
    );
    drop(rcm);
    let raw = common::raw_ping_pong(20_000);
    println!(
        "raw ping-pong, 1 stream          : {:8.0} round trips/s (p50 {:.1} us)",
        1e6 / raw.mean,
        raw.p50
    );
}

/// Resources created per measured batch.
const CREATE_BATCH: usize = 500;
/// Resources per group while measuring the creation rate (as populate lays them out).
const RATE_GROUP: usize = 100;

/// The baseline for creation: durable commits of one resource record each straight into a
/// cluster database of its own (what a create costs at least: one fsync'd transaction).
struct Baseline {
    dir: PathBuf,
    store: keelson_store::Store,
    next: usize,
}

impl Baseline {
    fn new() -> Baseline {
        let dir = std::env::temp_dir().join(format!("keelson-bench-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = keelson_store::Store::open(&dir.join("cluster.redb")).unwrap();
        Baseline {
            dir,
            store,
            next: 0,
        }
    }

    /// Times one durable commit of one new record.
    fn commit(&mut self) -> Duration {
        self.next += 1;
        let record = keelson_store::ResourceRecord {
            name: format!("r{}", self.next),
            type_name: "dummy".into(),
            group: "g".into(),
            ..Default::default()
        };
        let t = Instant::now();
        self.store
            .apply(&[keelson_store::Change::PutResource(record)])
            .unwrap();
        t.elapsed()
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The creation rate with 1,000 and with `total` resources existing, on a node of its own.
fn creation_rates(target: &Path, total: usize) {
    println!("\n== creation rate by size (a node of its own) ==");
    let rcm = Node::start(target, "rates");
    let big = total.max(1_000 + CREATE_BATCH);
    let mut baseline = Baseline::new();
    let (at_1k, base_1k) = rcm.create_rate(1_000, &mut baseline);
    let (at_big, base_big) = rcm.create_rate(big, &mut baseline);
    drop(rcm);
    println!(
        "create rate, 1,000 existing      : {at_1k:8.0} /s (store alone, interleaved: {base_1k:.0} /s)"
    );
    println!(
        "create rate, {big:>6} existing     : {at_big:8.0} /s (store alone, interleaved: {base_big:.0} /s)"
    );
    println!(
        "creation rate at {big} against 1,000 existing: {:+.1} % (target within 20 %)",
        (at_big / at_1k - 1.0) * 100.0
    );
}

/// Set in the child that plays the supervisor of the baseline: how many resources it polls.
const SUPERVISOR_POLL_CHILD: &str = "KEELSON_SCALE_SUPERVISOR_POLL";

/// Today's figures in the same run: a child process that polls `total` dummy resources in one host
/// the way rcm did before polling moved into the host (LooksAlive every 5 s and IsAlive every 60 s
/// per resource, each one round trip over the resource's socket, on one thread). Returns the CPU
/// of that supervisor and of its host, each in % of one core, over IDLE_WINDOW.
fn supervisor_polling_baseline(total: usize) -> (f64, f64) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SUPERVISOR_POLL_CHILD, total.to_string())
        .env("KEELSON_RHS", common::target_dir().join("keelson-rhs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let host: u32 = line
        .trim()
        .strip_prefix("polling, host ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("baseline child said {line:?}"));
    // Let every resource's checks get going (the first ones are spread over one interval).
    std::thread::sleep(Duration::from_secs(6));
    let supervisor = cpu_share(&[child.id()], IDLE_WINDOW);
    let host_cpu = cpu_share(&[host], IDLE_WINDOW);
    let _ = child.kill();
    let _ = child.wait();
    (supervisor, host_cpu)
}

/// The baseline's child: opens the resources, says which host, polls until killed.
fn supervisor_poll_child(total: usize) {
    use keelson_host::{Host, HostConfig, OpenSpec};
    use keelson_types::{Op, ResourceId};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let plugin = common::target_dir().join("libkeelson_plugin_dummy.so");
        let plugin = plugin.to_string_lossy().to_string();
        let (host, _events) = Host::spawn(&HostConfig::from_env()).await.unwrap();
        let mut handles = Vec::new();
        for id in 1..=total as u64 {
            let spec = OpenSpec::new(ResourceId(id), &format!("r{id}"), &plugin, "dummy");
            handles.push(std::sync::Arc::new(host.open(spec).await.unwrap()));
        }
        println!("polling, host {}", host.pid());
        let start = tokio::time::Instant::now();
        for (i, res) in handles.into_iter().enumerate() {
            // Spread over one LooksAlive interval, as resources come Online over time.
            let offset = Duration::from_millis((i as u64 * 5_000) / total as u64);
            tokio::spawn(async move {
                let mut looks = tokio::time::interval_at(start + offset, Duration::from_secs(5));
                let mut is = tokio::time::interval_at(
                    start + offset + Duration::from_secs(60),
                    Duration::from_secs(60),
                );
                loop {
                    let op = tokio::select! {
                        _ = looks.tick() => Op::LooksAlive,
                        _ = is.tick() => Op::IsAlive,
                    };
                    assert_eq!(res.call(op).await.unwrap().status, 0);
                }
            });
        }
        std::future::pending::<()>().await
    });
}

/// CPU used by `pids` over `window`, as a percentage of one core.
fn cpu_share(pids: &[u32], window: Duration) -> f64 {
    let used = |pids: &[u32]| -> Duration {
        pids.iter()
            .filter_map(|p| keelson_sys::process::cpu_time(*p).ok())
            .sum()
    };
    let before = used(pids);
    let t = Instant::now();
    std::thread::sleep(window);
    let after = used(pids);
    (after.saturating_sub(before)).as_secs_f64() / t.elapsed().as_secs_f64() * 100.0
}

/// The node service under test, in a temporary data directory.
struct Node {
    dir: PathBuf,
    child: Child,
    rt: tokio::runtime::Runtime,
}

impl Node {
    fn start(target: &Path, tag: &str) -> Node {
        let dir = std::env::temp_dir().join(format!("keelson-scale-{tag}-{}", std::process::id()));
        Node::start_in(target, dir, None, &[])
    }

    /// keelson-rcm on a fresh `dir` with `args` appended, inside network namespace `netns` if given
    /// (`ip netns exec`, which execs it: the child is rcm itself); waits until it answers.
    fn start_in(target: &Path, dir: PathBuf, netns: Option<&str>, args: &[&str]) -> Node {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::fs::File::create(dir.join("rcm.out")).unwrap();
        let rcm = target.join("keelson-rcm");
        let mut command = match netns {
            Some(ns) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", ns]).arg(rcm);
                ip
            }
            None => Command::new(rcm),
        };
        let child = command
            .arg("--data-dir")
            .arg(&dir)
            .arg("--plugin-dir")
            .arg(target)
            .args(args)
            .env("KEELSON_RHS", target.join("keelson-rhs"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("keelson-rcm starts (run scripts/bench)");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let node = Node { dir, child, rt };
        let start = Instant::now();
        while node.ask(R::Status).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "rcm did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        node
    }

    /// Creates the groups and resources (with `props`), brings every group online; returns the
    /// time to create and the time until all groups were Online.
    fn populate(
        &self,
        groups: usize,
        per_group: usize,
        props: &[(&str, &str)],
    ) -> (Duration, Duration) {
        let properties: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let start = Instant::now();
        for g in 0..groups {
            self.ok(R::GroupCreate {
                name: format!("g{g}"),
                properties: vec![],
            });
            for r in 0..per_group {
                let name = format!("g{g}-r{r}");
                let req = R::ResourceCreate {
                    name,
                    type_name: "dummy".into(),
                    group: format!("g{g}"),
                    params: vec![],
                    properties: properties.clone(),
                };
                self.ok(req);
            }
        }
        let created = start.elapsed();
        let start = Instant::now();
        for g in 0..groups {
            self.ok(R::GroupOnline {
                name: format!("g{g}"),
            });
        }
        self.wait_all_online(groups);
        (created, start.elapsed())
    }

    /// Creates resources (in groups of RATE_GROUP, as populate does) until `existing` exist, untimed,
    /// then CREATE_BATCH more in fresh groups, each create timed right after one durable commit
    /// straight into `baseline` (the store alone), so both see the same moment's fsync speed.
    /// Returns (creates per second, baseline commits per second).
    fn create_rate(&self, existing: usize, baseline: &mut Baseline) -> (f64, f64) {
        let mut made = self.resource_count();
        let mut next_group = self.group_count();
        let (mut creates, mut commits) = (Duration::ZERO, Duration::ZERO);
        let mut group_of_batch = |node: &Node, count: usize, timed: bool| {
            let group = format!("rate-g{next_group}");
            next_group += 1;
            node.ok(R::GroupCreate {
                name: group.clone(),
                properties: vec![],
            });
            for i in 0..count {
                let request = R::ResourceCreate {
                    name: format!("{group}-r{i}"),
                    type_name: "dummy".into(),
                    group: group.clone(),
                    params: vec![],
                    properties: vec![],
                };
                if !timed {
                    node.ok(request);
                    continue;
                }
                commits += baseline.commit();
                let t = Instant::now();
                node.ok(request);
                creates += t.elapsed();
            }
        };
        while made < existing {
            let n = RATE_GROUP.min(existing - made);
            group_of_batch(self, n, false);
            made += n;
        }
        for _ in 0..CREATE_BATCH / RATE_GROUP {
            group_of_batch(self, RATE_GROUP, true);
        }
        let per_s = |d: Duration| CREATE_BATCH as f64 / d.as_secs_f64();
        (per_s(creates), per_s(commits))
    }

    fn group_count(&self) -> usize {
        self.ok(R::GroupList)
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0)
    }

    fn resource_count(&self) -> usize {
        let list = self.ok(R::ResourceList);
        list.as_array()
            .or_else(|| list["resources"].as_array())
            .map(|a| a.len())
            .unwrap_or(0)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ask(&self, request: R) -> Result<ControlReply, ClientError> {
        self.rt
            .block_on(Client::for_data_dir(&self.dir).call(request))
    }

    fn ok(&self, request: R) -> Value {
        match self.ask(request) {
            Ok(ControlReply::Json(text)) => serde_json::from_str(&text).unwrap(),
            Ok(ControlReply::Done { message }) => Value::String(message),
            other => panic!("request failed: {other:?}"),
        }
    }

    fn wait_all_online(&self, groups: usize) {
        let start = Instant::now();
        loop {
            let list = self.ok(R::GroupList);
            let online = list
                .as_array()
                .unwrap()
                .iter()
                .filter(|g| g["state"] == "Online")
                .count();
            if online == groups {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "only {online}/{groups} groups Online"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn host_pids(&self) -> Vec<u32> {
        let status = self.ok(R::Status);
        status["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["pid"].as_u64().map(|p| p as u32))
            .collect()
    }

    fn looks_alive_total(&self) -> u64 {
        self.ok(R::Status)["calls_completed"]["LOOKSALIVE"]
            .as_u64()
            .unwrap_or(0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.ask(R::NodeStop);
        let start = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
