//! The ip-address resource type (issue 12 item 1) for real, as root, in network namespaces of the
//! test's own: two node namespaces (a, b) and a peer (p) on one bridge in a switch namespace,
//! 192.0.2.0/24. Covers: `keelson plugin test` (IPv4 and IPv6) inside a namespace; bad parameters
//! refused at `resource create` naming the parameter; an address in use refused at online with
//! nothing changed; an administrator's route and the node's own addresses surviving offline and a
//! move (post [5], the address being the interface's primary one); the peer's ARP cache on the new
//! node's MAC right after the move; a deleted address reported by the watcher and restarted with
//! the polls a minute away; and a host SIGKILLed under a continuous ping with no reply lost and the
//! address never removed. Not the other resource types.

mod common;

use common::lab::{ip, root_or_skip};
use common::rcm::{wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const ADDRESS: &str = "192.0.2.50";

/// A switch namespace with bridge br0 and namespaces a (192.0.2.1), b (192.0.2.2) and p
/// (192.0.2.100), each with eth1 on the bridge. Removed on drop, even when the test fails.
struct IpLab {
    switch: String,
    a: String,
    b: String,
    p: String,
}

impl IpLab {
    fn create(tag: &str) -> IpLab {
        let pid = std::process::id();
        let name = |x: &str| format!("t31{tag}{pid}{x}");
        let lab = IpLab {
            switch: name("sw"),
            a: name("a"),
            b: name("b"),
            p: name("p"),
        };
        ip(&["netns", "add", &lab.switch]);
        ip(&["-n", &lab.switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lab.switch, "link", "set", "br0", "up"]);
        for (ns, host, port) in [(&lab.a, 1, "va"), (&lab.b, 2, "vb"), (&lab.p, 100, "vp")] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&[
                "link",
                "add",
                "eth1",
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                &lab.switch,
            ]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("192.0.2.{host}/24"),
                "dev",
                "eth1",
            ]);
            ip(&["-n", ns, "link", "set", "eth1", "up"]);
            ip(&["-n", &lab.switch, "link", "set", port, "master", "br0"]);
            ip(&["-n", &lab.switch, "link", "set", port, "up"]);
        }
        lab
    }
}

impl Drop for IpLab {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b, &self.p, &self.switch] {
            let status = Command::new("ip").args(["netns", "del", ns]).status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("cleanup: ip netns del {ns} failed: {status:?}");
            }
        }
    }
}

/// A background process killed and reaped on drop.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _already_ended = self.0.kill();
        let _reaped = self.0.wait();
    }
}

/// The UDP port of the echo servers.
const ECHO_PORT: u16 = 7007;

/// A UDP echo server on 0.0.0.0:ECHO_PORT in a namespace, on a thread of its own: this test's
/// real client-visible service (the lab has no ping). Stopped and joined on drop.
struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    fn start(ns: &str) -> EchoServer {
        let path = PathBuf::from(format!("/var/run/netns/{ns}"));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, bound) = std::sync::mpsc::channel();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            keelson_sys::netns::enter_netns(&path).expect("enter the node namespace");
            let socket = UdpSocket::bind(("0.0.0.0", ECHO_PORT)).expect("bind the echo port");
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .expect("read timeout");
            ready.send(()).expect("the test waits");
            let mut buf = [0u8; 64];
            while !stopping.load(Ordering::SeqCst) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    socket.send_to(&buf[..len], from).expect("echo");
                }
            }
        });
        bound.recv_timeout(LIMIT).expect("the echo server is bound");
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _no_panic_to_report = thread.join();
        }
    }
}

