//! The end-to-end picture of post [1] on the three-node namespace cluster: a group of ip-address +
//! network-name + disk + generic-app (keelson-kv-demo, a TCP line store on the disk), wired as WSFC
//! wires them (name on address, app on name and disk). A client in its own namespace resolves the
//! name through a real Knot server, connects and writes; the owner node is killed (kill -9 of
//! everything in its namespace and its links cut); the group comes up on another node; the client
//! resolves the same name, reconnects to the same address and reads back every line it had been
//! told was written. Prints the client-visible outage. Root only (netns, loop device, mount).

mod common;

use common::knot::Knot;
use common::lab::{ip, root_or_skip, Lab};
use common::rcm::{wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const SERVICE_ADDRESS: &str = "192.0.2.100";
const SERVICE_PORT: u16 = 7000;
const DNS_ADDRESS: &str = "192.0.2.53";
const CLIENT_ADDRESS: &str = "192.0.2.99";
const ZONE: &str = "keelson.test";

fn s(v: &str) -> String {
    v.to_string()
}

/// A namespace of the test's own plugged into the lab's first network (br1 in the switch), with
/// one address; deleted on drop.
struct Side {
    ns: String,
}

impl Side {
    fn plug(lab: &Lab, ns: &str, addr: &str) -> Side {
        ip(&["netns", "add", ns]);
        let side = Side { ns: ns.to_string() };
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        let outer = format!("x{}", &ns[ns.len().saturating_sub(6)..]);
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
            &outer,
            "netns",
            &lab.switch,
        ]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth1",
        ]);
        ip(&["-n", ns, "link", "set", "eth1", "up"]);
        ip(&["-n", &lab.switch, "link", "set", &outer, "master", "br1"]);
        ip(&["-n", &lab.switch, "link", "set", &outer, "up"]);
        side
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        let status = Command::new("ip").args(["netns", "del", &self.ns]).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("cleanup: ip netns del {} failed: {status:?}", self.ns);
        }
    }
}

/// Kills every process left in the lab's node namespaces on drop (the detached application
/// outlives its node service on purpose), before the namespaces go.
struct Reaper<'a>(&'a Lab);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        for ns in &self.0.nodes {
            kill_everything_in(ns);
        }
    }
}

fn kill_everything_in(ns: &str) {
    let out = Command::new("ip").args(["netns", "pids", ns]).output();
    let Ok(out) = out else { return };
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
}

/// A 64 MiB file on a loop device with ext4 on all but its last MiB (the disk type's lease area).
struct LoopDisk {
    device: String,
    file: PathBuf,
}

impl LoopDisk {
    fn make(dir: &Path) -> LoopDisk {
        let file = dir.join("shared.img");
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(64 << 20).unwrap();
        drop(f);
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&file)
            .output()
            .expect("losetup");
        assert!(out.status.success(), "losetup: {out:?}");
        let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let disk = LoopDisk { device, file };
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F", &disk.device, "63M"])
            .status()
            .expect("mkfs.ext4 (e2fsprogs)");
        assert!(mkfs.success(), "mkfs.ext4 {}", disk.device);
        disk
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let status = Command::new("losetup").args(["-d", &self.device]).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("cleanup: losetup -d {} failed: {status:?}", self.device);
        }
        if let Err(e) = std::fs::remove_file(&self.file) {
            eprintln!("cleanup: rm {}: {e}", self.file.display());
        }
    }
}

