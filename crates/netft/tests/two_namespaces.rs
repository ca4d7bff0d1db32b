//! Two real NetFT shells in two network namespaces joined by a veth pair (192.0.2.1/24 and
//! 192.0.2.2/24, created and removed by this test), at SameSubnetDelay 100 / Threshold 3 through
//! the test-only override: both routes come Up; taking one end's link down is reported by netlink
//! and takes both routes Down well before Delay x Threshold; link up brings them back; stopping one
//! shell takes the other's route and node Down within Delay x Threshold + one Delay. Needs root:
//! fails without it when CI=true, skips with a reason otherwise.

use keelson_netft::{
    ClusterKey, DetectorConfig, InterfaceSpec, NetftEvent, NetftSettings, NetftSink, NetworkSpec,
    NodeId, NodeSpec, NodeState, RouteKey, RouteState, Shell, StatusHandle, Topology,
};
use keelson_types::LogLevel;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const DELAY_MS: u64 = 100;
const THRESHOLD: u64 = 3;
const PORT: u16 = 13343;
const A_ADDR: &str = "192.0.2.1";
const B_ADDR: &str = "192.0.2.2";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Runs `ip ARGS`, panicking with its stderr if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Two namespaces and the veth pair between them; removed on drop, even when the test fails.
struct Namespaces {
    a: String,
    b: String,
    dev_a: String,
    dev_b: String,
}

impl Namespaces {
    /// `tag` keeps the names of tests running in parallel apart.
    fn create(tag: char) -> Namespaces {
        let pid = std::process::id();
        let ns = Namespaces {
            a: format!("knft{pid}{tag}a"),
            b: format!("knft{pid}{tag}b"),
            dev_a: format!("kn{pid}{tag}a"),
            dev_b: format!("kn{pid}{tag}b"),
        };
        ip(&["netns", "add", &ns.a]);
        ip(&["netns", "add", &ns.b]);
        // Distinct ifindexes: the kernel's linkwatch passes a carrier change on at once only for
        // "urgent" devices, and a veth whose ifindex equals its peer's (2 and 2 in two fresh
        // namespaces) is not one: its carrier loss would reach netlink up to a second late.
        ip(&[
            "link", "add", &ns.dev_a, "index", "41", "netns", &ns.a, "type", "veth", "peer",
            "name", &ns.dev_b, "index", "42", "netns", &ns.b,
        ]);
        ip(&[
            "-n",
            &ns.a,
            "addr",
            "add",
            &format!("{A_ADDR}/24"),
            "dev",
            &ns.dev_a,
        ]);
        ip(&[
            "-n",
            &ns.b,
            "addr",
            "add",
            &format!("{B_ADDR}/24"),
            "dev",
            &ns.dev_b,
        ]);
        ip(&["-n", &ns.a, "link", "set", &ns.dev_a, "up"]);
        ip(&["-n", &ns.b, "link", "set", &ns.dev_b, "up"]);
        ns
    }

    fn path(name: &str) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{name}"))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth end inside it, and with it the pair.
        for name in [&self.a, &self.b] {
            let status = Command::new("ip").args(["netns", "del", name]).status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("cleanup: ip netns del {name} failed: {status:?}");
            }
        }
    }
}

/// Something a shell's sink was told, stamped with when.
#[derive(Debug, Clone)]
enum What {
    Log(String),
    Event(u32),
    Route(RouteKey, RouteState),
    Node(NodeId, NodeState),
}

#[derive(Debug, Clone)]
struct Seen {
    node: &'static str,
    at: Instant,
    what: What,
}

struct ChannelSink {
    node: &'static str,
    tx: mpsc::Sender<Seen>,
}

impl ChannelSink {
    fn send(&self, what: What) {
        // The test may have stopped listening; a sink has nowhere else to report that.
        if self
            .tx
            .send(Seen {
                node: self.node,
                at: Instant::now(),
                what,
            })
            .is_err()
        {
            eprintln!("{}: observer gone", self.node);
        }
    }
}

impl NetftSink for ChannelSink {
    fn log(&mut self, level: LogLevel, component: &str, message: &str) {
        self.send(What::Log(format!("{level} [{component}] {message}")));
    }
    fn raise(&mut self, event: &NetftEvent) {
        self.send(What::Event(event.id));
    }
    fn route_state(&mut self, route: RouteKey, state: RouteState) {
        self.send(What::Route(route, state));
    }
    fn node_state(&mut self, node: NodeId, state: NodeState) {
        self.send(What::Node(node, state));
    }
    fn node_incarnation(&mut self, _node: NodeId, _incarnation: u64) {}
}

