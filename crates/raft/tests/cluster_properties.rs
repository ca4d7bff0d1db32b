//! The cluster-wide properties as the state machine applies them: a committed
//! `SetClusterProperties` sets the properties it names and keeps the others, is durable (a
//! reopened store has them) and travels in a snapshot. Not their validation (the proposing rcm).

use std::collections::BTreeMap;

use keelson_raft::openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use keelson_raft::openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use keelson_raft::{ClusterInfo, Request, TypeConfig};

fn entry(index: u64, request: Request) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(request),
    }
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn entries() -> Vec<Entry<TypeConfig>> {
    let info = ClusterInfo {
        name: "prod".into(),
        ..Default::default()
    };
    vec![
        entry(1, Request::SetCluster(info)),
        entry(
            2,
            Request::SetClusterProperties(props(&[
                ("SameSubnetDelay", "2000"),
                ("SameSubnetThreshold", "7"),
            ])),
        ),
        entry(
            3,
            Request::SetClusterProperties(props(&[("SameSubnetDelay", "1500")])),
        ),
    ]
}

fn expected() -> BTreeMap<String, String> {
    props(&[("SameSubnetDelay", "1500"), ("SameSubnetThreshold", "7")])
}

#[tokio::test]
async fn a_set_keeps_the_other_properties_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm) = keelson_raft::open(dir.path()).unwrap();
    // One batch (the later entry sees the earlier one's unpublished info) and one at a time.
    sm.apply(entries()[..2].to_vec()).await.unwrap();
    sm.apply(entries()[2..].to_vec()).await.unwrap();
    let info = sm.state().cluster.expect("the cluster");
    assert_eq!(info.properties, expected());
    assert_eq!(info.name, "prod", "the name is kept");
    drop((_log, sm));
    let (_log, sm) = keelson_raft::open(dir.path()).unwrap();
    assert_eq!(sm.state().cluster.unwrap().properties, expected());
}

#[tokio::test]
async fn the_properties_travel_in_a_snapshot() {
    let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_l1, mut source) = keelson_raft::open(from.path()).unwrap();
    source.apply(entries()).await.unwrap();
    let built = source
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let (_l2, mut target) = keelson_raft::open(to.path()).unwrap();
    target
        .install_snapshot(&built.meta, built.snapshot)
        .await
        .unwrap();
    assert_eq!(target.state().cluster.unwrap().properties, expected());
    drop((_l2, target));
    let (_l2, reopened) = keelson_raft::open(to.path()).unwrap();
    assert_eq!(reopened.state().cluster.unwrap().properties, expected());
}