/// One A query for `name` to `server`, answered within `limit`: the addresses in the answer.
fn resolve_a(server: SocketAddr, name: &str, limit: Duration) -> Result<Vec<Ipv4Addr>, String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    let id: u16 = (std::process::id() as u16) ^ 0x5a5a;
    let mut q = vec![
        (id >> 8) as u8,
        id as u8,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send_to(&q, server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let (n, _) = socket
        .recv_from(&mut buf)
        .map_err(|e| format!("no answer: {e}"))?;
    parse_a_answers(&buf[..n], id)
}

fn parse_a_answers(m: &[u8], id: u16) -> Result<Vec<Ipv4Addr>, String> {
    if m.len() < 12 || u16::from_be_bytes([m[0], m[1]]) != id {
        return Err("not our answer".into());
    }
    let rcode = m[3] & 0x0f;
    if rcode != 0 {
        return Err(format!("rcode {rcode}"));
    }
    let answers = u16::from_be_bytes([m[6], m[7]]);
    let mut at = 12;
    at = skip_name(m, at)? + 4;
    let mut out = Vec::new();
    for _ in 0..answers {
        at = skip_name(m, at)?;
        let get = |i: usize| m.get(i).copied().ok_or("short answer".to_string());
        let rtype = u16::from_be_bytes([get(at)?, get(at + 1)?]);
        let len = u16::from_be_bytes([get(at + 8)?, get(at + 9)?]) as usize;
        at += 10;
        if rtype == 1 && len == 4 {
            out.push(Ipv4Addr::new(
                get(at)?,
                get(at + 1)?,
                get(at + 2)?,
                get(at + 3)?,
            ));
        }
        at += len;
    }
    Ok(out)
}

fn skip_name(m: &[u8], mut at: usize) -> Result<usize, String> {
    for _ in 0..128 {
        let len = *m.get(at).ok_or("short name")? as usize;
        if len == 0 {
            return Ok(at + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Ok(at + 2);
        }
        at += len + 1;
    }
    Err("name too long".into())
}

/// What the client saw: every acknowledged line and when, and the failures in between.
#[derive(Default)]
struct Seen {
    acked: Vec<(u64, Instant)>,
    reconnects: u32,
    last_error: String,
}

/// The client, on a thread inside its namespace: resolve, connect, write `W <n>` lines and wait
/// for each `OK`, until `stop`; on any error resolve and reconnect (bounded by `LIMIT`).
fn run_client(netns: PathBuf, seen: Arc<Mutex<Seen>>, stop: Arc<AtomicBool>) {
    keelson_sys::netns::enter_netns(&netns).unwrap();
    let dns: SocketAddr = format!("{DNS_ADDRESS}:53").parse().unwrap();
    let name = format!("web.{ZONE}");
    let mut next = 1u64;
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) && started.elapsed() < 4 * LIMIT {
        let target = match resolve_a(dns, &name, Duration::from_millis(500)) {
            Ok(a) if !a.is_empty() => SocketAddr::from((a[0], SERVICE_PORT)),
            other => {
                seen.lock().unwrap().last_error = format!("resolve {name}: {other:?}");
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let Ok(stream) = TcpStream::connect_timeout(&target, Duration::from_millis(300)) else {
            seen.lock().unwrap().last_error = format!("connect {target}");
            continue;
        };
        seen.lock().unwrap().reconnects += 1;
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        while !stop.load(Ordering::SeqCst) {
            let mut line = String::new();
            let ok = writer
                .write_all(format!("W line-{next}\n").as_bytes())
                .is_ok()
                && reader.read_line(&mut line).is_ok_and(|n| n > 0)
                && line.starts_with("OK ");
            if !ok {
                seen.lock().unwrap().last_error = format!("write line-{next}: {line:?}");
                break;
            }
            seen.lock().unwrap().acked.push((next, Instant::now()));
            next += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Everything the service has, read by a fresh connection from the client's namespace.
fn read_back(netns: PathBuf) -> Vec<String> {
    std::thread::spawn(move || {
        keelson_sys::netns::enter_netns(&netns).unwrap();
        let target: SocketAddr = format!("{SERVICE_ADDRESS}:{SERVICE_PORT}").parse().unwrap();
        let stream = TcpStream::connect_timeout(&target, Duration::from_secs(2)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        writer.write_all(b"R\n").unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(stream).lines().take(1_000_000) {
            let line = line.unwrap();
            if line == "." {
                return lines;
            }
            lines.push(line);
        }
        panic!("no end of the read-back");
    })
    .join()
    .unwrap()
}

fn mac_of(netns: &str, dev: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", netns, "-br", "link", "show", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

fn neighbour_mac(netns: &str, addr: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", netns, "neigh", "show", addr])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "lladdr")
        .and_then(|i| words.get(i + 1))
        .map(|w| w.to_string())
        .unwrap_or(text)
}

fn create(rcm: &Rcm, name: &str, type_name: &str, params: &[(&str, String)]) {
    rcm.ok(R::ResourceCreate {
        name: s(name),
        type_name: s(type_name),
        group: s("web"),
        params: params.iter().map(|(k, v)| (s(k), v.clone())).collect(),
        properties: vec![],
    });
}

#[test]
fn a_whole_group_fails_over_and_the_client_reads_back_everything_it_wrote() {
    if !root_or_skip("t36") {
        return;
    }
    let lab = Lab::create("gx", 3);
    let _reaper = Reaper(&lab);
    let pid = std::process::id();
    let dns_ns = format!("gx{pid}dns");
    let client_ns = format!("gx{pid}cl");
    let _dns_side = Side::plug(&lab, &dns_ns, DNS_ADDRESS);
    let _client_side = Side::plug(&lab, &client_ns, CLIENT_ADDRESS);
    let work = Rcm::new_dir("t36-shared");
    let knot = Knot::start(&dns_ns, DNS_ADDRESS, ZONE, &work.join("knot"));
    let disk = LoopDisk::make(&work);
    let mount_point = work.join("mnt");

    let nodes = lab.boot_cluster("t36", 200, LIMIT);
    let n1 = &nodes[0];
    n1.ok(R::GroupCreate {
        name: s("web"),
        properties: vec![],
    });
    create(
        n1,
        "web-ip",
        "ip-address",
        &[
            ("Address", s(SERVICE_ADDRESS)),
            ("PrefixLength", s("24")),
            ("Interface", s("eth1")),
        ],
    );
    create(
        n1,
        "web-name",
        "network-name",
        &[
            ("Name", s("web")),
            ("Zone", s(ZONE)),
            ("DnsServer", s(DNS_ADDRESS)),
            ("TsigKeyFile", knot.key_file.to_string_lossy().into_owned()),
            ("Addresses", s(SERVICE_ADDRESS)),
            ("Ttl", s("5")),
        ],
    );
    create(
        n1,
        "web-disk",
        "disk",
        &[
            ("Device", disk.device.clone()),
            ("MountPoint", mount_point.to_string_lossy().into_owned()),
            ("LeaseMs", s("1500")),
        ],
    );
    let kv = env!("CARGO_BIN_EXE_keelson-kv-demo");
    create(
        n1,
        "web-app",
        "generic-app",
        &[
            (
                "CommandLine",
                format!(
                    "{kv} --listen 0.0.0.0:{SERVICE_PORT} --file {}/kv.log",
                    mount_point.display()
                ),
            ),
            ("HealthTcpPort", SERVICE_PORT.to_string()),
            ("StopTimeout", s("2000")),
        ],
    );
    for (name, on) in [
        ("web-name", "web-ip"),
        ("web-app", "web-name"),
        ("web-app", "web-disk"),
    ] {
        n1.ok(R::ResourceDepend {
            name: s(name),
            on: s(on),
        });
    }
    n1.ok(R::GroupOnline { name: s("web") });
    wait_for("web Online on n1", LIMIT, || {
        n1.group_owner_state("web") == Some((s("n1"), s("Online")))
    });

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let client_path = PathBuf::from(format!("/var/run/netns/{client_ns}"));
    let client = {
        let (path, seen, stop) = (client_path.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || run_client(path, seen, stop))
    };
    wait_for("50 lines acknowledged before the kill", LIMIT, || {
        seen.lock().unwrap().acked.len() >= 50
    });
    assert_eq!(
        neighbour_mac(&client_ns, SERVICE_ADDRESS),
        mac_of(&lab.nodes[0], "eth1"),
        "the client reached n1"
    );

    // The owner dies: its links are cut and everything in its namespace is killed at once.
    lab.set_links(0, &["eth1", "eth2"], false);
    kill_everything_in(&lab.nodes[0]);
    let killed = Instant::now();
    let acked_at_kill = seen.lock().unwrap().acked.len();
    let n2 = &nodes[1];
    wait_for(
        "web Online on n2 or n3",
        LIMIT,
        || matches!(n2.group_owner_state("web"), Some((o, st)) if o != "n1" && st == "Online"),
    );
    let (owner, _) = n2.group_owner_state("web").unwrap();
    let owner_index: usize = owner[1..].parse::<usize>().unwrap() - 1;
    let group_online = killed.elapsed();
    let new_mac = mac_of(&lab.nodes[owner_index], "eth1");
    wait_for("the client writing again", LIMIT, || {
        seen.lock().unwrap().acked.len() >= acked_at_kill + 20
    });
    assert_eq!(
        neighbour_mac(&client_ns, SERVICE_ADDRESS),
        new_mac,
        "the client's ARP cache points at the new owner {owner}"
    );
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();

    let seen = seen.lock().unwrap();
    let stored = read_back(client_path);
    for (n, _) in &seen.acked {
        assert!(
            stored.contains(&format!("line-{n}")),
            "acknowledged line-{n} is missing after the failover ({} stored)",
            stored.len()
        );
    }
    let outage = seen
        .acked
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .max()
        .unwrap();
    println!(
        "t36: group Online on {owner} {} ms after n1 died; client-visible outage {} ms \
         (longest gap between acknowledged writes); {} lines acknowledged, all {} read back, \
         {} connections",
        group_online.as_millis(),
        outage.as_millis(),
        seen.acked.len(),
        stored.len(),
        seen.reconnects
    );
}
