//! What the state machine does with the entries of issue 10's administration and reports: a
//! group's owner reports its state (kept in the record, only from the owner, never taken back by
//! a record built on an older copy, durable across a reopen), and a node pause with a drain's
//! moves applied together. Not who proposes them (rcm).

use keelson_raft::openraft::storage::RaftStateMachine;
use keelson_raft::openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use keelson_raft::{ClusterInfo, NodeEntry, Request, TypeConfig};
use keelson_types::{GroupRecord, OwnerState, RecordChange};

fn entry(index: u64, request: Request) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(request),
    }
}

fn group(owner: &str, epoch: u64) -> GroupRecord {
    let mut g = GroupRecord {
        name: "web".into(),
        owner: owner.into(),
        want_online: true,
        ..GroupRecord::default()
    };
    g.placement.epoch = epoch;
    g
}

fn report(node: &str, epoch: u64, state: &str) -> Request {
    Request::ReportGroupState {
        group: "web".into(),
        state: OwnerState {
            node: node.into(),
            epoch,
            state: state.into(),
            at_ms: 1,
        },
    }
}

fn reported(sm: &keelson_raft::StateMachine) -> Option<(String, u64, String)> {
    let g = sm.state().groups.get("web").cloned()?;
    let s = g.placement.owner_state?;
    Some((s.node, s.epoch, s.state))
}

#[tokio::test]
async fn the_owners_report_is_kept_and_only_the_owners() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = keelson_raft::open(dir.path()).unwrap();
    sm.apply(vec![
        entry(
            1,
            Request::Changes(vec![RecordChange::PutGroup(group("n1", 3))]),
        ),
        entry(2, report("n1", 3, "Online")),
        // Not the owner: ignored.
        entry(3, report("n2", 3, "Offline")),
    ])
    .await
    .unwrap();
    assert_eq!(reported(&sm), Some(("n1".into(), 3, "Online".into())));
    // The leader commits a new placement from its copy, which carries no report: the held one
    // stays (it is for epoch 3, so views show none for epoch 4 until n1 reports again).
    sm.apply(vec![entry(
        4,
        Request::Changes(vec![RecordChange::PutGroup(group("n1", 4))]),
    )])
    .await
    .unwrap();
    assert_eq!(reported(&sm), Some(("n1".into(), 3, "Online".into())));
    let g = sm.state().groups["web"].clone();
    assert!(g.placement.reported_state("n1").is_none(), "{g:?}");
    // An older report than the held one does not replace it; a newer one does.
    sm.apply(vec![
        entry(5, report("n1", 4, "Failed")),
        entry(6, report("n1", 3, "Pending")),
    ])
    .await
    .unwrap();
    assert_eq!(reported(&sm), Some(("n1".into(), 4, "Failed".into())));
    // A report for an unknown group changes nothing.
    sm.apply(vec![entry(
        7,
        Request::ReportGroupState {
            group: "nope".into(),
            state: OwnerState::default(),
        },
    )])
    .await
    .unwrap();
    assert!(!sm.state().groups.contains_key("nope"));
    drop((_log, sm));
    let (_log, sm) = keelson_raft::open(dir.path()).unwrap();
    assert_eq!(reported(&sm), Some(("n1".into(), 4, "Failed".into())));
}

#[tokio::test]
async fn a_pause_and_its_drain_apply_together_and_a_resume_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = keelson_raft::open(dir.path()).unwrap();
    let node = |name: &str| NodeEntry {
        name: name.into(),
        id: Some(1),
        ..NodeEntry::default()
    };
    let info = ClusterInfo {
        name: "prod".into(),
        nodes: [
            ("n1".to_string(), node("n1")),
            ("n2".to_string(), node("n2")),
        ]
        .into_iter()
        .collect(),
        ..ClusterInfo::default()
    };
    sm.apply(vec![
        entry(1, Request::SetCluster(info)),
        entry(
            2,
            Request::Changes(vec![RecordChange::PutGroup(group("n1", 1))]),
        ),
        entry(
            3,
            Request::SetNodePaused {
                name: "n1".into(),
                paused: true,
                changes: vec![RecordChange::PutGroup(group("n2", 2))],
            },
        ),
    ])
    .await
    .unwrap();
    let state = sm.state();
    let nodes = &state.cluster.as_ref().unwrap().nodes;
    assert!(nodes["n1"].paused && !nodes["n2"].paused);
    assert_eq!(state.groups["web"].owner, "n2");
    sm.apply(vec![entry(
        4,
        Request::SetNodePaused {
            name: "n1".into(),
            paused: false,
            changes: vec![],
        },
    )])
    .await
    .unwrap();
    assert!(!sm.state().cluster.unwrap().nodes["n1"].paused);
}
