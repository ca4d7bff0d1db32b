//! Fake-clock tests of every detector rule: cadence, Up on the first good heartbeat, Down after
//! Threshold misses, jitter, reordering, replays, forgeries, incarnations, clock steps, netlink link
//! and address changes, node/network/interface states and their events and log lines.

use super::*;
use crate::action::EventLevel;
use crate::packet::HEARTBEAT_LEN;
use crate::settings::NetftSettings;
use crate::topology::{InterfaceSpec, NetworkSpec, NodeSpec};
use proptest::prelude::*;

const A1: &str = "192.0.2.1";
const A2: &str = "198.51.100.1";
const B1: &str = "192.0.2.2";
const B2: &str = "198.51.100.2";
const C1: &str = "192.0.2.3";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key() -> ClusterKey {
    ClusterKey::new(b"test-cluster-key-0123456789").unwrap()
}

fn iface(adapter: &str, addr: &str, network: &str) -> InterfaceSpec {
    InterfaceSpec {
        adapter: adapter.into(),
        addr: ip(addr),
        prefix_len: 24,
        network: network.into(),
    }
}

fn node(id: u32, name: &str, ifaces: Vec<InterfaceSpec>) -> NodeSpec {
    NodeSpec {
        id: NodeId(id),
        name: name.into(),
        interfaces: ifaces,
    }
}

fn networks() -> Vec<NetworkSpec> {
    vec![
        NetworkSpec {
            name: "net1".into(),
            priority: 1,
        },
        NetworkSpec {
            name: "net2".into(),
            priority: 2,
        },
    ]
}

/// A (id 1, local) and B (id 2), each on net1 and net2.
fn two_nodes() -> Topology {
    Topology::new(
        NodeId(1),
        vec![
            node(
                1,
                "A",
                vec![iface("eth0", A1, "net1"), iface("eth1", A2, "net2")],
            ),
            node(
                2,
                "B",
                vec![iface("eth0", B1, "net1"), iface("eth1", B2, "net2")],
            ),
        ],
        networks(),
    )
    .unwrap()
}

fn config(topology: Topology, settings: NetftSettings) -> DetectorConfig {
    DetectorConfig {
        topology,
        settings,
        key: key(),
        incarnation: 11,
        port: DEFAULT_PORT,
        contact: None,
    }
}

fn route(local: &str, remote: &str) -> RouteKey {
    RouteKey {
        local: ip(local),
        remote: ip(remote),
    }
}

/// A heartbeat from `from` (node `node`, incarnation `inc`) to `to`, as the datagram event.
fn heartbeat_with(k: &ClusterKey, node: u32, inc: u64, seq: u64, from: &str, to: &str) -> Event {
    heartbeat_flags(k, node, inc, seq, (from, to), 0, false)
}

/// As `heartbeat_with`, with the sender reporting the interfaces in `down` down.
fn heartbeat_down(
    k: &ClusterKey,
    node: u32,
    inc: u64,
    seq: u64,
    from: &str,
    to: &str,
    down: u16,
) -> Event {
    heartbeat_flags(k, node, inc, seq, (from, to), down, false)
}

/// A heartbeat with its `down` bits and whether the sender hears the receiver.
fn heartbeat_flags(
    k: &ClusterKey,
    node: u32,
    inc: u64,
    seq: u64,
    (from, to): (&str, &str),
    down: u16,
    hears_you: bool,
) -> Event {
    let hb = Heartbeat {
        node,
        incarnation: inc,
        sequence: seq,
        from: ip(from),
        to: ip(to),
        down,
        hears_you,
    };
    Event::Datagram {
        local: ip(to),
        from: SocketAddr::new(ip(from), DEFAULT_PORT),
        bytes: hb.encode(k).to_vec(),
    }
}

/// The fake clock and everything the detector has said so far.
struct Harness {
    det: Detector,
    now: u64,
    actions: Vec<Action>,
    /// B's next sequence number per route.
    seq: BTreeMap<RouteKey, u64>,
}

impl Harness {
    fn new(cfg: DetectorConfig) -> Self {
        let (det, actions) = Detector::new(cfg, 0);
        Harness {
            det,
            now: 0,
            actions,
            seq: BTreeMap::new(),
        }
    }

    fn two_nodes() -> Self {
        Harness::new(config(two_nodes(), NetftSettings::default()))
    }

    fn at(&mut self, now: u64, event: Event) -> Vec<Action> {
        self.now = now;
        let out = self.det.handle(now, event);
        self.actions.extend(out.clone());
        out
    }

