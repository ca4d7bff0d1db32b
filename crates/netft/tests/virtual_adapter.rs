//! The virtual adapter end to end: two network namespaces joined by two veth networks (net1
//! 192.0.2.0/24 at Priority 1, net2 198.51.100.0/24 at Priority 2), one NetFT shell and one
//! adapter per namespace (SameSubnetDelay 100 / Threshold 5 through the test-only override), and
//! `keelson0` at 203.0.113.1/24 and 203.0.113.2/24. One TCP connection between the virtual
//! addresses streams a counter sequence while net1 is cut and healed again — once by setting A's
//! veth down (netlink tells both shells at once), once by taking A's port out of a bridge in a
//! third namespace (nothing tells them; the routes go Down on missed heartbeats): every byte arrives in order on the same connection, neither kernel counts a reset,
//! and the adapters' counters show the frames moving to net2 and back. Needs root: fails without it
//! when CI=true, skips with a reason otherwise. Everything it creates is removed even on failure.

use keelson_netft::{
    Adapter, AdapterConfig, AdapterHandle, AdapterLog, Candidate, ClusterKey, DetectorConfig,
    FrameHeader, InterfaceSpec, NetftEvent, NetftSettings, NetftSink, NetworkSpec, NodeId,
    NodeSpec, NodeState, RouteKey, RouteState, Shell, StatusHandle, Topology,
};
use keelson_types::LogLevel;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const DELAY_MS: u32 = 100;
const THRESHOLD: u32 = 5;
const PORT: u16 = 13344;
const TCP_PORT: u16 = 5001;
const KEY: &[u8] = b"virtual-adapter-test-cluster-key";
const A_NET1: &str = "192.0.2.1";
const B_NET1: &str = "192.0.2.2";
const A_NET2: &str = "198.51.100.1";
const B_NET2: &str = "198.51.100.2";
const A_VIRTUAL: &str = "203.0.113.1";
const B_VIRTUAL: &str = "203.0.113.2";
/// Bytes the stream must make progress by in each phase.
const PHASE_BYTES: u64 = 2 << 20;
/// One write of the stream.
const CHUNK: usize = 16 * 1024;
/// The writer stops by itself after this many chunks (the loop is bounded even if the test is not).
const MAX_CHUNKS: u64 = 20_000;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn ip_addr(s: &str) -> IpAddr {
    s.parse().unwrap()
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

/// How net1 is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// A's net1 veth is set down: both ends lose carrier, netlink tells both shells at once.
    LinkDown,
    /// net1 runs through a bridge in a third namespace and A's port leaves the bridge: both ends
    /// keep carrier, nothing tells the shells, the routes go Down on missed heartbeats.
    Silent,
}

/// Two nodes' namespaces, a switch namespace for the silent cut, and the links between them;
/// removed on drop, even when the test fails.
struct Namespaces {
    a: String,
    b: String,
    /// Holds net1's bridge (`Cut::Silent` only).
    switch: Option<String>,
    /// (A's device, B's device) on net1 and on net2.
    net1: (String, String),
    net2: (String, String),
    /// The switch ports facing A and B, and the bridge.
    ports: (String, String, String),
}

