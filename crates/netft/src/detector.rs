//! The pure NetFT failure detector: `(now, Event) -> Vec<Action>` with time a parameter and no I/O.
//! It schedules heartbeats on every route, authenticates and replay-checks what arrives, declares a
//! route Down after Threshold misses in a row (or at once when netlink says its link is gone) and Up
//! on the next good heartbeat, a node Down only when all its routes are, and networks Up,
//! Partitioned or Down; every change comes out as log lines, WSFC events and state actions. Not the
//! sockets, timers or netlink (shell.rs, netlink.rs).

use crate::action::{
    endpoint, event_1125, event_1126, event_1127, event_1128, event_1129, event_1130, event_1135,
    interface_name, netftapi_endpoint, Action, NetworkState, NodeState, RouteState,
};
use crate::contact::ContactLease;
use crate::packet::{ClusterKey, Heartbeat, PacketError};
use crate::ratelimit::RateLimiter;
use crate::replay::{ReplayWindow, Verdict};
use crate::route::Route;
use crate::settings::NetftSettings;
use crate::topology::{InterfaceSpec, NodeId, RouteKey, Topology};
use keelson_types::LogLevel;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

/// The default NetFT port.
pub const DEFAULT_PORT: u16 = 3343;

/// Everything the detector is built from.
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    pub topology: Topology,
    pub settings: NetftSettings,
    pub key: ClusterKey,
    /// This node's incarnation: higher on every start than on the one before.
    pub incarnation: u64,
    /// The UDP port heartbeats go to and come from (3343 unless a test picks its own).
    pub port: u16,
    /// The contact lease, when the node's timing uses one (None: a peer counts while it is Up
    /// and says it hears this node, which it says while this node is Up there).
    pub contact: Option<ContactLease>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Nothing but the passage of time (the shell calls this at `next_deadline_ms`).
    Tick,
    /// A datagram arrived on the socket bound to `local`.
    Datagram {
        local: IpAddr,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    /// Netlink: a local link gained or lost carrier (or was set up or down).
    Link { adapter: String, carrier: bool },
    /// Netlink: a local address appeared or went away.
    Address { addr: IpAddr, present: bool },
    /// The cluster-wide timing settings changed (`keelson cluster set SameSubnetDelay=...`).
    Settings(NetftSettings),
    /// The shell could not send a heartbeat.
    SendFailed {
        local: IpAddr,
        remote: SocketAddr,
        error: String,
    },
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drop {
    Forged,
    Replayed,
    Malformed,
    UnknownSender,
}

/// How many datagrams were accepted and dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub accepted: u64,
    /// The HMAC did not verify, or the authenticated contents do not match the route.
    pub forged: u64,
    /// Seen before, or from an older incarnation.
    pub replayed: u64,
    /// Wrong size, magic, version or kind.
    pub malformed: u64,
    /// Authentic, but not from an address any route leads to.
    pub unknown_sender: u64,
    pub send_failures: u64,
}

/// One route as `keelson network list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStatus {
    pub key: RouteKey,
    pub node: NodeId,
    pub network: String,
    pub priority: u32,
    pub state: RouteState,
    pub last_heard_age_ms: Option<u64>,
    pub lost: u64,
    pub received: u64,
}

#[derive(Debug, Clone)]
struct Peer {
    name: String,
    incarnation: Option<u64>,
    state: NodeState,
    /// Its interfaces in topology order (bit i of its heartbeats' `down` is the i-th): address and
    /// adapter.
    interfaces: Vec<(IpAddr, String)>,
    /// The interfaces it reported down: routes to them stay Down until a heartbeat arrives on a
    /// route to them that no longer says so.
    reported_down: BTreeSet<IpAddr>,
    /// What its latest heartbeat said of hearing this node (None until one arrives; false once
    /// it is Down here).
    hears_us: Option<bool>,
    /// When its current incarnation was first heard: a peer that just started does not hear this
    /// node yet, and is not believed about that for a grace of two Delays.
    incarnation_since_ms: u64,
    /// When an authentic heartbeat from it last arrived, on any route.
    heard_ms: Option<u64>,
    /// Whether it is in contact under the contact lease (None until it first is).
    in_contact: Option<bool>,
}

#[derive(Debug, Clone)]
struct LocalInterface {
    spec: InterfaceSpec,
    carrier: bool,
    present: bool,
}

impl LocalInterface {
    fn usable(&self) -> bool {
        self.carrier && self.present
    }
}

/// How this node's routes to one remote interface stand.
struct RemoteView {
    reachable: bool,
    decided: bool,
    /// Every route to it leaves through a local interface that is down.
    local_fault: bool,
    node: NodeId,
    adapter: String,
    network: String,
}