/// A UDP "ping" from namespace `ns` to ADDRESS:ECHO_PORT: `count` probes `every` apart, each
/// answered within 500 ms or lost (no retransmission, like ping). `answered` counts replies as
/// they come. Returns the numbers of the lost probes.
fn udp_ping(ns: &str, count: u32, every: Duration, answered: Arc<AtomicUsize>) -> Vec<u32> {
    let path = PathBuf::from(format!("/var/run/netns/{ns}"));
    let thread = std::thread::spawn(move || {
        keelson_sys::netns::enter_netns(&path).expect("enter the peer namespace");
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
        let target = (ADDRESS, ECHO_PORT);
        let mut lost = Vec::new();
        let mut buf = [0u8; 64];
        for seq in 0..count {
            socket
                .send_to(&seq.to_be_bytes(), target)
                .expect("send a probe");
            let deadline = Instant::now() + Duration::from_millis(500);
            let mut got = false;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                socket
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .expect("read timeout");
                match socket.recv_from(&mut buf) {
                    Ok((4, _)) if buf[..4] == seq.to_be_bytes() => {
                        got = true;
                        break;
                    }
                    Ok(_) => continue, // a late reply to an earlier probe
                    Err(_) => break,
                }
            }
            if got {
                answered.fetch_add(1, Ordering::SeqCst);
            } else {
                lost.push(seq);
            }
            std::thread::sleep(every); // the probes' pace, not a synchronisation
        }
        lost
    });
    thread.join().expect("the ping thread")
}

/// One probe from `ns` that must be answered.
fn reach(ns: &str) {
    let lost = udp_ping(ns, 1, Duration::ZERO, Arc::new(AtomicUsize::new(0)));
    assert!(lost.is_empty(), "{ADDRESS} did not answer {ns}");
}

