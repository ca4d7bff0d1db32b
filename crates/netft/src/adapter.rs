//! The virtual adapter's tokio shell: creates the TUN interface (`keelson0`), gives it this node's
//! virtual address and an MTU that keeps every frame within the cluster interfaces' MTU, then
//! forwards — each IP packet read from the TUN device is framed and sent from the shell's socket on
//! the route the path table chose for its destination's node; each frame the shell set aside is
//! checked and its packet written to the TUN device. Refused frames and unsendable packets are
//! counted and logged at most once a minute per peer address. Not policy: which route, and
//! whether a frame is acceptable, are tunnel.rs and path.rs.

use crate::action::endpoint;
use crate::data_plane::{DataPlane, InboundFrame};
use crate::frame::{MAX_PACKET, OVERHEAD};
use crate::link_config::LinkConfig;
use crate::path::{Candidate, PathMove};
use crate::ratelimit::RateLimiter;
use crate::socket::HeartbeatSocket;
use crate::topology::NodeId;
use crate::tunnel::{Refused, Tunnel, TunnelConfig, TunnelCounters, Unsent};
use keelson_sys::tun::TunDevice;
use keelson_types::LogLevel;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

/// The name WSFC-style clusters give the virtual adapter here.
pub const DEFAULT_NAME: &str = "keelson0";
/// UDP header bytes.
const UDP_HEADER: u32 = 8;
/// The smallest MTU the adapter accepts (IPv4's minimum reassembly size; IPv6 needs 1280).
const MIN_MTU_V4: u32 = 576;
const MIN_MTU_V6: u32 = 1280;
/// Packets read from the TUN device per wake-up before the other inputs get a turn.
const TUN_BATCH: usize = 64;

/// Where the adapter's log lines go (the rcm's cluster.log).
pub trait AdapterLog {
    fn log(&mut self, level: LogLevel, component: &str, message: &str);
}

/// What the adapter is to be.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    /// The TUN interface's name (`keelson0`).
    pub tun_name: String,
    /// This node's virtual address and its prefix (the cluster's virtual subnet).
    pub local_address: IpAddr,
    pub prefix_len: u8,
    /// Every peer's virtual address and node.
    pub peers: BTreeMap<IpAddr, NodeId>,
}

/// Why the adapter could not start or stopped.
#[derive(Debug, Error)]
pub enum AdapterError {
    #[error("virtual adapter {name}: {why}")]
    Config { name: String, why: String },
    #[error("virtual adapter {name}: {error}")]
    Io { name: String, error: io::Error },
}

/// What `keelson network list` shows about the adapter.
#[derive(Debug, Clone)]
pub struct AdapterStatus {
    pub name: String,
    pub address: IpAddr,
    pub prefix_len: u8,
    pub mtu: u32,
    /// Each peer's chosen route (None: no route to it is Up).
    pub paths: BTreeMap<NodeId, Option<Candidate>>,
    pub counters: TunnelCounters,
    pub taken_at: Instant,
}

/// A shared view of a running adapter's latest status.
#[derive(Debug, Clone)]
pub struct AdapterHandle(Arc<Mutex<AdapterStatus>>);