impl Namespaces {
    fn create(cut: Cut) -> Namespaces {
        let pid = std::process::id();
        let tag = if cut == Cut::Silent { 's' } else { 'l' };
        let ns = Namespaces {
            a: format!("kvad{pid}{tag}a"),
            b: format!("kvad{pid}{tag}b"),
            switch: (cut == Cut::Silent).then(|| format!("kvad{pid}{tag}s")),
            net1: (format!("kv{pid}{tag}1a"), format!("kv{pid}{tag}1b")),
            net2: (format!("kv{pid}{tag}2a"), format!("kv{pid}{tag}2b")),
            ports: (
                format!("kp{pid}{tag}a"),
                format!("kp{pid}{tag}b"),
                format!("kb{pid}{tag}"),
            ),
        };
        // `ns` is dropped, removing whatever was made, if any step below fails.
        for name in [Some(&ns.a), Some(&ns.b), ns.switch.as_ref()]
            .into_iter()
            .flatten()
        {
            ip(&["netns", "add", name]);
        }
        // Distinct ifindexes on the two ends of a pair: the kernel passes a carrier change on at
        // once only for "urgent" devices, and a veth whose ifindex equals its peer's is not one.
        let veth =
            |dev_a: &str, ns_a: &str, index_a: &str, dev_b: &str, ns_b: &str, index_b: &str| {
                ip(&[
                    "link", "add", dev_a, "index", index_a, "netns", ns_a, "type", "veth", "peer",
                    "name", dev_b, "index", index_b, "netns", ns_b,
                ]);
            };
        veth(&ns.net2.0, &ns.a, "43", &ns.net2.1, &ns.b, "44");
        match &ns.switch {
            None => veth(&ns.net1.0, &ns.a, "41", &ns.net1.1, &ns.b, "42"),
            Some(switch) => {
                let (port_a, port_b, bridge) = &ns.ports;
                veth(&ns.net1.0, &ns.a, "41", port_a, switch, "51");
                veth(&ns.net1.1, &ns.b, "42", port_b, switch, "52");
                ip(&["-n", switch, "link", "add", bridge, "type", "bridge"]);
                for dev in [port_a, port_b] {
                    ip(&["-n", switch, "link", "set", dev, "master", bridge]);
                    ip(&["-n", switch, "link", "set", dev, "up"]);
                }
                ip(&["-n", switch, "link", "set", bridge, "up"]);
            }
        }
        for (netns, dev, addr) in [
            (&ns.a, &ns.net1.0, A_NET1),
            (&ns.b, &ns.net1.1, B_NET1),
            (&ns.a, &ns.net2.0, A_NET2),
            (&ns.b, &ns.net2.1, B_NET2),
        ] {
            ip(&[
                "-n",
                netns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                dev,
            ]);
            ip(&["-n", netns, "link", "set", dev, "up"]);
        }
        ns
    }

    /// Cuts net1 between A and B.
    fn cut(&self, cut: Cut) {
        match &self.switch {
            Some(switch) if cut == Cut::Silent => {
                ip(&["-n", switch, "link", "set", &self.ports.0, "nomaster"])
            }
            _ => ip(&["-n", &self.a, "link", "set", &self.net1.0, "down"]),
        }
    }

    /// Joins net1 again.
    fn heal(&self, cut: Cut) {
        match &self.switch {
            Some(switch) if cut == Cut::Silent => ip(&[
                "-n",
                switch,
                "link",
                "set",
                &self.ports.0,
                "master",
                &self.ports.2,
            ]),
            _ => ip(&["-n", &self.a, "link", "set", &self.net1.0, "up"]),
        }
    }

    fn path(name: &str) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{name}"))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace destroys the devices inside it, and with them the veth pairs.
        for name in [Some(&self.a), Some(&self.b), self.switch.as_ref()]
            .into_iter()
            .flatten()
        {
            let status = Command::new("ip").args(["netns", "del", name]).status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("cleanup: ip netns del {name} failed: {status:?}");
            }
        }
    }
}

