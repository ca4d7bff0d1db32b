//! One node's engine obeying committed ownership: the old owner takes a group offline in reverse
//! dependency order, closes it and reports the release; the new owner starts it in dependency order
//! only once the release is committed; a stale record does not move anything; a lost quorum
//! terminates everything (1177), and a fenced host's death handed in after it restarts nothing;
//! an Offline of a cancelled hand-off failing after the group came back starts afresh;
//! a failure past the threshold reports GroupFailed in a cluster,
//! and the next node gives the resource its own restart (post [13]); RestartAction=Restart never
//! asks to move.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::{GroupPlacement, Op, RecordChange, ResourceProperties};

/// g (owned by `owner`, online) with r0 <- r1 <- r2 (r2 depends on r1, r1 on r0).
fn records(owner: &str, props: &[(&str, &str)]) -> (Vec<GroupRecord>, Vec<ResourceRecord>) {
    let g = GroupRecord {
        name: "g".into(),
        want_online: true,
        owner: owner.into(),
        ..Default::default()
    };
    let r = |name: &str, deps: &[&str]| ResourceRecord {
        name: name.into(),
        type_name: "Dummy".into(),
        plugin: "dummy".into(),
        group: "g".into(),
        properties: props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        want_online: true,
        ..Default::default()
    };
    (
        vec![g],
        vec![r("r0", &[]), r("r1", &["r0"]), r("r2", &["r1"])],
    )
}

fn node(name: &str, owner: &str, props: &[(&str, &str)]) -> Sim {
    let (groups, resources) = records(owner, props);
    let mut sim = Sim::new();
    let (engine, cmds) = Engine::restore_on(name, sim.now, &groups, &resources).unwrap();
    sim.engine = engine;
    sim.absorb(&cmds);
    sim.settle();
    sim
}

/// The group record with owner `owner`, `releasing_from` and placement epoch `epoch`.
fn placed(owner: &str, releasing_from: &str, epoch: u64) -> RecordChange {
    let (mut groups, _) = records(owner, &[]);
    groups[0].placement = GroupPlacement {
        epoch,
        releasing_from: releasing_from.into(),
        ..Default::default()
    };
    RecordChange::PutGroup(groups.remove(0))
}

fn commit(sim: &mut Sim, change: RecordChange) -> Vec<Command> {
    let cmds = sim.engine.apply_records(sim.now, &[change]);
    sim.absorb(&cmds);
    cmds
}

fn states(sim: &Sim) -> Vec<ResourceState> {
    ["r0", "r1", "r2"].iter().map(|r| sim.state(r)).collect()
}

