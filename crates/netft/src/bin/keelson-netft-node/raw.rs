//! `--raw-udp`: the baseline a benchmark measures NetFT against. The same sockets (one per local
//! interface address, on the NetFT port) send a datagram of a heartbeat's size on every route at
//! every route's Delay, and receive and count what arrives — with no detector, no HMAC, no replay
//! window and no netlink. SIGUSR1 prints a `status` line with the counts. Not a failure detector:
//! it never decides anything.

use crate::output::emit;
use keelson_netft::packet::HEARTBEAT_LEN;
use keelson_netft::DetectorConfig;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

/// One route's cadence.
struct Cadence {
    local: IpAddr,
    remote: SocketAddr,
    delay: Duration,
    next: Instant,
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
    send_failures: AtomicU64,
}

/// Runs the baseline until a socket fails.
pub async fn run(config: DetectorConfig) -> Result<(), String> {
    let mut sockets = BTreeMap::new();
    for iface in &config.topology.local_node().interfaces {
        let addr = SocketAddr::new(iface.addr, config.port);
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|e| format!("cannot bind raw UDP socket {addr}: {e}"))?;
        sockets.insert(iface.addr, Arc::new(socket));
    }
    let counts = Arc::new(Counts::default());
    let (failed_tx, mut failed) = tokio::sync::mpsc::channel(sockets.len().max(1));
    for socket in sockets.values() {
        tokio::spawn(receive(socket.clone(), counts.clone(), failed_tx.clone()));
    }
    let now = Instant::now();
    let mut cadences: Vec<Cadence> = config
        .topology
        .routes()
        .into_iter()
        .map(|r| Cadence {
            local: r.key.local,
            remote: SocketAddr::new(r.key.remote, config.port),
            delay: Duration::from_millis(config.settings.timing(r.same_subnet).0.into()),
            next: now,
        })
        .collect();
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(|e| format!("SIGUSR1: {e}"))?;
    emit(
        "started",
        json!({ "pid": std::process::id(), "mode": "raw-udp", "routes": cadences.len() }),
    );
    let datagram = [0x5au8; HEARTBEAT_LEN];
    loop {
        let due = cadences.iter().map(|c| c.next).min();
        let sleep_until = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep_until(sleep_until) => send_due(&mut cadences, &sockets, &datagram, &counts),
            _ = usr1.recv() => print_status(&counts),
            error = failed.recv() => return Err(error.unwrap_or_else(|| "receive tasks ended".into())),
        }
    }
}

fn send_due(
    cadences: &mut [Cadence],
    sockets: &BTreeMap<IpAddr, Arc<UdpSocket>>,
    datagram: &[u8],
    counts: &Counts,
) {
    let now = Instant::now();
    for c in cadences.iter_mut().filter(|c| c.next <= now) {
        c.next += c.delay;
        if c.next <= now {
            c.next = now + c.delay;
        }
        let sent = sockets
            .get(&c.local)
            .map(|s| s.try_send_to(datagram, c.remote));
        let counter = match sent {
            Some(Ok(n)) if n == datagram.len() => &counts.sent,
            _ => &counts.send_failures,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

async fn receive(
    socket: Arc<UdpSocket>,
    counts: Arc<Counts>,
    failed: tokio::sync::mpsc::Sender<String>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok(_) => {
                counts.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // The main loop ends on the first failure; a second one has nobody to tell.
                let _main_loop_already_ending = failed.send(format!("receive: {e}")).await;
                return;
            }
        }
    }
}

fn print_status(counts: &Counts) {
    emit(
        "status",
        json!({
            "sent": counts.sent.load(Ordering::Relaxed),
            "received": counts.received.load(Ordering::Relaxed),
            "send_failures": counts.send_failures.load(Ordering::Relaxed),
        }),
    );
}
