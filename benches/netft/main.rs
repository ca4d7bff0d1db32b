//! NetFT measured on real namespaces, links and processes (run as root: `cargo build --release -p
//! keelson-netft && cargo bench --bench netft`). 16 keelson-netft-node processes, each in a network
//! namespace of its own, on two networks (two bridges in a switch namespace of the benchmark's own;
//! 192.0.2.0/24 and 198.51.100.0/24), at SameSubnetDelay 100 / Threshold 5 and at WSFC's defaults
//! 1000 / 5:
//! * route cut → route Down at a peer: a bridge port really set down (a cable pulled at the
//!   switch), timed from the cut to the peer's own report, p50/p99/max over ≥ 20 trials against
//!   the bound Delay × Threshold + Delay (and the cut node's own netlink-driven Down beside it);
//! * node kill → node Down at a peer: the node's process SIGKILLed, same figures;
//! * heartbeat cost per node over a fixed window: CPU (% of one core, from the threads' run time in
//!   /proc/PID/task/*/schedstat and utime+stime in /proc/PID/stat) and UDP datagrams sent and
//!   received per second (/proc/PID/net/snmp of its namespace), beside a baseline measured in the
//!   same run: the same sockets sending the same number of same-size datagrams at the same Delay
//!   with no detector and no HMAC (`keelson-netft-node --raw-udp`).
//!
//! KEELSON_NETFT_ONLY=detect|scale runs one part; KEELSON_NETFT_TRIALS=N (default 24) sets the
//! trials per measure; KEELSON_NETFT_SETTINGS=100/5,1000/5 the Delay/Threshold pairs. Needs root:
//! without it the run fails, naming what it needs. Everything it creates is removed at the end, on
//! a panic and on Ctrl-C (cleanup.rs).

#[path = "../common/mod.rs"]
mod common;

mod cleanup;
mod cluster;
mod lab;
mod node;
mod procstat;
mod switch;

use cleanup::Item;
use cluster::{Cluster, Mode, View};
use lab::Lab;
use procstat::Rates;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switch::Switch;

const NODES: usize = 16;
/// Targets are nodes 1..=PAIRS, each watched by node PAIRS + its number.
const PAIRS: usize = NODES / 2;
const STATUS_LIMIT: Duration = Duration::from_secs(5);

struct Parts {
    detect: bool,
    scale: bool,
    trials: usize,
    settings: Vec<(u32, u32)>,
}

fn parts_from_env() -> Result<Parts, String> {
    let only = std::env::var("KEELSON_NETFT_ONLY").ok();
    let (detect, scale) = match only.as_deref() {
        None | Some("") => (true, true),
        Some("detect") => (true, false),
        Some("scale") => (false, true),
        Some(other) => {
            return Err(format!(
                "KEELSON_NETFT_ONLY={other}: expected detect or scale"
            ))
        }
    };
    let trials = match std::env::var("KEELSON_NETFT_TRIALS") {
        Err(_) => 24,
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or(format!(
                "KEELSON_NETFT_TRIALS={v}: expected a number 1..10000"
            ))?,
    };
    let settings = std::env::var("KEELSON_NETFT_SETTINGS").unwrap_or("100/5,1000/5".into());
    let settings = settings
        .split(',')
        .map(|pair| {
            let parsed = pair
                .split_once('/')
                .and_then(|(d, t)| Some((d.trim().parse().ok()?, t.trim().parse().ok()?)));
            parsed.ok_or(format!(
                "KEELSON_NETFT_SETTINGS: '{pair}' is not DELAY/THRESHOLD (e.g. 100/5)"
            ))
        })
        .collect::<Result<Vec<(u32, u32)>, String>>()?;
    Ok(Parts {
        detect,
        scale,
        trials,
        settings,
    })
}