fn reports(cmds: &[Command]) -> Vec<PlacementReport> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Placement(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn online_order(cmds: &[Command], sim: &Sim) -> Vec<String> {
    calls_of(cmds, Op::Online)
        .iter()
        .map(|r| sim.name(*r))
        .collect()
}

#[test]
fn the_old_owner_takes_the_group_offline_dependents_first_then_reports_the_release() {
    let mut a = node("a", "a", &[]);
    assert_eq!(states(&a), [ResourceState::Online; 3]);
    let cmds = commit(&mut a, placed("b", "a", 1));
    let offline: Vec<String> = calls_of(&cmds, Op::Offline)
        .iter()
        .map(|r| a.name(*r))
        .collect();
    assert_eq!(offline, ["r2"], "dependents first");
    assert!(
        reports(&cmds).is_empty(),
        "not released while anything is up"
    );
    let cmds = a.reply("r2", Op::Offline, true);
    assert_eq!(
        calls_of(&cmds, Op::Offline)
            .iter()
            .map(|r| a.name(*r))
            .collect::<Vec<_>>(),
        ["r1"]
    );
    a.reply("r1", Op::Offline, true);
    let cmds = a.reply("r0", Op::Offline, true);
    assert_eq!(states(&a), [ResourceState::Offline; 3]);
    let closes = cmds
        .iter()
        .filter(|c| matches!(c, Command::Close { .. }))
        .count();
    assert_eq!(closes, 3, "a non-owner holds only the configuration");
    let released = PlacementReport::Released {
        group: "g".into(),
        node: "a".into(),
        epoch: 1,
    };
    assert_eq!(reports(&cmds), std::slice::from_ref(&released));
    assert_eq!(a.engine.pending_releases(), [released]);
    // Once per epoch: the same record again reports nothing.
    assert!(reports(&commit(&mut a, placed("b", "a", 1))).is_empty());
    assert!(a.engine.hosts().iter().all(|h| h.resources.is_empty()));
    // The release committed: a holds it as the others do, and stays down.
    let cmds = commit(&mut a, placed("b", "", 2));
    assert!(calls_of(&cmds, Op::Online).is_empty());
    assert!(a.engine.pending_releases().is_empty());
    assert_eq!(a.engine.group_record("g").unwrap().owner, "b");
}

#[test]
fn the_new_owner_starts_only_once_the_release_is_committed_providers_first() {
    let mut b = node("b", "a", &[]);
    assert!(
        b.engine.resources().iter().all(|r| r.host.is_none()),
        "b holds a's group as configuration only"
    );
    assert_eq!(states(&b), [ResourceState::Offline; 3]);
    let cmds = commit(&mut b, placed("b", "a", 1));
    assert!(calls_of(&cmds, Op::Online).is_empty(), "a may still run it");
    assert!(!cmds.iter().any(|c| matches!(c, Command::Open { .. })));
    assert!(reports(&cmds).is_empty());
    let cmds = commit(&mut b, placed("b", "", 2));
    assert_eq!(online_order(&cmds, &b), ["r0"]);
    let cmds = b.reply("r0", Op::Online, true);
    assert_eq!(online_order(&cmds, &b), ["r1"]);
    b.settle();
    assert_eq!(states(&b), [ResourceState::Online; 3]);
}

#[test]
fn a_record_with_an_older_placement_epoch_moves_nothing() {
    let mut a = node("a", "a", &[]);
    commit(&mut a, placed("a", "", 5));
    let cmds = commit(&mut a, placed("b", "a", 4));
    assert!(calls_of(&cmds, Op::Offline).is_empty());
    assert_eq!(states(&a), [ResourceState::Online; 3]);
    assert!(
        logs(&cmds).iter().any(|(_, m)| m.contains("older than 5")),
        "{:?}",
        logs(&cmds)
    );
}

#[test]
fn losing_quorum_terminates_dependents_first_and_nothing_starts_until_it_is_regained() {
    let mut a = node("a", "a", &[]);
    let cmds = a.engine.lose_quorum(a.now);
    a.absorb(&cmds);
    let terminated: Vec<String> = calls_of(&cmds, Op::Terminate)
        .iter()
        .map(|r| a.name(*r))
        .collect();
    assert_eq!(terminated, ["r2", "r1", "r0"]);
    assert!(
        calls_of(&cmds, Op::Offline).is_empty(),
        "no orderly offline: terminate"
    );
    assert_eq!(event_ids(&cmds), [1177]);
    assert_eq!(states(&a), [ResourceState::Offline; 3]);
    a.run(10_000_000);
    assert_eq!(
        states(&a),
        [ResourceState::Offline; 3],
        "no restart without quorum"
    );
    assert!(
        event_ids(&a.engine.lose_quorum(a.now)).is_empty(),
        "1177 once"
    );
    let cmds = a.engine.regain_quorum(a.now);
    a.absorb(&cmds);
    assert_eq!(online_order(&cmds, &a), ["r0"]);
    a.settle();
    assert_eq!(states(&a), [ResourceState::Online; 3]);
}

#[test]
fn a_failure_past_the_threshold_asks_to_fail_over_and_the_next_node_restarts_once_too() {
    let mut a = node("a", "a", &[]);
    // Default policy: one restart, then the group fails over.
    a.ok(Event::FailResource { name: "r0".into() });
    a.run(1_000);
    assert_eq!(a.state("r0"), ResourceState::Online, "restarted once");
    let cmds = a.ok(Event::FailResource { name: "r0".into() });
    let failed = PlacementReport::GroupFailed {
        group: "g".into(),
        node: "a".into(),
        resource: "r0".into(),
    };
    assert_eq!(reports(&cmds), [failed]);
    assert!(event_ids(&cmds).contains(&1069) && event_ids(&cmds).contains(&1205));
    assert_eq!(a.gstate("g"), GroupState::Failed);
    // The leader moves it to b; a takes it down and releases it.
    commit(&mut a, placed("b", "a", 1));
    a.settle();
    let rel = a.engine.pending_releases();
    assert_eq!(rel.len(), 1, "{:?}", states(&a));
    // b starts it and gets a restart of its own before it asks to move again.
    let mut b = node("b", "a", &[]);
    commit(&mut b, placed("b", "", 2));
    b.settle();
    b.ok(Event::FailResource { name: "r0".into() });
    let cmds = b.run(1_000);
    assert!(reports(&cmds).is_empty());
    assert_eq!(b.state("r0"), ResourceState::Online);
    let cmds = b.ok(Event::FailResource { name: "r0".into() });
    assert_eq!(reports(&cmds).len(), 1);
}

#[test]
fn restart_action_restart_never_asks_to_move_the_group() {
    for action in ["Restart", "NoRestart"] {
        let mut a = node("a", "a", &[("RestartAction", action)]);
        let mut all = Vec::new();
        for _ in 0..5 {
            if a.state("r0") == ResourceState::Online {
                all.extend(a.ok(Event::FailResource { name: "r0".into() }));
            }
            all.extend(a.run(10_000_000));
        }
        assert!(reports(&all).is_empty(), "{action}: {:?}", reports(&all));
        assert!(!event_ids(&all).contains(&1205), "{action}");
    }
}

#[test]
fn a_single_node_engine_ignores_ownership() {
    let mut sim = Sim::with_group(&["x"]);
    sim.resource("y", "g", ResourceProperties::default());
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    assert_eq!(sim.gstate("g"), GroupState::Online);
    assert!(sim.engine.pending_releases().is_empty());
    let cmds = sim.engine.lose_quorum(sim.now);
    assert!(
        !calls_of(&cmds, Op::Terminate).is_empty(),
        "lose_quorum is for clusters, but obeyed"
    );
}

#[test]
fn a_resource_failed_when_its_group_left_starts_afresh_when_the_group_comes_back() {
    let mut a = node("a", "a", &[]);
    a.ok(Event::FailResource { name: "r2".into() });
    assert_eq!(
        a.state("r2"),
        ResourceState::Failed,
        "its restart is scheduled"
    );
    // Moved away (its restart cancelled, the others going offline)...
    let cmds = commit(&mut a, placed("b", "a", 1));
    assert_eq!(
        calls_of(&cmds, Op::Offline)
            .iter()
            .map(|r| a.name(*r))
            .collect::<Vec<_>>(),
        ["r1"]
    );
    // ...and moved back before anything answered.
    commit(&mut a, placed("a", "", 2));
    a.run(10_000);
    assert_eq!(states(&a), [ResourceState::Online; 3]);
}

#[test]
fn an_offline_of_a_cancelled_hand_off_that_fails_late_starts_afresh_on_the_owner() {
    // The release's Offline of r2 hangs past PendingTimeout after the move was cancelled: r2 is
    // terminated, Failed, and (the failure was the release's, not the owner's) starts again at once.
    let mut a = node("a", "a", &[]);
    let cmds = commit(&mut a, placed("b", "a", 1));
    assert_eq!(called(&cmds, &a, Op::Offline), ["r2"]);
    commit(&mut a, placed("a", "", 2));
    let cmds = a.advance(180_000);
    assert_eq!(called(&cmds, &a, Op::Terminate), ["r2"]);
    assert_eq!(a.state("r2"), ResourceState::Failed);
    a.reply("r2", Op::Terminate, true);
    a.run(10_000);
    assert_eq!(states(&a), [ResourceState::Online; 3]);
    assert_eq!(a.gstate("g"), GroupState::Online);

    // The same with the Offline failing outright once the group is back.
    let mut a = node("a", "a", &[]);
    commit(&mut a, placed("b", "a", 1));
    commit(&mut a, placed("a", "", 2));
    a.reply("r2", Op::Offline, false);
    a.run(10_000);
    assert_eq!(states(&a), [ResourceState::Online; 3]);
}

/// Every call of `op` in `cmds`, by resource name.
fn called(cmds: &[Command], sim: &Sim, op: Op) -> Vec<String> {
    calls_of(cmds, op).iter().map(|r| sim.name(*r)).collect()
}

#[test]
fn a_fenced_host_handled_after_the_quorum_loss_restarts_nothing_until_quorum_is_back() {
    // The rcm of a frozen node: its host fenced itself (terminated everything, exited), and the
    // node's views are from before the freeze. rcm loses quorum first, then hands in the death.
    let mut a = node("a", "a", &[("RestartDelay", "0")]);
    let host = a.host_of("r0");
    let cmds = a.engine.lose_quorum(a.now);
    a.absorb(&cmds);
    let mut all = a.kill_host(host, None, "host fenced itself: its lease from rcm ran out");
    all.extend(a.run(10_000_000));
    assert!(
        called(&all, &a, Op::Online).is_empty(),
        "no restart without quorum"
    );
    assert!(states(&a).iter().all(|s| *s != ResourceState::Online));
    // Meanwhile the group moved: the catch-up brings the record before quorum is regained.
    commit(&mut a, placed("b", "", 1));
    let mut all = a.engine.regain_quorum(a.now);
    a.absorb(&all);
    all.extend(a.run(10_000_000));
    assert!(
        called(&all, &a, Op::Online).is_empty(),
        "it moved: nothing runs here"
    );

    // Still the owner after the catch-up: it comes back, its restart history forgotten.
    let mut a = node("a", "a", &[("RestartDelay", "0")]);
    let host = a.host_of("r0");
    let cmds = a.engine.lose_quorum(a.now);
    a.absorb(&cmds);
    a.kill_host(host, None, "host fenced itself");
    a.run(10_000);
    let cmds = a.engine.regain_quorum(a.now);
    a.absorb(&cmds);
    a.run(10_000);
    assert_eq!(states(&a), [ResourceState::Online; 3]);

    // In the other order the death restarts them at once, from the stale view: why rcm loses
    // quorum first.
    let mut a = node("a", "a", &[("RestartDelay", "0")]);
    let host = a.host_of("r0");
    let mut all = a.kill_host(host, None, "host fenced itself");
    all.extend(a.run(1_000));
    assert!(
        !called(&all, &a, Op::Online).is_empty(),
        "restarted from the stale view"
    );
}
