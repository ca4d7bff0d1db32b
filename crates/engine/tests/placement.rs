//! The leader's placement core with a fake clock: owner choice (preferred owners, fewest groups,
//! ties by name), node loss only after the lease expired, the failover threshold within its period
//! (event 1254), the restart-then-failover ladder, moves, drain in parallel, failback with its
//! window (one that wraps midnight too), and the hand-off bookkeeping.

use keelson_engine::placement::{PlacementError, PlacementEvent, Placer};
use keelson_engine::{Command, PersistChange};
use keelson_types::{GroupPlacement, GroupRecord, RecordChange};
use std::collections::BTreeMap;

const HOUR: u64 = 3_600_000;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn group(name: &str, owner: &str, props: &[(&str, &str)]) -> GroupRecord {
    GroupRecord {
        name: name.into(),
        want_online: true,
        owner: owner.into(),
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        placement: GroupPlacement::default(),
    }
}

struct Leader {
    core: Placer,
    now: u64,
}

impl Leader {
    /// A core with `nodes` all Up and these groups.
    fn new(nodes: &[&str], groups: &[GroupRecord]) -> Leader {
        let mut l = Leader {
            core: Placer::new(&names(nodes), groups),
            now: 1_700_000_000_000,
        };
        for n in nodes {
            l.ok(PlacementEvent::NodeUp {
                node: n.to_string(),
            });
        }
        l
    }

    fn ok(&mut self, e: PlacementEvent) -> Vec<Command> {
        let dbg = format!("{e:?}");
        self.core
            .handle(self.now, e)
            .unwrap_or_else(|err| panic!("{dbg} refused: {err}"))
    }

    fn owner(&self, g: &str) -> String {
        self.core.group(g).unwrap().owner.clone()
    }

    fn placement(&self, g: &str) -> GroupPlacement {
        self.core.group(g).unwrap().placement.clone()
    }

    fn down(&mut self, n: &str) -> Vec<Command> {
        self.ok(PlacementEvent::NodeDown { node: n.into() })
    }

    fn expire(&mut self, n: &str) -> Vec<Command> {
        self.ok(PlacementEvent::LeaseExpired { node: n.into() })
    }

    fn fail(&mut self, g: &str) -> Vec<Command> {
        let node = self.owner(g);
        self.ok(PlacementEvent::GroupFailed {
            group: g.into(),
            node,
            resource: "r".into(),
        })
    }

    /// The releasing node reports its release (the hand-off ends).
    fn release(&mut self, g: &str) -> Vec<Command> {
        let p = self.placement(g);
        self.ok(PlacementEvent::Released {
            group: g.into(),
            node: p.releasing_from,
            epoch: p.epoch,
        })
    }
}

fn commits(cmds: &[Command]) -> Vec<GroupRecord> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Persist(PersistChange::PutGroup(g)) => Some(g.clone()),
            _ => None,
        })
        .collect()
}

fn event_ids(cmds: &[Command]) -> Vec<u32> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::RaiseEvent(e) => Some(e.id),
            _ => None,
        })
        .collect()
}

