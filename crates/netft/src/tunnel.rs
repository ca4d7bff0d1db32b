//! The virtual adapter's pure core: which peer an outgoing packet is for and which route it takes,
//! its frame; and for an incoming frame, whether to deliver its packet — authentic, from a route
//! that leads to the node it names, not a replay (per-peer 64-frame window, reset when the peer
//! restarts with a higher incarnation), with an inner source address of that node and this node's
//! virtual address as destination. Counts everything it sends, delivers and refuses. Not the TUN
//! device, the sockets or logging (adapter.rs).

use crate::frame::{Frame, FrameError, FrameHeader};
use crate::ip_header::{self, IpHeaderError};
use crate::packet::ClusterKey;
use crate::path::{Candidate, PathTable};
use crate::replay::{ReplayWindow, Verdict};
use crate::topology::{NodeId, RouteKey};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// What the virtual adapter has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelCounters {
    /// Frames sent, and their packets' bytes.
    pub sent: u64,
    pub sent_bytes: u64,
    /// Frames sent, by the route they took.
    pub sent_by_route: BTreeMap<RouteKey, u64>,
    /// Packets delivered to the TUN device, and their bytes.
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// Frames accepted, by the route they arrived on.
    pub received_by_route: BTreeMap<RouteKey, u64>,
    /// Outgoing packets for an address that is no peer's virtual address (dropped, not logged:
    /// the kernel's own multicast lands here).
    pub no_peer: u64,
    /// Outgoing packets for a peer with no route Up.
    pub no_route: u64,
    /// Outgoing packets too short or too long to carry, or not IP.
    pub unsendable: u64,
    /// Frames the socket refused (a full send buffer: dropped like on a full NIC queue).
    pub send_failures: u64,
    /// Incoming: the tag does not verify.
    pub forged: u64,
    /// Incoming: seen before, too old for the window, or from an older incarnation.
    pub replayed: u64,
    /// Incoming: wrong length, magic, version or kind, or the packet inside is not IP.
    pub malformed: u64,
    /// Incoming: authentic, but not on a route that leads to the node it names.
    pub wrong_sender: u64,
    /// Incoming: the packet's source is not a virtual address of the sending node.
    pub spoofed_source: u64,
    /// Incoming: the packet is not for this node's virtual address.
    pub not_for_us: u64,
    /// Incoming frames dropped because the adapter fell behind (the shell's queue was full).
    pub queue_full: u64,
    /// Packets the TUN device refused.
    pub write_failures: u64,
}

/// Why an outgoing packet was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    NoPeer(IpAddr),
    NoRoute(NodeId),
    Unsendable(&'static str),
}

/// Why an incoming frame was dropped; the text is for the (rate-limited) log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Forged,
    Replayed(String),
    Malformed(String),
    WrongSender(String),
    SpoofedSource(String),
    NotForUs(IpAddr),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Forged => write!(f, "its HMAC does not verify under the cluster key"),
            Refused::Replayed(why)
            | Refused::Malformed(why)
            | Refused::WrongSender(why)
            | Refused::SpoofedSource(why) => f.write_str(why),
            Refused::NotForUs(dst) => {
                write!(
                    f,
                    "its packet is for {dst}, not this node's virtual address"
                )
            }
        }
    }
}

/// A frame ready to go: from the socket bound to `route.local` to `route.remote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub route: Candidate,
    pub datagram: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct PeerState {
    tx_sequence: u64,
    rx_incarnation: Option<u64>,
    rx_window: ReplayWindow,
}

/// Everything fixed about one node's virtual adapter.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    pub local_node: NodeId,
    pub incarnation: u64,
    pub key: ClusterKey,
    pub local_address: IpAddr,
    /// Every peer's virtual address.
    pub peers: BTreeMap<IpAddr, NodeId>,
}

/// One node's tunnel state.
#[derive(Debug, Clone)]
pub struct Tunnel {
    config: TunnelConfig,
    paths: PathTable,
    peers: BTreeMap<NodeId, PeerState>,
    counters: TunnelCounters,
}

impl Tunnel {
    pub fn new(config: TunnelConfig) -> Tunnel {
        let peers = config
            .peers
            .values()
            .map(|&node| (node, PeerState::default()))
            .collect();
        Tunnel {
            config,
            paths: PathTable::default(),
            peers,
            counters: TunnelCounters::default(),
        }
    }

    pub fn counters(&self) -> &TunnelCounters {
        &self.counters
    }

    pub fn paths(&self) -> &PathTable {
        &self.paths
    }

    /// Every peer's virtual address and node.
    pub fn peers(&self) -> &BTreeMap<IpAddr, NodeId> {
        &self.config.peers
    }

    pub fn local_address(&self) -> IpAddr {
        self.config.local_address
    }

    /// New route states; returns the table they replace.
    pub fn set_routes(&mut self, routes: &[Candidate]) -> PathTable {
        std::mem::replace(&mut self.paths, PathTable::new(routes))
    }

