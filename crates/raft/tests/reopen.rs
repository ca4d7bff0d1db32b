//! A store reopened from its file returns what was written before it was closed: vote, committed,
//! log entries and their bounds, the state machine's records, pointers and allocator, and the
//! current snapshot.

use std::collections::BTreeSet;

use keelson_raft::openraft::storage::{
    RaftLogStorage, RaftLogStorageExt, RaftSnapshotBuilder, RaftStateMachine,
};
use keelson_raft::openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader, Vote,
};
use keelson_raft::{Request, TypeConfig};
use keelson_types::{GroupRecord, RecordChange, ResourceRecord};

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload,
    }
}

fn records() -> Vec<RecordChange> {
    vec![
        RecordChange::PutGroup(GroupRecord {
            name: "web".into(),
            want_online: true,
            ..Default::default()
        }),
        RecordChange::PutResource(ResourceRecord {
            name: "ip".into(),
            type_name: "dummy".into(),
            group: "web".into(),
            ..Default::default()
        }),
    ]
}

fn entries() -> Vec<Entry<TypeConfig>> {
    let members: BTreeSet<u64> = [1, 2, 7].into();
    vec![
        entry(1, 1, EntryPayload::Blank),
        entry(
            1,
            2,
            EntryPayload::Membership(Membership::new(vec![members], None)),
        ),
        entry(1, 3, EntryPayload::Normal(Request::Changes(records()))),
        entry(1, 4, EntryPayload::Normal(Request::AllocateNodeId)),
        entry(
            2,
            5,
            EntryPayload::Normal(Request::Changes(vec![RecordChange::DeleteResource(
                "ip".into(),
            )])),
        ),
    ]
}

#[tokio::test]
async fn a_reopened_store_returns_its_vote_log_state_machine_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Vote::new_committed(2, 1);
    let (mut log, mut sm) = keelson_raft::open(dir.path()).unwrap();
    log.save_vote(&vote).await.unwrap();
    log.blocking_append(entries()).await.unwrap();
    log.save_committed(Some(log_id(2, 5))).await.unwrap();
    log.purge(log_id(1, 1)).await.unwrap();
    let responses = sm.apply(entries()[..4].to_vec()).await.unwrap();
    assert_eq!(responses[3].allocated, Some(8), "past the members 1, 2, 7");
    let snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    sm.apply(entries()[4..].to_vec()).await.unwrap();
    let state_before = sm.state();
    let applied_before = sm.applied_state().await.unwrap();
    drop((log, sm));

    let (mut log, mut sm) = keelson_raft::open(dir.path()).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(vote));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(2, 5)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1)));
    assert_eq!(state.last_log_id, Some(log_id(2, 5)));
    let read = log.try_get_log_entries(0..100).await.unwrap();
    assert_eq!(read, entries()[1..].to_vec());
    assert_eq!(sm.state(), state_before);
    assert!(sm.state().groups.contains_key("web"));
    assert!(sm.state().resources.is_empty(), "ip was deleted at index 5");
    assert_eq!(sm.state().next_node_id, 9);
    assert_eq!(sm.applied_state().await.unwrap(), applied_before);
    assert_eq!(applied_before.0, Some(log_id(2, 5)));
    let current = sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("a snapshot");
    assert_eq!(current.meta, snapshot.meta);
    assert_eq!(
        current.snapshot.into_inner(),
        snapshot.snapshot.into_inner()
    );
}

#[tokio::test]
async fn a_snapshot_installed_elsewhere_restores_the_records_and_the_allocator() {
    let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, mut source) = keelson_raft::open(from.path()).unwrap();
    source.apply(entries()).await.unwrap();
    let built = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let (_, mut target) = keelson_raft::open(to.path()).unwrap();
    target
        .apply(vec![entry(
            1,
            1,
            EntryPayload::Normal(Request::Changes(vec![RecordChange::PutGroup(
                GroupRecord {
                    name: "stale".into(),
                    ..Default::default()
                },
            )])),
        )])
        .await
        .unwrap();
    target
        .install_snapshot(&built.meta, built.snapshot)
        .await
        .unwrap();
    drop(target);
    let (_, mut target) = keelson_raft::open(to.path()).unwrap();
    assert_eq!(target.state(), source.state(), "the stale group is gone");
    assert_eq!(target.state().next_node_id, 9);
    let (applied, membership) = target.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(2, 5)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 2)));
    let voters: BTreeSet<u64> = membership.membership().voter_ids().collect();
    assert_eq!(voters, [1, 2, 7].into());
}

#[test]
fn a_new_raft_file_is_not_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    drop(keelson_raft::open(dir.path()).unwrap());
    let path = dir.path().join(keelson_raft::RAFT_FILE);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o027, 0, "{} mode {mode:o}", path.display());
}