fn main() {
    let result = run();
    cleanup::everything();
    if let Err(e) = result {
        eprintln!("netft bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    if keelson_sys::process::geteuid() != 0 {
        return Err("needs root to create network namespaces, veth pairs and bridges; run it as root (e.g. sudo -E cargo bench --bench netft)".into());
    }
    let parts = parts_from_env()?;
    let binary = common::target_dir().join("keelson-netft-node");
    if !binary.exists() {
        return Err(format!(
            "{} missing: build it first with `cargo build --release -p keelson-netft` (scripts/bench builds the whole workspace)",
            binary.display()
        ));
    }
    lab::ip(&["-V"]).map_err(|e| format!("needs iproute2's ip: {e}"))?;
    cleanup::on_signal_remove_everything();
    cleanup::remove_stale();
    println!(
        "keelson netft benchmark: {NODES} nodes in {NODES} namespaces on 2 networks, node binary {} ({} profile), {} CPUs",
        binary.display(),
        common::profile(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = TempDir::create()?;
    let key = dir.0.join("cluster.key");
    write_key(&key)?;
    let lab = Lab::create(NODES)?;
    let switch = Switch::start(lab.switch_path())?;
    for &setting in &parts.settings {
        measure_setting(&lab, &switch, &binary, &dir.0, &key, setting, &parts)?;
    }
    Ok(())
}

fn measure_setting(
    lab: &Lab,
    switch: &Switch,
    binary: &Path,
    dir: &Path,
    key: &Path,
    (d, t): (u32, u32),
    parts: &Parts,
) -> Result<(), String> {
    let bound = f64::from(d * t + d);
    println!(
        "\n== SameSubnetDelay {d} ms, SameSubnetThreshold {t}: bound Delay x Threshold + Delay = {bound} ms =="
    );
    let mut cluster = Cluster::start(lab, binary, dir, key, (d, t), Mode::Netft)?;
    let up_limit = Duration::from_millis(u64::from(3 * d * t)) + Duration::from_secs(10);
    let started = Instant::now();
    cluster.wait_until(up_limit, "every node seeing every peer Up", Cluster::all_up)?;
    println!(
        "all {NODES} nodes see all {} peers Up after {:.0} ms",
        NODES - 1,
        started.elapsed().as_secs_f64() * 1e3
    );
    let netft = if parts.scale {
        Some(scale(&mut cluster)?)
    } else {
        None
    };
    if parts.detect {
        let rounds = parts.trials.div_ceil(PAIRS);
        route_cuts(&mut cluster, switch, rounds, bound)?;
        node_kills(&mut cluster, rounds, bound)?;
    }
    drop(cluster);
    if let Some(netft) = netft {
        let mut raw = Cluster::start(lab, binary, dir, key, (d, t), Mode::RawUdp)?;
        let baseline = scale(&mut raw)?;
        print_scale(d, &netft, &baseline);
    }
    Ok(())
}

/// The temporary directory with the key, configurations and nodes' stderr; removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> Result<TempDir, String> {
        let name = format!("{}{}", cleanup::TEMP_PREFIX, std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        cleanup::register(Item::Dir(path.clone()));
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        cleanup::remove(&Item::Dir(self.0.clone()));
    }
}

fn write_key(path: &Path) -> Result<(), String> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    std::fs::write(path, key).map_err(|e| format!("{}: {e}", path.display()))
}

/// CLOCK_REALTIME in nanoseconds: the clock the nodes stamp their reports with.
fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One stamped disturbance: the wall-clock instant (compared with the nodes' stamps) and the
/// monotonic one (to check that the wall clock did not step meanwhile).
#[derive(Debug, Clone, Copy)]
struct Stamp {
    target: usize,
    wall_ns: u64,
    at: Instant,
}

/// The order and instants of one round's disturbances: disturbance j of round r comes at
/// frac(r·φ + j/PAIRS) of a Delay after the round starts, so that over all trials they fall evenly
/// over the heartbeat cycle (a deliberate schedule, not a wait for anything).
fn schedule(round: usize, delay_ms: u32) -> Vec<(usize, Duration)> {
    let golden = 0.618_033_988_75;
    let mut plan: Vec<(usize, Duration)> = (1..=PAIRS)
        .map(|target| {
            let phase = (round as f64 * golden + (target - 1) as f64 / PAIRS as f64).fract();
            (
                target,
                Duration::from_secs_f64(phase * f64::from(delay_ms) / 1e3),
            )
        })
        .collect();
    plan.sort_by_key(|(_, offset)| *offset);
    plan
}

fn observer(target: usize) -> usize {
    target + PAIRS
}

/// Milliseconds from the stamp to a node's report, checked against the monotonic clock: a report
/// cannot arrive before the node made it.
fn elapsed_ms(stamp: &Stamp, t: &cluster::Transition) -> Result<f64, String> {
    let by_wall = (t.t_ns as f64 - stamp.wall_ns as f64) / 1e6;
    let by_arrival = t.arrived.duration_since(stamp.at).as_secs_f64() * 1e3;
    if by_wall > by_arrival + 1.0 || by_wall < 0.0 {
        return Err(format!("the wall clock stepped during a trial ({by_wall:.1} ms by the nodes' stamps, {by_arrival:.1} ms by arrival); run again"));
    }
    Ok(by_wall)
}

fn route_cuts(
    cluster: &mut Cluster,
    switch: &Switch,
    rounds: usize,
    bound: f64,
) -> Result<(), String> {
    let (d, net1) = (cluster.delay_ms, 0);
    let route = |from: usize, to: usize| (Lab::addr(from, net1), Lab::addr(to, net1));
    let (mut peer, mut own) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let start = Instant::now();
        let mut stamps = Vec::new();
        for (target, offset) in schedule(round, d) {
            std::thread::sleep((start + offset).saturating_duration_since(Instant::now()));
            let stamp = Stamp {
                target,
                wall_ns: wall_ns(),
                at: Instant::now(),
            };
            switch.set(Lab::switch_port_index(target, net1), false)?;
            stamps.push(stamp);
        }
        let down_after = |v: &View, (l, r), s: &Stamp| {
            v.route(l, r)
                .is_some_and(|t| t.state == "Down" && t.t_ns >= s.wall_ns)
        };
        cluster.wait_until(
            Duration::from_secs_f64(bound * 2.0 / 1e3 + 2.0),
            "route Down at every cut link's peer",
            |views| {
                stamps.iter().all(|s| {
                    down_after(
                        &views[observer(s.target) - 1],
                        route(observer(s.target), s.target),
                        s,
                    ) && down_after(&views[s.target - 1], route(s.target, observer(s.target)), s)
                })
            },
        )?;
        for s in &stamps {
            let o = observer(s.target);
            let (l, r) = route(o, s.target);
            peer.push(elapsed_ms(s, cluster.view(o).route(l, r).expect("waited"))?);
            let (l, r) = route(s.target, o);
            own.push(elapsed_ms(
                s,
                cluster.view(s.target).route(l, r).expect("waited"),
            )?);
        }
        for s in &stamps {
            switch.set(Lab::switch_port_index(s.target, net1), true)?;
        }
        let up_after = |v: &View, (l, r), s: &Stamp| {
            v.route(l, r)
                .is_some_and(|t| t.state == "Up" && t.t_ns >= s.wall_ns)
        };
        cluster.wait_until(
            Duration::from_secs(5) + Duration::from_millis(u64::from(3 * d)),
            "both ends of every restored link Up again",
            |views| {
                stamps.iter().all(|s| {
                    up_after(
                        &views[observer(s.target) - 1],
                        route(observer(s.target), s.target),
                        s,
                    ) && up_after(&views[s.target - 1], route(s.target, observer(s.target)), s)
                })
            },
        )?;
    }
    print_detection(
        "route cut (bridge port down) -> route Down at the peer",
        &peer,
        bound,
        cluster,
    );
    let own = summarize(&own);
    println!(
        "  the cut node itself, from netlink (carrier lost): p50 {:.1} ms  max {:.1} ms",
        own.p50, own.max
    );
    Ok(())
}

fn node_kills(cluster: &mut Cluster, rounds: usize, bound: f64) -> Result<(), String> {
    let d = cluster.delay_ms;
    let mut peer = Vec::new();
    for round in 0..rounds {
        let start = Instant::now();
        let mut stamps = Vec::new();
        for (target, offset) in schedule(round, d) {
            std::thread::sleep((start + offset).saturating_duration_since(Instant::now()));
            let stamp = Stamp {
                target,
                wall_ns: wall_ns(),
                at: Instant::now(),
            };
            cluster.kill(target)?;
            stamps.push(stamp);
        }
        let node_is = |v: &View, node: usize, state: &str, s: &Stamp| {
            v.nodes
                .get(&(node as u64))
                .is_some_and(|t| t.state == state && t.t_ns >= s.wall_ns)
        };
        cluster.wait_until(
            Duration::from_secs_f64(bound * 2.0 / 1e3 + 2.0),
            "node Down at every killed node's peer",
            |views| {
                stamps
                    .iter()
                    .all(|s| node_is(&views[observer(s.target) - 1], s.target, "Down", s))
            },
        )?;
        for s in &stamps {
            let view = cluster.view(observer(s.target));
            peer.push(elapsed_ms(s, &view.nodes[&(s.target as u64)])?);
        }
        for s in &stamps {
            cluster.restart(s.target)?;
        }
        cluster.wait_until(
            Duration::from_secs(10) + Duration::from_millis(u64::from(3 * d)),
            "every restarted node Up again at its peer, and seeing all its peers",
            |views| {
                stamps.iter().all(|s| {
                    node_is(&views[observer(s.target) - 1], s.target, "Up", s)
                        && (1..=views.len())
                            .filter(|p| *p != s.target)
                            .all(|p| node_is(&views[s.target - 1], p, "Up", s))
                })
            },
        )?;
    }
    print_detection(
        "node kill (SIGKILL) -> node Down at the peer",
        &peer,
        bound,
        cluster,
    );
    Ok(())
}

struct Summary {
    p50: f64,
    p99: f64,
    min: f64,
    max: f64,
}

fn summarize(samples: &[f64]) -> Summary {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    Summary {
        p50: at(0.50),
        p99: at(0.99),
        min: s[0],
        max: s[s.len() - 1],
    }
}

fn print_detection(what: &str, samples: &[f64], bound: f64, cluster: &Cluster) {
    let s = summarize(samples);
    let within = samples.iter().filter(|ms| **ms <= bound).count();
    let (d, t) = (f64::from(cluster.delay_ms), f64::from(cluster.threshold));
    println!(
        "{what}: {} trials  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (min {:.1})  {within}/{} within the bound {bound:.0} ms  [model: Threshold x Delay +- Delay/2 = {:.0}..{:.0} ms]",
        samples.len(),
        s.p50,
        s.p99,
        s.max,
        s.min,
        samples.len(),
        t * d - d / 2.0,
        t * d + d / 2.0,
    );
}

/// Heartbeat cost per node over a fixed window, and the nodes' own counters across it.
struct Scale {
    window: Duration,
    rates: Vec<Rates>,
    /// Status lines (arrival, line) before and after the window.
    before: Vec<(Instant, Value)>,
    after: Vec<(Instant, Value)>,
    routes_down: usize,
}

fn scale(cluster: &mut Cluster) -> Result<Scale, String> {
    let window = Duration::from_millis(u64::from(cluster.delay_ms) * 20)
        .clamp(Duration::from_secs(10), Duration::from_secs(20));
    let before = cluster.statuses(STATUS_LIMIT)?;
    let down_before = count_down(cluster);
    let pids = cluster.pids();
    let first: Vec<procstat::Sample> = pids
        .iter()
        .map(|p| procstat::sample(*p))
        .collect::<Result<_, _>>()?;
    // The measurement window itself: a fixed span of time, not a wait for anything.
    std::thread::sleep(window);
    let last: Vec<procstat::Sample> = pids
        .iter()
        .map(|p| procstat::sample(*p))
        .collect::<Result<_, _>>()?;
    let after = cluster.statuses(STATUS_LIMIT)?;
    Ok(Scale {
        window,
        rates: first
            .iter()
            .zip(&last)
            .map(|(a, b)| procstat::rates(a, b))
            .collect(),
        before,
        after,
        routes_down: count_down(cluster).saturating_sub(down_before),
    })
}

fn count_down(cluster: &Cluster) -> usize {
    (1..=NODES).map(|i| cluster.view(i).downs).sum()
}

fn mean_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.collect();
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    (mean, v.iter().copied().fold(0.0, f64::max))
}

