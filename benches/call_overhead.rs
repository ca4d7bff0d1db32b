//! Call overhead of the hosting path, measured beside its baselines in the same run and process:
//! * no-op LOOKSALIVE round trip crates/host -> keelson-rhs -> dummy plugin, p50/p99, vs a raw
//!   process-to-process Unix-socket ping-pong of the same message size;
//! * pipelined throughput with 100 resources in one host, vs raw ping-pong throughput;
//! * host spawn-to-Hello time, vs fork+exec+wait of /bin/true;
//! * idle host RSS (and with the dummy plugin loaded and 100 resources open).
//!
//! Run with `scripts/bench` (builds keelson-rhs and the plugins in release first).

mod common;

use common::{raw_ping_pong, summarize, Summary, WARMUP};
use keelson_host::{Host, HostConfig, OpenSpec};
use keelson_types::{Op, ResourceId};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUND_TRIPS: usize = 20_000;
const RESOURCES: u64 = 100;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(3);
const SPAWNS: usize = 50;

fn main() {
    if common::is_echo_child() {
        return common::echo_child();
    }
    let target = common::target_dir();
    let config = HostConfig::with_rhs(target.join("keelson-rhs"));
    let plugin = target
        .join("libkeelson_plugin_dummy.so")
        .display()
        .to_string();
    assert!(
        config.rhs_path.exists(),
        "{} missing: run scripts/bench",
        config.rhs_path.display()
    );
    assert!(
        std::path::Path::new(&plugin).exists(),
        "{plugin} missing: run scripts/bench"
    );
    println!(
        "keelson call_overhead benchmark ({} profile binaries in {})",
        common::profile(),
        target.display()
    );

    let raw = raw_ping_pong(ROUND_TRIPS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ours = rt.block_on(looks_alive_round_trips(&config, &plugin, ROUND_TRIPS));
    println!("\n== single LOOKSALIVE round trip ({ROUND_TRIPS} calls, after {WARMUP} warm-up) ==");
    println!(
        "raw unix-socket ping-pong : p50 {:7.1} us  p99 {:7.1} us",
        raw.p50, raw.p99
    );
    println!(
        "keelson LOOKSALIVE        : p50 {:7.1} us  p99 {:7.1} us",
        ours.p50, ours.p99
    );
    println!(
        "ratio (keelson / raw)     : p50 {:7.2} x   p99 {:7.2} x   (targets <= 1.5 x, <= 2 x)",
        ours.p50 / raw.p50,
        ours.p99 / raw.p99
    );
    println!(
        "single-stream rate        : raw {:.0} /s, keelson {:.0} /s",
        1e6 / raw.mean,
        1e6 / ours.mean
    );

    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rate = mt.block_on(pipelined_throughput(&config, &plugin));
    println!("\n== pipelined health checks: {RESOURCES} resources in one host, one call in flight each ==");
    println!("keelson                   : {rate:.0} checks/s  (target >= 50000)");
    println!(
        "raw ping-pong, 1 stream   : {:.0} round trips/s (for scale)",
        1e6 / raw.mean
    );

    let (spawn, baseline) = rt.block_on(spawn_times(&config));
    println!("\n== host spawn to Hello ({SPAWNS} spawns) ==");
    println!(
        "fork+exec+wait /bin/true  : p50 {:7.2} ms  p99 {:7.2} ms",
        baseline.p50 / 1000.0,
        baseline.p99 / 1000.0
    );
    println!(
        "keelson-rhs spawn->Hello  : p50 {:7.2} ms  p99 {:7.2} ms  (target <= 20 ms)",
        spawn.p50 / 1000.0,
        spawn.p99 / 1000.0
    );

    let rss = mt.block_on(idle_rss(&config, &plugin));
    println!("\n== host RSS ==");
    println!(
        "idle host                 : {:6.2} MB  (target <= 8 MB)",
        common::mb(rss.0)
    );
    println!("with dummy plugin loaded  : {:6.2} MB", common::mb(rss.1));
    println!(
        "with {RESOURCES} resources open     : {:6.2} MB",
        common::mb(rss.2)
    );
}

async fn looks_alive_round_trips(config: &HostConfig, plugin: &str, n: usize) -> Summary {
    let (host, _events) = Host::spawn(config).await.unwrap();
    let res = host
        .open(OpenSpec::new(ResourceId(1), "bench", plugin, "dummy"))
        .await
        .unwrap();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + WARMUP {
        let start = Instant::now();
        let done = res.call(Op::LooksAlive).await.unwrap();
        assert_eq!(done.status, 0);
        if i >= WARMUP {
            samples.push(start.elapsed().as_nanos() as f64 / 1000.0);
        }
    }
    host.kill();
    host.died().await;
    summarize(samples)
}

async fn pipelined_throughput(config: &HostConfig, plugin: &str) -> f64 {
    let (host, _events) = Host::spawn(config).await.unwrap();
    let mut resources = Vec::new();
    for id in 1..=RESOURCES {
        let spec = OpenSpec::new(ResourceId(id), &format!("r{id}"), plugin, "dummy");
        resources.push(Arc::new(host.open(spec).await.unwrap()));
    }
    let start = Instant::now();
    let stop = start + THROUGHPUT_WINDOW;
    let tasks: Vec<_> = resources
        .iter()
        .cloned()
        .map(|res| {
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < stop {
                    assert_eq!(res.call(Op::LooksAlive).await.unwrap().status, 0);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    host.kill();
    host.died().await;
    rate
}

async fn spawn_times(config: &HostConfig) -> (Summary, Summary) {
    let mut ours = Vec::new();
    let mut baseline = Vec::new();
    for _ in 0..SPAWNS {
        let start = Instant::now();
        std::process::Command::new("/bin/true").status().unwrap();
        baseline.push(start.elapsed().as_nanos() as f64 / 1000.0);
        let start = Instant::now();
        let (host, _events) = Host::spawn(config).await.unwrap();
        ours.push(start.elapsed().as_nanos() as f64 / 1000.0);
        host.kill();
        host.died().await;
    }
    (summarize(ours), summarize(baseline))
}

async fn idle_rss(config: &HostConfig, plugin: &str) -> (u64, u64, u64) {
    let (host, _events) = Host::spawn(config).await.unwrap();
    let rss = || keelson_sys::process::rss_bytes(host.pid()).unwrap();
    let idle = rss();
    host.load_plugin(plugin).await.unwrap();
    let loaded = rss();
    let mut open = Vec::new();
    for id in 1..=RESOURCES {
        open.push(
            host.open(OpenSpec::new(
                ResourceId(id),
                &format!("r{id}"),
                plugin,
                "dummy",
            ))
            .await
            .unwrap(),
        );
    }
    let with_resources = rss();
    host.kill();
    host.died().await;
    (idle, loaded, with_resources)
}