/// One shell running on a thread of its own, inside a namespace, on a current-thread runtime.
struct Node {
    status: StatusHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Node {
    fn spawn(ns: &Namespaces, name: &'static str, local: u32, tx: mpsc::Sender<Seen>) -> Node {
        let path = Namespaces::path(if local == 1 { &ns.a } else { &ns.b });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let config = config(ns, local);
        let (status_tx, status_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            keelson_sys::netns::enter_netns(&path).map_err(|e| e.to_string())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            runtime.block_on(async move {
                let sink = ChannelSink { node: name, tx };
                let shell = Shell::start(config, sink)
                    .await
                    .map_err(|e| e.to_string())?;
                status_tx.send(shell.status()).map_err(|e| e.to_string())?;
                tokio::select! {
                    result = shell.run() => result.map_err(|e| e.to_string()),
                    _ = stopped => Ok(()),
                }
            })
        });
        let status = match status_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(status) => status,
            // The thread ended: it says why.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("shell {name} did not start: {:?}", thread.join())
            }
            // Still starting: leave the thread be (joining could hang the test).
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("shell {name} did not start within 10 s")
            }
        };
        Node {
            status,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops the shell (its sockets close with its runtime) and waits for the thread.
    fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The shell may already have ended on its own; join reports how.
            let _ignored_if_already_ended = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let result = thread.join().expect("shell thread panicked");
            assert_eq!(result, Ok(()), "shell ended with an error");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ignored_if_already_ended = stop.send(());
        }
    }
}

/// From a thread inside `ns`, sends a short datagram, an oversized one and a heartbeat under a
/// different key from `from:port` to `to:PORT`.
fn send_from_namespace(ns: &str, from: &str, port: u16, to: &str) {
    let path = Namespaces::path(ns);
    let (from, to) = (ip_addr(from), ip_addr(to));
    std::thread::spawn(move || {
        keelson_sys::netns::enter_netns(&path).unwrap();
        let socket = std::net::UdpSocket::bind((from, port)).unwrap();
        let wrong_key = ClusterKey::new(b"some-other-cluster-key").unwrap();
        let forged = keelson_netft::Heartbeat {
            node: 2,
            incarnation: 1,
            sequence: 1_000_000,
            from,
            to,
            down: 0,
            hears_you: false,
        }
        .encode(&wrong_key);
        for datagram in [&b"KNFT"[..], &[0u8; 1500][..], &forged[..]] {
            socket.send_to(datagram, (to, PORT)).unwrap();
        }
    })
    .join()
    .expect("sender thread panicked");
}

fn ip_addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config(ns: &Namespaces, local: u32) -> DetectorConfig {
    let node = |id, name: &str, addr: &str, adapter: String| NodeSpec {
        id: NodeId(id),
        name: name.into(),
        interfaces: vec![InterfaceSpec {
            adapter,
            addr: ip_addr(addr),
            prefix_len: 24,
            network: "net1".into(),
        }],
    };
    let topology = Topology::new(
        NodeId(local),
        vec![
            node(1, "A", A_ADDR, ns.dev_a.clone()),
            node(2, "B", B_ADDR, ns.dev_b.clone()),
        ],
        vec![NetworkSpec {
            name: "net1".into(),
            priority: 1,
        }],
    )
    .unwrap();
    DetectorConfig {
        topology,
        settings: NetftSettings::test_only_override(DELAY_MS as u32, THRESHOLD as u32).unwrap(),
        key: ClusterKey::new(b"two-namespaces-test-cluster-key").unwrap(),
        incarnation: 1,
        port: PORT,
        contact: None,
    }
}

/// Everything both shells reported, and waits on it with deadlines.
struct Observer {
    rx: mpsc::Receiver<Seen>,
    seen: Vec<Seen>,
}

impl Observer {
    /// The first report (already seen or arriving before `limit`) that matches.
    fn wait_for(&mut self, limit: Duration, what: &str, pred: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(hit) = self.seen.iter().find(|s| pred(s)) {
                return hit.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(seen) => self.seen.push(seen),
                Err(_) => panic!("no {what} within {limit:?}; seen: {:#?}", self.seen),
            }
        }
    }

    fn forget(&mut self) {
        while let Ok(seen) = self.rx.try_recv() {
            self.seen.push(seen);
        }
        self.seen.clear();
    }
}