impl AdapterHandle {
    pub fn get(&self) -> AdapterStatus {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut AdapterStatus)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// A running virtual adapter; the TUN interface goes away when it is dropped.
pub struct Adapter<L: AdapterLog> {
    tun: AsyncFd<TunDevice>,
    frames: mpsc::Receiver<InboundFrame>,
    routes: watch::Receiver<Vec<Candidate>>,
    forwarder: Forwarder<L>,
    buffer: Vec<u8>,
}

/// Everything but the inputs: the tunnel core, the sockets and the log.
struct Forwarder<L: AdapterLog> {
    name: String,
    tunnel: Tunnel,
    sockets: BTreeMap<IpAddr, Arc<HeartbeatSocket>>,
    port: u16,
    queue_full: Arc<AtomicU64>,
    log: L,
    rx_log: RateLimiter,
    tx_log: RateLimiter,
    base: Instant,
    status: AdapterHandle,
}

impl<L: AdapterLog> Adapter<L> {
    /// Checks the configuration, creates and configures the TUN interface in the calling thread's
    /// network namespace (needs CAP_NET_ADMIN) and takes over `plane` from the shell. Must run in
    /// a tokio runtime.
    pub async fn start(
        config: AdapterConfig,
        plane: DataPlane,
        mut log: L,
    ) -> Result<Self, AdapterError> {
        let name = config.tun_name.clone();
        let mut routes = plane.routes;
        let initial: Vec<Candidate> = routes.borrow_and_update().clone();
        check_config(&config, plane.local_node, &initial)?;
        let io_error = |error| AdapterError::Io {
            name: name.clone(),
            error,
        };
        let netlink = LinkConfig::open().map_err(io_error)?;
        let mut underlying = Vec::new();
        for iface in &plane.local_interfaces {
            let link = netlink.link(&iface.adapter).await.map_err(io_error)?;
            underlying.push((iface.addr, link.mtu));
        }
        let mtu =
            adapter_mtu(&underlying, config.local_address).map_err(|why| AdapterError::Config {
                name: name.clone(),
                why,
            })?;
        let tun = TunDevice::open(&name)
            .and_then(TunDevice::into_async)
            .map_err(io_error)?;
        let link = netlink.link(&name).await.map_err(io_error)?;
        netlink
            .set_mtu_and_up(&name, link.index, mtu)
            .await
            .map_err(io_error)?;
        netlink
            .add_address(&name, link.index, config.local_address, config.prefix_len)
            .await
            .map_err(io_error)?;
        let mut tunnel = Tunnel::new(TunnelConfig {
            local_node: plane.local_node,
            incarnation: plane.incarnation,
            key: plane.key,
            local_address: config.local_address,
            peers: config.peers.clone(),
        });
        tunnel.set_routes(&initial);
        log.log(
            LogLevel::Info,
            "NETFT",
            &format!(
                "Virtual adapter {name} is up: {}/{}, MTU {mtu} (lowest cluster interface MTU less {} bytes of IP, UDP and frame headers), {} peer(s)",
                config.local_address,
                config.prefix_len,
                OVERHEAD as u32 + UDP_HEADER + ip_header_len(config.local_address),
                config.peers.len()
            ),
        );
        let status = AdapterHandle(Arc::new(Mutex::new(AdapterStatus {
            name: name.clone(),
            address: config.local_address,
            prefix_len: config.prefix_len,
            mtu,
            paths: BTreeMap::new(),
            counters: TunnelCounters::default(),
            taken_at: Instant::now(),
        })));
        let mut forwarder = Forwarder {
            name,
            tunnel,
            sockets: plane.sockets,
            port: plane.port,
            queue_full: plane.queue_full,
            log,
            rx_log: RateLimiter::default(),
            tx_log: RateLimiter::default(),
            base: Instant::now(),
            status,
        };
        forwarder.log_paths(&crate::path::PathTable::default());
        forwarder.publish();
        Ok(Adapter {
            tun,
            frames: plane.frames,
            routes,
            forwarder,
            buffer: vec![0u8; MAX_PACKET],
        })
    }

    /// A handle on the adapter's status and counters.
    pub fn status(&self) -> AdapterHandle {
        self.forwarder.status.clone()
    }

