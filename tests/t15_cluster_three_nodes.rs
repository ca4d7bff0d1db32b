//! Three real keelson-rcm nodes in three network namespaces joined by two networks (two bridges in
//! a switch namespace of the test's own, 192.0.2.0/24 and 198.51.100.0/24): create on one, join
//! the others (a wrong key and an unlisted name are refused with nothing left behind), a change
//! made on any node is visible on all, a group runs only on its owner, a killed node does not stop
//! the majority from committing, and it catches up when restarted; heartbeats, cuts, quorum, evict,
//! and a restart of every node. Raft rides the NetFT virtual adapter (`keelson0`, 203.0.113.N):
//! while the network it uses is cut, one TCP stream between two nodes' virtual addresses keeps
//! flowing on the other network, and raft's term does not move. Everything the test creates is
//! removed, even when it fails. Root only: fails in CI without it.

mod common;

use common::lab::{root_or_skip, Lab};
use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
/// The nodes' virtual adapter addresses: node id N has 203.0.113.N.
const VIRTUAL_SUBNET: &str = "203.0.113.0/24";

/// Heartbeats at their defaults (Delay 1000 ms, Threshold 5): a node is Down within
/// Delay x Threshold + one Delay of its last heartbeat; the test allows 2 s more for its own polling.
const DOWN_BOUND: Duration = Duration::from_millis(1000 * 5 + 1000 + 2000);

