//! Unit tests of the tunnel core with fake route states: two nodes A (1) and B (2) on two networks,
//! plus a third node C (3) on the second network, all in memory.

use super::*;
use crate::action::RouteState;

const A_VIRTUAL: &str = "203.0.113.1";
const B_VIRTUAL: &str = "203.0.113.2";
const C_VIRTUAL: &str = "203.0.113.3";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key() -> ClusterKey {
    ClusterKey::new(b"tunnel-unit-test-cluster-key").unwrap()
}

fn peers() -> BTreeMap<IpAddr, NodeId> {
    [(A_VIRTUAL, 1), (B_VIRTUAL, 2), (C_VIRTUAL, 3)]
        .into_iter()
        .map(|(a, n)| (ip(a), NodeId(n)))
        .collect()
}

fn tunnel(node: u32, address: &str, incarnation: u64) -> Tunnel {
    let mut peers = peers();
    peers.remove(&ip(address));
    Tunnel::new(TunnelConfig {
        local_node: NodeId(node),
        incarnation,
        key: key(),
        local_address: ip(address),
        peers,
    })
}

fn route(local: &str, remote: &str, node: u32, priority: u32, state: RouteState) -> Candidate {
    Candidate {
        key: RouteKey {
            local: ip(local),
            remote: ip(remote),
        },
        node: NodeId(node),
        priority,
        state,
    }
}

/// A's routes: to B on net1 (priority 1) and net2 (priority 2), to C on net2.
fn a_routes(net1: RouteState, net2: RouteState) -> Vec<Candidate> {
    vec![
        route("192.0.2.1", "192.0.2.2", 2, 1, net1),
        route("198.51.100.1", "198.51.100.2", 2, 2, net2),
        route("198.51.100.1", "198.51.100.3", 3, 2, net2),
    ]
}

/// B's routes: to A on both networks, to C on net2.
fn b_routes() -> Vec<Candidate> {
    vec![
        route("192.0.2.2", "192.0.2.1", 1, 1, RouteState::Up),
        route("198.51.100.2", "198.51.100.1", 1, 2, RouteState::Up),
        route("198.51.100.2", "198.51.100.3", 3, 2, RouteState::Up),
    ]
}

/// An IPv4 header (and a few payload bytes) from `src` to `dst`.
fn packet(src: &str, dst: &str, payload: u8) -> Vec<u8> {
    let mut p = vec![0u8; 24];
    p[0] = 0x45;
    p[12..16].copy_from_slice(&src.parse::<std::net::Ipv4Addr>().unwrap().octets());
    p[16..20].copy_from_slice(&dst.parse::<std::net::Ipv4Addr>().unwrap().octets());
    p[20..].fill(payload);
    p
}

fn from(addr: &str) -> SocketAddr {
    SocketAddr::new(ip(addr), 3343)
}

/// A and B with all routes Up.
fn pair() -> (Tunnel, Tunnel) {
    let mut a = tunnel(1, A_VIRTUAL, 5);
    a.set_routes(&a_routes(RouteState::Up, RouteState::Up));
    let mut b = tunnel(2, B_VIRTUAL, 9);
    b.set_routes(&b_routes());
    (a, b)
}

#[test]
fn a_packet_takes_the_best_route_and_is_delivered_on_the_far_side() {
    let (mut a, mut b) = pair();
    let p = packet(A_VIRTUAL, B_VIRTUAL, 1);
    let out = a.outgoing(&p).unwrap();
    assert_eq!(out.route.key.local, ip("192.0.2.1"));
    assert_eq!(out.route.key.remote, ip("192.0.2.2"));
    a.sent(&out, true);
    let delivered = b
        .incoming(ip("192.0.2.2"), from("192.0.2.1"), &out.datagram)
        .unwrap();
    assert_eq!(delivered, &p[..]);
    assert_eq!(a.counters().sent, 1);
    assert_eq!(a.counters().sent_bytes, p.len() as u64);
    assert_eq!(a.counters().sent_by_route[&out.route.key], 1);
    assert_eq!(b.counters().delivered, 1);
    let arrived_on = RouteKey {
        local: ip("192.0.2.2"),
        remote: ip("192.0.2.1"),
    };
    assert_eq!(b.counters().received_by_route[&arrived_on], 1);
}