#[derive(Debug, Clone, Copy)]
struct Network {
    state: NetworkState,
    ever_up: bool,
}

/// The shortest hold of a peer's report before it takes a route Down (half a Delay otherwise).
const REPORT_HOLD_MIN_MS: u64 = 100;

/// The failure detector of one node.
#[derive(Debug, Clone)]
pub struct Detector {
    local_id: NodeId,
    local_name: String,
    key: ClusterKey,
    incarnation: u64,
    port: u16,
    contact: Option<ContactLease>,
    routes: BTreeMap<RouteKey, Route>,
    peers: BTreeMap<NodeId, Peer>,
    locals: Vec<LocalInterface>,
    networks: BTreeMap<String, Network>,
    /// Remote interface address -> whether some route to it is Up (absent: not decided yet).
    remote_reachable: BTreeMap<IpAddr, bool>,
    /// Routes taken Down because their peer reported its interface down (a local cause found
    /// later is still logged).
    down_by_report: BTreeSet<RouteKey>,
    /// Routes a peer reported the far end of down, and when that takes them Down (a short hold,
    /// so that this node's own netlink word on the same cut, which names the local cause, comes
    /// first when it is coming).
    reports_due: BTreeMap<RouteKey, (u64, String)>,
    /// Remote interfaces for which 1126 was raised and 1125 not yet.
    reported_unreachable: BTreeSet<IpAddr>,
    counters: Counters,
    drop_log: RateLimiter,
    send_log: RateLimiter,
    last_now_ms: u64,
    out: Vec<Action>,
}

impl Detector {
    /// A detector whose routes were all added at `now_ms`, and the `Added route` lines for them.
    pub fn new(config: DetectorConfig, now_ms: u64) -> (Detector, Vec<Action>) {
        let topology = &config.topology;
        let mut detector = Detector {
            local_id: topology.local,
            local_name: topology.local_node().name.clone(),
            key: config.key.clone(),
            incarnation: config.incarnation,
            port: config.port,
            contact: config.contact,
            routes: BTreeMap::new(),
            peers: BTreeMap::new(),
            locals: topology
                .local_node()
                .interfaces
                .iter()
                .map(|spec| LocalInterface {
                    spec: spec.clone(),
                    carrier: true,
                    present: true,
                })
                .collect(),
            networks: BTreeMap::new(),
            remote_reachable: BTreeMap::new(),
            down_by_report: BTreeSet::new(),
            reports_due: BTreeMap::new(),
            reported_unreachable: BTreeSet::new(),
            counters: Counters::default(),
            drop_log: RateLimiter::default(),
            send_log: RateLimiter::default(),
            last_now_ms: now_ms,
            out: Vec::new(),
        };
        for node in topology.nodes.iter().filter(|n| n.id != topology.local) {
            detector.peers.insert(
                node.id,
                Peer {
                    name: node.name.clone(),
                    incarnation: None,
                    state: NodeState::Unknown,
                    interfaces: node
                        .interfaces
                        .iter()
                        .map(|i| (i.addr, i.adapter.clone()))
                        .collect(),
                    reported_down: BTreeSet::new(),
                    hears_us: None,
                    incarnation_since_ms: 0,
                    heard_ms: None,
                    in_contact: None,
                },
            );
        }
        for spec in topology.routes() {
            let (delay, threshold) = config.settings.timing(spec.same_subnet);
            detector
                .networks
                .entry(spec.network.clone())
                .or_insert(Network {
                    state: NetworkState::Unknown,
                    ever_up: false,
                });
            let route = Route::new(spec, delay, threshold, now_ms);
            detector.log_added(&route);
            detector.routes.insert(route.spec.key, route);
        }
        let actions = std::mem::take(&mut detector.out);
        (detector, actions)
    }

    /// Handles one event at `now_ms` (monotonic milliseconds) and returns what to do.
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Vec<Action> {
        self.check_clock(now_ms);
        match event {
            Event::Tick => {}
            Event::Datagram { local, from, bytes } => self.on_datagram(now_ms, local, from, &bytes),
            Event::Link { adapter, carrier } => self.on_link(now_ms, &adapter, carrier),
            Event::Address { addr, present } => self.on_address(now_ms, addr, present),
            Event::Settings(settings) => self.on_settings(now_ms, settings),
            Event::SendFailed {
                local,
                remote,
                error,
            } => self.on_send_failed(now_ms, local, remote, &error),
        }
        self.expire_routes(now_ms);
        self.check_contact(now_ms);
        self.apply_reports(now_ms);
        self.send_due(now_ms);
        self.reconcile();
        // A node that just came Up is told at once that this node hears it.
        self.send_due(now_ms);
        std::mem::take(&mut self.out)
    }

