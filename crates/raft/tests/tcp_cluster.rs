//! Three nodes over real loopback TCP, each with its own redb file: one bootstraps, two join
//! through the Join/Admit RPCs (one through a follower, so the Join is forwarded to the leader), a
//! write proposed on a follower is forwarded to the leader and applied everywhere, the leader is
//! killed and the other two elect a new one and keep committing, the dead node is evicted, and a
//! later join gets a fresh id while the evicted id cannot be admitted again.

mod tcp;

use std::collections::BTreeSet;
use std::time::Duration;

use keelson_raft::{ClientError, NodeId, Request, Reservation};
use tcp::{applied, bootstrap, client, group, join, kill, listen, start, Node, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_tcp_join_forward_writes_survive_a_leader_loss_and_never_reuse_an_id() {
    tokio::time::timeout(Duration::from_secs(120), scenario())
        .await
        .expect("the TCP cluster scenario finishes within 120 s");
}

fn voters(node: &Node) -> BTreeSet<NodeId> {
    let m = node.raft.metrics().borrow().membership_config.clone();
    m.membership().voter_ids().collect()
}

async fn wait_voters(node: &Node, want: &BTreeSet<NodeId>) {
    node.raft
        .wait(Some(WAIT))
        .voter_ids(want.clone(), "the membership")
        .await
        .unwrap_or_else(|e| panic!("node {}: voters {want:?}: {e}", node.id));
}

async fn scenario() {
    let mut n1 = bootstrap().await;
    let n2 = join(&n1.member.addr, "node2").await;
    assert_eq!(n2.id, 2, "the first id past the bootstrap member");
    // Through node 2, a follower: the Join and the Admit are forwarded to the leader.
    let n3 = join(&n2.member.addr, "node3").await;
    assert_eq!(n3.id, 3);
    let all: BTreeSet<NodeId> = [1, 2, 3].into();
    for node in [&n1, &n2, &n3] {
        wait_voters(node, &all).await;
    }

    // A write on a follower is proposed through the leader; Ok means committed.
    let leader = n1.raft.current_leader().await;
    assert_eq!(leader, Some(1));
    let written = client()
        .write(&n3.raft, Request::Changes(group("web")))
        .await
        .unwrap();
    let at = written.log_id.expect("the write's log id").index;
    for node in [&n1, &n2, &n3] {
        applied(node, at).await;
        assert!(
            node.view.read().unwrap().groups["web"].want_online,
            "node {}",
            node.id
        );
    }
    client().read_barrier(&n2.raft).await.unwrap();
    assert!(n2.view.read().unwrap().groups.contains_key("web"));

    // Kill the leader: the other two elect one and keep committing.
    kill(&mut n1).await;
    let mut leaders = BTreeSet::new();
    for node in [&n2, &n3] {
        let m = node
            .raft
            .wait(Some(WAIT))
            .metrics(
                |m| matches!(m.current_leader, Some(l) if l != 1),
                "a new leader among the survivors",
            )
            .await
            .unwrap();
        leaders.insert(m.current_leader.unwrap());
    }
    assert_eq!(
        leaders.len(),
        1,
        "both survivors follow one leader: {leaders:?}"
    );
    assert!(leaders.is_subset(&[2, 3].into()), "{leaders:?}");
    let written = client()
        .write(&n3.raft, Request::Changes(group("db")))
        .await
        .unwrap()
        .log_id
        .unwrap()
        .index;
    for node in [&n2, &n3] {
        applied(node, written).await;
        assert!(
            node.view.read().unwrap().groups.contains_key("db"),
            "node {}",
            node.id
        );
    }

    // Evict the dead node; its id is spent.
    let membership = client().evict(&n2.member.addr, 1).await.unwrap();
    let left: BTreeSet<NodeId> = [2, 3].into();
    assert_eq!(
        membership.membership().voter_ids().collect::<BTreeSet<_>>(),
        left
    );
    wait_voters(&n2, &left).await;
    wait_voters(&n3, &left).await;

    // A snapshot and a purged log on the leader: node 4 can only catch up by installing the
    // snapshot, in chunks, over TCP.
    let leader = [&n2, &n3]
        .into_iter()
        .find(|n| leaders.contains(&n.id))
        .unwrap();
    leader.raft.trigger().snapshot().await.unwrap();
    let m = leader
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some(), "a snapshot is built")
        .await
        .unwrap();
    leader
        .raft
        .trigger()
        .purge_log(m.snapshot.unwrap().index)
        .await
        .unwrap();
    leader
        .raft
        .wait(Some(WAIT))
        .purged(m.snapshot, "the log is purged up to the snapshot")
        .await
        .unwrap();

    let (listener, member) = listen("node4").await;
    let reservation = client()
        .join(&n3.member.addr, member.clone())
        .await
        .unwrap();
    assert_eq!(reservation.id, 4, "the evicted id 1 is not given out again");
    assert_eq!(reservation.leader_addr, leader.member.addr);
    // Sent to the follower, forwarded to the leader, refused there.
    let follower = [&n2, &n3].into_iter().find(|n| n.id != leader.id).unwrap();
    let reuse = Reservation {
        id: 1,
        leader_addr: follower.member.addr.clone(),
    };
    match client().admit(&reuse).await {
        Err(ClientError::Refused(why)) => {
            assert!(why.contains("node id 1 is not reserved"), "{why}")
        }
        other => panic!("admitting the evicted id 1 must be refused: {other:?}"),
    }
    let n4 = start(reservation.id, listener, member).await;
    let admitted = client().admit(&reservation).await.unwrap();
    let admitted_at = admitted.log_id().expect("the membership's log id").index;
    // Admitted once: the same reservation cannot be used twice.
    assert!(matches!(
        client().admit(&reservation).await,
        Err(ClientError::Refused(_))
    ));
    let now: BTreeSet<NodeId> = [2, 3, 4].into();
    for node in [&n2, &n3, &n4] {
        wait_voters(node, &now).await;
    }
    applied(&n4, admitted_at).await;
    assert!(
        n4.raft.metrics().borrow().snapshot.is_some(),
        "node 4 installed the snapshot"
    );
    let state = n4.view.read().unwrap().clone();
    assert!(state.groups.contains_key("web") && state.groups.contains_key("db"));
    assert_eq!(state.next_node_id, 5);
    assert_eq!(voters(&n4), now);

    for node in [n2, n3, n4] {
        node.raft.shutdown().await.unwrap();
    }
}