#[test]
fn failover_to_the_next_priority_and_back_keeps_the_stream_acceptable() {
    let (mut a, mut b) = pair();
    let mut sent_on = Vec::new();
    for (i, states) in [
        (RouteState::Up, RouteState::Up),
        (RouteState::Down, RouteState::Up),
        (RouteState::Up, RouteState::Up),
    ]
    .into_iter()
    .enumerate()
    {
        let replaced = a.set_routes(&a_routes(states.0, states.1));
        if i == 1 {
            let moves = replaced.moves(a.paths());
            assert_eq!(moves.len(), 1);
            assert_eq!(moves[0].node, NodeId(2));
        }
        let out = a.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, i as u8)).unwrap();
        let (local, remote) = (out.route.key.remote, out.route.key.local);
        b.incoming(local, SocketAddr::new(remote, 3343), &out.datagram)
            .unwrap();
        sent_on.push(out.route.priority);
    }
    assert_eq!(
        sent_on,
        [1, 2, 1],
        "net1, then net2 while net1 is Down, then net1 again"
    );
    assert_eq!(b.counters().delivered, 3, "one sequence across both routes");
}

#[test]
fn no_route_and_no_peer_are_counted_not_sent() {
    let mut a = tunnel(1, A_VIRTUAL, 1);
    a.set_routes(&a_routes(RouteState::Down, RouteState::Unknown));
    assert_eq!(
        a.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, 0)),
        Err(Unsent::NoRoute(NodeId(2)))
    );
    assert_eq!(
        a.outgoing(&packet(A_VIRTUAL, "224.0.0.22", 0)),
        Err(Unsent::NoPeer(ip("224.0.0.22")))
    );
    assert!(matches!(
        a.outgoing(&[0x45, 0, 0]),
        Err(Unsent::Unsendable(_))
    ));
    assert!(matches!(a.outgoing(&[]), Err(Unsent::Unsendable(_))));
    let c = a.counters();
    assert_eq!((c.no_route, c.no_peer, c.unsendable, c.sent), (1, 1, 2, 0));
}

#[test]
fn a_replayed_frame_is_dropped_and_a_late_one_accepted() {
    let (mut a, mut b) = pair();
    let frames: Vec<Outgoing> = (0..3)
        .map(|i| a.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, i)).unwrap())
        .collect();
    let deliver = |b: &mut Tunnel, out: &Outgoing| {
        b.incoming(ip("192.0.2.2"), from("192.0.2.1"), &out.datagram)
            .map(|p| p.to_vec())
    };
    assert!(deliver(&mut b, &frames[0]).is_ok());
    assert!(deliver(&mut b, &frames[2]).is_ok());
    assert!(
        deliver(&mut b, &frames[1]).is_ok(),
        "late, inside the window"
    );
    for out in &frames {
        assert!(matches!(deliver(&mut b, out), Err(Refused::Replayed(_))));
    }
    // The same frame through the other route is the same replay.
    let again = b.incoming(
        ip("198.51.100.2"),
        from("198.51.100.1"),
        &frames[0].datagram,
    );
    assert!(matches!(again, Err(Refused::Replayed(_))), "{again:?}");
    assert_eq!((b.counters().delivered, b.counters().replayed), (3, 4));
}

#[test]
fn a_restarted_peer_starts_a_new_window_and_its_old_incarnation_is_a_replay() {
    let (mut a_old, mut b) = pair();
    let old = a_old.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, 0)).unwrap();
    let old2 = a_old.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, 0)).unwrap();
    assert!(b
        .incoming(ip("192.0.2.2"), from("192.0.2.1"), &old.datagram)
        .is_ok());
    let mut a_new = tunnel(1, A_VIRTUAL, 6);
    a_new.set_routes(&a_routes(RouteState::Up, RouteState::Up));
    let new = a_new.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, 0)).unwrap();
    assert!(
        b.incoming(ip("192.0.2.2"), from("192.0.2.1"), &new.datagram)
            .is_ok(),
        "sequence 1 again, higher incarnation"
    );
    let stale = b.incoming(ip("192.0.2.2"), from("192.0.2.1"), &old2.datagram);
    assert!(
        matches!(&stale, Err(Refused::Replayed(why)) if why.contains("older")),
        "{stale:?}"
    );
}