    /// Ticks every 100 ms up to and including `until`.
    fn tick_to(&mut self, until: u64) {
        while self.now + 100 <= until {
            let next = self.now + 100;
            self.at(next, Event::Tick);
        }
        if self.now < until {
            self.at(until, Event::Tick);
        }
    }

    /// B's next heartbeat on the route from B's `from` to A's `to`, delivered now.
    fn b_sends(&mut self, from: &str, to: &str) -> Vec<Action> {
        let seq = self.seq.entry(route(to, from)).or_insert(0);
        *seq += 1;
        let event = heartbeat_with(&key(), 2, 7, *seq, from, to);
        let now = self.now;
        self.at(now, event)
    }

    /// Ticks to `until`, with B sending on both routes every second on the second.
    fn b_alive_until(&mut self, until: u64) {
        while self.now + 1000 <= until {
            let next = self.now + 1000;
            self.tick_to(next);
            self.b_sends(B1, A1);
            self.b_sends(B2, A2);
        }
        self.tick_to(until);
    }

    fn state(&self, local: &str, remote: &str) -> RouteState {
        self.det
            .routes(self.now)
            .into_iter()
            .find(|r| r.key == route(local, remote))
            .unwrap()
            .state
    }

    fn logs(&self) -> Vec<String> {
        logs(&self.actions)
    }

    fn events(&self) -> Vec<u32> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some(e.id),
                _ => None,
            })
            .collect()
    }

    fn clear(&mut self) {
        self.actions.clear();
    }
}

fn logs(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log {
                level,
                component,
                message,
            } => Some(format!("{level} [{component}] {message}")),
            _ => None,
        })
        .collect()
}

fn sends(actions: &[Action]) -> Vec<(IpAddr, SocketAddr, Heartbeat)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                local,
                remote,
                datagram,
            } => Some((
                *local,
                *remote,
                Heartbeat::decode(datagram, &key()).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

fn state_changes(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::RouteState { .. } | Action::NodeState { .. }))
        .count()
}

#[test]
fn routes_are_added_with_the_seed_log_line() {
    let h = Harness::two_nodes();
    assert_eq!(
        h.logs(),
        vec![
            "INFO [NETFT] Added route <struct mscs::FaultTolerantRoute> <realLocal>192.0.2.1:~3343~</realLocal> <realRemote>192.0.2.2:~3343~</realRemote> <Delay>1000</Delay> <Threshold>5</Threshold> <Priority>1</Priority> <Attributes>1</Attributes> </struct mscs::FaultTolerantRoute>",
            "INFO [NETFT] Added route <struct mscs::FaultTolerantRoute> <realLocal>198.51.100.1:~3343~</realLocal> <realRemote>198.51.100.2:~3343~</realRemote> <Delay>1000</Delay> <Threshold>5</Threshold> <Priority>2</Priority> <Attributes>1</Attributes> </struct mscs::FaultTolerantRoute>",
        ]
    );
    assert_eq!(h.state(A1, B1), RouteState::Unknown);
}

#[test]
fn a_heartbeat_goes_on_every_route_every_delay_with_rising_sequence_numbers() {
    let mut h = Harness::two_nodes();
    h.at(0, Event::Tick);
    h.tick_to(10_000);
    let sent = sends(&h.actions);
    let on_net1: Vec<_> = sent.iter().filter(|s| s.0 == ip(A1)).collect();
    assert_eq!(on_net1.len(), 11, "at 0, 1000, ..., 10000");
    for (i, (_, remote, hb)) in on_net1.iter().enumerate() {
        assert_eq!(*remote, SocketAddr::new(ip(B1), 3343));
        assert_eq!(
            (hb.node, hb.incarnation, hb.sequence),
            (1, 11, i as u64 + 1)
        );
        assert_eq!((hb.from, hb.to), (ip(A1), ip(B1)));
    }
    assert_eq!(sent.iter().filter(|s| s.0 == ip(A2)).count(), 11);
}

#[test]
fn next_deadline_is_the_next_send_or_give_up_time() {
    let mut h = Harness::two_nodes();
    h.at(0, Event::Tick);
    assert_eq!(h.det.next_deadline_ms(), Some(1000));
    h.at(1000, Event::Tick);
    h.b_sends(B1, A1);
    h.b_sends(B2, A2);
    // Next send at 2000; give-up at 1000 + 5 * 1000 + 500 = 6500.
    assert_eq!(h.det.next_deadline_ms(), Some(2000));
}

