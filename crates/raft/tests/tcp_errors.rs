//! How the TCP network's failures reach openraft, which decides from them how to retry: nothing
//! listening is `Unreachable` (back off), a reused connection that dies mid-call is a
//! `NetworkError` (retry at once, on a new connection), a peer that never answers is a `Timeout`
//! at the RPC's `hard_ttl`, and an append-entries batch over the frame limit is `PayloadTooLarge`
//! (openraft splits it). Against a real node over loopback.

mod tcp;

use std::collections::BTreeMap;
use std::time::Duration;

use keelson_raft::openraft::error::RPCError;
use keelson_raft::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use keelson_raft::openraft::raft::{AppendEntriesRequest, VoteRequest};
use keelson_raft::openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
use keelson_raft::{ClusterNode, Network, Request, TypeConfig};
use keelson_types::{RecordChange, ResourceRecord};
use tcp::{bootstrap, key, timing, CLUSTER, WAIT};
use tokio::net::TcpListener;

fn network() -> Network {
    Network::new(9, key(), CLUSTER, &timing())
}

/// A vote node 1 turns down without changing anything: term 0 is below its own.
fn harmless_vote() -> VoteRequest<u64> {
    VoteRequest::new(Vote::new(0, 9), None)
}

/// Waits (bounded) until nothing accepts on `addr`: the server's accept task, which owns the
/// listener and every connection task, is gone, and the connections' aborts are issued. Dropping
/// the server only asks for that; on a busy runtime a reused connection could still answer.
async fn closed(addr: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} still accepts {WAIT:?} after the server was dropped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_become_the_errors_openraft_retries_by() {
    tokio::time::timeout(Duration::from_secs(60), scenario())
        .await
        .expect("finishes within 60 s");
}

async fn scenario() {
    let mut n1 = bootstrap().await;
    let mut factory = network();
    let mut peer = factory.new_client(1, &n1.member).await;
    let answer = peer
        .vote(harmless_vote(), RPCOption::new(WAIT))
        .await
        .unwrap();
    assert!(!answer.vote_granted);
    // The same connection again: still good.
    let again = peer.vote(harmless_vote(), RPCOption::new(WAIT)).await;
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(
        n1.server.as_ref().unwrap().counters().authenticated,
        1,
        "one connection, reused"
    );

    // The server goes away under the reused connection: a NetworkError, then (nothing listens
    // any more) Unreachable.
    drop(n1.server.take());
    closed(&n1.member.addr).await;
    let dead = peer.vote(harmless_vote(), RPCOption::new(WAIT)).await;
    assert!(matches!(dead, Err(RPCError::Network(_))), "{dead:?}");
    let gone = peer.vote(harmless_vote(), RPCOption::new(WAIT)).await;
    assert!(matches!(gone, Err(RPCError::Unreachable(_))), "{gone:?}");

    // A peer that accepts and never answers: Timeout at the RPC's hard_ttl.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_node = ClusterNode {
        name: "silent".into(),
        addr: silent.local_addr().unwrap().to_string(),
    };
    let mut peer = factory.new_client(2, &silent_node).await;
    let ttl = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let timed_out = peer.vote(harmless_vote(), RPCOption::new(ttl)).await;
    assert!(
        matches!(&timed_out, Err(RPCError::Timeout(t)) if t.timeout == ttl && t.target == 2 && t.id == 9),
        "{timed_out:?}"
    );
    assert!(started.elapsed() < WAIT, "bounded by the ttl");
    drop(silent);

    // Over the frame limit: PayloadTooLarge with a hint, before anything is sent.
    let big = "x".repeat(9 * 1024 * 1024);
    let entry = |index| Entry::<TypeConfig> {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Request::Changes(vec![RecordChange::PutResource(
            ResourceRecord {
                name: format!("r{index}"),
                params: BTreeMap::from([("blob".to_string(), big.clone())]),
                ..Default::default()
            },
        )])),
    };
    let request = AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: None,
        entries: vec![entry(1), entry(2)],
        leader_commit: None,
    };
    let too_large = peer.append_entries(request, RPCOption::new(WAIT)).await;
    match too_large {
        Err(RPCError::PayloadTooLarge(p)) => assert_eq!(p.entries_hint(), 1, "{p}"),
        other => panic!("a 18 MiB batch must be PayloadTooLarge: {other:?}"),
    }

    n1.raft.shutdown().await.unwrap();
}
