//! What one health check costs per resource, for the real types, beside the Pacemaker way in the
//! same run: LOOKSALIVE of an ip-address resource and of a generic-app resource (crates/host ->
//! keelson-rhs -> plugin -> back), next to fork+exec of resource-agents' IPaddr2 `monitor` for the
//! same address (what pacemaker-execd does every monitor interval), and the ocf bridge's LOOKSALIVE
//! running that same agent. Also the raw Unix-socket ping-pong as the floor. Root only: it builds a
//! network namespace of its own (a veth pair, 192.0.2.1/24 on one end) and removes it.
//!
//! Run with `cargo build --release --workspace && cargo bench --bench looks_alive`.

mod common;

use common::{raw_ping_pong, summarize, Summary};
use keelson_host::{Host, HostConfig, OpenSpec, ResourceDirs};
use keelson_types::{Op, ResourceId};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const PLUGIN_CALLS: usize = 5_000;
const AGENT_CALLS: usize = 100;
const ADDRESS: &str = "192.0.2.50";
const IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";

/// The bench's namespace, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let status = Command::new("ip").args(["netns", "del", &self.0]).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("cleanup: ip netns del {} failed: {status:?}", self.0);
        }
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip");
    assert!(status.success(), "ip {args:?}");
}

fn main() {
    if common::is_echo_child() {
        return common::echo_child();
    }
    assert!(
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
        "looks_alive: needs root (it builds a network namespace)"
    );
    assert!(
        Path::new(IPADDR2).exists(),
        "{IPADDR2} missing: apt-get install resource-agents"
    );
    let target = common::target_dir();
    let config = HostConfig::with_rhs(target.join("keelson-rhs"));
    let plugin = |name: &str| {
        let path = target.join(format!("libkeelson_plugin_{name}.so"));
        assert!(
            path.exists(),
            "{} missing: build the workspace",
            path.display()
        );
        path.display().to_string()
    };
    let ns = Netns(format!("kbla{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
    ip(&[
        "-n", &ns.0, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
    ]);
    ip(&["-n", &ns.0, "link", "set", "eth1p", "up"]);
    ip(&["-n", &ns.0, "addr", "add", "192.0.2.1/24", "dev", "eth1"]);
    ip(&["-n", &ns.0, "link", "set", "eth1", "up"]);
    // This (main) thread moves; the hosts and agents it starts are born inside.
    keelson_sys::netns::enter_netns(&Path::new("/var/run/netns").join(&ns.0)).unwrap();
    let state = std::env::temp_dir().join(format!("keelson-bench-la-{}", std::process::id()));
    let dirs = ResourceDirs::new(&state, "bench");
    println!(
        "keelson looks_alive benchmark ({} profile binaries in {})",
        common::profile(),
        target.display()
    );

    let raw = raw_ping_pong(PLUGIN_CALLS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ip_params = serde_json::json!({
        "Address": ADDRESS, "PrefixLength": "24", "Interface": "eth1"
    });
    let app_params = serde_json::json!({ "CommandLine": "sleep 100000", "StopTimeout": "500" });
    let ocf_params = serde_json::json!({
        "Agent": "heartbeat:IPaddr2", "ip": ADDRESS, "cidr_netmask": "24", "nic": "eth1"
    });
    let (ip_la, agent, ocf_la, app_la) = rt.block_on(async {
        let (host, _events) = Host::spawn(&config).await.unwrap();
        let open = |id: u64, name: &str, type_name: &str, params: &serde_json::Value| {
            OpenSpec::new(
                ResourceId(id),
                name,
                &plugin(type_name.replace('-', "_").as_str()),
                type_name,
            )
            .params(params.to_string())
            .state_dir(dirs.ensure(ResourceId(id)).unwrap())
            .node_name("bench")
        };
        let address = host
            .open(open(1, "bench-ip", "ip-address", &ip_params))
            .await
            .unwrap();
        online(&address).await;
        let ip_la = calls(&address, PLUGIN_CALLS).await;
        // The address is up: the agent's monitor finds it, as it would under Pacemaker.
        let agent = agent_monitor(AGENT_CALLS);
        let ocf = host
            .open(open(2, "bench-ocf", "ocf", &ocf_params))
            .await
            .unwrap();
        online(&ocf).await;
        let ocf_la = calls(&ocf, AGENT_CALLS).await;
        let app = host
            .open(open(3, "bench-app", "generic-app", &app_params))
            .await
            .unwrap();
        online(&app).await;
        let app_la = calls(&app, PLUGIN_CALLS).await;
        for r in [&app, &ocf, &address] {
            let done = r.call(Op::Offline).await.unwrap();
            assert_eq!(done.status, 0, "offline: {}", done.message);
        }
        host.shutdown().await;
        (ip_la, agent, ocf_la, app_la)
    });
    if let Err(e) = std::fs::remove_dir_all(&state) {
        eprintln!("cleanup: rm -r {}: {e}", state.display());
    }
    let row = |name: &str, s: &Summary| {
        println!("{name:<44}: p50 {:9.1} us  p99 {:9.1} us", s.p50, s.p99);
    };
    println!("\n== one health check, per resource ==");
    row("raw unix-socket ping-pong (floor)", &raw);
    row(
        &format!("keelson ip-address LOOKSALIVE ({PLUGIN_CALLS})"),
        &ip_la,
    );
    row(
        &format!("keelson generic-app LOOKSALIVE ({PLUGIN_CALLS})"),
        &app_la,
    );
    row(
        &format!("fork+exec IPaddr2 monitor ({AGENT_CALLS})"),
        &agent,
    );
    row(
        &format!("keelson ocf IPaddr2 LOOKSALIVE ({AGENT_CALLS})"),
        &ocf_la,
    );
    println!(
        "\nip-address LOOKSALIVE is {:.0}x cheaper than the IPaddr2 monitor (p50), \
         generic-app {:.0}x",
        agent.p50 / ip_la.p50,
        agent.p50 / app_la.p50
    );
}

async fn online(r: &keelson_host::ResourceHandle) {
    let done = r.call(Op::Online).await.unwrap();
    assert_eq!(done.status, 0, "online: {}", done.message);
}

async fn calls(r: &keelson_host::ResourceHandle, n: usize) -> Summary {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let done = r.call(Op::LooksAlive).await.unwrap();
        assert_eq!(done.status, 0, "looks_alive: {}", done.message);
        samples.push(start.elapsed().as_nanos() as f64 / 1000.0);
    }
    summarize(samples)
}

/// `IPaddr2 monitor` as pacemaker-execd runs it: a fresh process with the OCF environment.
fn agent_monitor(n: usize) -> Summary {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let status = Command::new(IPADDR2)
            .arg("monitor")
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_FUNCTIONS_DIR", "/usr/lib/ocf/lib/heartbeat")
            .env("OCF_RESOURCE_INSTANCE", "bench-ip")
            .env("OCF_RESKEY_ip", ADDRESS)
            .env("OCF_RESKEY_cidr_netmask", "24")
            .env("OCF_RESKEY_nic", "eth1")
            .env("OCF_RESKEY_CRM_meta_timeout", "20000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0), "IPaddr2 monitor");
        samples.push(start.elapsed().as_nanos() as f64 / 1000.0);
    }
    summarize(samples)
}