#[test]
fn the_first_good_heartbeat_brings_the_route_and_node_up_with_the_seed_lines() {
    let mut h = Harness::two_nodes();
    h.at(300, Event::Tick);
    h.clear();
    let out = h.b_sends(B1, A1);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    assert_eq!(
        logs(&out),
        vec![
            "DBG [NETFTAPI] Signaled NetftRemoteReachable event, local address 192.0.2.1:003853 remote address 192.0.2.2:003853",
            "INFO [IM] got event: Remote endpoint 192.0.2.2:~3343~ reachable from 192.0.2.1:~3343~",
            "INFO [IM] Marking Route from 192.0.2.1:~3343~ to 192.0.2.2:~3343~ as up",
            "INFO [NM] Node 'B' (id 2) is up",
            "INFO [TM] Network 'net1' is up: 1 of 1 routes up",
        ]
    );
    assert!(out.contains(&Action::RouteState {
        route: route(A1, B1),
        state: RouteState::Up
    }));
    assert!(out.contains(&Action::NodeState {
        node: NodeId(2),
        state: NodeState::Up
    }));
    assert!(out.contains(&Action::NodeIncarnation {
        node: NodeId(2),
        incarnation: 7
    }));
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Up));
    assert_eq!(h.det.node_incarnation(NodeId(2)), Some(7));
}

#[test]
fn a_route_goes_down_after_threshold_misses_in_a_row_and_up_on_the_next_heartbeat() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(5000);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    assert_eq!(h.det.network_state("net1"), Some(NetworkState::Up));
    // B keeps sending on net2 only; the last net1 heartbeat arrived at 5000.
    for t in (6000..=10_000).step_by(1000) {
        h.tick_to(t);
        h.b_sends(B2, A2);
    }
    h.tick_to(10_499);
    assert_eq!(h.state(A1, B1), RouteState::Up, "4 misses and a bit");
    h.clear();
    h.tick_to(10_500);
    assert_eq!(h.state(A1, B1), RouteState::Down, "the 5th miss");
    let lines = h.logs();
    assert_eq!(lines[0], "WARN [NETFT] Route from 192.0.2.1:~3343~ to 192.0.2.2:~3343~ is down: 5 heartbeats in a row were missed (Delay 1000 ms, Threshold 5)");
    assert!(lines.contains(
        &"INFO [IM] Marking Route from 192.0.2.1:~3343~ to 192.0.2.2:~3343~ as down".to_string()
    ));
    assert!(lines.contains(
        &"INFO [IM] got event: Remote endpoint 192.0.2.2:~3343~ unreachable from 192.0.2.1:~3343~"
            .to_string()
    ));
    assert_eq!(
        h.det.node_state(NodeId(2)),
        Some(NodeState::Up),
        "still up on net2"
    );
    assert_eq!(
        h.events(),
        vec![1126, 1130],
        "B's eth0 unreachable; net1 down"
    );
    assert_eq!(h.det.network_state("net1"), Some(NetworkState::Down));
    h.clear();
    h.b_sends(B1, A1);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    assert_eq!(h.events(), vec![1125, 1128]);
}

#[test]
fn a_node_is_down_only_when_all_its_routes_are() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(3000);
    // B stops on net1 at 3000 and on net2 at 5000.
    for t in [4000, 5000] {
        h.tick_to(t);
        h.b_sends(B2, A2);
    }
    h.tick_to(8500);
    assert_eq!(h.state(A1, B1), RouteState::Down);
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Up));
    assert!(!h.events().contains(&1135));
    h.tick_to(10_499);
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Up));
    h.tick_to(10_500);
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Down));
    assert_eq!(h.events(), vec![1126, 1130, 1135, 1130]);
    assert!(h
        .logs()
        .contains(&"WARN [NM] Node 'B' (id 2) is down: all 2 routes to it are down".to_string()));
    let e1135 = h
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Event(e) if e.id == 1135 => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(e1135.level, EventLevel::Critical);
    assert_eq!(e1135.node.as_deref(), Some("B"));
}