/// Waits until `observer` sees `node` in `state`; how long it took.
fn wait_node(observer: &Rcm, node: &str, state: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if observer.node_state(node) == state {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "node {node} never became {state} on {} (is {})\n{}",
            observer.dir.display(),
            observer.node_state(node),
            observer.cluster_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn group_exists(rcm: &Rcm, name: &str) -> bool {
    matches!(
        rcm.request(R::GroupGet { name: name.into() }).first(),
        Some(keelson_proto::ControlReply::Json(_))
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

/// Node `name`'s id and its virtual address (203.0.113.id), from `observer`'s node list.
fn virtual_addr(observer: &Rcm, name: &str) -> std::net::IpAddr {
    let list = observer.ok(R::NodeList);
    let id = list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["id"].as_u64())
        .unwrap_or_else(|| panic!("no id for {name}: {list}"));
    format!("203.0.113.{id}").parse().unwrap()
}

/// `observer`'s virtual adapter's route to `peer` (`LOCAL -> REMOTE`), empty when none is Up.
fn adapter_route(observer: &Rcm, peer: &str) -> String {
    let list = observer.ok(R::NetworkList);
    list["virtual_adapter"]["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["node"] == peer)
        .and_then(|p| p["route"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Waits until `observer`'s adapter sends `peer`'s packets on a route from `local_prefix`.
fn wait_adapter_route(observer: &Rcm, peer: &str, local_prefix: &str) {
    let start = Instant::now();
    while !adapter_route(observer, peer).starts_with(local_prefix) {
        assert!(
            start.elapsed() < LIMIT,
            "{}'s virtual adapter never routed {peer} from {local_prefix}: {}",
            observer.dir.display(),
            observer.ok(R::NetworkList)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The byte at `offset` of the test stream (never constant, so a lost or repeated run shows).
fn stream_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// The most chunks either end moves: bounds the stream's loops.
const MAX_CHUNKS: u64 = 1 << 20;
const CHUNK: usize = 16 * 1024;

/// One TCP connection from `from_ns` to `to` (a virtual address in `to_ns`), streaming a known
/// sequence until stopped; `progress` counts the bytes received in order.
struct Stream {
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
    reader: std::thread::JoinHandle<Result<u64, String>>,
    writer: std::thread::JoinHandle<Result<u64, String>>,
}

impl Stream {
    fn start(from_ns: &str, to_ns: &str, to: std::net::IpAddr) -> Stream {
        let (port_tx, port_rx) = mpsc::channel();
        let progress = Arc::new(AtomicU64::new(0));
        let seen = progress.clone();
        let to_path = PathBuf::from(format!("/var/run/netns/{to_ns}"));
        let reader = std::thread::spawn(move || {
            keelson_sys::netns::enter_netns(&to_path).map_err(|e| e.to_string())?;
            let listener = TcpListener::bind(SocketAddr::new(to, 0)).map_err(|e| e.to_string())?;
            let _ = port_tx.send(listener.local_addr().map_err(|e| e.to_string())?.port());
            let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
            read_stream(stream, &seen)
        });
        let port = port_rx
            .recv_timeout(LIMIT)
            .expect("the stream's listener on the virtual address");
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let from_path = PathBuf::from(format!("/var/run/netns/{from_ns}"));
        let writer = std::thread::spawn(move || {
            keelson_sys::netns::enter_netns(&from_path).map_err(|e| e.to_string())?;
            let stream = TcpStream::connect_timeout(&SocketAddr::new(to, port), LIMIT)
                .map_err(|e| format!("connect to {to}:{port}: {e}"))?;
            write_stream(stream, &halt)
        });
        Stream {
            stop,
            progress,
            reader,
            writer,
        }
    }

    /// Waits until `bytes` more have arrived in order.
    fn advance(&self, bytes: u64, what: &str) {
        let (from, start) = (self.progress.load(Ordering::Relaxed), Instant::now());
        while self.progress.load(Ordering::Relaxed) < from + bytes {
            assert!(
                start.elapsed() < LIMIT && !self.reader.is_finished(),
                "the stream stalled {what} at {} bytes",
                self.progress.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the writer; (bytes written, bytes read in order), or the first error either end saw.
    fn finish(self) -> Result<(u64, u64), String> {
        self.stop.store(true, Ordering::Relaxed);
        let written = self.writer.join().expect("writer thread")?;
        let read = self.reader.join().expect("reader thread")?;
        Ok((written, read))
    }
}

fn read_stream(mut stream: TcpStream, progress: &AtomicU64) -> Result<u64, String> {
    stream
        .set_read_timeout(Some(LIMIT))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    for _ in 0..MAX_CHUNKS * CHUNK as u64 {
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("read after {offset} bytes: {e} ({:?})", e.kind()))?;
        if n == 0 {
            return Ok(offset);
        }
        if let Some(bad) = (0..n).find(|&i| buf[i] != stream_byte(offset + i as u64)) {
            return Err(format!("byte {} is out of sequence", offset + bad as u64));
        }
        offset += n as u64;
        progress.store(offset, Ordering::Relaxed);
    }
    Err("the stream never ended".into())
}

fn write_stream(mut stream: TcpStream, stop: &AtomicBool) -> Result<u64, String> {
    stream
        .set_write_timeout(Some(LIMIT))
        .map_err(|e| e.to_string())?;
    let mut chunk = vec![0u8; CHUNK];
    let mut offset = 0u64;
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

/// Waits until `observer` has both networks' routes to each of its two peers Up.
fn all_routes_up(observer: &Rcm) {
    let since = Instant::now();
    loop {
        let list = observer.ok(R::NetworkList);
        let routes = list["routes"].as_array().unwrap();
        if routes.len() == 4 && routes.iter().all(|r| r["state"] == "Up") {
            break;
        }
        assert!(
            since.elapsed() < LIMIT,
            "two networks to each of two peers, all Up on {}: {routes:?}",
            observer.dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every node's raft term, as its `cluster status` shows it.
fn terms(nodes: &[&Rcm]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| n.ok(R::ClusterStatus)["term"].as_u64().unwrap())
        .collect()
}

#[test]
fn three_nodes_create_join_replicate_and_survive_the_loss_of_one() {
    if !root_or_skip("t15") {
        return;
    }
    let lab = Lab::create("kc", 3);
    let n1 = lab.boot(0, Rcm::new_dir("t15-n1"));
    n1.ok(R::GroupCreate {
        name: "web".into(),
        properties: vec![],
    });
    n1.ok(R::ClusterCreate {
        name: "lab".into(),
        nodes: (0..3).map(Lab::node_spec).collect(),
        virtual_subnet: Some(VIRTUAL_SUBNET.into()),
    });
    let key = n1.dir.join("cluster.key").to_string_lossy().into_owned();

    let mut n2 = lab.boot(1, Rcm::new_dir("t15-n2"));
    let n3 = lab.boot(2, Rcm::new_dir("t15-n3"));
    // A key of another cluster (same name, other secret) is refused; nothing is left behind.
    let wrong = n3.dir.join("wrong.key");
    std::fs::write(
        &wrong,
        "keelson-cluster lab\n00112233445566778899aabbccddeeff\n",
    )
    .unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let e = n3.refused(R::NodeJoin {
        cluster: "192.0.2.1".into(),
        key_file: wrong.to_string_lossy().into_owned(),
        name: None,
    });
    assert!(e.contains("refused this node") || e.contains("key"), "{e}");
    for file in ["node.json", "raft.redb", "cluster.key"] {
        assert!(
            !n3.dir.join(file).exists(),
            "{file} left behind by a refused join"
        );
    }
    // A name the cluster does not list is refused by its leader.
    let e = n3.refused(R::NodeJoin {
        cluster: "192.0.2.1".into(),
        key_file: key.clone(),
        name: Some("stranger".into()),
    });
    assert!(e.contains("not listed in cluster 'lab'"), "{e}");

    for n in [&n2, &n3] {
        let done = n.ok(R::NodeJoin {
            cluster: "192.0.2.1".into(),
            key_file: key.clone(),
            name: None,
        });
        assert!(
            done.as_str().unwrap().contains("joined cluster 'lab'"),
            "{done}"
        );
    }
    // The configuration made before the cluster is everywhere, owned by n1.
    for n in [&n2, &n3] {
        wait_for_group(n, "web");
        let g = n.ok(R::GroupGet { name: "web".into() });
        assert_eq!(g["owner_node"], "n1", "{g}");
    }
    // The heartbeat network: every node sees the others Up.
    for n in [&n1, &n2, &n3] {
        for peer in ["n1", "n2", "n3"] {
            wait_node(n, peer, "Up", LIMIT);
        }
    }
    // Every route Up (a node is Up as soon as one of its routes is).
    all_routes_up(&n1);
    let validation = n1.ok(R::Validate);
    assert_eq!(
        (
            validation["errors"].as_u64(),
            validation["warnings"].as_u64()
        ),
        (Some(0), Some(0)),
        "two networks, every route Up: {validation}"
    );
    let status = n3.ok(R::ClusterStatus);
    assert_eq!(status["voters"].as_array().unwrap().len(), 3, "{status}");
    assert_eq!(status["leader"], "n1", "{status}");

    // A change made on a follower is committed through the leader and seen on all.
    n2.ok(R::GroupCreate {
        name: "db".into(),
        properties: vec![],
    });
    for n in [&n1, &n3] {
        wait_for_group(n, "db");
    }
    assert_eq!(n1.ok(R::GroupGet { name: "db".into() })["owner_node"], "n2");

    // kill -9 one node: it is Down on the others within the bound, the other two still commit,
    // and it catches up when it comes back.
    n2.kill9();
    let killed = Instant::now();
    for n in [&n1, &n3] {
        wait_node(n, "n2", "Down", DOWN_BOUND.saturating_sub(killed.elapsed()));
    }
    println!(
        "n2 Down on n1 and n3 {} ms after kill -9",
        killed.elapsed().as_millis()
    );
    let n2_dir = n2.keep_dir();
    n3.ok(R::GroupCreate {
        name: "while-n2-was-down".into(),
        properties: vec![],
    });
    wait_for_group(&n1, "while-n2-was-down");
    let n2 = lab.boot(1, n2_dir);
    wait_for_group(&n2, "while-n2-was-down");
    assert!(group_exists(&n2, "db"));
    for n in [&n1, &n3] {
        wait_node(n, "n2", "Up", LIMIT);
    }

    // Raft rides the virtual adapter: cut the network its packets use (net1, Priority 1) under
    // n3. One TCP stream from n3's virtual address to n1's keeps flowing over net2, the same
    // connection all along, and no election happens (the term does not move).
    for (observer, peers) in [
        (&n1, ["n2", "n3"]),
        (&n2, ["n1", "n3"]),
        (&n3, ["n1", "n2"]),
    ] {
        for peer in peers {
            wait_adapter_route(observer, peer, "192.0.2.");
        }
    }
    let terms_before = terms(&[&n1, &n2, &n3]);
    let stream = Stream::start(&lab.nodes[2], &lab.nodes[0], virtual_addr(&n1, "n1"));
    stream.advance(1 << 20, "before the cut");
    let cut = Instant::now();
    lab.set_links(2, &["eth1"], false);
    wait_adapter_route(&n3, "n1", "198.51.100.");
    wait_adapter_route(&n1, "n3", "198.51.100.");
    stream.advance(1 << 20, "over net2 while net1 is cut");
    println!(
        "the stream moved to net2 and carried 1 MiB more {} ms after the cut",
        cut.elapsed().as_millis()
    );
    lab.set_links(2, &["eth1"], true);
    wait_adapter_route(&n3, "n1", "192.0.2.");
    stream.advance(1 << 20, "back on net1");
    let (written, read) = stream.finish().expect("one TCP connection, never reset");
    assert_eq!(written, read, "every byte arrived, in order, once");
    assert_eq!(
        terms(&[&n1, &n2, &n3]),
        terms_before,
        "losing one path must not start an election"
    );
    for peer in ["n1", "n2"] {
        assert_eq!(
            n3.node_state(peer),
            "Up",
            "one network cut took {peer} Down"
        );
    }
    // Healed: every node has every route back before the other network is cut (cutting it
    // sooner would be cutting both at once).
    for n in [&n1, &n2, &n3] {
        all_routes_up(n);
    }

    // Cut one network of n3: its routes on it go Down at once (netlink), no node goes Down.
    lab.set_links(2, &["eth2"], false);
    let start = Instant::now();
    loop {
        let list = n3.ok(R::NetworkList);
        let down = list["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["local"].as_str().unwrap().starts_with("198.51.100.") && r["state"] == "Down"
            })
            .count();
        if down == 2 {
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "n3's routes on network 2 never went Down: {list}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for peer in ["n1", "n2"] {
        assert_eq!(
            n3.node_state(peer),
            "Up",
            "one network cut must not take {peer} Down"
        );
    }
    let validation = n3.ok(R::Validate);
    assert!(validation["errors"].as_u64().unwrap() > 0, "{validation}");
    assert!(
        validation["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["interface"].as_str().unwrap_or_default().contains("eth2")),
        "the cut network's interfaces are named: {validation}"
    );
    lab.set_links(2, &["eth2"], true);

    // Cut every link of n3: it loses quorum on its side (event 1177, changes refused with the
    // reason) and is Down on the majority, which still commits; healed, it catches up.
    lab.set_links(2, &["eth1", "eth2"], false);
    let cut = Instant::now();
    for peer in ["n1", "n2"] {
        wait_node(&n3, peer, "Down", DOWN_BOUND);
    }
    let e = n3.refused(R::GroupCreate {
        name: "from-the-minority".into(),
        properties: vec![],
    });
    assert!(e.contains("no quorum: 1 of 3 votes"), "{e}");
    assert!(
        n3.events().iter().any(|e| e["id"] == 1177),
        "event 1177 on the node that lost quorum"
    );
    wait_node(&n1, "n3", "Down", DOWN_BOUND.saturating_sub(cut.elapsed()));
    n1.ok(R::GroupCreate {
        name: "while-n3-was-cut".into(),
        properties: vec![],
    });
    lab.set_links(2, &["eth1", "eth2"], false);
    lab.set_links(2, &["eth1", "eth2"], true);
    for peer in ["n1", "n2"] {
        wait_node(&n3, peer, "Up", LIMIT);
    }
    wait_for_group(&n3, "while-n3-was-cut");
    assert!(
        !group_exists(&n1, "from-the-minority"),
        "a refused change was committed"
    );

    // With the default timing's contact lease, n3's groups may have moved the moment it was
    // Down (rcm/src/cluster/takeover.rs): give while-n2-was-down back to it, so that it owns one.
    if n1.group_json("while-n2-was-down")["owner_node"] != "n3" {
        n1.ok(R::GroupMove {
            name: "while-n2-was-down".into(),
            to: Some("n3".into()),
        });
    }
    common::rcm::wait_for("n3 owning while-n2-was-down on n1", LIMIT, || {
        n1.group_json("while-n2-was-down")["owner_node"] == "n3"
    });

    // Evict: a node that owns groups is refused, and so is this node; n3 owns none and goes, its
    // name no longer listed, and the two left still commit.
    let e = n1.refused(R::NodeEvict { name: "n2".into() });
    assert!(e.contains("owns group(s) db"), "{e}");
    let e = n1.refused(R::NodeEvict { name: "n1".into() });
    assert!(e.contains("is this node"), "{e}");
    let e = n1.refused(R::NodeEvict { name: "n3".into() });
    assert!(e.contains("owns group(s) while-n2-was-down"), "{e}");
    // Its group is deleted from another node: committed, so n3 deletes it too.
    n1.ok(R::GroupDelete {
        name: "while-n2-was-down".into(),
    });
    n1.ok(R::NodeEvict { name: "n3".into() });
    for n in [&n1, &n2] {
        let start = Instant::now();
        loop {
            let names: Vec<String> = n.ok(R::NodeList)["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect();
            if names == ["n1", "n2"] {
                break;
            }
            assert!(start.elapsed() < LIMIT, "n3 still listed: {names:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // The evicted node knows: it refuses every change with the reason (the probe is one that
    // would be refused for its value otherwise, so nothing can commit), and says so once.
    let probe = || R::ClusterSet {
        properties: vec![("SameSubnetDelay".into(), "5".into())],
    };
    let start = Instant::now();
    loop {
        let e = n3.refused(probe());
        if e.contains("was evicted from cluster 'lab'") {
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "n3 never learnt it was evicted: {e}\n{}",
            n3.cluster_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        n3.events()
            .iter()
            .any(|e| e["id"] == 1135 && e["message"].as_str().unwrap_or_default().contains("'n3'")),
        "event 1135 for itself on the evicted node"
    );
    let status = n2.ok(R::ClusterStatus);
    assert_eq!(status["voters"].as_array().unwrap().len(), 2, "{status}");
    n2.ok(R::GroupCreate {
        name: "after-the-eviction".into(),
        properties: vec![],
    });
    wait_for_group(&n1, "after-the-eviction");

    // Restart every node: the configuration is all there, and the cluster commits again.
    drop(n3);
    let (d1, d2) = (n1.keep_dir(), n2.keep_dir());
    let n1 = lab.boot(0, d1.clone());
    let n2 = lab.boot(1, d2.clone());
    for n in [&n1, &n2] {
        for g in ["web", "db", "while-n3-was-cut", "after-the-eviction"] {
            assert!(group_exists(n, g), "group {g} lost in the restart");
        }
    }
    wait_node(&n1, "n2", "Up", LIMIT);
    wait_node(&n2, "n1", "Up", LIMIT);
    n1.ok(R::GroupCreate {
        name: "after-the-restart".into(),
        properties: vec![],
    });
    wait_for_group(&n2, "after-the-restart");
    drop((n1, n2));
    for d in [d1, d2] {
        let _ = std::fs::remove_dir_all(d);
    }
    drop(lab);
}