#[test]
fn forged_truncated_and_wrong_version_frames_are_refused() {
    let (mut a, mut b) = pair();
    let good = a
        .outgoing(&packet(A_VIRTUAL, B_VIRTUAL, 0))
        .unwrap()
        .datagram;
    let mut forged = good.clone();
    forged[good.len() - 1] ^= 1;
    let mut v9 = good.clone();
    v9[4] = 9;
    let to_b = |b: &mut Tunnel, d: &[u8]| {
        b.incoming(ip("192.0.2.2"), from("192.0.2.1"), d)
            .map(<[u8]>::to_vec)
    };
    assert_eq!(to_b(&mut b, &forged), Err(Refused::Forged));
    assert!(
        matches!(to_b(&mut b, &good[..good.len() - 1]), Err(Refused::Forged)),
        "truncated: the tag is wrong"
    );
    assert!(
        matches!(to_b(&mut b, &good[..10]), Err(Refused::Malformed(why)) if why.contains("10 bytes"))
    );
    assert!(matches!(to_b(&mut b, &v9), Err(Refused::Malformed(why)) if why.contains("version 9")));
    let other_cluster = {
        let mut t = Tunnel::new(TunnelConfig {
            key: ClusterKey::new(b"some-other-cluster-key").unwrap(),
            ..a.config.clone()
        });
        t.set_routes(&a_routes(RouteState::Up, RouteState::Up));
        t.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, 0))
            .unwrap()
            .datagram
    };
    assert_eq!(to_b(&mut b, &other_cluster), Err(Refused::Forged));
    assert!(
        to_b(&mut b, &good).is_ok(),
        "none of that used up the genuine frame's sequence number"
    );
    let c = b.counters();
    assert_eq!((c.forged, c.malformed, c.delivered), (3, 2, 1));
}

#[test]
fn a_frame_must_come_from_its_node_carry_its_nodes_address_and_be_for_us() {
    let (mut a, mut b) = pair();
    // Node A's frame arriving from C's interface.
    let out = a.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, 0)).unwrap();
    let wrong = b.incoming(ip("198.51.100.2"), from("198.51.100.3"), &out.datagram);
    assert!(matches!(wrong, Err(Refused::WrongSender(_))), "{wrong:?}");
    // Node A claiming C's virtual address as the source.
    let spoof = a.outgoing(&packet(A_VIRTUAL, B_VIRTUAL, 0)).unwrap();
    let mut spoofed = packet(C_VIRTUAL, B_VIRTUAL, 0);
    let header = FrameHeader {
        node: 1,
        incarnation: 5,
        sequence: 1000,
    };
    let datagram = header.encode(&spoofed, &key()).unwrap();
    let refused = b.incoming(ip("192.0.2.2"), from("192.0.2.1"), &datagram);
    assert!(
        matches!(&refused, Err(Refused::SpoofedSource(why)) if why.contains(C_VIRTUAL)),
        "{refused:?}"
    );
    // A packet for C sent to B.
    spoofed = packet(A_VIRTUAL, C_VIRTUAL, 0);
    let datagram = FrameHeader {
        sequence: 1001,
        ..header
    }
    .encode(&spoofed, &key())
    .unwrap();
    let refused = b.incoming(ip("192.0.2.2"), from("192.0.2.1"), &datagram);
    assert_eq!(refused, Err(Refused::NotForUs(ip(C_VIRTUAL))));
    // Not IP inside an authentic frame.
    let datagram = FrameHeader {
        sequence: 1002,
        ..header
    }
    .encode(b"hello", &key())
    .unwrap();
    assert!(matches!(
        b.incoming(ip("192.0.2.2"), from("192.0.2.1"), &datagram),
        Err(Refused::Malformed(_))
    ));
    // A frame from a node that is not in the cluster.
    let datagram = FrameHeader { node: 9, ..header }
        .encode(&packet(A_VIRTUAL, B_VIRTUAL, 0), &key())
        .unwrap();
    assert!(matches!(
        b.incoming(ip("192.0.2.2"), from("192.0.2.1"), &datagram),
        Err(Refused::WrongSender(_))
    ));
    let c = b.counters();
    assert_eq!(
        (
            c.wrong_sender,
            c.spoofed_source,
            c.not_for_us,
            c.malformed,
            c.delivered
        ),
        (2, 1, 1, 1, 0)
    );
    assert!(b
        .incoming(ip("192.0.2.2"), from("192.0.2.1"), &spoof.datagram)
        .is_ok());
}