#[test]
fn a_peer_that_never_answers_goes_down_without_a_membership_event() {
    let mut h = Harness::two_nodes();
    h.tick_to(5499);
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Unknown));
    h.tick_to(5500);
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Down));
    assert!(h.events().is_empty(), "{:?}", h.events());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Heartbeats every second, each up to 400 ms early or late (and so sometimes reordered
    /// between routes), for a minute: no route ever goes down, nothing is dropped.
    #[test]
    fn jitter_within_the_grace_never_takes_a_route_down(jitter in proptest::collection::vec(-400i64..=400, 60)) {
        let mut h = Harness::two_nodes();
        for (k, j) in jitter.iter().enumerate() {
            let arrival = (1000 * (k as i64 + 1) + j) as u64;
            h.tick_to(arrival);
            h.b_sends(B1, A1);
            h.b_sends(B2, A2);
            prop_assert_eq!(h.state(A1, B1), RouteState::Up);
        }
        let downs = h.actions.iter().filter(|a| matches!(a, Action::RouteState { state: RouteState::Down, .. })).count();
        prop_assert_eq!(downs, 0);
        prop_assert_eq!(h.det.counters().accepted, 120);
    }
}

#[test]
fn reordered_heartbeats_are_accepted_and_losses_counted_right() {
    let mut h = Harness::two_nodes();
    h.at(100, heartbeat_with(&key(), 2, 7, 1, B1, A1));
    h.at(200, heartbeat_with(&key(), 2, 7, 3, B1, A1));
    let lost = |h: &Harness| {
        h.det
            .routes(h.now)
            .into_iter()
            .find(|r| r.key == route(A1, B1))
            .unwrap()
            .lost
    };
    assert_eq!(lost(&h), 1, "2 not seen yet");
    h.at(300, heartbeat_with(&key(), 2, 7, 2, B1, A1));
    assert_eq!(lost(&h), 0, "2 arrived late");
    let c = h.det.counters();
    assert_eq!((c.accepted, c.replayed), (3, 0));
}

#[test]
fn a_replayed_heartbeat_is_dropped_counted_logged_once_a_minute_and_changes_nothing() {
    let mut h = Harness::two_nodes();
    let captured = heartbeat_with(&key(), 2, 7, 1, B1, A1);
    h.at(100, captured.clone());
    h.b_sends(B2, A2);
    h.tick_to(6000);
    assert_eq!(h.state(A1, B1), RouteState::Down);
    h.clear();
    for i in 0..10 {
        let out = h.at(6000 + i, captured.clone());
        assert_eq!(state_changes(&out), 0);
    }
    assert_eq!(
        h.state(A1, B1),
        RouteState::Down,
        "a replay is no proof of life"
    );
    assert_eq!(h.det.counters().replayed, 10);
    let warnings: Vec<_> = h
        .logs()
        .into_iter()
        .filter(|l| l.contains("Dropped"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("WARN [NETFT] Dropped datagram from 192.0.2.2:~3343~ to 192.0.2.1:~3343~: sequence number 1 of incarnation 7 was already seen"), "{}", warnings[0]);
    h.clear();
    h.at(6000 + 60_000, captured);
    assert_eq!(
        h.logs().iter().filter(|l| l.contains("Dropped")).count(),
        1,
        "again after a minute"
    );
}

#[test]
fn a_forged_heartbeat_is_dropped_counted_and_never_changes_state() {
    let mut h = Harness::two_nodes();
    let wrong = ClusterKey::new(b"not-the-cluster-key!!").unwrap();
    for seq in 1..=5 {
        let out = h.at(100 * seq, heartbeat_with(&wrong, 2, 7, seq, B1, A1));
        assert_eq!(state_changes(&out), 0);
    }
    assert_eq!(h.state(A1, B1), RouteState::Unknown);
    assert_eq!(h.det.counters().forged, 5);
    assert_eq!(
        h.det.node_incarnation(NodeId(2)),
        None,
        "nothing is trusted before the HMAC"
    );
    let warnings: Vec<_> = h
        .logs()
        .into_iter()
        .filter(|l| l.contains("Dropped"))
        .collect();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("its HMAC does not verify under the cluster key"));
}

#[test]
fn an_authentic_heartbeat_on_the_wrong_route_or_naming_another_node_is_forged() {
    let mut h = Harness::two_nodes();
    // Meant for A2 but delivered on A1's socket from B1.
    let mut event = heartbeat_with(&key(), 2, 7, 1, B1, A2);
    if let Event::Datagram { local, .. } = &mut event {
        *local = ip(A1);
    }
    h.at(100, event);
    // Claims to be node 3.
    h.at(200, heartbeat_with(&key(), 3, 7, 1, B1, A1));
    assert_eq!(h.det.counters().forged, 2);
    assert_eq!(h.state(A1, B1), RouteState::Unknown);
}