/// When a status line's snapshot was taken: its arrival less the age it reports (0 for the raw
/// baseline, whose counters are live).
fn snapshot_at((arrived, line): &(Instant, Value)) -> Instant {
    let age = Duration::from_secs_f64(line["age_ms"].as_f64().unwrap_or(0.0) / 1e3);
    arrived.checked_sub(age).unwrap_or(*arrived)
}

/// `field`'s increase per second between the snapshots before and after the window, averaged
/// over the nodes; and the oldest snapshot seen (ms).
fn counter_rate(s: &Scale, field: &str) -> (f64, f64) {
    let mut rates = Vec::new();
    let mut oldest: f64 = 0.0;
    for (a, b) in s.before.iter().zip(&s.after) {
        let delta = b.1[field]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(a.1[field].as_u64().unwrap_or(0));
        let secs = snapshot_at(b).duration_since(snapshot_at(a)).as_secs_f64();
        rates.push(delta as f64 / secs.max(1e-3));
        for line in [&a.1, &b.1] {
            oldest = oldest.max(line["age_ms"].as_f64().unwrap_or(0.0));
        }
    }
    (
        rates.iter().sum::<f64>() / rates.len().max(1) as f64,
        oldest,
    )
}

fn print_scale(delay_ms: u32, netft: &Scale, raw: &Scale) {
    let routes = (NODES - 1) * 2;
    let expected = routes as f64 * 1000.0 / f64::from(delay_ms);
    println!(
        "heartbeat cost per node ({NODES} nodes, {routes} routes each, {:.0} s window; expected {expected:.0} datagrams/s each way):",
        netft.window.as_secs_f64()
    );
    for (name, s) in [
        ("keelson NetFT", netft),
        (
            "baseline, same run: raw UDP, same sockets/sizes/rates, no detector or HMAC",
            raw,
        ),
    ] {
        let (cpu, cpu_max) = mean_max(s.rates.iter().map(|r| r.cpu_percent));
        let (stat, _) = mean_max(s.rates.iter().map(|r| r.stat_cpu_percent));
        let (out, _) = mean_max(s.rates.iter().map(|r| r.udp_out));
        let (inn, _) = mean_max(s.rates.iter().map(|r| r.udp_in));
        let (tx, _) = mean_max(s.rates.iter().map(|r| r.dev_tx));
        let (rx, _) = mean_max(s.rates.iter().map(|r| r.dev_rx));
        println!("  {name}:");
        println!("    CPU             : mean {cpu:.3} %  max {cpu_max:.3} % of one core  (utime+stime: mean {stat:.3} %)");
        println!("    UDP datagrams/s : sent {out:.1}  received {inn:.1}   (interface packets: tx {tx:.1}  rx {rx:.1})");
    }
    let (accepted, oldest) = counter_rate(netft, "accepted");
    println!(
        "    NetFT's own counters: {accepted:.1} heartbeats accepted/s per node, {:.2} lost/s, {:.2} send failures/s (status snapshots up to {oldest:.0} ms old); routes gone Down during the window: {}",
        counter_rate(netft, "lost").0,
        counter_rate(netft, "send_failures").0,
        netft.routes_down
    );
    let (raw_received, _) = counter_rate(raw, "received");
    println!("    raw baseline's own count: {raw_received:.1} datagrams received/s per node");
    let (a, _) = mean_max(netft.rates.iter().map(|r| r.cpu_percent));
    let (b, _) = mean_max(raw.rates.iter().map(|r| r.cpu_percent));
    println!("    NetFT / raw UDP CPU: {:.2}x", a / b.max(1e-9));
}