/// `ip -o -n NS ARGS` output.
fn ip_out(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-o", "-n", ns])
        .args(args)
        .output()
        .expect("ip runs");
    assert!(out.status.success(), "ip -n {ns} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip netns exec NS ARGV`, to its end.
fn exec_in(ns: &str, argv: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .env("KEELSON_RHS", common::artefact("keelson-rhs"))
        .output()
        .expect("ip netns exec runs")
}

/// Writes `value` to /proc/sys/`key` inside `ns`.
fn sysctl_in(ns: &str, key: &str, value: &str) {
    let out = exec_in(
        ns,
        &["sh", "-c", &format!("echo {value} > /proc/sys/{key}")],
    );
    assert!(out.status.success(), "{key}={value} in {ns}: {out:?}");
}

fn mac_of(ns: &str) -> String {
    let link = ip_out(ns, &["link", "show", "eth1"]);
    let at = link.find("link/ether ").expect("eth1 has a MAC") + "link/ether ".len();
    link[at..at + 17].to_string()
}

fn has_address(ns: &str, cidr: &str) -> bool {
    ip_out(ns, &["addr", "show", "dev", "eth1"]).contains(&format!(" {cidr} "))
}

fn routes(ns: &str) -> String {
    ip_out(ns, &["route", "show"])
}

/// The MAC the peer's neighbour table has for ADDRESS (empty when none).
fn neighbour_mac(ns: &str) -> String {
    let entry = ip_out(ns, &["neigh", "show", ADDRESS, "dev", "eth1"]);
    entry
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// rcm in `ns`, its plugins probed.
fn rcm_in(ns: &str, tag: &str) -> Rcm {
    let rcm = Rcm::start_in_netns(Rcm::new_dir(tag), ns, &[]);
    wait_for("every plugin probe reports", LIMIT, || {
        rcm.plugins()["complete"] == true
    });
    rcm
}

/// Group `g` with ip-address resource `ip` (ADDRESS on eth1, short DAD and announcements).
fn create_ip(rcm: &Rcm, params: &[(&str, &str)], properties: &[(&str, &str)]) {
    rcm.ok(R::GroupCreate {
        name: "g".into(),
        properties: vec![],
    });
    let mut all = vec![
        ("Address", ADDRESS),
        ("Interface", "eth1"),
        ("DadTimeoutMs", "200"),
        ("GratuitousIntervalMs", "50"),
    ];
    all.extend_from_slice(params);
    rcm.ok(R::ResourceCreate {
        name: "ip".into(),
        type_name: "ip-address".into(),
        group: "g".into(),
        params: pairs(&all),
        properties: pairs(properties),
    });
}

fn online(rcm: &Rcm) -> Value {
    rcm.ok(R::GroupOnline { name: "g".into() });
    rcm.wait_state("ip", "Online", LIMIT)
}

fn offline(rcm: &Rcm) {
    rcm.ok(R::GroupOffline { name: "g".into() });
    rcm.wait_state("ip", "Offline", LIMIT);
}

fn plugin_test_passes(ns: &str, args: &[&str]) {
    let plugin = common::plugin("ip-address");
    let mut argv = vec![
        common::artefact("keelson").display().to_string(),
        "plugin".into(),
        "test".into(),
        plugin,
        "--json".into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = exec_in(ns, &argv);
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("plugin test --json: {e}: {text}\n{out:?}"));
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    let steps = report["types"][0]["steps"].as_array().expect("steps");
    assert!(steps.iter().all(|s| s["result"] == "pass"), "{report:#}");
    let cases = args.iter().filter(|a| **a == "--expect-invalid").count();
    assert_eq!(steps.len(), 30 + cases, "{report:#}");
}

#[test]
fn plugin_test_passes_for_ipv4_and_ipv6_inside_a_namespace() {
    if !root_or_skip("t31 plugin test") {
        return;
    }
    let lab = IpLab::create("pt");
    plugin_test_passes(
        &lab.a,
        &[
            "--param",
            "Address=192.0.2.50",
            "--param",
            "Interface=eth1",
            "--param",
            "DadTimeoutMs=100",
            "--second-param",
            "Address=192.0.2.51",
            "--expect-invalid",
            "PrefixLength=33",
            "--expect-invalid",
            "Network=192.0.2.0/24",
            "--expect-invalid",
            "Address=192.0.2.300",
        ],
    );
    // The node's own IPv6 address is what puts eth1 in Network 2001:db8::/64.
    ip(&[
        "-n",
        &lab.a,
        "addr",
        "add",
        "2001:db8::1/64",
        "dev",
        "eth1",
        "nodad",
    ]);
    plugin_test_passes(
        &lab.a,
        &[
            "--param",
            "Address=2001:db8::50",
            "--param",
            "Network=2001:db8::/64",
            "--param",
            "DadTimeoutMs=100",
            "--second-param",
            "Address=2001:db8::51",
            "--expect-invalid",
            "PrefixLength=129",
            "--expect-invalid",
            "Interface=eth1",
        ],
    );
    assert!(!has_address(&lab.a, "192.0.2.50/24"), "offline removed it");
    assert!(
        has_address(&lab.a, "192.0.2.1/24"),
        "the node's address stays"
    );
}

#[test]
fn bad_parameters_are_refused_at_create_naming_the_parameter() {
    let rcm = Rcm::start("t31-bad");
    wait_for("every plugin probe reports", LIMIT, || {
        rcm.plugins()["complete"] == true
    });
    rcm.ok(R::GroupCreate {
        name: "g".into(),
        properties: vec![],
    });
    for (params, names) in [
        (
            vec![("Address", "192.0.2.300"), ("Interface", "eth1")],
            "'Address'",
        ),
        (
            vec![
                ("Address", ADDRESS),
                ("Interface", "eth1"),
                ("PrefixLength", "33"),
            ],
            "PrefixLength=33",
        ),
        (
            vec![
                ("Address", ADDRESS),
                ("Interface", "eth1"),
                ("Network", "192.0.2.0/24"),
            ],
            "both Interface and Network",
        ),
        (vec![("Address", ADDRESS)], "neither Interface nor Network"),
        (vec![("Interface", "eth1")], "'Address'"),
    ] {
        let message = rcm.refused(R::ResourceCreate {
            name: "ip".into(),
            type_name: "ip-address".into(),
            group: "g".into(),
            params: pairs(&params),
            properties: vec![],
        });
        assert!(message.contains(names), "{params:?}: {message}");
        assert!(message.contains("nothing was changed"), "{message}");
        rcm.refused(R::ResourceGet { name: "ip".into() });
    }
}

#[test]
fn online_refuses_an_address_a_peer_already_uses_and_changes_nothing() {
    if !root_or_skip("t31 DAD") {
        return;
    }
    let lab = IpLab::create("dad");
    ip(&["-n", &lab.p, "addr", "add", "192.0.2.50/24", "dev", "eth1"]);
    let peer_mac = mac_of(&lab.p);
    let rcm = rcm_in(&lab.a, "t31-dad");
    create_ip(&rcm, &[], &[]);
    rcm.ok(R::GroupOnline { name: "g".into() });
    let want = format!("address 192.0.2.50 is already in use by {peer_mac}");
    let view = rcm.wait_resource("ip", LIMIT, "refused as in use", |v| {
        v["last_errors"]["ONLINE"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&want))
    });
    assert_ne!(view["state"], "Online", "{view:#}");
    assert!(!has_address(&lab.a, "192.0.2.50/24"), "nothing was added");
    assert!(has_address(&lab.a, "192.0.2.1/24"));
}

/// The node's own address given as a resource's: refused at online (not adopted), and an offline
/// leaves it where it is.
#[test]
fn the_nodes_own_address_is_never_adopted_nor_removed() {
    if !root_or_skip("t31 own address") {
        return;
    }
    let lab = IpLab::create("own");
    let rcm = rcm_in(&lab.a, "t31-own");
    rcm.ok(R::GroupCreate {
        name: "g".into(),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: "ip".into(),
        type_name: "ip-address".into(),
        group: "g".into(),
        params: pairs(&[("Address", "192.0.2.1"), ("Interface", "eth1")]),
        properties: vec![],
    });
    rcm.ok(R::GroupOnline { name: "g".into() });
    let view = rcm.wait_resource("ip", LIMIT, "refused as not ours", |v| {
        v["last_errors"]["ONLINE"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("this resource did not add it"))
    });
    assert_ne!(view["state"], "Online", "{view:#}");
    assert_eq!(
        view["last_errors"]["ONLINE"]["status"], "misconfigured",
        "{view:#}"
    );
    rcm.ok(R::GroupOffline { name: "g".into() });
    wait_for("the group offline", LIMIT, || {
        rcm.group_state("g") == "Offline" || rcm.group_state("g") == "Failed"
    });
    assert!(
        has_address(&lab.a, "192.0.2.1/24"),
        "the node's address stays"
    );
}

#[test]
fn a_move_keeps_routes_and_node_addresses_and_moves_the_peers_arp_cache() {
    if !root_or_skip("t31 move") {
        return;
    }
    let lab = IpLab::create("mv");
    let route = "203.0.113.0/24 via 192.0.2.254 dev eth1";
    // On a, the resource's address becomes eth1's primary one and the node's own address a
    // secondary: without promote_secondaries, removing the primary would take the node's address
    // (and so the route through it) with it. The kernel's own default is 0 here; the plugin sets 1.
    sysctl_in(&lab.a, "net/ipv4/conf/eth1/promote_secondaries", "0");
    ip(&["-n", &lab.a, "addr", "del", "192.0.2.1/24", "dev", "eth1"]);
    let a = rcm_in(&lab.a, "t31-mv-a");
    let b = rcm_in(&lab.b, "t31-mv-b");
    create_ip(&a, &[], &[]);
    create_ip(&b, &[], &[]);
    online(&a);
    ip(&["-n", &lab.a, "addr", "add", "192.0.2.1/24", "dev", "eth1"]);
    for ns in [&lab.a, &lab.b] {
        let mut argv = vec!["-n", ns.as_str(), "route", "add"];
        argv.extend(route.split(' '));
        ip(&argv);
    }
    let primary = ip_out(&lab.a, &["-4", "addr", "show", "dev", "eth1"]);
    assert!(
        primary.find("192.0.2.50/24") < primary.find("192.0.2.1/24"),
        "the resource's address is the primary one: {primary}"
    );

    let _echo_a = EchoServer::start(&lab.a);
    let _echo_b = EchoServer::start(&lab.b);
    reach(&lab.p);
    let (mac_a, mac_b) = (mac_of(&lab.a), mac_of(&lab.b));
    assert_eq!(neighbour_mac(&lab.p), mac_a);

    offline(&a);
    assert!(!has_address(&lab.a, "192.0.2.50/24"), "offline removed it");
    assert!(
        has_address(&lab.a, "192.0.2.1/24"),
        "the node's own address survives"
    );
    assert!(
        routes(&lab.a).contains("203.0.113.0/24 via 192.0.2.254"),
        "{}",
        routes(&lab.a)
    );

    online(&b);
    let onlined = Instant::now();
    // No traffic from the peer since its ping: only b's gratuitous ARP can have moved the entry.
    wait_for(
        "the peer's ARP entry on b's MAC",
        Duration::from_millis(200),
        || neighbour_mac(&lab.p) == mac_b,
    );
    println!(
        "peer's neighbour entry on b's MAC {:.1} ms after b reported Online",
        onlined.elapsed().as_secs_f64() * 1000.0
    );
    assert!(has_address(&lab.b, "192.0.2.50/24"));
    reach(&lab.p);

    offline(&b);
    assert!(
        has_address(&lab.b, "192.0.2.2/24"),
        "b's own address survives"
    );
    assert!(
        routes(&lab.b).contains("203.0.113.0/24 via 192.0.2.254"),
        "{}",
        routes(&lab.b)
    );
    assert!(routes(&lab.a).contains("203.0.113.0/24 via 192.0.2.254"));
}

fn count(view: &Value, op: &str) -> u64 {
    view["call_stats"][op]["count"].as_u64().unwrap_or(0)
}

#[test]
fn a_deleted_address_is_reported_at_once_and_restarted_without_a_poll() {
    if !root_or_skip("t31 report") {
        return;
    }
    let lab = IpLab::create("rep");
    let rcm = rcm_in(&lab.a, "t31-rep");
    // Polls a minute apart: only the watcher's report can explain a restart within seconds.
    create_ip(
        &rcm,
        &[],
        &[
            ("LooksAlivePollInterval", "60000"),
            ("IsAlivePollInterval", "60000"),
            ("RestartDelay", "0"),
        ],
    );
    online(&rcm);
    ip(&["-n", &lab.a, "addr", "del", "192.0.2.50/24", "dev", "eth1"]);
    let deleted = Instant::now();
    let reported = "IsAlive failed for resource 'ip': reported by the plugin: address 192.0.2.50/24 was removed from eth1";
    let took = wait_for("the report and the restart's address", LIMIT, || {
        rcm.cluster_log().contains(reported) && has_address(&lab.a, "192.0.2.50/24")
    });
    println!(
        "address deleted -> reported and re-added by the restart: {:.1} ms",
        deleted.elapsed().as_secs_f64() * 1000.0
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let view = rcm.wait_state("ip", "Online", LIMIT);
    assert_eq!(
        (count(&view, "LOOKSALIVE"), count(&view, "ISALIVE")),
        (0, 0),
        "no poll ran: {view:#}"
    );
    assert_eq!(count(&view, "ONLINE"), 2, "{view:#}");
    assert_eq!(
        view["last_errors"]["ISALIVE"]["status"], "reported",
        "{view:#}"
    );
}

fn host_pid(view: &Value) -> u64 {
    view["host_pid"].as_u64().unwrap_or(0)
}

#[test]
fn killing_the_host_loses_no_ping_and_never_removes_the_address() {
    if !root_or_skip("t31 idempotent online") {
        return;
    }
    let lab = IpLab::create("idem");
    let rcm = rcm_in(&lab.a, "t31-idem");
    create_ip(&rcm, &[], &[]);
    let first = online(&rcm);
    let old_host = host_pid(&first);
    assert!(old_host > 0, "{first:#}");

    let scratch = PathBuf::from(&rcm.dir);
    let monitor_out = scratch.join("monitor.txt");
    let monitor = Background(
        Command::new("ip")
            .args(["-o", "-n", &lab.a, "monitor", "address"])
            .stdout(std::fs::File::create(&monitor_out).expect("monitor file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor"),
    );
    // The monitor is listening once it shows a marker address coming and going.
    let read = |path: &PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    wait_for("ip monitor is listening", LIMIT, || {
        ip(&["-n", &lab.a, "addr", "add", "192.0.2.77/32", "dev", "eth1"]);
        ip(&["-n", &lab.a, "addr", "del", "192.0.2.77/32", "dev", "eth1"]);
        read(&monitor_out).contains("192.0.2.77/32")
    });

    let _echo = EchoServer::start(&lab.a);
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    let peer = lab.p.clone();
    let pinger =
        std::thread::spawn(move || udp_ping(&peer, 150, Duration::from_millis(20), counter));
    wait_for("the first replies", LIMIT, || {
        answered.load(Ordering::SeqCst) >= 10
    });
    keelson_sys::process::kill(old_host as u32, keelson_sys::Signal::SIGKILL)
        .expect("SIGKILL the resource's host");
    let killed = Instant::now();
    let view = rcm.wait_resource("ip", LIMIT, "Online in a new host", |v| {
        v["state"] == "Online" && host_pid(v) != old_host && host_pid(v) != 0
    });
    println!(
        "host {old_host} killed -> Online in host {} after {:.1} ms",
        host_pid(&view),
        killed.elapsed().as_secs_f64() * 1000.0
    );
    assert!(
        answered.load(Ordering::SeqCst) < 150,
        "the host was replaced while the probes ran"
    );
    let lost = pinger.join().expect("the ping thread");
    assert!(lost.is_empty(), "probes lost: {lost:?}");
    drop(monitor);
    let events = read(&monitor_out);
    assert!(
        !events
            .lines()
            .any(|l| l.starts_with("Deleted") && l.contains("192.0.2.50/24")),
        "the address was removed:\n{events}"
    );
    assert!(has_address(&lab.a, "192.0.2.50/24"));
    assert!(
        rcm.cluster_log().contains("added 192.0.2.50/24 to eth1"),
        "{}",
        rcm.cluster_log()
    );
    assert_eq!(
        rcm.cluster_log()
            .matches("added 192.0.2.50/24 to eth1")
            .count(),
        1,
        "the new host adopted the address instead of adding it again"
    );
}

#[test]
fn is_alive_finds_a_second_holder_and_the_watcher_reports_a_lost_carrier() {
    if !root_or_skip("t31 conflict and carrier") {
        return;
    }
    let lab = IpLab::create("cc");
    let rcm = rcm_in(&lab.a, "t31-cc");
    // LooksAlive a minute away; IsAlive every 300 ms.
    create_ip(
        &rcm,
        &[],
        &[
            ("LooksAlivePollInterval", "60000"),
            ("IsAlivePollInterval", "300"),
            ("RestartDelay", "0"),
        ],
    );
    online(&rcm);
    // The peer takes the address too (a misconfigured host): IsAlive's ARP probe finds it.
    ip(&["-n", &lab.p, "addr", "add", "192.0.2.50/24", "dev", "eth1"]);
    let conflict = format!(
        "IsAlive failed for resource 'ip': address 192.0.2.50 is also in use by {}",
        mac_of(&lab.p)
    );
    wait_for("IsAlive reports the second holder", LIMIT, || {
        rcm.cluster_log().contains(&conflict)
    });
    rcm.wait_resource("ip", LIMIT, "failed", |v| v["state"] != "Online");
    ip(&["-n", &lab.p, "addr", "del", "192.0.2.50/24", "dev", "eth1"]);
    rcm.ok(R::ResourceSet {
        name: "ip".into(),
        properties: pairs(&[("IsAlivePollInterval", "60000")]),
        params: vec![],
        unset_params: vec![],
    });
    // An administrator's online brings it back once the peer has let go.
    online(&rcm);

    // The switch port goes down: a's eth1 loses carrier, and the watcher says so at once.
    ip(&["-n", &lab.switch, "link", "set", "va", "down"]);
    let lost = "IsAlive failed for resource 'ip': reported by the plugin: eth1 lost its carrier (link down)";
    wait_for("the watcher reports the lost carrier", LIMIT, || {
        rcm.cluster_log().contains(lost)
    });
}
