//! The timing argument of `raft_timing`, end to end: every node's raft address is a proxy that can
//! black-hole traffic (bytes are held, not lost, as TCP retransmission delivers them once NetFT has
//! rerouted). Cutting every path for as long as NetFT takes to declare a route Down, that is
//! `(threshold + 1) × delay`, plus the two heartbeats raft may need after the reroute, then letting
//! traffic through again, as a reroute does, starts no election: no node's term moves. The
//! control: the same cut for several election timeouts does start one (so the check can see an
//! election when there is one).

mod tcp;

use std::time::Duration;

use keelson_netft::NetftSettings;
use keelson_raft::openraft::Raft;
use keelson_raft::{ClientError, ClusterNode, Request, TypeConfig};
use tcp::{applied, client, group, start, Node, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The NetFT settings the tests' raft timing is derived from (tcp::timing()).
fn netft() -> NetftSettings {
    NetftSettings::test_only_override(100, 3).unwrap()
}

/// A TCP proxy to one node's server whose traffic can be held.
struct Proxy {
    addr: String,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy(target: String) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (cut, watching) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut pumps = tokio::task::JoinSet::new();
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(&target).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            pumps.spawn(pump(ri, wo, watching.clone()));
            pumps.spawn(pump(ro, wi, watching.clone()));
        }
    });
    Proxy { addr, cut, task }
}

/// Copies bytes, holding each chunk while the path is cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if cut.wait_for(|cut| !*cut).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn term(raft: &Raft<TypeConfig>) -> u64 {
    raft.metrics().borrow().current_term
}

async fn cluster() -> (Vec<Node>, Vec<Proxy>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p1 = proxy(listener.local_addr().unwrap().to_string()).await;
    let member = ClusterNode {
        name: "node1".into(),
        addr: p1.addr.clone(),
    };
    let n1 = start(1, listener, member).await;
    n1.raft
        .initialize(std::collections::BTreeMap::from([(1, n1.member.clone())]))
        .await
        .unwrap();
    n1.raft
        .wait(Some(WAIT))
        .current_leader(1, "node 1 leads")
        .await
        .unwrap();
    let mut nodes = vec![n1];
    let mut proxies = vec![p1];
    for name in ["node2", "node3"] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = proxy(listener.local_addr().unwrap().to_string()).await;
        let member = ClusterNode {
            name: name.into(),
            addr: p.addr.clone(),
        };
        let reservation = client()
            .join(&proxies[0].addr, member.clone())
            .await
            .unwrap();
        nodes.push(start(reservation.id, listener, member).await);
        client().admit(&reservation).await.unwrap();
        proxies.push(p);
    }
    for node in &nodes {
        node.raft
            .wait(Some(WAIT))
            .voter_ids([1, 2, 3], "three voters")
            .await
            .unwrap();
    }
    (nodes, proxies)
}

/// Holds every path for `outage`, then lets traffic through again.
async fn outage(proxies: &[Proxy], outage: Duration) {
    for p in proxies {
        p.cut.send_replace(true);
    }
    // The fault's duration (what is being simulated), not a wait for anything.
    tokio::time::sleep(outage).await;
    for p in proxies {
        p.cut.send_replace(false);
    }
}

/// A write through node 1 after the outage, applied everywhere.
async fn commit_after(nodes: &[Node], name: &str) {
    let written = client()
        .write(&nodes[0].raft, Request::Changes(group(name)))
        .await
        .unwrap_or_else(|e| panic!("write through node 1 after the cut: {e}"));
    for node in nodes {
        applied(node, written.log_id.unwrap().index).await;
    }
}

/// After the long cut: node 1 may have lost leadership mid-write (the write is then `Uncertain`)
/// or know it has (`NoLeader` while the election runs); a write through the new leader commits.
async fn commit_through_new_leader(nodes: &[Node], name: &str) {
    match client()
        .write(&nodes[0].raft, Request::Changes(group(name)))
        .await
    {
        Ok(_) | Err(ClientError::Uncertain(_) | ClientError::NoLeader) => {}
        Err(e) => panic!("write through node 1 after the long cut: {e}"),
    }
    let m = nodes[1]
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .unwrap();
    let via = &nodes[(m.current_leader.unwrap() - 1) as usize];
    let written = client()
        .write(&via.raft, Request::Changes(group(name)))
        .await
        .unwrap_or_else(|e| panic!("write through the leader {}: {e}", via.id));
    for node in nodes {
        applied(node, written.log_id.unwrap().index).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_lost_for_netfts_detection_time_starts_no_election_a_longer_loss_does() {
    tokio::time::timeout(Duration::from_secs(120), scenario())
        .await
        .expect("finishes within 120 s");
}

async fn scenario() {
    let (nodes, proxies) = cluster().await;
    commit_after(&nodes, "before").await;
    let before: Vec<u64> = nodes.iter().map(|n| term(&n.raft)).collect();
    assert!(before.iter().all(|t| *t == before[0]), "{before:?}");

    // NetFT declares the route Down within (threshold + 1) x delay; raft's silence lasts up to
    // two heartbeats more (timing.rs): cut for all of it.
    let (delay, threshold) = netft().timing(true);
    let t = tcp::timing();
    let detection = u64::from((threshold + 1) * delay);
    assert_eq!(t.path_loss_silence_ms, detection + 2 * t.heartbeat_ms);
    let detection = Duration::from_millis(t.path_loss_silence_ms);
    for round in 0..3 {
        outage(&proxies, detection).await;
        commit_after(&nodes, &format!("after-cut-{round}")).await;
        let after: Vec<u64> = nodes.iter().map(|n| term(&n.raft)).collect();
        assert_eq!(
            after, before,
            "no election after a {detection:?} cut (round {round})"
        );
        assert_eq!(nodes[0].raft.current_leader().await, Some(1));
    }

    // Control: a cut well past the election timeout (and openraft's lease) does elect.
    let long = Duration::from_millis(3 * (t.election_max_ms + t.election_min_ms));
    outage(&proxies, long).await;
    commit_through_new_leader(&nodes, "after-long-cut").await;
    let after: Vec<u64> = nodes.iter().map(|n| term(&n.raft)).collect();
    assert!(
        after.iter().all(|t| *t > before[0]),
        "a {long:?} cut must start an election: {before:?} -> {after:?}"
    );

    drop(proxies);
    for node in nodes {
        node.raft.shutdown().await.unwrap();
    }
}