fn route_is(
    node: &'static str,
    local: &str,
    remote: &str,
    state: RouteState,
) -> impl Fn(&Seen) -> bool {
    let key = RouteKey {
        local: ip_addr(local),
        remote: ip_addr(remote),
    };
    move |s| s.node == node && matches!(s.what, What::Route(k, st) if k == key && st == state)
}

fn logged(node: &'static str, needle: String) -> impl Fn(&Seen) -> bool {
    move |s| s.node == node && matches!(&s.what, What::Log(line) if line.contains(&needle))
}

/// Whether the test can run; without root it fails in CI and skips (saying why) elsewhere.
fn have_root() -> bool {
    if keelson_sys::process::geteuid() == 0 {
        return true;
    }
    assert!(
        !in_ci(),
        "this test needs root to create network namespaces, and CI=true makes that a failure"
    );
    eprintln!("skipping: needs root to create network namespaces");
    false
}

#[test]
fn a_link_already_down_at_start_is_known_from_the_netlink_dump() {
    if !have_root() {
        return;
    }
    let ns = Namespaces::create('y');
    ip(&["-n", &ns.a, "link", "set", &ns.dev_a, "down"]);
    let (tx, rx) = mpsc::channel();
    let mut obs = Observer {
        rx,
        seen: Vec::new(),
    };
    let mut a = Node::spawn(&ns, "A", 1, tx);
    let down = obs.wait_for(
        Duration::from_secs(2),
        "A's route down",
        route_is("A", A_ADDR, B_ADDR, RouteState::Down),
    );
    assert!(
        obs.seen.iter().take_while(|s| s.at <= down.at).any(|s| matches!(&s.what, What::Log(l) if l.contains("is down: its local interface") && l.contains("lost carrier"))),
        "the dump, not missed heartbeats, took it down: {:#?}",
        obs.seen
    );
    obs.wait_for(Duration::ZERO, "A's 1127", |s| {
        s.node == "A" && matches!(s.what, What::Event(1127))
    });
    a.kill();
    drop(ns);
}