#[test]
fn malformed_and_oversized_datagrams_are_dropped_and_counted() {
    let mut h = Harness::two_nodes();
    let from = SocketAddr::new(ip(B1), 3343);
    for bytes in [
        vec![],
        vec![0u8; HEARTBEAT_LEN + 1],
        vec![0u8; 2048],
        b"KNFT\x09".repeat(20),
    ] {
        let out = h.at(
            100,
            Event::Datagram {
                local: ip(A1),
                from,
                bytes,
            },
        );
        assert_eq!(state_changes(&out), 0);
    }
    assert_eq!(h.det.counters().malformed, 4);
}

#[test]
fn a_sender_no_route_leads_to_is_counted_as_unknown() {
    let mut h = Harness::two_nodes();
    h.at(100, heartbeat_with(&key(), 2, 7, 1, "192.0.2.77", A1));
    assert_eq!(h.det.counters().unknown_sender, 1);
}

#[test]
fn a_restarted_peer_with_a_higher_incarnation_starts_its_sequence_again() {
    let mut h = Harness::two_nodes();
    for seq in 1..=100 {
        h.at(seq * 10, heartbeat_with(&key(), 2, 7, seq, B1, A1));
    }
    h.clear();
    h.at(2000, heartbeat_with(&key(), 2, 8, 1, B1, A1));
    assert_eq!(h.det.counters().accepted, 101);
    assert_eq!(h.det.node_incarnation(NodeId(2)), Some(8));
    assert!(h
        .logs()
        .contains(&"INFO [NM] Node 'B' (id 2) restarted: incarnation 7 -> 8".to_string()));
    assert!(h.actions.contains(&Action::NodeIncarnation {
        node: NodeId(2),
        incarnation: 8
    }));
    // The old incarnation's heartbeats are replays now, whatever their sequence number.
    h.at(2100, heartbeat_with(&key(), 2, 7, 500, B1, A1));
    assert_eq!(h.det.counters().replayed, 1);
}

#[test]
fn a_forward_clock_step_restarts_miss_counts_instead_of_failing_every_route() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(5000);
    h.clear();
    h.at(5000 + 3_600_000, Event::Tick);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    assert_eq!(h.state(A2, B2), RouteState::Up);
    assert!(
        h.logs()[0].starts_with("WARN [NETFT] Clock stepped forwards by 3600000 ms"),
        "{:?}",
        h.logs()
    );
    assert_eq!(sends(&h.actions).len(), 2, "heartbeats go out at once");
    // A real silence after the step is still detected, one full window later.
    let t = h.now;
    h.tick_to(t + 5499);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    h.tick_to(t + 5500);
    assert_eq!(h.state(A1, B1), RouteState::Down);
}

#[test]
fn a_backward_clock_step_keeps_heartbeats_flowing() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(10_000);
    h.clear();
    h.at(2000, Event::Tick);
    assert!(h.logs()[0].starts_with("WARN [NETFT] Clock stepped backwards by 8000 ms"));
    assert_eq!(sends(&h.actions).len(), 2);
    h.clear();
    h.tick_to(3000);
    assert_eq!(
        sends(&h.actions).len(),
        2,
        "the cadence continues from the new time"
    );
    assert_eq!(h.state(A1, B1), RouteState::Up);
}

#[test]
fn a_lost_carrier_takes_the_route_down_at_once_and_stops_sending_on_it() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(3000);
    h.clear();
    h.at(
        3010,
        Event::Link {
            adapter: "eth0".into(),
            carrier: false,
        },
    );
    assert_eq!(h.state(A1, B1), RouteState::Down);
    assert_eq!(h.state(A2, B2), RouteState::Up);
    assert_eq!(
        h.events(),
        vec![1127, 1130],
        "no 1126: the fault is known to be ours"
    );
    let lines = h.logs();
    assert_eq!(
        lines[0],
        "WARN [NETFT] Interface 'A - eth0' (192.0.2.1) lost carrier (link down)"
    );
    assert!(
        lines[1].contains("is down: its local interface eth0 lost carrier"),
        "{lines:?}"
    );
    h.clear();
    h.tick_to(6000);
    assert!(
        sends(&h.actions).iter().all(|s| s.0 == ip(A2)),
        "nothing sent on a dead link"
    );
    h.b_sends(B1, A1);
    assert_eq!(
        h.state(A1, B1),
        RouteState::Down,
        "not up while our own link is down"
    );
    h.clear();
    h.at(
        6100,
        Event::Link {
            adapter: "eth0".into(),
            carrier: true,
        },
    );
    assert!(
        sends(&h.actions).iter().any(|s| s.0 == ip(A1)),
        "a heartbeat goes out at once"
    );
    assert_eq!(
        h.state(A1, B1),
        RouteState::Down,
        "Up only on the next good heartbeat"
    );
    h.b_sends(B1, A1);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    // A repeated netlink report with the same state changes nothing.
    h.clear();
    h.at(
        6200,
        Event::Link {
            adapter: "eth0".into(),
            carrier: true,
        },
    );
    assert!(h.logs().is_empty());
}