/// Runs `f` on a thread inside the namespace `name` and returns what it returns.
fn in_namespace<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = Namespaces::path(name);
    std::thread::spawn(move || {
        keelson_sys::netns::enter_netns(&path).expect("enter the namespace");
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// Something a node reported, stamped with when.
#[derive(Debug, Clone)]
enum What {
    Log(String),
    Route(RouteKey, RouteState),
}

#[derive(Debug, Clone)]
struct Seen {
    node: &'static str,
    at: Instant,
    what: What,
}

#[derive(Clone)]
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
    fn raise(&mut self, _event: &NetftEvent) {}
    fn route_state(&mut self, route: RouteKey, state: RouteState) {
        self.send(What::Route(route, state));
    }
    fn node_state(&mut self, _node: NodeId, _state: NodeState) {}
    fn node_incarnation(&mut self, _node: NodeId, _incarnation: u64) {}
}

impl AdapterLog for ChannelSink {
    fn log(&mut self, level: LogLevel, component: &str, message: &str) {
        self.send(What::Log(format!("{level} [{component}] {message}")));
    }
}

/// One shell and one adapter on a thread of their own, inside a namespace.
struct Node {
    status: StatusHandle,
    adapter: AdapterHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Node {
    fn spawn(
        namespace: &str,
        name: &'static str,
        devs: (&str, &str),
        tx: mpsc::Sender<Seen>,
    ) -> Node {
        let path = Namespaces::path(namespace);
        let local = if name == "A" { 1 } else { 2 };
        let config = config(local, devs);
        let adapter_config = adapter_config(local);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            keelson_sys::netns::enter_netns(&path).map_err(|e| e.to_string())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            runtime.block_on(async move {
                let sink = ChannelSink { node: name, tx };
                let mut shell = Shell::start(config, sink.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                let plane = shell.take_data_plane().ok_or("no data plane")?;
                let adapter = Adapter::start(adapter_config, plane, sink)
                    .await
                    .map_err(|e| e.to_string())?;
                ready_tx
                    .send((shell.status(), adapter.status()))
                    .map_err(|e| e.to_string())?;
                let shell = tokio::spawn(shell.run());
                let adapter = tokio::spawn(adapter.run());
                tokio::select! {
                    r = shell => Err(format!("shell ended: {r:?}")),
                    r = adapter => Err(format!("adapter ended: {r:?}")),
                    _ = stopped => Ok(()),
                }
            })
        });
        let (status, adapter) = match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(handles) => handles,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("node {name} did not start: {:?}", thread.join())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("node {name} did not start within 10 s"),
        };
        Node {
            status,
            adapter,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops the node and checks that it had not ended on its own.
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The node may already have ended; join reports how.
            let _ignored_if_already_ended = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let result = thread.join().expect("node thread panicked");
            assert_eq!(result, Ok(()), "node ended with an error");
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

fn config(local: u32, devs: (&str, &str)) -> DetectorConfig {
    let iface = |adapter: &str, addr: &str, network: &str| InterfaceSpec {
        adapter: adapter.into(),
        addr: ip_addr(addr),
        prefix_len: 24,
        network: network.into(),
    };
    // Each namespace knows its own device names; the peer's are only labels.
    let (a_devs, b_devs) = if local == 1 {
        (devs, ("peer1", "peer2"))
    } else {
        (("peer1", "peer2"), devs)
    };
    let topology = Topology::new(
        NodeId(local),
        vec![
            NodeSpec {
                id: NodeId(1),
                name: "A".into(),
                interfaces: vec![
                    iface(a_devs.0, A_NET1, "net1"),
                    iface(a_devs.1, A_NET2, "net2"),
                ],
            },
            NodeSpec {
                id: NodeId(2),
                name: "B".into(),
                interfaces: vec![
                    iface(b_devs.0, B_NET1, "net1"),
                    iface(b_devs.1, B_NET2, "net2"),
                ],
            },
        ],
        vec![
            NetworkSpec {
                name: "net1".into(),
                priority: 1,
            },
            NetworkSpec {
                name: "net2".into(),
                priority: 2,
            },
        ],
    )
    .unwrap();
    DetectorConfig {
        topology,
        settings: NetftSettings::test_only_override(DELAY_MS, THRESHOLD).unwrap(),
        key: ClusterKey::new(KEY).unwrap(),
        incarnation: 1,
        port: PORT,
        contact: None,
    }
}

fn adapter_config(local: u32) -> AdapterConfig {
    let (mine, peer, peer_id) = if local == 1 {
        (A_VIRTUAL, B_VIRTUAL, 2)
    } else {
        (B_VIRTUAL, A_VIRTUAL, 1)
    };
    AdapterConfig {
        tun_name: "keelson0".into(),
        local_address: ip_addr(mine),
        prefix_len: 24,
        peers: BTreeMap::from([(ip_addr(peer), NodeId(peer_id))]),
    }
}

/// Everything both nodes reported, and waits on it with deadlines.
struct Observer {
    rx: mpsc::Receiver<Seen>,
    seen: Vec<Seen>,
}

impl Observer {
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

    fn logs(&mut self, node: &str, needle: &str) -> Vec<String> {
        while let Ok(seen) = self.rx.try_recv() {
            self.seen.push(seen);
        }
        self.seen
            .iter()
            .filter(|s| s.node == node)
            .filter_map(|s| match &s.what {
                What::Log(line) if line.contains(needle) => Some(line.clone()),
                _ => None,
            })
            .collect()
    }
}

fn route(local: &str, remote: &str) -> RouteKey {
    RouteKey {
        local: ip_addr(local),
        remote: ip_addr(remote),
    }
}

fn route_is(node: &'static str, key: RouteKey, state: RouteState) -> impl Fn(&Seen) -> bool {
    move |s| s.node == node && matches!(s.what, What::Route(k, st) if k == key && st == state)
}

/// Polls `f` until it gives Some, for at most `limit`.
fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The route an adapter sends its peer's packets on now.
fn path_of(adapter: &AdapterHandle) -> Option<Candidate> {
    adapter.get().paths.values().next().copied().flatten()
}

fn sent_on(adapter: &AdapterHandle, key: RouteKey) -> u64 {
    adapter
        .get()
        .counters
        .sent_by_route
        .get(&key)
        .copied()
        .unwrap_or(0)
}

/// The kernel's TCP counters of one namespace (`/proc/thread-self/net/snmp`, line `Tcp:`).
fn tcp_counters(namespace: &str) -> BTreeMap<String, i64> {
    let snmp = in_namespace(namespace, || {
        std::fs::read_to_string("/proc/thread-self/net/snmp").expect("read snmp")
    });
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (
        tcp.next().expect("Tcp header"),
        tcp.next().expect("Tcp values"),
    );
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .map(|(n, v)| (n.to_string(), v.parse().expect("a number")))
        .collect()
}

/// The byte at `offset` of the stream: consecutive big-endian u64 counters.
fn stream_byte(offset: u64) -> u8 {
    (offset / 8).to_be_bytes()[(offset % 8) as usize]
}

/// What the reader saw.
#[derive(Debug)]
struct ReadReport {
    bytes: u64,
    /// The longest time between two reads, and how many bytes had arrived before it.
    longest_gap: Duration,
    gap_at: u64,
}

/// Reads to end of stream, checking every byte; `progress` counts bytes as they arrive.
fn read_stream(mut stream: TcpStream, progress: Arc<AtomicU64>) -> Result<ReadReport, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    let (mut last, mut longest_gap, mut gap_at) = (Instant::now(), Duration::ZERO, 0);
    for _ in 0..(MAX_CHUNKS * CHUNK as u64) {
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("read after {offset} bytes: {e} ({:?})", e.kind()))?;
        if n == 0 {
            return Ok(ReadReport {
                bytes: offset,
                longest_gap,
                gap_at,
            });
        }
        if let Some(bad) = (0..n).find(|&i| buf[i] != stream_byte(offset + i as u64)) {
            return Err(format!(
                "byte {} is {:#04x}, not {:#04x}",
                offset + bad as u64,
                buf[bad],
                stream_byte(offset + bad as u64)
            ));
        }
        let gap = last.elapsed();
        if gap > longest_gap && offset > 0 {
            (longest_gap, gap_at) = (gap, offset);
        }
        last = Instant::now();
        offset += n as u64;
        progress.store(offset, Ordering::Relaxed);
    }
    Err("the stream did not end".into())
}

/// Writes the counter stream until `stop` (or MAX_CHUNKS), then shuts down the write side.
fn write_stream(mut stream: TcpStream, stop: Arc<AtomicBool>) -> Result<u64, String> {
    stream
        .set_write_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    let mut offset = 0u64;
    let mut chunk = vec![0u8; CHUNK];
    for _ in 0..MAX_CHUNKS {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = stream_byte(offset + i as u64);
        }
        stream
            .write_all(&chunk)
            .map_err(|e| format!("write after {offset} bytes: {e} ({:?})", e.kind()))?;
        offset += CHUNK as u64;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    Ok(offset)
}

/// From inside B's namespace, sends A a frame under the wrong key and a replay of B's very first
/// frame number (an authentic frame A has long seen the like of), from B's net1 address.
fn inject_forged_and_replayed(namespace: &str) {
    in_namespace(namespace, || {
        let socket = std::net::UdpSocket::bind((ip_addr(B_NET1), 0)).unwrap();
        let mut packet = vec![0u8; 28];
        packet[0] = 0x45;
        packet[12..16].copy_from_slice(&[203, 0, 113, 2]);
        packet[16..20].copy_from_slice(&[203, 0, 113, 1]);
        let replay = FrameHeader {
            node: 2,
            incarnation: 1,
            sequence: 1,
        };
        let wrong_key = ClusterKey::new(b"not-this-cluster's-key").unwrap();
        for datagram in [
            replay.encode(&packet, &wrong_key).unwrap(),
            replay
                .encode(&packet, &ClusterKey::new(KEY).unwrap())
                .unwrap(),
        ] {
            socket.send_to(&datagram, (ip_addr(A_NET1), PORT)).unwrap();
        }
    });
}

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
fn one_tcp_stream_over_keelson0_survives_taking_the_link_it_rides_on_down() {
    if have_root() {
        stream_through_a_cut(Cut::LinkDown);
    }
}

#[test]
fn one_tcp_stream_over_keelson0_survives_a_cut_only_missed_heartbeats_reveal() {
    if have_root() {
        stream_through_a_cut(Cut::Silent);
    }
}

/// Streams over keelson0 while net1 is cut and healed; see the top of the file.
fn stream_through_a_cut(how: Cut) {
    let ns = Namespaces::create(how);
    let (tx, rx) = mpsc::channel();
    let mut obs = Observer {
        rx,
        seen: Vec::new(),
    };
    let mut a = Node::spawn(&ns.a, "A", (&ns.net1.0, &ns.net2.0), tx.clone());
    let mut b = Node::spawn(&ns.b, "B", (&ns.net1.1, &ns.net2.1), tx);
    let (a1, a2) = (route(A_NET1, B_NET1), route(A_NET2, B_NET2));
    let (b1, b2) = (route(B_NET1, A_NET1), route(B_NET2, A_NET2));
    for (node, key) in [("A", a1), ("A", a2), ("B", b1), ("B", b2)] {
        obs.wait_for(
            Duration::from_secs(5),
            "routes Up",
            route_is(node, key, RouteState::Up),
        );
    }
    assert_eq!(
        a.adapter.get().mtu,
        1500 - 20 - 8 - 60,
        "keelson0's MTU leaves room for the outer headers"
    );
    let a_up = obs.logs(
        "A",
        "Virtual adapter keelson0 is up: 203.0.113.1/24, MTU 1412",
    );
    assert_eq!(a_up.len(), 1, "{:#?}", obs.seen);
    poll(Duration::from_secs(2), "both adapters on net1", || {
        (path_of(&a.adapter).map(|c| c.key) == Some(a1)
            && path_of(&b.adapter).map(|c| c.key) == Some(b1))
        .then_some(())
    });

    // One TCP connection from B's virtual address to A's.
    let tcp_a0 = tcp_counters(&ns.a);
    let tcp_b0 = tcp_counters(&ns.b);
    let listener = in_namespace(&ns.a, || {
        std::net::TcpListener::bind((ip_addr(A_VIRTUAL), TCP_PORT)).expect("listen")
    });
    let client = in_namespace(&ns.b, || {
        TcpStream::connect_timeout(
            &SocketAddr::new(ip_addr(A_VIRTUAL), TCP_PORT),
            Duration::from_secs(5),
        )
        .expect("connect over keelson0")
    });
    assert_eq!(client.local_addr().unwrap().ip(), ip_addr(B_VIRTUAL));
    let (server, peer) = listener.accept().expect("accept");
    assert_eq!(peer, client.local_addr().unwrap());
    let progress = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let progress = progress.clone();
        std::thread::spawn(move || read_stream(server, progress))
    };
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || write_stream(client, stop))
    };
    // Waits until PHASE_BYTES more than had arrived when it is called have arrived.
    let advance = |phase: &str| {
        let from = progress.load(Ordering::Relaxed);
        poll(Duration::from_secs(30), phase, || {
            (progress.load(Ordering::Relaxed) >= from + PHASE_BYTES).then_some(())
        });
    };

    // Phase 1: all on net1, nothing on net2.
    advance("the first 2 MiB over net1");
    assert!(sent_on(&a.adapter, a1) > 0 && sent_on(&b.adapter, b1) > 0);
    assert_eq!(
        (sent_on(&a.adapter, a2), sent_on(&b.adapter, b2)),
        (0, 0),
        "Priority 2 unused while Priority 1 is Up"
    );

    // A forged frame and a replayed one, from B's interface: dropped, counted, logged once.
    inject_forged_and_replayed(&ns.b);
    let counters = poll(
        Duration::from_secs(2),
        "the injected frames counted",
        || {
            let c = a.adapter.get().counters;
            (c.forged + c.replayed >= 2).then_some(c)
        },
    );
    assert_eq!((counters.forged, counters.replayed), (1, 1), "{counters:?}");
    obs.wait_for(Duration::from_secs(2), "the drop line", |s| {
        s.node == "A" && matches!(&s.what, What::Log(l) if l.contains(&format!("Dropped frame from {B_NET1}:")) && l.contains("HMAC does not verify"))
    });
    assert_eq!(
        obs.logs("A", "Dropped frame from").len(),
        1,
        "two drops from one address within a minute, one line"
    );

    // Phase 2: cut net1; the adapters move to net2; the stream goes on.
    let cut = Instant::now();
    ns.cut(how);
    let a_down = obs.wait_for(
        Duration::from_secs(2),
        "A's net1 route Down",
        route_is("A", a1, RouteState::Down),
    );
    obs.wait_for(
        Duration::from_secs(2),
        "B's net1 route Down",
        route_is("B", b1, RouteState::Down),
    );
    let cause = match how {
        Cut::LinkDown => format!("is down: its local interface {} lost carrier", ns.net1.0),
        Cut::Silent => "heartbeats in a row were missed (Delay 100 ms, Threshold 5)".to_string(),
    };
    assert_eq!(
        obs.logs("A", &cause).len(),
        1,
        "A's route went Down because {cause}: {:#?}",
        obs.seen
    );
    if how == Cut::Silent {
        assert_eq!(obs.logs("B", &cause).len(), 1, "B's too");
        // Down Threshold x Delay + Delay/2 after the last heartbeat, which came at most one Delay
        // before the cut: not at once, as a link event would have it.
        let earliest = Duration::from_millis(u64::from(DELAY_MS * THRESHOLD - DELAY_MS / 2));
        let took = a_down.at.duration_since(cut);
        assert!(took >= earliest, "Down after {took:?}, before {earliest:?}");
        assert!(
            obs.logs("A", "lost carrier").is_empty(),
            "nothing told the shells"
        );
    }
    let (a_on_net2, b_on_net2) = poll(Duration::from_secs(2), "both adapters on net2", || {
        let (sa, sb) = (a.adapter.get(), b.adapter.get());
        let on_net2 = |s: &keelson_netft::AdapterStatus, key| {
            s.paths.values().next().copied().flatten().map(|c| c.key) == Some(key)
        };
        (on_net2(&sa, a2) && on_net2(&sb, b2)).then_some((sa, sb))
    });
    let moved_after = cut.elapsed();
    advance("2 MiB more once the adapters moved to net2");
    let (a_net2, b_net2) = (a.adapter.get(), b.adapter.get());
    assert_eq!(
        sent_on(&a.adapter, a1),
        a_on_net2.counters.sent_by_route[&a1],
        "nothing more on the Down route"
    );
    assert_eq!(
        sent_on(&b.adapter, b1),
        b_on_net2.counters.sent_by_route[&b1]
    );
    let b_frames_net2 = b_net2.counters.sent_by_route.get(&b2).copied().unwrap_or(0);
    let a_frames_net2 = a_net2.counters.sent_by_route.get(&a2).copied().unwrap_or(0);
    assert!(
        b_frames_net2 > 1000,
        "B's data now rides net2: {:?}",
        b_net2.counters
    );
    assert!(
        a_frames_net2 > 100,
        "A's acknowledgements too: {:?}",
        a_net2.counters
    );
    assert_eq!(
        a.status
            .get()
            .routes
            .iter()
            .find(|r| r.key == a2)
            .unwrap()
            .state,
        RouteState::Up
    );
    assert!(!obs.logs("A", "packets to node 2 move from the route from 192.0.2.1:~13344~ to 192.0.2.2:~13344~ (Priority 1) to the route from 198.51.100.1:~13344~ to 198.51.100.2:~13344~ (Priority 2)").is_empty());

    // Phase 3: heal net1; traffic goes back to Priority 1.
    let net1_before_heal = sent_on(&b.adapter, b1);
    ns.heal(how);
    poll(Duration::from_secs(5), "both adapters back on net1", || {
        (path_of(&a.adapter).map(|c| c.key) == Some(a1)
            && path_of(&b.adapter).map(|c| c.key) == Some(b1))
        .then_some(())
    });
    let net2_at_heal = sent_on(&b.adapter, b2);
    advance("2 MiB more once the adapters moved back to net1");
    assert!(
        sent_on(&b.adapter, b1) > net1_before_heal + 1000,
        "back on net1"
    );
    assert!(sent_on(&b.adapter, b2) <= net2_at_heal + 1, "and off net2");

    // End of stream: every byte in order on the one connection, no error, no reset.
    stop.store(true, Ordering::Relaxed);
    let written = writer
        .join()
        .expect("writer panicked")
        .expect("the writer saw no error");
    let report = reader
        .join()
        .expect("reader panicked")
        .expect("the reader saw every byte in order and no error");
    assert_eq!(report.bytes, written, "all bytes arrived");
    let (tcp_a1, tcp_b1) = (tcp_counters(&ns.a), tcp_counters(&ns.b));
    let delta = |before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>, name: &str| {
        after[name] - before[name]
    };
    for (node, before, after) in [("A", &tcp_a0, &tcp_a1), ("B", &tcp_b0, &tcp_b1)] {
        for counter in ["EstabResets", "OutRsts", "AttemptFails", "InErrs"] {
            assert_eq!(delta(before, after, counter), 0, "{node}: TCP {counter}");
        }
        assert_eq!(
            delta(before, after, "ActiveOpens") + delta(before, after, "PassiveOpens"),
            1,
            "{node}: one connection"
        );
    }
    let (ca, cb) = (a.adapter.get().counters, b.adapter.get().counters);
    for c in [&ca, &cb] {
        assert_eq!(
            (
                c.malformed,
                c.wrong_sender,
                c.spoofed_source,
                c.not_for_us,
                c.queue_full,
                c.write_failures
            ),
            (0, 0, 0, 0, 0, 0),
            "{c:?}"
        );
    }
    assert_eq!((cb.forged, cb.replayed), (0, 0), "{cb:?}");
    println!(
        "streamed {} MiB over one connection; net1 cut: A's route Down after {} ms, adapters on net2 after {} ms, longest read gap {} ms (at byte {}); B's TCP retransmits {}; frames B->A: net1 {}, net2 {}; A->B: net1 {}, net2 {}; send failures A {} B {}",
        written >> 20,
        a_down.at.duration_since(cut).as_millis(),
        moved_after.as_millis(),
        report.longest_gap.as_millis(),
        report.gap_at,
        delta(&tcp_b0, &tcp_b1, "RetransSegs"),
        cb.sent_by_route[&b1],
        cb.sent_by_route[&b2],
        ca.sent_by_route[&a1],
        ca.sent_by_route[&a2],
        ca.send_failures,
        cb.send_failures,
    );
    a.stop();
    b.stop();
    drop(ns);
}