    /// The frame for one packet read from the TUN device, or why there is none (counted).
    pub fn outgoing(&mut self, packet: &[u8]) -> Result<Outgoing, Unsent> {
        let destination = match ip_header::addresses(packet) {
            Ok(addresses) => addresses.destination,
            Err(e) => return Err(self.unsent(Unsent::Unsendable(header_problem(e)))),
        };
        let Some(&node) = self.config.peers.get(&destination) else {
            return Err(self.unsent(Unsent::NoPeer(destination)));
        };
        let Some(route) = self.paths.best(node) else {
            return Err(self.unsent(Unsent::NoRoute(node)));
        };
        let peer = self.peers.get_mut(&node).expect("every peer has a state");
        let header = FrameHeader {
            node: self.config.local_node.0,
            incarnation: self.config.incarnation,
            sequence: peer.tx_sequence + 1,
        };
        let datagram = match header.encode(packet, &self.config.key) {
            Ok(datagram) => datagram,
            Err(_) => return Err(self.unsent(Unsent::Unsendable("its size"))),
        };
        peer.tx_sequence += 1;
        Ok(Outgoing { route, datagram })
    }

    /// Records that `outgoing` went out (or the socket refused it).
    pub fn sent(&mut self, outgoing: &Outgoing, ok: bool) {
        if !ok {
            self.counters.send_failures += 1;
            return;
        }
        self.counters.sent += 1;
        self.counters.sent_bytes += (outgoing.datagram.len() - crate::frame::OVERHEAD) as u64;
        *self
            .counters
            .sent_by_route
            .entry(outgoing.route.key)
            .or_default() += 1;
    }

    /// The packet inside a datagram that arrived on the socket bound to `local` from `from`, if it
    /// is to be delivered (counted either way).
    pub fn incoming<'a>(
        &mut self,
        local: IpAddr,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Result<&'a [u8], Refused> {
        let route = RouteKey {
            local,
            remote: from.ip(),
        };
        let result = self.check_incoming(route, datagram);
        match &result {
            Ok(packet) => {
                self.counters.delivered += 1;
                self.counters.delivered_bytes += packet.len() as u64;
                *self.counters.received_by_route.entry(route).or_default() += 1;
            }
            Err(refused) => self.count_refused(refused),
        }
        result
    }

    /// Records that the TUN device refused a packet.
    pub fn write_failed(&mut self) {
        self.counters.write_failures += 1;
    }

    /// Records frames the shell dropped before the adapter saw them.
    pub fn queue_dropped(&mut self, total: u64) {
        self.counters.queue_full = total;
    }

    fn check_incoming<'a>(
        &mut self,
        route: RouteKey,
        datagram: &'a [u8],
    ) -> Result<&'a [u8], Refused> {
        let frame = Frame::decode(datagram, &self.config.key).map_err(|e| match e {
            FrameError::Unauthenticated => Refused::Forged,
            other => Refused::Malformed(other.to_string()),
        })?;
        let node = NodeId(frame.header.node);
        if self.paths.node_of(&route) != Some(node) || !self.peers.contains_key(&node) {
            return Err(Refused::WrongSender(format!(
                "it says node {node}, and {} is not one of its interfaces on a route to {}",
                route.remote, route.local
            )));
        }
        let addresses = ip_header::addresses(frame.packet)
            .map_err(|e| Refused::Malformed(format!("its packet is not IP: {e}")))?;
        if self.config.peers.get(&addresses.source) != Some(&node) {
            return Err(Refused::SpoofedSource(format!(
                "its packet's source {} is not a virtual address of node {node}",
                addresses.source
            )));
        }
        if addresses.destination != self.config.local_address {
            return Err(Refused::NotForUs(addresses.destination));
        }
        self.check_replay(node, frame.header)?;
        Ok(frame.packet)
    }

    /// Accepts the first incarnation seen and any higher one (the window restarts); an older one,
    /// or a sequence number already seen or too old, is a replay.
    fn check_replay(&mut self, node: NodeId, header: FrameHeader) -> Result<(), Refused> {
        let peer = self.peers.get_mut(&node).expect("checked by the caller");
        match peer.rx_incarnation {
            Some(known) if header.incarnation < known => {
                return Err(Refused::Replayed(format!(
                    "incarnation {} of node {node} is older than {known}",
                    header.incarnation
                )))
            }
            Some(known) if header.incarnation == known => {}
            _ => {
                peer.rx_incarnation = Some(header.incarnation);
                peer.rx_window = ReplayWindow::default();
            }
        }
        match peer.rx_window.accept(header.sequence) {
            Verdict::Replay => Err(Refused::Replayed(format!(
                "frame {} of node {node} incarnation {} was already seen or is too old",
                header.sequence, header.incarnation
            ))),
            Verdict::Newest { .. } | Verdict::Late => Ok(()),
        }
    }

    fn unsent(&mut self, why: Unsent) -> Unsent {
        let c = &mut self.counters;
        match why {
            Unsent::NoPeer(_) => c.no_peer += 1,
            Unsent::NoRoute(_) => c.no_route += 1,
            Unsent::Unsendable(_) => c.unsendable += 1,
        }
        why
    }

    fn count_refused(&mut self, refused: &Refused) {
        let c = &mut self.counters;
        match refused {
            Refused::Forged => c.forged += 1,
            Refused::Replayed(_) => c.replayed += 1,
            Refused::Malformed(_) => c.malformed += 1,
            Refused::WrongSender(_) => c.wrong_sender += 1,
            Refused::SpoofedSource(_) => c.spoofed_source += 1,
            Refused::NotForUs(_) => c.not_for_us += 1,
        }
    }
}

fn header_problem(e: IpHeaderError) -> &'static str {
    match e {
        IpHeaderError::Empty => "it is empty",
        IpHeaderError::Version(_) => "it is not IPv4 or IPv6",
        IpHeaderError::Short { .. } => "it is shorter than its header",
    }
}

#[cfg(test)]
#[path = "tunnel_tests.rs"]
mod tests;