#[test]
fn a_removed_local_address_takes_its_routes_down_at_once() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(2000);
    h.at(
        2010,
        Event::Address {
            addr: ip(A2),
            present: false,
        },
    );
    assert_eq!(h.state(A2, B2), RouteState::Down);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    assert!(h
        .logs()
        .iter()
        .any(|l| l == "WARN [NETFT] Interface 'A - eth1' (198.51.100.1) lost its address"));
    h.at(
        2020,
        Event::Link {
            adapter: "lo".into(),
            carrier: false,
        },
    );
    assert_eq!(
        h.state(A1, B1),
        RouteState::Up,
        "links that are not cluster interfaces are ignored"
    );
}

#[test]
fn one_peer_unreachable_on_a_network_partitions_it() {
    let topology = Topology::new(
        NodeId(1),
        vec![
            node(1, "A", vec![iface("eth0", A1, "net1")]),
            node(2, "B", vec![iface("eth0", B1, "net1")]),
            node(3, "C", vec![iface("eth0", C1, "net1")]),
        ],
        networks(),
    )
    .unwrap();
    let mut h = Harness::new(config(topology, NetftSettings::default()));
    for (t, seq) in [(1000, 1), (2000, 2)] {
        h.tick_to(t);
        h.at(t, heartbeat_with(&key(), 2, 7, seq, B1, A1));
        h.at(t, heartbeat_with(&key(), 3, 9, seq, C1, A1));
    }
    assert_eq!(h.det.network_state("net1"), Some(NetworkState::Up));
    for seq in 3..=10 {
        let t = seq * 1000;
        h.tick_to(t);
        h.at(t, heartbeat_with(&key(), 2, 7, seq, B1, A1));
    }
    assert_eq!(h.det.network_state("net1"), Some(NetworkState::Partitioned));
    assert_eq!(h.det.node_state(NodeId(3)), Some(NodeState::Down));
    assert_eq!(h.events(), vec![1135, 1129]);
}

#[test]
fn cross_subnet_routes_use_the_cross_subnet_settings() {
    let topology = Topology::new(
        NodeId(1),
        vec![
            node(1, "A", vec![iface("eth0", A1, "net1")]),
            node(2, "B", vec![iface("eth0", "203.0.113.2", "net1")]),
        ],
        networks(),
    )
    .unwrap();
    let mut settings = NetftSettings::default();
    settings.set("CrossSubnetDelay", 2000).unwrap();
    settings.set("CrossSubnetThreshold", 3).unwrap();
    let h = Harness::new(config(topology, settings));
    assert!(h.logs()[0].contains("<Delay>2000</Delay> <Threshold>3</Threshold>"));
    assert!(h.logs()[0].contains("<Attributes>0</Attributes>"));
}

#[test]
fn send_failures_are_counted_and_logged_once_a_minute_per_peer() {
    let mut h = Harness::two_nodes();
    let remote = SocketAddr::new(ip(B1), 3343);
    for i in 0..5 {
        h.at(
            i,
            Event::SendFailed {
                local: ip(A1),
                remote,
                error: "Network is unreachable (os error 101)".into(),
            },
        );
    }
    assert_eq!(h.det.counters().send_failures, 5);
    let lines: Vec<_> = h
        .logs()
        .into_iter()
        .filter(|l| l.contains("Failed to send"))
        .collect();
    assert_eq!(lines, vec!["WARN [NETFT] Failed to send heartbeat from 192.0.2.1:~3343~ to 192.0.2.2:~3343~: Network is unreachable (os error 101) (1 send failures so far; logged at most once a minute per peer)"]);
}