    /// Forwards until the shell stops (Ok) or the TUN device fails (Err); drop the future (or its
    /// runtime) to stop, which removes the interface.
    pub async fn run(mut self) -> Result<(), AdapterError> {
        loop {
            tokio::select! {
                ready = self.tun.readable() => {
                    let mut guard = ready.map_err(|error| self.forwarder.io_error(error))?;
                    for _ in 0..TUN_BATCH {
                        match guard.try_io(|tun| tun.get_ref().read_packet(&mut self.buffer)) {
                            Ok(Ok(len)) => self.forwarder.forward(&self.buffer[..len]),
                            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                            Ok(Err(e)) => return Err(self.forwarder.io_error(e)),
                            Err(_would_block) => break,
                        }
                    }
                }
                frame = self.frames.recv() => match frame {
                    Some(frame) => self.forwarder.deliver(self.tun.get_ref(), frame),
                    None => return Ok(()),
                },
                changed = self.routes.changed() => match changed {
                    Ok(()) => {
                        let routes: Vec<Candidate> = self.routes.borrow_and_update().clone();
                        let replaced = self.forwarder.tunnel.set_routes(&routes);
                        self.forwarder.log_paths(&replaced);
                    }
                    Err(_) => return Ok(()),
                },
            }
            self.forwarder.publish();
        }
    }
}

impl<L: AdapterLog> Forwarder<L> {
    fn io_error(&self, error: io::Error) -> AdapterError {
        AdapterError::Io {
            name: self.name.clone(),
            error,
        }
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Frames one packet from the TUN device and sends it on its peer's route.
    fn forward(&mut self, packet: &[u8]) {
        let outgoing = match self.tunnel.outgoing(packet) {
            Ok(outgoing) => outgoing,
            Err(unsent) => return self.log_unsent(unsent),
        };
        let key = outgoing.route.key;
        let result = match self.sockets.get(&key.local) {
            Some(socket) => {
                socket.send_now(&outgoing.datagram, SocketAddr::new(key.remote, self.port))
            }
            None => Err(io::Error::other(format!(
                "no NetFT socket is bound to {}",
                key.local
            ))),
        };
        self.tunnel.sent(&outgoing, result.is_ok());
        if let Err(error) = result {
            if self.tx_log.allow(key.remote, self.now_ms()) {
                let line = format!(
                    "Virtual adapter {}: failed to send a frame from {} to {}: {error} ({} send failures so far; logged at most once a minute per peer address)",
                    self.name,
                    endpoint(key.local, self.port),
                    endpoint(key.remote, self.port),
                    self.tunnel.counters().send_failures
                );
                self.log.log(LogLevel::Warn, "NETFT", &line);
            }
        }
    }

    /// Checks one frame and writes its packet to the TUN device.
    fn deliver(&mut self, tun: &TunDevice, frame: InboundFrame) {
        self.tunnel
            .queue_dropped(self.queue_full.load(Ordering::Relaxed));
        let packet = match self
            .tunnel
            .incoming(frame.local, frame.from, &frame.datagram)
        {
            Ok(packet) => packet,
            Err(refused) => return self.log_refused(&frame, &refused),
        };
        if let Err(error) = tun.write_packet(packet) {
            self.tunnel.write_failed();
            if self.rx_log.allow(frame.from.ip(), self.now_ms()) {
                let line = format!(
                    "Virtual adapter {}: cannot deliver a packet from {}: {error} ({} so far; logged at most once a minute per peer address)",
                    self.name,
                    endpoint(frame.from.ip(), frame.from.port()),
                    self.tunnel.counters().write_failures
                );
                self.log.log(LogLevel::Warn, "NETFT", &line);
            }
        }
    }

    fn log_refused(&mut self, frame: &InboundFrame, refused: &Refused) {
        if !self.rx_log.allow(frame.from.ip(), self.now_ms()) {
            return;
        }
        let c = self.tunnel.counters();
        let line = format!(
            "Dropped frame from {} to {}: {refused} ({} forged, {} replayed, {} malformed, {} from the wrong sender, {} with a spoofed source, {} not for this node so far; drops from {} are logged at most once a minute)",
            endpoint(frame.from.ip(), frame.from.port()),
            endpoint(frame.local, self.port),
            c.forged,
            c.replayed,
            c.malformed,
            c.wrong_sender,
            c.spoofed_source,
            c.not_for_us,
            frame.from.ip(),
        );
        self.log.log(LogLevel::Warn, "NETFT", &line);
    }

    /// A packet for no peer is the kernel's own traffic (multicast, a stray address): counted only.
    fn log_unsent(&mut self, unsent: Unsent) {
        let (about, why) = match unsent {
            Unsent::NoPeer(_) => return,
            Unsent::NoRoute(node) => (
                self.virtual_address_of(node),
                format!("no route to node {node} is up"),
            ),
            Unsent::Unsendable(why) => (
                self.tunnel_address(),
                format!("it cannot be carried: {why}"),
            ),
        };
        if !self.tx_log.allow(about, self.now_ms()) {
            return;
        }
        let c = self.tunnel.counters();
        let line = format!(
            "Virtual adapter {}: dropped a packet for {about}: {why} ({} without a route, {} unsendable so far; logged at most once a minute per address)",
            self.name, c.no_route, c.unsendable
        );
        self.log.log(LogLevel::Warn, "NETFT", &line);
    }

    fn virtual_address_of(&self, node: NodeId) -> IpAddr {
        self.tunnel
            .peers()
            .iter()
            .find(|(_, n)| **n == node)
            .map(|(addr, _)| *addr)
            .unwrap_or_else(|| self.tunnel_address())
    }

    fn tunnel_address(&self) -> IpAddr {
        self.tunnel.local_address()
    }

    /// One line per peer whose route changed since `replaced`.
    fn log_paths(&mut self, replaced: &crate::path::PathTable) {
        for PathMove { node, from, to } in replaced.moves(self.tunnel.paths()) {
            let describe = |c: &Candidate| {
                format!(
                    "the route from {} to {} (Priority {})",
                    endpoint(c.key.local, self.port),
                    endpoint(c.key.remote, self.port),
                    c.priority
                )
            };
            let (level, line) = match (from, to) {
                (_, None) => (
                    LogLevel::Warn,
                    format!("Virtual adapter {}: no route to node {node} is up; its packets are dropped until one is", self.name),
                ),
                (None, Some(to)) => (
                    LogLevel::Info,
                    format!("Virtual adapter {}: packets to node {node} take {}", self.name, describe(&to)),
                ),
                (Some(from), Some(to)) => (
                    LogLevel::Info,
                    format!(
                        "Virtual adapter {}: packets to node {node} move from {} to {}",
                        self.name,
                        describe(&from),
                        describe(&to)
                    ),
                ),
            };
            self.log.log(level, "NETFT", &line);
        }
    }

    fn publish(&self) {
        let paths = self
            .tunnel
            .peers()
            .values()
            .copied()
            .collect::<BTreeSet<NodeId>>()
            .into_iter()
            .map(|node| (node, self.tunnel.paths().best(node)))
            .collect();
        let counters = self.tunnel.counters().clone();
        self.status.update(|status| {
            status.paths = paths;
            status.counters = counters;
            status.taken_at = Instant::now();
        });
    }
}

/// The local address is unicast and outside the peers, no peer is this node, and every peer has a
/// route from this node.
fn check_config(
    config: &AdapterConfig,
    local_node: NodeId,
    routes: &[Candidate],
) -> Result<(), AdapterError> {
    let refuse = |why: String| {
        Err(AdapterError::Config {
            name: config.tun_name.clone(),
            why,
        })
    };
    let addr = config.local_address;
    let max_prefix = if addr.is_ipv4() { 32 } else { 128 };
    if config.prefix_len > max_prefix {
        return refuse(format!(
            "prefix length {} is too long for {addr}",
            config.prefix_len
        ));
    }
    if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
        return refuse(format!("{addr} cannot be a node's virtual address"));
    }
    if config.peers.contains_key(&addr) {
        return refuse(format!(
            "{addr} is both this node's virtual address and a peer's"
        ));
    }
    let reachable: BTreeSet<NodeId> = routes.iter().map(|r| r.node).collect();
    for (peer_addr, node) in &config.peers {
        if *node == local_node {
            return refuse(format!("peer address {peer_addr} is this node ({node})"));
        }
        if !reachable.contains(node) {
            return refuse(format!(
                "peer address {peer_addr} is node {node}, to which this node has no route"
            ));
        }
    }
    Ok(())
}

/// The adapter's MTU: the lowest `(cluster interface address, its link's MTU)` less the outer IP
/// header, UDP and frame overhead, at most `MAX_PACKET`, refused below what the virtual address
/// family needs.
pub fn adapter_mtu(underlying: &[(IpAddr, u32)], virtual_address: IpAddr) -> Result<u32, String> {
    let fits = underlying
        .iter()
        .map(|&(addr, mtu)| mtu.saturating_sub(ip_header_len(addr) + UDP_HEADER + OVERHEAD as u32))
        .min()
        .ok_or_else(|| "this node has no cluster interface to carry it".to_string())?;
    let mtu = fits.min(MAX_PACKET as u32);
    let needed = if virtual_address.is_ipv4() {
        MIN_MTU_V4
    } else {
        MIN_MTU_V6
    };
    if mtu < needed {
        return Err(format!(
            "an MTU of {mtu} is all the cluster interfaces leave room for, below the {needed} bytes {virtual_address} needs"
        ));
    }
    Ok(mtu)
}

fn ip_header_len(addr: IpAddr) -> u32 {
    if addr.is_ipv4() {
        20
    } else {
        40
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_mtu_leaves_room_for_the_outer_headers_on_the_smallest_link() {
        let v4 = ip("203.0.113.1");
        assert_eq!(
            adapter_mtu(&[(ip("192.0.2.1"), 1500)], v4),
            Ok(1500 - 20 - 8 - 60)
        );
        assert_eq!(
            adapter_mtu(&[(ip("192.0.2.1"), 9000), (ip("2001:db8::1"), 1500)], v4),
            Ok(1500 - 40 - 8 - 60),
            "an IPv6 cluster interface has a 40-byte header"
        );
        assert_eq!(
            adapter_mtu(&[(ip("192.0.2.1"), 65535)], v4),
            Ok(MAX_PACKET as u32)
        );
        let err = adapter_mtu(&[(ip("192.0.2.1"), 1300)], ip("fd00::1")).unwrap_err();
        assert!(err.contains("below the 1280 bytes fd00::1 needs"), "{err}");
        assert!(adapter_mtu(&[], v4)
            .unwrap_err()
            .contains("no cluster interface"));
    }

    #[test]
    fn bad_configurations_are_refused_naming_the_thing() {
        let routes = [Candidate {
            key: crate::topology::RouteKey {
                local: ip("192.0.2.1"),
                remote: ip("192.0.2.2"),
            },
            node: NodeId(2),
            priority: 1,
            state: crate::action::RouteState::Unknown,
        }];
        let config = |addr: &str, prefix_len, peers: &[(&str, u32)]| AdapterConfig {
            tun_name: "keelson0".into(),
            local_address: ip(addr),
            prefix_len,
            peers: peers.iter().map(|(a, n)| (ip(a), NodeId(*n))).collect(),
        };
        let err = |c: AdapterConfig| {
            check_config(&c, NodeId(1), &routes)
                .unwrap_err()
                .to_string()
        };
        assert!(check_config(
            &config("203.0.113.1", 24, &[("203.0.113.2", 2)]),
            NodeId(1),
            &routes
        )
        .is_ok());
        assert_eq!(
            err(config("203.0.113.1", 33, &[])),
            "virtual adapter keelson0: prefix length 33 is too long for 203.0.113.1"
        );
        assert!(err(config("0.0.0.0", 24, &[])).contains("cannot be a node's virtual address"));
        assert!(err(config("203.0.113.1", 24, &[("203.0.113.1", 2)])).contains("both this node's"));
        assert!(err(config("203.0.113.1", 24, &[("203.0.113.2", 1)])).contains("is this node (1)"));
        assert_eq!(
            err(config("203.0.113.1", 24, &[("203.0.113.3", 3)])),
            "virtual adapter keelson0: peer address 203.0.113.3 is node 3, to which this node has no route"
        );
    }
}