fn moved_messages(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::RaiseEvent(e) if e.id == 1641 => Some(e.message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_group_without_owner_goes_to_its_first_up_preferred_owner() {
    let mut l = Leader::new(&["a", "b", "c"], &[]);
    let cmds = l.ok(PlacementEvent::NodeDown { node: "c".into() });
    assert!(commits(&cmds).is_empty());
    let g = group("g", "", &[("PreferredOwners", "c,b,a")]);
    let cmds = l.ok(PlacementEvent::Committed(vec![RecordChange::PutGroup(g)]));
    assert_eq!(l.owner("g"), "b", "c is Down: the next preferred one");
    let c = commits(&cmds);
    assert_eq!(c.len(), 1);
    let m = c[0].placement.last_move.clone().unwrap();
    assert_eq!(
        (m.from.as_str(), m.to.as_str(), m.reason.as_str()),
        ("", "b", "assigned")
    );
    assert_eq!(c[0].placement.releasing_from, "", "nobody ran it before");
    assert_eq!(c[0].placement.epoch, 1);
}

#[test]
fn without_preferred_owners_the_fewest_groups_win_and_ties_go_by_name() {
    let groups = [
        group("x", "a", &[]),
        group("y", "a", &[]),
        group("z", "c", &[]),
    ];
    let mut l = Leader::new(&["a", "b", "c", "d"], &groups);
    // b and d own nothing: b by name.
    l.ok(PlacementEvent::Committed(vec![RecordChange::PutGroup(
        group("g1", "", &[]),
    )]));
    assert_eq!(l.owner("g1"), "b");
    // Now b has one, c one, d none: d.
    l.ok(PlacementEvent::Committed(vec![RecordChange::PutGroup(
        group("g2", "", &[]),
    )]));
    assert_eq!(l.owner("g2"), "d");
    // b, c, d have one each: b by name.
    l.ok(PlacementEvent::Committed(vec![RecordChange::PutGroup(
        group("g3", "", &[]),
    )]));
    assert_eq!(l.owner("g3"), "b");
}

#[test]
fn a_down_node_keeps_its_groups_until_its_lease_expired() {
    let mut l = Leader::new(
        &["a", "b", "c"],
        &[group("g", "a", &[]), group("h", "b", &[])],
    );
    assert!(commits(&l.down("a")).is_empty(), "Down alone moves nothing");
    l.now += 10_000;
    assert!(commits(&l.ok(PlacementEvent::Hour(3))).is_empty());
    assert_eq!(l.owner("g"), "a");
    let cmds = l.expire("a");
    assert_eq!(l.owner("g"), "c", "b owns one group, c none");
    let p = l.placement("g");
    assert_eq!(
        p.releasing_from, "",
        "a runs nothing once its lease expired"
    );
    assert_eq!(p.last_move.unwrap().reason, "node lost");
    assert!(p.failovers.is_empty(), "a node loss is not a failover");
    assert_eq!(
        moved_messages(&cmds),
        ["Clustered role 'g' is moving from node 'a' to node 'c' (node lost)."]
    );
}

#[test]
fn a_lease_expiry_of_an_up_node_is_ignored() {
    let mut l = Leader::new(&["a", "b"], &[group("g", "a", &[])]);
    assert!(commits(&l.expire("a")).is_empty());
    assert_eq!(l.owner("g"), "a");
}

#[test]
fn a_hand_off_from_a_node_that_dies_ends_only_when_its_lease_expired() {
    let mut l = Leader::new(&["a", "b", "c"], &[group("g", "a", &[])]);
    l.ok(PlacementEvent::Move {
        group: "g".into(),
        to: Some("b".into()),
    });
    assert_eq!(l.placement("g").releasing_from, "a");
    l.down("a");
    assert_eq!(l.placement("g").releasing_from, "a", "a may still run it");
    let cmds = l.expire("a");
    assert_eq!(l.placement("g").releasing_from, "");
    assert_eq!(l.owner("g"), "b");
    assert_eq!(commits(&cmds).len(), 1);
}

#[test]
fn a_failure_fails_over_to_the_next_node_which_must_wait_for_the_release() {
    let mut l = Leader::new(
        &["a", "b", "c"],
        &[group("g", "a", &[("PreferredOwners", "a,b,c")])],
    );
    let cmds = l.fail("g");
    assert_eq!(l.owner("g"), "b");
    let p = l.placement("g");
    assert_eq!(p.releasing_from, "a");
    assert_eq!(p.failovers, vec![l.now]);
    assert_eq!(p.failed_on, vec![("a".to_string(), l.now)]);
    assert_eq!(p.last_move.unwrap().reason, "failure");
    assert_eq!(event_ids(&cmds), [1641]);
    // A stale release (older epoch) or one from another node changes nothing.
    let epoch = l.placement("g").epoch;
    for (node, e) in [("a", epoch - 1), ("c", epoch)] {
        let ev = PlacementEvent::Released {
            group: "g".into(),
            node: node.into(),
            epoch: e,
        };
        assert!(commits(&l.ok(ev)).is_empty());
    }
    let cmds = l.release("g");
    assert_eq!(commits(&cmds).len(), 1);
    assert_eq!(l.placement("g").releasing_from, "");
    // Releasing twice is harmless.
    let ev = PlacementEvent::Released {
        group: "g".into(),
        node: "a".into(),
        epoch,
    };
    assert!(commits(&l.ok(ev)).is_empty());
}

#[test]
fn a_failure_report_from_a_node_that_does_not_run_the_group_is_ignored() {
    let mut l = Leader::new(&["a", "b"], &[group("g", "a", &[])]);
    let ev = PlacementEvent::GroupFailed {
        group: "g".into(),
        node: "b".into(),
        resource: "r".into(),
    };
    assert!(commits(&l.ok(ev)).is_empty());
    l.ok(PlacementEvent::Move {
        group: "g".into(),
        to: Some("b".into()),
    });
    // b is the owner but a still releases it: b cannot have failed it.
    let ev = PlacementEvent::GroupFailed {
        group: "g".into(),
        node: "b".into(),
        resource: "r".into(),
    };
    assert!(commits(&l.ok(ev)).is_empty());
    assert_eq!(l.owner("g"), "b");
}

#[test]
fn past_the_failover_threshold_within_the_period_the_group_stays_failed_with_1254() {
    // 3 nodes: FailoverThreshold defaults to nodes-1 = 2.
    let mut l = Leader::new(
        &["a", "b", "c"],
        &[group("g", "a", &[("PreferredOwners", "a,b,c")])],
    );
    l.fail("g");
    l.release("g");
    assert_eq!(l.owner("g"), "b");
    l.now += HOUR;
    l.fail("g");
    l.release("g");
    assert_eq!(l.owner("g"), "c");
    l.now += HOUR;
    let cmds = l.fail("g");
    assert_eq!(l.owner("g"), "c", "it stays where it failed");
    assert!(l.placement("g").failed);
    assert_eq!(event_ids(&cmds), [1254]);
    assert!(moved_messages(&cmds).is_empty());
}

#[test]
fn failovers_older_than_the_failover_period_no_longer_count() {
    let props = [("FailoverThreshold", "1"), ("FailoverPeriod", "3600000")];
    let mut l = Leader::new(&["a", "b", "c"], &[group("g", "a", &props)]);
    l.fail("g");
    l.release("g");
    assert_eq!(l.owner("g"), "b");
    l.now += HOUR - 1;
    assert_eq!(
        event_ids(&l.fail("g")),
        [1254],
        "the second within the hour"
    );
    assert_eq!(l.owner("g"), "b");
    // An hour after the first failover it no longer counts: the next failure moves again (the
    // ladder also forgot that a failed it then).
    l.now += 1;
    let cmds = l.fail("g");
    assert_eq!(event_ids(&cmds), [1641]);
    assert_eq!(l.owner("g"), "a");
    assert_eq!(l.placement("g").failovers, vec![l.now]);
}

#[test]
fn a_group_that_failed_on_every_node_stays_failed_without_1254() {
    let props = [("FailoverThreshold", "10"), ("PreferredOwners", "a,b,c")];
    let mut l = Leader::new(&["a", "b", "c"], &[group("g", "a", &props)]);
    l.fail("g");
    l.release("g");
    l.fail("g");
    l.release("g");
    assert_eq!(l.owner("g"), "c", "each node got its turn");
    let cmds = l.fail("g");
    assert_eq!(l.owner("g"), "c");
    let p = l.placement("g");
    assert!(p.failed);
    assert_eq!(
        p.failed_on
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert!(event_ids(&cmds).is_empty());
    // The administrator's move starts the ladder afresh.
    l.ok(PlacementEvent::Move {
        group: "g".into(),
        to: Some("a".into()),
    });
    let p = l.placement("g");
    assert!(!p.failed && p.failed_on.is_empty());
    assert_eq!(l.owner("g"), "a");
}

#[test]
fn move_refuses_unknown_down_and_paused_targets_and_changes_nothing() {
    let mut l = Leader::new(&["a", "b", "c"], &[group("g", "a", &[])]);
    l.down("c");
    l.ok(PlacementEvent::Pause {
        node: "b".into(),
        drain: false,
    });
    let before = l.core.group("g").cloned();
    let cases = [
        (Some("zz"), PlacementError::UnknownNode("zz".into())),
        (Some("c"), PlacementError::NodeNotUp("c".into())),
        (Some("b"), PlacementError::NodePaused("b".into())),
        (None, PlacementError::NoTarget("g".into())),
    ];
    for (to, err) in cases {
        let ev = PlacementEvent::Move {
            group: "g".into(),
            to: to.map(String::from),
        };
        assert_eq!(l.core.handle(l.now, ev).unwrap_err(), err);
        assert_eq!(l.core.group("g").cloned(), before);
    }
    let ev = PlacementEvent::Move {
        group: "nope".into(),
        to: None,
    };
    assert_eq!(
        l.core.handle(l.now, ev).unwrap_err(),
        PlacementError::UnknownGroup("nope".into())
    );
    assert_eq!(
        l.core.handle(l.now, PlacementEvent::Hour(24)).unwrap_err(),
        PlacementError::BadHour(24)
    );
}

#[test]
fn moving_back_to_the_releasing_node_cancels_the_hand_off() {
    let mut l = Leader::new(&["a", "b", "c"], &[group("g", "a", &[])]);
    l.ok(PlacementEvent::Move {
        group: "g".into(),
        to: Some("b".into()),
    });
    assert_eq!(l.placement("g").releasing_from, "a");
    // Moved on while a still releases: c waits for a too (b never started).
    l.ok(PlacementEvent::Move {
        group: "g".into(),
        to: Some("c".into()),
    });
    assert_eq!(
        (l.owner("g"), l.placement("g").releasing_from),
        ("c".into(), "a".into())
    );
    l.ok(PlacementEvent::Move {
        group: "g".into(),
        to: Some("a".into()),
    });
    assert_eq!(
        (l.owner("g"), l.placement("g").releasing_from),
        ("a".into(), "".into())
    );
    let m = l.placement("g").last_move.unwrap();
    assert_eq!(
        (m.from.as_str(), m.to.as_str(), m.reason.as_str()),
        ("c", "a", "administrator")
    );
}

#[test]
fn drain_moves_every_group_off_at_once_spread_by_load() {
    let groups: Vec<GroupRecord> = ["g1", "g2", "g3", "g4"]
        .iter()
        .map(|g| group(g, "a", &[]))
        .collect();
    let mut l = Leader::new(&["a", "b", "c"], &groups);
    let cmds = l.ok(PlacementEvent::Pause {
        node: "a".into(),
        drain: true,
    });
    let c = commits(&cmds);
    assert_eq!(c.len(), 4, "all four hand-offs start in one step: {c:?}");
    let owners: Vec<&str> = c.iter().map(|g| g.owner.as_str()).collect();
    assert_eq!(owners, ["b", "c", "b", "c"]);
    assert!(c.iter().all(|g| g.placement.releasing_from == "a"));
    assert!(c
        .iter()
        .all(|g| g.placement.last_move.as_ref().unwrap().reason == "drain"));
    // Paused: a new group does not go there, even as a preferred owner.
    let g = group("g5", "", &[("PreferredOwners", "a")]);
    l.ok(PlacementEvent::Committed(vec![RecordChange::PutGroup(g)]));
    assert_ne!(l.owner("g5"), "a");
    l.ok(PlacementEvent::Resume { node: "a".into() });
    l.ok(PlacementEvent::Committed(vec![RecordChange::PutGroup(
        group("g6", "", &[]),
    )]));
    assert_eq!(l.owner("g6"), "a", "resumed, and it owns nothing now");
}

#[test]
fn drain_with_nowhere_to_go_is_refused_and_changes_nothing() {
    let mut l = Leader::new(&["a", "b"], &[group("g", "a", &[])]);
    l.down("b");
    let err = l.core.handle(
        l.now,
        PlacementEvent::Pause {
            node: "a".into(),
            drain: true,
        },
    );
    assert_eq!(
        err.unwrap_err(),
        PlacementError::CannotDrain {
            node: "a".into(),
            group: "g".into()
        }
    );
    assert_eq!(l.owner("g"), "a");
    // Not paused either: a refusal changes nothing at all.
    l.ok(PlacementEvent::Committed(vec![RecordChange::PutGroup(
        group("h", "", &[]),
    )]));
    assert_eq!(l.owner("h"), "a");
}

/// g prefers a; a dies, g goes to b; a comes back.
fn failed_over_from_a(props: &[(&str, &str)]) -> Leader {
    let mut all = vec![("PreferredOwners", "a,b")];
    all.extend_from_slice(props);
    let mut l = Leader::new(&["a", "b", "c"], &[group("g", "a", &all)]);
    l.down("a");
    l.expire("a");
    assert_eq!(l.owner("g"), "b");
    l
}

#[test]
fn failback_is_prevented_by_default() {
    let mut l = failed_over_from_a(&[]);
    assert!(commits(&l.ok(PlacementEvent::NodeUp { node: "a".into() })).is_empty());
    assert_eq!(l.owner("g"), "b");
}

#[test]
fn failback_allowed_without_a_window_moves_back_when_the_preferred_owner_returns() {
    let mut l = failed_over_from_a(&[("AutoFailbackType", "Allow")]);
    let cmds = l.ok(PlacementEvent::NodeUp { node: "a".into() });
    assert_eq!(l.owner("g"), "a");
    let p = l.placement("g");
    assert_eq!(p.releasing_from, "b", "b runs it until it released it");
    assert_eq!(p.last_move.unwrap().reason, "failback");
    assert_eq!(
        moved_messages(&cmds),
        ["Clustered role 'g' is moving from node 'b' to node 'a' (failback)."]
    );
    // It does not bounce.
    l.release("g");
    assert!(commits(&l.ok(PlacementEvent::Hour(1))).is_empty());
}

#[test]
fn an_administrators_move_is_not_failed_back() {
    let mut l = Leader::new(
        &["a", "b"],
        &[group(
            "g",
            "a",
            &[("PreferredOwners", "a"), ("AutoFailbackType", "Allow")],
        )],
    );
    l.ok(PlacementEvent::Move {
        group: "g".into(),
        to: Some("b".into()),
    });
    l.release("g");
    assert!(commits(&l.ok(PlacementEvent::NodeUp { node: "a".into() })).is_empty());
    assert_eq!(l.owner("g"), "b");
}

#[test]
fn failback_waits_for_its_window_which_may_wrap_midnight() {
    let window = [
        ("AutoFailbackType", "Allow"),
        ("FailbackWindowStart", "22"),
        ("FailbackWindowEnd", "4"),
    ];
    let mut l = failed_over_from_a(&window);
    l.ok(PlacementEvent::Hour(12));
    assert!(commits(&l.ok(PlacementEvent::NodeUp { node: "a".into() })).is_empty());
    assert!(commits(&l.ok(PlacementEvent::Hour(21))).is_empty());
    assert_eq!(l.owner("g"), "b");
    l.ok(PlacementEvent::Hour(23));
    assert_eq!(l.owner("g"), "a", "inside 22..4");

    let mut l = failed_over_from_a(&window);
    l.ok(PlacementEvent::Hour(4));
    assert!(commits(&l.ok(PlacementEvent::NodeUp { node: "a".into() })).is_empty());
    assert_eq!(l.owner("g"), "b", "4 is the end, excluded");
    l.ok(PlacementEvent::Hour(3));
    assert_eq!(l.owner("g"), "a", "after midnight, before the end");
}

#[test]
fn failback_with_a_window_and_no_known_hour_waits() {
    let window = [
        ("AutoFailbackType", "Allow"),
        ("FailbackWindowStart", "1"),
        ("FailbackWindowEnd", "2"),
    ];
    let mut l = failed_over_from_a(&window);
    assert!(commits(&l.ok(PlacementEvent::NodeUp { node: "a".into() })).is_empty());
    l.ok(PlacementEvent::Hour(1));
    assert_eq!(l.owner("g"), "a");
}

#[test]
fn committed_records_with_an_older_placement_epoch_keep_the_placement() {
    let mut l = Leader::new(&["a", "b"], &[group("g", "a", &[])]);
    l.ok(PlacementEvent::Move {
        group: "g".into(),
        to: Some("b".into()),
    });
    // An administrator's upsert built on the old view (epoch 0, owner a) with a new property.
    let stale = group("g", "a", &[("AutoFailbackType", "Allow")]);
    l.ok(PlacementEvent::Committed(vec![RecordChange::PutGroup(
        stale,
    )]));
    assert_eq!(l.owner("g"), "b");
    assert_eq!(l.placement("g").releasing_from, "a");
    assert_eq!(
        l.core.group("g").unwrap().properties["AutoFailbackType"],
        "Allow"
    );
    l.ok(PlacementEvent::Committed(vec![RecordChange::DeleteGroup(
        "g".into(),
    )]));
    assert!(l.core.group("g").is_none());
}