#[test]
fn a_shell_that_wakes_only_at_next_deadline_detects_a_silent_peer_within_the_bound() {
    let mut h = Harness::new(config(
        two_nodes(),
        NetftSettings::test_only_override(100, 3).unwrap(),
    ));
    h.at(0, Event::Tick);
    for t in (100..=1000).step_by(100) {
        while let Some(deadline) = h.det.next_deadline_ms().filter(|d| *d < t) {
            h.at(deadline, Event::Tick);
        }
        h.at(t, Event::Tick);
        h.b_sends(B1, A1);
        h.b_sends(B2, A2);
    }
    // B falls silent after 1000; only deadline wake-ups from here on, bounded in count.
    for _ in 0..100 {
        if h.state(A1, B1) == RouteState::Down {
            break;
        }
        let deadline = h.det.next_deadline_ms().unwrap();
        h.at(deadline, Event::Tick);
    }
    assert_eq!(h.state(A1, B1), RouteState::Down);
    assert_eq!(
        h.now,
        1000 + 3 * 100 + 50,
        "Delay x Threshold + half a Delay after the last heartbeat"
    );
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Down));
}

#[test]
fn new_settings_apply_to_every_route_from_now_on() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(3000);
    h.clear();
    let mut settings = NetftSettings::default();
    settings.set("SameSubnetDelay", 250).unwrap();
    settings.set("SameSubnetThreshold", 3).unwrap();
    h.at(3000, Event::Settings(settings));
    assert_eq!(
        h.logs()[0],
        "INFO [NETFT] Route from 192.0.2.1:~3343~ to 192.0.2.2:~3343~ now uses Delay 250 ms and Threshold 3"
    );
    h.clear();
    // Silence from 3000 is detected after 3 x 250 + 125 ms.
    h.tick_to(3874);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    let net1 = sends(&h.actions).iter().filter(|s| s.0 == ip(A1)).count();
    assert_eq!(net1, 3, "at 3250, 3500 and 3750: every 250 ms now");
    h.tick_to(3875);
    assert_eq!(h.state(A1, B1), RouteState::Down);
}

#[test]
fn a_peer_reporting_its_interface_down_takes_the_routes_to_it_down_at_once() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(3000);
    assert_eq!(h.state(A1, B1), RouteState::Up);
    h.clear();
    // B's eth0 (its interface 0) lost its link: B says so on its net2 heartbeat.
    h.tick_to(3100);
    let seq = h.seq.entry(route(A2, B2)).or_insert(0);
    *seq += 1;
    let event = heartbeat_down(&key(), 2, 7, *seq, B2, A2, 0b01);
    h.at(3100, event);
    assert_eq!(
        h.state(A1, B1),
        RouteState::Up,
        "held half a Delay, for a local netlink word to come first"
    );
    assert_eq!(h.det.next_deadline_ms(), Some(3600));
    h.at(3600, Event::Tick);
    assert_eq!(
        h.state(A1, B1),
        RouteState::Down,
        "no waiting for five misses"
    );
    assert_eq!(h.state(A2, B2), RouteState::Up);
    assert!(
        h.logs()
            .iter()
            .any(|l| l.contains("is down: node 'B' reports its interface eth0 down")),
        "{:#?}",
        h.logs()
    );
    // Another report of it changes nothing; B's link is back: its next net2 heartbeat clears the bit, the next one on net1 is Up.
    let seq = h.seq.entry(route(A2, B2)).or_insert(0);
    *seq += 1;
    let again = heartbeat_down(&key(), 2, 7, *seq, B2, A2, 0b01);
    h.at(3700, again);
    h.tick_to(4100);
    h.b_sends(B2, A2);
    assert_eq!(
        h.state(A1, B1),
        RouteState::Down,
        "a clear report over another route may be older: Up only on a heartbeat on it"
    );
    h.b_sends(B1, A1);
    assert_eq!(h.state(A1, B1), RouteState::Up);
}