    /// When the detector next needs a `Tick`: the next heartbeat to send or route to give up on.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.routes
            .values()
            .flat_map(|r| {
                let down = (r.state != RouteState::Down).then(|| r.down_deadline_ms());
                [Some(r.next_send_ms), down]
            })
            .flatten()
            .chain(self.reports_due.values().map(|(at, _)| *at))
            .chain(self.contact_deadlines())
            .min()
    }

    /// Every route's state, at `now_ms`.
    pub fn routes(&self, now_ms: u64) -> Vec<RouteStatus> {
        self.routes
            .values()
            .map(|r| RouteStatus {
                key: r.spec.key,
                node: r.spec.node,
                network: r.spec.network.clone(),
                priority: r.spec.priority,
                state: r.state,
                last_heard_age_ms: r.last_heard_ms.map(|at| now_ms.saturating_sub(at)),
                lost: r.lost,
                received: r.received,
            })
            .collect()
    }

    /// A peer's state (None: not a peer).
    pub fn node_state(&self, node: NodeId) -> Option<NodeState> {
        self.peers.get(&node).map(|p| p.state)
    }

    /// A peer's incarnation as last seen in its heartbeats.
    pub fn node_incarnation(&self, node: NodeId) -> Option<u64> {
        self.peers.get(&node).and_then(|p| p.incarnation)
    }

    /// A network's state as this node's routes on it see it.
    pub fn network_state(&self, network: &str) -> Option<NetworkState> {
        self.networks.get(network).map(|n| n.state)
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    fn log(&mut self, level: LogLevel, component: &'static str, message: String) {
        self.out.push(Action::Log {
            level,
            component,
            message,
        });
    }

    fn log_added(&mut self, route: &Route) {
        let message = format!(
            "Added route <struct mscs::FaultTolerantRoute> <realLocal>{}</realLocal> <realRemote>{}</realRemote> <Delay>{}</Delay> <Threshold>{}</Threshold> <Priority>{}</Priority> <Attributes>{}</Attributes> </struct mscs::FaultTolerantRoute>",
            endpoint(route.spec.key.local, self.port),
            endpoint(route.spec.key.remote, self.port),
            route.delay_ms,
            route.threshold,
            route.spec.priority,
            u8::from(route.spec.same_subnet),
        );
        self.log(LogLevel::Info, "NETFT", message);
    }

    /// A gap longer than the shortest detection window (or time going backwards) means this node
    /// was not watching: restart every miss count instead of blaming the peers.
    fn check_clock(&mut self, now_ms: u64) {
        let last = self.last_now_ms;
        self.last_now_ms = now_ms;
        let Some(window) = self.routes.values().map(Route::window_ms).min() else {
            return;
        };
        let stepped = if now_ms < last {
            format!("backwards by {} ms", last - now_ms)
        } else if now_ms - last > window {
            format!("forwards by {} ms", now_ms - last)
        } else {
            return;
        };
        for route in self.routes.values_mut() {
            route.last_good_ms = now_ms;
            route.next_send_ms = now_ms;
        }
        self.log(
            LogLevel::Warn,
            "NETFT",
            format!("Clock stepped {stepped} (more than one detection window of {window} ms without a tick); restarting every route's miss count"),
        );
    }

    fn on_datagram(&mut self, now_ms: u64, local: IpAddr, from: SocketAddr, bytes: &[u8]) {
        let hb = match Heartbeat::decode(bytes, &self.key) {
            Ok(hb) => hb,
            Err(PacketError::Unauthenticated) => {
                return self.dropped(
                    now_ms,
                    local,
                    from,
                    Drop::Forged,
                    "its HMAC does not verify under the cluster key".into(),
                )
            }
            Err(e) => return self.dropped(now_ms, local, from, Drop::Malformed, e.to_string()),
        };
        let key = RouteKey {
            local,
            remote: from.ip(),
        };
        let Some(node) = self.routes.get(&key).map(|r| r.spec.node) else {
            return self.dropped(
                now_ms,
                local,
                from,
                Drop::UnknownSender,
                "it does not come from a cluster interface on a route to this one".into(),
            );
        };
        if hb.from != from.ip() || hb.to != local || NodeId(hb.node) != node {
            let why = format!(
                "it says node {} from {} to {}, which is not the route it arrived on",
                hb.node, hb.from, hb.to
            );
            return self.dropped(now_ms, local, from, Drop::Forged, why);
        }
        if let Err(why) = self.check_incarnation(now_ms, node, hb.incarnation) {
            return self.dropped(now_ms, local, from, Drop::Replayed, why);
        }
        let route = self.routes.get_mut(&key).expect("looked up above");
        match route.window.accept(hb.sequence) {
            Verdict::Replay => {
                let why = format!(
                    "sequence number {} of incarnation {} was already seen",
                    hb.sequence, hb.incarnation
                );
                return self.dropped(now_ms, local, from, Drop::Replayed, why);
            }
            Verdict::Newest { skipped } => route.lost += skipped,
            Verdict::Late => route.lost = route.lost.saturating_sub(1),
        }
        route.received += 1;
        route.last_heard_ms = Some(now_ms);
        if let Some(peer) = self.peers.get_mut(&node) {
            peer.heard_ms = Some(now_ms);
        }
        self.counters.accepted += 1;
        self.peer_reports(now_ms, node, hb.down, key.remote);
        self.heard_hears_us(now_ms, node, key, hb.hears_you);
        let reported_down = self.peers[&node].reported_down.contains(&key.remote);
        if self.local_usable(local) && !reported_down {
            let route = self.routes.get_mut(&key).expect("looked up above");
            route.last_good_ms = now_ms;
            if route.state != RouteState::Up {
                self.mark_up(key);
            }
        }
    }

    /// What a peer's authenticated heartbeat says of its own interfaces: each it reports down takes
    /// the routes to it Down at once (the peer heard it from netlink; waiting for missed
    /// heartbeats would keep sending into a dead link for a whole detection window).
    fn peer_reports(&mut self, now_ms: u64, node: NodeId, down: u16, arrived_from: IpAddr) {
        let peer = self
            .peers
            .get_mut(&node)
            .expect("every route's node is a peer");
        let now_down: BTreeSet<IpAddr> = peer
            .interfaces
            .iter()
            .take(crate::packet::REPORTED_INTERFACES)
            .enumerate()
            .filter(|(i, _)| down & (1 << i) != 0)
            .map(|(_, (addr, _))| *addr)
            .collect();
        let newly: Vec<(IpAddr, String)> = peer
            .interfaces
            .iter()
            .filter(|(addr, _)| now_down.contains(addr) && !peer.reported_down.contains(addr))
            .cloned()
            .collect();
        let name = peer.name.clone();
        // Cleared only by a heartbeat over the interface itself: one over another route may be
        // older than the report.
        if !now_down.contains(&arrived_from) {
            peer.reported_down.remove(&arrived_from);
        }
        peer.reported_down.extend(now_down);
        for (addr, adapter) in newly {
            let keys: Vec<RouteKey> = self
                .routes
                .iter()
                .filter(|(k, r)| k.remote == addr && r.state != RouteState::Down)
                .map(|(k, _)| *k)
                .collect();
            for key in keys {
                let why = format!("node '{name}' reports its interface {adapter} down");
                let hold = (self.routes[&key].delay_ms / 2).max(REPORT_HOLD_MIN_MS);
                self.reports_due.entry(key).or_insert((now_ms + hold, why));
            }
        }
    }

    /// Takes Down the routes whose peer's report has waited out its hold and still stands.
    fn apply_reports(&mut self, now_ms: u64) {
        let due: Vec<RouteKey> = self
            .reports_due
            .iter()
            .filter(|(_, (at, _))| *at <= now_ms)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let (_, why) = self.reports_due.remove(&key).expect("listed above");
            let node = self.routes[&key].spec.node;
            let stands = self.peers[&node].reported_down.contains(&key.remote);
            if stands && self.routes[&key].state != RouteState::Down {
                self.mark_down(key, why);
                self.down_by_report.insert(key);
            }
        }
    }

    /// A heartbeat's word on whether `node` hears this node; a peer that started less than two of
    /// its Delays ago may simply not have heard this node yet, so its "no" waits.
    fn heard_hears_us(&mut self, now_ms: u64, node: NodeId, key: RouteKey, hears: bool) {
        let since = self.peers[&node].incarnation_since_ms;
        let grace = 2 * self.routes[&key].delay_ms;
        if !hears && now_ms < since + grace {
            return;
        }
        self.set_hears_us(node, hears);
    }

    /// Records whether `node` hears this node; the first word and every change is reported, a
    /// change logged.
    fn set_hears_us(&mut self, node: NodeId, hears: bool) {
        let peer = self
            .peers
            .get_mut(&node)
            .expect("every route's node is a peer");
        let before = peer.hears_us.replace(hears);
        if before == Some(hears) {
            return;
        }
        if before.is_none() && !hears {
            // Nothing to log: it has not heard this node yet.
            self.out.push(Action::PeerHearsUs { node, hears });
            return;
        }
        let name = peer.name.clone();
        if hears {
            self.log(
                LogLevel::Info,
                "NM",
                format!("Node '{name}' (id {node}) hears this node"),
            );
        } else if peer.state == NodeState::Up {
            self.log(
                LogLevel::Warn,
                "NM",
                format!("Node '{name}' (id {node}) no longer hears this node, although this node hears it: the cut is one-way"),
            );
        }
        self.out.push(Action::PeerHearsUs { node, hears });
    }

    /// Under a contact lease, reports every peer whose contact changed: in once it is heard
    /// within the window, out once it was in and has not been heard for the whole window.
    fn check_contact(&mut self, now_ms: u64) {
        let Some(lease) = self.contact else {
            return;
        };
        let changed: Vec<(NodeId, bool)> = self
            .peers
            .iter()
            .filter_map(|(id, p)| {
                let now_in = lease.in_contact(p.heard_ms, now_ms);
                let report = match p.in_contact {
                    None => now_in,
                    Some(was) => was != now_in,
                };
                report.then_some((*id, now_in))
            })
            .collect();
        for (node, in_contact) in changed {
            let peer = self.peers.get_mut(&node).expect("id from the map");
            peer.in_contact = Some(in_contact);
            if !in_contact {
                let message = format!(
                    "Node '{}' (id {node}) has not been heard for {} ms: out of contact, it no longer counts towards this node's quorum",
                    peer.name, lease.window_ms
                );
                self.log(LogLevel::Warn, "NM", message);
            }
            self.out.push(Action::PeerContact { node, in_contact });
        }
    }

    /// When an in-contact peer's window runs out, for `next_deadline_ms`.
    fn contact_deadlines(&self) -> impl Iterator<Item = u64> + '_ {
        let window = self.contact.map(|c| c.window_ms);
        self.peers.values().filter_map(move |p| {
            let window = window?;
            (p.in_contact == Some(true))
                .then(|| p.heard_ms.map(|at| at + window + 1))
                .flatten()
        })
    }

    /// Whether `node`'s latest heartbeat said it hears this node (false once it is Down here).
    pub fn hears_us(&self, node: NodeId) -> bool {
        self.peers
            .get(&node)
            .is_some_and(|p| p.hears_us == Some(true))
    }

    /// This node's interfaces that are down, as the `down` bits of its heartbeats.
    fn local_down_mask(&self) -> u16 {
        self.locals
            .iter()
            .take(crate::packet::REPORTED_INTERFACES)
            .enumerate()
            .filter(|(_, l)| !l.usable())
            .fold(0, |mask, (i, _)| mask | (1 << i))
    }

    /// Accepts the first incarnation seen and any higher one (the peer restarted: its sequence
    /// numbers start again); an older one is a replay.
    fn check_incarnation(
        &mut self,
        now_ms: u64,
        node: NodeId,
        incarnation: u64,
    ) -> Result<(), String> {
        let peer = self
            .peers
            .get_mut(&node)
            .expect("every route's node is a peer");
        if peer.incarnation != Some(incarnation) {
            peer.incarnation_since_ms = now_ms;
        }
        match peer.incarnation {
            Some(known) if incarnation < known => {
                return Err(format!("incarnation {incarnation} is older than {known}"))
            }
            Some(known) if incarnation == known => return Ok(()),
            Some(known) => {
                let message = format!(
                    "Node '{}' (id {node}) restarted: incarnation {known} -> {incarnation}",
                    peer.name
                );
                peer.incarnation = Some(incarnation);
                self.log(LogLevel::Info, "NM", message);
            }
            None => peer.incarnation = Some(incarnation),
        }
        for route in self.routes.values_mut().filter(|r| r.spec.node == node) {
            route.window = ReplayWindow::default();
        }
        self.out.push(Action::NodeIncarnation { node, incarnation });
        Ok(())
    }

    fn dropped(&mut self, now_ms: u64, local: IpAddr, from: SocketAddr, kind: Drop, why: String) {
        let c = &mut self.counters;
        match kind {
            Drop::Forged => c.forged += 1,
            Drop::Replayed => c.replayed += 1,
            Drop::Malformed => c.malformed += 1,
            Drop::UnknownSender => c.unknown_sender += 1,
        }
        if !self.drop_log.allow(from.ip(), now_ms) {
            return;
        }
        let message = format!(
            "Dropped datagram from {} to {}: {why} ({} forged, {} replayed, {} malformed, {} from unknown senders so far; drops from {} are logged at most once a minute)",
            endpoint(from.ip(), from.port()),
            endpoint(local, self.port),
            c.forged,
            c.replayed,
            c.malformed,
            c.unknown_sender,
            from.ip(),
        );
        self.log(LogLevel::Warn, "NETFT", message);
    }

    fn local_usable(&self, addr: IpAddr) -> bool {
        self.locals
            .iter()
            .find(|l| l.spec.addr == addr)
            .is_some_and(LocalInterface::usable)
    }

    fn on_link(&mut self, now_ms: u64, adapter: &str, carrier: bool) {
        let indexes: Vec<usize> = (0..self.locals.len())
            .filter(|&i| self.locals[i].spec.adapter == adapter)
            .collect();
        for i in indexes {
            let was = self.locals[i].usable();
            self.locals[i].carrier = carrier;
            let what = if carrier {
                "has carrier again"
            } else {
                "lost carrier (link down)"
            };
            self.local_changed(now_ms, i, was, what);
        }
    }

    fn on_address(&mut self, now_ms: u64, addr: IpAddr, present: bool) {
        if let Some(i) = self.locals.iter().position(|l| l.spec.addr == addr) {
            let was = self.locals[i].usable();
            self.locals[i].present = present;
            let what = if present {
                "has its address again"
            } else {
                "lost its address"
            };
            self.local_changed(now_ms, i, was, what);
        }
    }

    fn local_changed(&mut self, now_ms: u64, index: usize, was_usable: bool, what: &str) {
        let local = &self.locals[index];
        let (spec, usable) = (local.spec.clone(), local.usable());
        if usable == was_usable {
            return;
        }
        let name = interface_name(&self.local_name, &spec.adapter);
        let level = if usable {
            LogLevel::Info
        } else {
            LogLevel::Warn
        };
        self.log(
            level,
            "NETFT",
            format!("Interface '{name}' ({}) {what}", spec.addr),
        );
        let keys: Vec<RouteKey> = self
            .routes
            .keys()
            .filter(|k| k.local == spec.addr)
            .copied()
            .collect();
        if usable {
            for key in keys {
                let route = self.routes.get_mut(&key).expect("key from the map");
                route.next_send_ms = now_ms;
                route.last_good_ms = now_ms;
            }
            return;
        }
        self.out.push(Action::Event(event_1127(
            &name,
            &self.local_name,
            &spec.network,
        )));
        // The peers hear of it at once, in the `down` bits of a heartbeat on every other route.
        let usable: BTreeSet<IpAddr> = self
            .locals
            .iter()
            .filter(|l| l.usable())
            .map(|l| l.spec.addr)
            .collect();
        for route in self.routes.values_mut() {
            if usable.contains(&route.spec.key.local) {
                route.next_send_ms = now_ms;
            }
        }
        for key in keys {
            let why = format!("its local interface {} {what}", spec.adapter);
            if self.routes[&key].state != RouteState::Down {
                self.mark_down(key, why);
            } else if self.down_by_report.remove(&key) {
                // Already Down on the peer's word; the cause is here too.
                let (local, remote) = (
                    endpoint(key.local, self.port),
                    endpoint(key.remote, self.port),
                );
                self.log(
                    LogLevel::Warn,
                    "NETFT",
                    format!("Route from {local} to {remote} is down: {why}"),
                );
            }
        }
    }

    /// New timing applies from now: each route's miss count restarts under the new Delay.
    fn on_settings(&mut self, now_ms: u64, settings: NetftSettings) {
        let mut changed = Vec::new();
        for route in self.routes.values_mut() {
            let (delay, threshold) = settings.timing(route.spec.same_subnet);
            let (delay, threshold) = (u64::from(delay), u64::from(threshold));
            if (delay, threshold) == (route.delay_ms, route.threshold) {
                continue;
            }
            route.delay_ms = delay;
            route.threshold = threshold;
            route.last_good_ms = route.last_good_ms.max(now_ms.saturating_sub(delay));
            route.next_send_ms = route.next_send_ms.min(now_ms + delay);
            changed.push((route.spec.key, delay, threshold));
        }
        for (key, delay, threshold) in changed {
            let message = format!(
                "Route from {} to {} now uses Delay {delay} ms and Threshold {threshold}",
                endpoint(key.local, self.port),
                endpoint(key.remote, self.port)
            );
            self.log(LogLevel::Info, "NETFT", message);
        }
    }

    fn on_send_failed(&mut self, now_ms: u64, local: IpAddr, remote: SocketAddr, error: &str) {
        self.counters.send_failures += 1;
        if self.send_log.allow(remote.ip(), now_ms) {
            let message = format!(
                "Failed to send heartbeat from {} to {}: {error} ({} send failures so far; logged at most once a minute per peer)",
                endpoint(local, self.port),
                endpoint(remote.ip(), remote.port()),
                self.counters.send_failures
            );
            self.log(LogLevel::Warn, "NETFT", message);
        }
    }

    fn expire_routes(&mut self, now_ms: u64) {
        let expired: Vec<RouteKey> = self
            .routes
            .values()
            .filter(|r| r.state != RouteState::Down && now_ms >= r.down_deadline_ms())
            .map(|r| r.spec.key)
            .collect();
        for key in expired {
            let r = &self.routes[&key];
            let why = format!(
                "{} heartbeats in a row were missed (Delay {} ms, Threshold {})",
                r.misses(now_ms),
                r.delay_ms,
                r.threshold
            );
            self.mark_down(key, why);
        }
    }

    fn send_due(&mut self, now_ms: u64) {
        let keys: Vec<RouteKey> = self.routes.keys().copied().collect();
        let down = self.local_down_mask();
        for key in keys {
            let usable = self.local_usable(key.local);
            let route = self.routes.get_mut(&key).expect("key from the map");
            let Some(sequence) = route.take_due_send(now_ms) else {
                continue;
            };
            if !usable {
                continue;
            }
            let contact = self.contact;
            let hears_you = self.peers.get(&route.spec.node).is_some_and(|p| {
                p.state == NodeState::Up && contact.is_none_or(|c| c.hears(p.heard_ms, now_ms))
            });
            let heartbeat = Heartbeat {
                node: self.local_id.0,
                incarnation: self.incarnation,
                sequence,
                from: key.local,
                to: key.remote,
                down,
                hears_you,
            };
            self.out.push(Action::Send {
                local: key.local,
                remote: SocketAddr::new(key.remote, self.port),
                datagram: heartbeat.encode(&self.key).to_vec(),
            });
        }
    }

    fn mark_up(&mut self, key: RouteKey) {
        self.routes.get_mut(&key).expect("route exists").state = RouteState::Up;
        self.down_by_report.remove(&key);
        let (local, remote) = (
            endpoint(key.local, self.port),
            endpoint(key.remote, self.port),
        );
        self.log(
            LogLevel::Dbg,
            "NETFTAPI",
            format!(
                "Signaled NetftRemoteReachable event, local address {} remote address {}",
                netftapi_endpoint(key.local, self.port),
                netftapi_endpoint(key.remote, self.port)
            ),
        );
        self.log(
            LogLevel::Info,
            "IM",
            format!("got event: Remote endpoint {remote} reachable from {local}"),
        );
        self.log(
            LogLevel::Info,
            "IM",
            format!("Marking Route from {local} to {remote} as up"),
        );
        self.out.push(Action::RouteState {
            route: key,
            state: RouteState::Up,
        });
    }

    fn mark_down(&mut self, key: RouteKey, why: String) {
        self.routes.get_mut(&key).expect("route exists").state = RouteState::Down;
        let (local, remote) = (
            endpoint(key.local, self.port),
            endpoint(key.remote, self.port),
        );
        self.log(
            LogLevel::Warn,
            "NETFT",
            format!("Route from {local} to {remote} is down: {why}"),
        );
        self.log(
            LogLevel::Dbg,
            "NETFTAPI",
            format!(
                "Signaled NetftRemoteUnreachable event, local address {} remote address {}",
                netftapi_endpoint(key.local, self.port),
                netftapi_endpoint(key.remote, self.port)
            ),
        );
        self.log(
            LogLevel::Info,
            "IM",
            format!("got event: Remote endpoint {remote} unreachable from {local}"),
        );
        self.log(
            LogLevel::Info,
            "IM",
            format!("Marking Route from {local} to {remote} as down"),
        );
        self.out.push(Action::RouteState {
            route: key,
            state: RouteState::Down,
        });
    }

    /// Recomputes node, remote-interface and network states from the routes; announces changes.
    fn reconcile(&mut self) {
        self.reconcile_nodes();
        self.reconcile_interfaces();
        self.reconcile_networks();
    }

    fn reconcile_nodes(&mut self) {
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            let states: Vec<RouteState> = self
                .routes
                .values()
                .filter(|r| r.spec.node == id)
                .map(|r| r.state)
                .collect();
            let new = if states.contains(&RouteState::Up) {
                NodeState::Up
            } else if !states.is_empty() && states.iter().all(|s| *s == RouteState::Down) {
                NodeState::Down
            } else {
                continue;
            };
            let peer = self.peers.get_mut(&id).expect("id from the map");
            let old = std::mem::replace(&mut peer.state, new);
            if old == new {
                continue;
            }
            let name = peer.name.clone();
            if new == NodeState::Up {
                self.log(
                    LogLevel::Info,
                    "NM",
                    format!("Node '{name}' (id {id}) is up"),
                );
                // It learns that this node hears it with the next heartbeat: send it now.
                let now = self.last_now_ms;
                for route in self.routes.values_mut().filter(|r| r.spec.node == id) {
                    route.next_send_ms = route.next_send_ms.min(now);
                }
            } else {
                self.log(
                    LogLevel::Warn,
                    "NM",
                    format!(
                        "Node '{name}' (id {id}) is down: all {} routes to it are down",
                        states.len()
                    ),
                );
                if old == NodeState::Up {
                    self.out.push(Action::Event(event_1135(&name)));
                }
            }
            self.out.push(Action::NodeState {
                node: id,
                state: new,
            });
            if new == NodeState::Down {
                self.set_hears_us(id, false);
            }
        }
    }

    fn reconcile_interfaces(&mut self) {
        let mut by_remote: BTreeMap<IpAddr, RemoteView> = BTreeMap::new();
        for r in self.routes.values() {
            let view = by_remote.entry(r.spec.key.remote).or_insert(RemoteView {
                reachable: false,
                decided: true,
                local_fault: true,
                node: r.spec.node,
                adapter: r.spec.remote_adapter.clone(),
                network: r.spec.network.clone(),
            });
            view.reachable |= r.state == RouteState::Up;
            view.decided &= r.state != RouteState::Unknown;
            view.local_fault &= !self.local_usable(r.spec.key.local);
        }
        for (addr, view) in by_remote {
            let RemoteView {
                reachable,
                decided,
                local_fault,
                node,
                adapter,
                network,
            } = view;
            if !decided {
                continue;
            }
            let old = self.remote_reachable.insert(addr, reachable);
            let peer = &self.peers[&node];
            let name = interface_name(&peer.name, &adapter);
            // 1126 says the failure's location is unknown; when our own link is gone, it is known.
            if old == Some(true) && !reachable && !local_fault && peer.state == NodeState::Up {
                self.reported_unreachable.insert(addr);
                let event = event_1126(&name, &peer.name, &network);
                self.log(LogLevel::Warn, "TM", format!("Interface '{name}' ({addr}) on network '{network}' is unreachable from this node"));
                self.out.push(Action::Event(event));
            } else if reachable && self.reported_unreachable.remove(&addr) {
                let event = event_1125(&name, &peer.name, &network);
                self.log(
                    LogLevel::Info,
                    "TM",
                    format!(
                        "Interface '{name}' ({addr}) on network '{network}' is reachable again"
                    ),
                );
                self.out.push(Action::Event(event));
            }
        }
    }

    fn reconcile_networks(&mut self) {
        let names: Vec<String> = self.networks.keys().cloned().collect();
        for name in names {
            let states: Vec<RouteState> = self
                .routes
                .values()
                .filter(|r| r.spec.network == name)
                .map(|r| r.state)
                .collect();
            if states.contains(&RouteState::Unknown) {
                continue;
            }
            let up = states.iter().filter(|s| **s == RouteState::Up).count();
            let new = match up {
                0 => NetworkState::Down,
                n if n == states.len() => NetworkState::Up,
                _ => NetworkState::Partitioned,
            };
            let net = self.networks.get_mut(&name).expect("name from the map");
            let old = std::mem::replace(&mut net.state, new);
            let ever_up = net.ever_up;
            net.ever_up |= new == NetworkState::Up;
            if old == new {
                continue;
            }
            let (level, word, event) = match new {
                NetworkState::Up => (
                    LogLevel::Info,
                    "up",
                    (old != NetworkState::Unknown).then(|| event_1128(&name)),
                ),
                NetworkState::Partitioned => (
                    LogLevel::Warn,
                    "partitioned",
                    ever_up.then(|| event_1129(&name)),
                ),
                _ => (LogLevel::Warn, "down", ever_up.then(|| event_1130(&name))),
            };
            self.log(
                level,
                "TM",
                format!(
                    "Network '{name}' is {word}: {up} of {} routes up",
                    states.len()
                ),
            );
            if let Some(event) = event {
                self.out.push(Action::Event(event));
            }
        }
    }
}

#[cfg(test)]
#[path = "detector_tests.rs"]
mod tests;