#[test]
fn two_shells_in_two_namespaces_detect_link_down_link_up_and_a_dead_peer() {
    if !have_root() {
        return;
    }
    let ns = Namespaces::create('x');
    let (tx, rx) = mpsc::channel();
    let mut obs = Observer {
        rx,
        seen: Vec::new(),
    };
    let mut a = Node::spawn(&ns, "A", 1, tx.clone());
    let mut b = Node::spawn(&ns, "B", 2, tx);
    let window = Duration::from_millis(DELAY_MS * THRESHOLD);

    // Both see each other's route Up, with the seed's log lines.
    obs.wait_for(
        Duration::from_secs(5),
        "A's route up",
        route_is("A", A_ADDR, B_ADDR, RouteState::Up),
    );
    obs.wait_for(
        Duration::from_secs(5),
        "B's route up",
        route_is("B", B_ADDR, A_ADDR, RouteState::Up),
    );
    obs.wait_for(Duration::from_secs(1), "Added route line", logged("A", format!("INFO [NETFT] Added route <struct mscs::FaultTolerantRoute> <realLocal>{A_ADDR}:~{PORT}~</realLocal> <realRemote>{B_ADDR}:~{PORT}~</realRemote> <Delay>100</Delay> <Threshold>3</Threshold>")));
    obs.wait_for(
        Duration::from_secs(1),
        "Marking Route up line",
        logged(
            "A",
            format!("INFO [IM] Marking Route from {A_ADDR}:~{PORT}~ to {B_ADDR}:~{PORT}~ as up"),
        ),
    );

    // The network-up line is the last thing a shell says when its route comes up.
    for node in ["A", "B"] {
        obs.wait_for(
            Duration::from_secs(1),
            "network up line",
            logged(node, "Network 'net1' is up".into()),
        );
    }

    // Garbage and a heartbeat under another key, sent from inside B's namespace to A's socket:
    // dropped and logged once, and A's route to B stays Up.
    obs.forget();
    send_from_namespace(&ns.b, B_ADDR, 40000, A_ADDR);
    obs.wait_for(
        Duration::from_secs(2),
        "A's drop line",
        logged(
            "A",
            format!("Dropped datagram from {B_ADDR}:~40000~ to {A_ADDR}:~{PORT}~"),
        ),
    );
    // A's counters show all three (the status is refreshed every Delay).
    let deadline = Instant::now() + Duration::from_secs(2);
    let counters = loop {
        let c = a.status.get().counters;
        if c.forged + c.malformed >= 3 || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        (counters.forged, counters.malformed),
        (1, 2),
        "{counters:?}"
    );
    let route = a.status.get().routes[0].clone();
    assert_eq!(route.state, RouteState::Up);
    assert!(
        route.received > 0 && route.last_heard_age_ms.is_some(),
        "{route:?}"
    );
    let drops = obs
        .seen
        .iter()
        .filter(|s| matches!(&s.what, What::Log(l) if l.contains("Dropped datagram")))
        .count();
    assert_eq!(drops, 1, "three bad datagrams, one line");
    assert!(
        !obs.seen
            .iter()
            .any(|s| matches!(s.what, What::Route(..) | What::Node(..))),
        "bad datagrams changed no state: {:#?}",
        obs.seen
    );

    // Link down in A's namespace: netlink reports it, both routes go Down at once.
    obs.forget();
    let cut = Instant::now();
    ip(&["-n", &ns.a, "link", "set", &ns.dev_a, "down"]);
    let a_down = obs.wait_for(
        window,
        "A's route down",
        route_is("A", A_ADDR, B_ADDR, RouteState::Down),
    );
    let b_down = obs.wait_for(
        window,
        "B's route down",
        route_is("B", B_ADDR, A_ADDR, RouteState::Down),
    );
    let a_ms = a_down.at.duration_since(cut).as_millis();
    let b_ms = b_down.at.duration_since(cut).as_millis();
    println!(
        "link down -> route Down: A after {a_ms} ms, B after {b_ms} ms (Delay x Threshold = {} ms)",
        window.as_millis()
    );
    assert!(a_down.at.duration_since(cut) < window && b_down.at.duration_since(cut) < window);
    obs.wait_for(
        Duration::ZERO,
        "A's carrier line",
        logged("A", "lost carrier (link down)".into()),
    );
    obs.wait_for(
        Duration::ZERO,
        "B's carrier line",
        logged("B", "lost carrier (link down)".into()),
    );
    obs.wait_for(Duration::ZERO, "A's 1127", |s| {
        s.node == "A" && matches!(s.what, What::Event(1127))
    });
    assert!(
        !obs.seen.iter().any(
            |s| matches!(&s.what, What::Log(l) if l.contains("heartbeats in a row were missed"))
        ),
        "the link, not missed heartbeats, took the routes down"
    );

    // Link up: both routes come back on the next good heartbeats.
    obs.forget();
    let healed = Instant::now();
    ip(&["-n", &ns.a, "link", "set", &ns.dev_a, "up"]);
    let a_up = obs.wait_for(
        Duration::from_secs(5),
        "A's route up again",
        route_is("A", A_ADDR, B_ADDR, RouteState::Up),
    );
    obs.wait_for(
        Duration::from_secs(5),
        "B's route up again",
        route_is("B", B_ADDR, A_ADDR, RouteState::Up),
    );
    println!(
        "link up -> route Up: A after {} ms",
        a_up.at.duration_since(healed).as_millis()
    );

    // Stop B: A's route and node go Down within Delay x Threshold + one Delay.
    obs.forget();
    let killed = Instant::now();
    b.kill();
    let bound = window + Duration::from_millis(DELAY_MS);
    let down = obs.wait_for(
        bound * 3,
        "A's route down after B died",
        route_is("A", A_ADDR, B_ADDR, RouteState::Down),
    );
    let node_down = obs.wait_for(Duration::from_secs(1), "node B down", |s| {
        s.node == "A" && matches!(s.what, What::Node(NodeId(2), NodeState::Down))
    });
    obs.wait_for(Duration::ZERO, "event 1135", |s| {
        s.node == "A" && matches!(s.what, What::Event(1135))
    });
    let took = down.at.duration_since(killed);
    println!(
        "peer stopped -> route Down after {} ms (bound {} ms)",
        took.as_millis(),
        bound.as_millis()
    );
    assert!(took <= bound, "route Down after {took:?}, bound {bound:?}");
    assert!(node_down.at.duration_since(killed) <= bound);
    obs.wait_for(
        Duration::ZERO,
        "the miss line",
        logged("A", "heartbeats in a row were missed".into()),
    );

    a.kill();
    drop(ns);
}
