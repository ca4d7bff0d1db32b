//! A voter with no endpoint of its own (the witness voter's way) over the real TCP transport: its
//! id is reserved through Join (a hosted voter needs no admission), it runs in-process next to a
//! node and that node's server answers for its id; the others reach it through a routing override
//! `@HOST=ADDR:PORT`; when it moves to another host (the routing and the hosting change), the
//! leader keeps replicating to it. A connection for an id the server does not host is refused in
//! the handshake, naming it.

mod tcp;

use std::collections::BTreeMap;
use std::time::Duration;

use keelson_raft::openraft::Raft;
use keelson_raft::{
    connect_to, serve, ClusterNode, ConnectError, Network, NodeId, Routing, Server, ServerConfig,
    TypeConfig, HOSTED_ADDR,
};
use tcp::{client, group, key, listen, timing, CLUSTER, WAIT};
use tokio::net::TcpListener;

const HOSTED: &str = "witness";

/// A node whose raft reaches its peers through `routing`.
struct Routed {
    raft: Raft<TypeConfig>,
    server: Server,
    member: ClusterNode,
    _dir: tempfile::TempDir,
}

async fn start(
    id: NodeId,
    listener: TcpListener,
    member: ClusterNode,
    routing: &Routing,
) -> Routed {
    let (raft, dir) = raft(id, routing).await;
    let mut config = ServerConfig::new(CLUSTER);
    config.admit_timeout = WAIT;
    let server = serve(listener, raft.clone(), key(), config).unwrap();
    Routed {
        raft,
        server,
        member,
        _dir: dir,
    }
}

async fn raft(id: NodeId, routing: &Routing) -> (Raft<TypeConfig>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (log, sm) = keelson_raft::open(dir.path()).unwrap();
    let t = timing();
    let network = Network::new(id, key(), CLUSTER, &t).with_routing(routing.clone());
    let raft = Raft::new(id, t.config(CLUSTER).unwrap(), network, log, sm)
        .await
        .unwrap();
    (raft, dir)
}

fn hosted_by(routing: &Routing, host: &Routed) {
    let route = format!("@{}={}", host.member.name, host.member.addr);
    routing.set_overrides("witness", BTreeMap::from([(HOSTED.to_string(), route)]));
}

async fn write(leader: &Routed, name: &str) -> u64 {
    let written = client()
        .write(&leader.raft, keelson_raft::Request::Changes(group(name)))
        .await
        .unwrap();
    written.log_id.unwrap().index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_voter_is_reached_wherever_its_host_is_and_unknown_targets_are_refused() {
    tokio::time::timeout(Duration::from_secs(90), scenario())
        .await
        .expect("finishes within 90 s");
}

async fn scenario() {
    // One routing table per node, as each rcm keeps its own.
    let (r1, r2) = (Routing::direct(), Routing::direct());
    let (listener, member) = listen("node1").await;
    let n1 = start(1, listener, member, &r1).await;
    n1.raft
        .initialize(BTreeMap::from([(1, n1.member.clone())]))
        .await
        .unwrap();
    n1.raft
        .wait(Some(WAIT))
        .current_leader(1, "node 1 leads")
        .await
        .unwrap();
    let (listener, member) = listen("node2").await;
    let reservation = client()
        .join(&n1.member.addr, member.clone())
        .await
        .unwrap();
    let n2 = start(reservation.id, listener, member, &r2).await;
    client().admit(&reservation).await.unwrap();

    // The hosted voter: an id from Join without an address of its own, run next to node 2.
    let voter = ClusterNode {
        name: HOSTED.into(),
        addr: HOSTED_ADDR.into(),
    };
    let reservation = client().join(&n1.member.addr, voter).await.unwrap();
    let id = reservation.id;
    let witness_routing = Routing::direct();
    let (witness, _witness_dir) = raft(id, &witness_routing).await;
    for routing in [&r1, &r2, &witness_routing] {
        hosted_by(routing, &n2);
    }
    n2.server.hosted().host(id, witness.clone());
    client().admit(&reservation).await.unwrap();
    let voters: Vec<NodeId> = n1
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    assert_eq!(voters, vec![1, 2, id]);
    let index = write(&n1, "one").await;
    applied_raft(&witness, index).await;

    // An id nobody hosts is refused in the handshake, naming it.
    match connect_to(&n2.member.addr, Some(99), &key(), CLUSTER, WAIT).await {
        Err(ConnectError::Refused(why)) => {
            assert!(why.contains("does not serve raft node 99"), "{why}")
        }
        other => panic!("a target not hosted must be refused: {other:?}"),
    }
    assert!(connect_to(&n2.member.addr, Some(id), &key(), CLUSTER, WAIT)
        .await
        .is_ok());

    // The voter moves to node 1: node 2 stops answering for it, node 1 starts, the routes follow.
    assert!(n2.server.hosted().unhost(id));
    n1.server.hosted().host(id, witness.clone());
    for routing in [&r1, &r2, &witness_routing] {
        hosted_by(routing, &n1);
    }
    match connect_to(&n2.member.addr, Some(id), &key(), CLUSTER, WAIT).await {
        Err(ConnectError::Refused(_)) => {}
        other => panic!("node 2 no longer hosts it: {other:?}"),
    }
    let index = write(&n1, "two").await;
    applied_raft(&witness, index).await;
    applied_raft(&n2.raft, index).await;
    witness.shutdown().await.unwrap();
}

async fn applied_raft(raft: &Raft<TypeConfig>, index: u64) {
    raft.wait(Some(WAIT))
        .applied_index_at_least(Some(index), "applied")
        .await
        .unwrap();
}