#[test]
fn a_local_link_down_is_reported_in_the_next_heartbeats_sent_at_once() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(2500);
    h.clear();
    let out = h.at(
        2500,
        Event::Link {
            adapter: "eth0".into(),
            carrier: false,
        },
    );
    let sent: Vec<Heartbeat> = out
        .iter()
        .filter_map(|a| match a {
            Action::Send { datagram, .. } => Some(Heartbeat::decode(datagram, &key()).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent.len(),
        1,
        "one heartbeat at once, on the route still up: {out:?}"
    );
    assert_eq!((sent[0].from, sent[0].down), (ip(A2), 0b01));
}

#[test]
fn each_side_knows_whether_the_other_hears_it_so_a_one_way_cut_shows_on_both() {
    let mut h = Harness::two_nodes();
    // A's first heartbeats to B: B is not Up yet here, so A does not claim to hear it.
    let first = h.at(0, Event::Tick);
    let said = hears_you_said;
    assert!(said(&first).iter().all(|h| !h), "{first:?}");
    // B is heard: A tells it at once on every route to it.
    let up = h.b_sends(B1, A1);
    assert_eq!(said(&up), [true, true], "{up:?}");
    assert!(!h.det.hears_us(NodeId(2)), "B has not said it hears A");
    // B says it hears A.
    let seq = h.seq.entry(route(A1, B1)).or_insert(0);
    *seq += 1;
    let heard = heartbeat_flags(&key(), 2, 7, *seq, (B1, A1), 0, true);
    let out = h.at(0, heard);
    assert!(h.det.hears_us(NodeId(2)));
    assert!(out.contains(&Action::PeerHearsUs {
        node: NodeId(2),
        hears: true
    }));
    // One-way cut: B stops hearing A, while A still hears B. Within two Delays of B's start its
    // "no" may only mean it has not heard A yet: it waits.
    h.clear();
    h.tick_to(1000);
    let seq = h.seq.entry(route(A1, B1)).or_insert(0);
    *seq += 1;
    let early = heartbeat_flags(&key(), 2, 7, *seq, (B1, A1), 0, false);
    h.at(1000, early);
    assert!(h.det.hears_us(NodeId(2)), "a just-started peer's no waits");
    h.tick_to(2500);
    h.b_sends(B2, A2);
    let seq = h.seq.entry(route(A1, B1)).or_insert(0);
    *seq += 1;
    let deaf = heartbeat_flags(&key(), 2, 7, *seq, (B1, A1), 0, false);
    h.at(2500, deaf);
    assert!(!h.det.hears_us(NodeId(2)));
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Up));
    assert!(h.logs().iter().any(|l| l
        .contains("no longer hears this node, although this node hears it: the cut is one-way")));
}

/// What A's heartbeats in `out` say of hearing B.
fn hears_you_said(out: &[Action]) -> Vec<bool> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { datagram, .. } => {
                Some(Heartbeat::decode(datagram, &key()).unwrap().hears_you)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn under_a_contact_lease_a_silent_peer_is_out_of_contact_before_it_is_down() {
    let mut cfg = config(two_nodes(), NetftSettings::default());
    cfg.contact = Some(ContactLease {
        window_ms: 2500,
        hears_ms: 1500,
    });
    let mut h = Harness::new(cfg);
    h.b_alive_until(3000);
    assert!(h.actions.contains(&Action::PeerContact {
        node: NodeId(2),
        in_contact: true
    }));
    // B was last heard at 3000: A's heartbeats stop saying they hear it after 1500 ms of silence,
    // while B is still Up here.
    h.clear();
    h.tick_to(4500);
    assert!(
        hears_you_said(&h.actions).iter().all(|y| *y),
        "{:?}",
        h.actions
    );
    h.clear();
    h.tick_to(5000);
    let said = hears_you_said(&h.actions);
    assert!(
        !said.is_empty() && said.iter().all(|y| !y),
        "{:?}",
        h.actions
    );
    assert_eq!(h.det.node_state(NodeId(2)), Some(NodeState::Up));
    // Out of contact once the whole window has passed, and not a tick before.
    assert_eq!(h.det.next_deadline_ms().map(|d| d <= 5501), Some(true));
    h.clear();
    h.tick_to(5500);
    assert!(!h
        .actions
        .iter()
        .any(|a| matches!(a, Action::PeerContact { .. })));
    h.at(5501, Event::Tick);
    assert!(h.actions.contains(&Action::PeerContact {
        node: NodeId(2),
        in_contact: false
    }));
    assert!(h
        .logs()
        .iter()
        .any(|l| l.contains("has not been heard for 2500 ms: out of contact")));
    assert_eq!(
        h.det.node_state(NodeId(2)),
        Some(NodeState::Up),
        "Down comes later"
    );
    // Heard again: back in contact at once.
    h.clear();
    h.b_sends(B1, A1);
    assert!(h.actions.contains(&Action::PeerContact {
        node: NodeId(2),
        in_contact: true
    }));
}

#[test]
fn without_a_contact_lease_nothing_changes() {
    let mut h = Harness::two_nodes();
    h.b_alive_until(3000);
    h.tick_to(6000);
    assert!(!h
        .actions
        .iter()
        .any(|a| matches!(a, Action::PeerContact { .. })));
    // A still says it hears B while B is Up, however long ago it was heard.
    let said = hears_you_said(&h.actions[h.actions.len().saturating_sub(4)..]);
    assert!(said.iter().all(|y| *y), "{said:?}");
}
