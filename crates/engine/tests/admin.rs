//! Administrator requests: validation and refusal (changing nothing), deletion rules, properties,
//! persistence records, restore from the database, and determinism.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::{GroupProperties, Op, ResourceProperties};

#[test]
fn deleting_an_online_resource_is_refused_and_changes_nothing() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let before = sim.engine.resources();
    let e = sim
        .send(Event::DeleteResource { name: "a".into() })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource 'a' is Online; take it offline before deleting it"
    );
    assert_eq!(sim.engine.resources(), before);
    sim.ok(Event::OfflineGroup { name: "g".into() });
    sim.settle();
    let (id, host) = (sim.id("a"), sim.host_of("a"));
    let c = sim.ok(Event::DeleteResource { name: "a".into() });
    assert!(c.contains(&Command::Close {
        resource: id,
        host,
        deadline_ms: 300_000
    }));
    assert_eq!(persists(&c), [PersistChange::DeleteResource("a".into())]);
    assert!(sim.engine.resource("a").is_none());
}

#[test]
fn deleting_a_provider_or_a_non_empty_group_is_refused() {
    let mut sim = Sim::with_group(&["a", "b"]);
    sim.dep("b", "a");
    let e = sim
        .send(Event::DeleteResource { name: "a".into() })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource 'a' is still a dependency of 'b'; remove those dependencies first"
    );
    let e = sim
        .send(Event::DeleteGroup { name: "g".into() })
        .unwrap_err();
    assert_eq!(e.to_string(), "group 'g' still holds resources: 'a', 'b'");
    sim.ok(Event::DeleteResource { name: "b".into() });
    sim.ok(Event::DeleteResource { name: "a".into() });
    let c = sim.ok(Event::DeleteGroup { name: "g".into() });
    assert_eq!(persists(&c), [PersistChange::DeleteGroup("g".into())]);
    assert!(sim.engine.groups().is_empty());
}

#[test]
fn names_must_be_new_and_groups_must_exist() {
    let mut sim = Sim::with_group(&["a"]);
    let e = sim
        .send(Event::CreateResource(spec(
            "a",
            "g",
            ResourceProperties::default(),
            &[],
        )))
        .unwrap_err();
    assert_eq!(e.to_string(), "resource 'a' already exists");
    let e = sim
        .send(Event::CreateResource(spec(
            "z",
            "nope",
            ResourceProperties::default(),
            &[],
        )))
        .unwrap_err();
    assert_eq!(e.to_string(), "unknown group 'nope'");
    let e = sim
        .send(Event::CreateGroup {
            name: "g".into(),
            properties: GroupProperties::default(),
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "group 'g' already exists");
    let e = sim
        .send(Event::CreateGroup {
            name: " ".into(),
            properties: GroupProperties::default(),
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "a group name must not be empty");
    let e = sim
        .send(Event::OnlineGroup {
            name: "nope".into(),
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "unknown group 'nope'");
    assert!(sim
        .send(Event::OnlineResource {
            name: "nope".into()
        })
        .is_err());
}

#[test]
fn properties_are_validated_and_persisted() {
    let mut sim = Sim::with_group(&["a"]);
    let e = sim.send(Event::SetResourceProperty {
        resource: "a".into(),
        name: "DeadlockTimeout".into(),
        value: "abc".into(),
    });
    assert_eq!(
        e.unwrap_err().to_string(),
        "DeadlockTimeout=abc: expected a number of milliseconds"
    );
    let e = sim.send(Event::SetResourceProperty {
        resource: "a".into(),
        name: "RestartThreshold".into(),
        value: "-1".into(),
    });
    assert_eq!(
        e.unwrap_err().to_string(),
        "RestartThreshold=-1: expected a non-negative integer"
    );
    let e = sim.send(Event::SetResourceProperty {
        resource: "a".into(),
        name: "Colour".into(),
        value: "red".into(),
    });
    assert!(e
        .unwrap_err()
        .to_string()
        .starts_with("Colour=red: unknown resource property"));
    assert_eq!(
        sim.engine.resource("a").unwrap().properties,
        ResourceProperties::default()
    );
    let c = sim.ok(Event::SetResourceProperty {
        resource: "a".into(),
        name: "RestartAction".into(),
        value: "Restart".into(),
    });
    let PersistChange::PutResource(rec) = &persists(&c)[0] else {
        panic!("{c:?}")
    };
    assert_eq!(
        rec.properties.get("RestartAction").map(String::as_str),
        Some("Restart")
    );
    let c = sim.ok(Event::SetGroupProperty {
        group: "g".into(),
        name: "AutoFailbackType".into(),
        value: "Allow".into(),
    });
    let PersistChange::PutGroup(rec) = &persists(&c)[0] else {
        panic!("{c:?}")
    };
    assert_eq!(
        rec.properties.get("AutoFailbackType").map(String::as_str),
        Some("Allow")
    );
    assert!(sim
        .send(Event::SetGroupProperty {
            group: "g".into(),
            name: "FailoverPeriod".into(),
            value: "x".into()
        })
        .is_err());
}

#[test]
fn desired_state_and_dependencies_are_persisted() {
    let mut sim = Sim::new();
    let c = sim.ok(Event::CreateGroup {
        name: "g".into(),
        properties: GroupProperties::default(),
    });
    assert_eq!(
        persists(&c),
        [PersistChange::PutGroup(GroupRecord {
            name: "g".into(),
            ..Default::default()
        })]
    );
    sim.resource("a", "g", ResourceProperties::default());
    let c = sim.ok(Event::CreateResource(spec(
        "b",
        "g",
        ResourceProperties::default(),
        &["a"],
    )));
    let expected = ResourceRecord {
        name: "b".into(),
        type_name: "Dummy".into(),
        plugin: "dummy".into(),
        group: "g".into(),
        properties: Default::default(),
        params: Default::default(),
        depends_on: vec!["a".into()],
        want_online: false,
    };
    assert_eq!(persists(&c), [PersistChange::PutResource(expected)]);
    let c = sim.ok(Event::OnlineGroup { name: "g".into() });
    let p = persists(&c);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p.iter().all(|x| match x {
        PersistChange::PutResource(r) => r.want_online,
        PersistChange::PutGroup(g) => g.want_online,
        _ => false,
    }));
}

#[test]
fn restore_brings_back_what_was_online_in_dependency_order() {
    let groups = vec![GroupRecord {
        owner: String::new(),
        name: "g".into(),
        properties: Default::default(),
        want_online: true,
        placement: Default::default(),
    }];
    let rec = |name: &str, deps: &[&str], want: bool| ResourceRecord {
        name: name.into(),
        type_name: "Dummy".into(),
        plugin: "dummy".into(),
        group: "g".into(),
        properties: [("SeparateMonitor".to_string(), "true".to_string())]
            .into_iter()
            .filter(|_| name == "b")
            .collect(),
        params: Default::default(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        want_online: want,
    };
    let resources = vec![
        rec("b", &["a"], true),
        rec("a", &[], true),
        rec("c", &[], false),
    ];
    let (engine, cmds) = Engine::restore(5, &groups, &resources).unwrap();
    assert!(persists(&cmds).is_empty());
    assert_eq!(
        cmds.iter()
            .filter(|c| matches!(c, Command::Open { .. }))
            .count(),
        3
    );
    assert_eq!(
        calls_of(&cmds, Op::Online),
        [engine.resource("a").unwrap().id]
    );
    let mut sim = Sim {
        engine,
        ..Sim::new()
    };
    sim.absorb(&cmds);
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online);
    assert_eq!(sim.state("b"), ResourceState::Online);
    assert_eq!(sim.state("c"), ResourceState::Offline);
    assert!(
        sim.engine
            .resource("b")
            .unwrap()
            .properties
            .separate_monitor
    );
    assert_ne!(sim.host_of("a"), sim.host_of("b"));
    let bad = vec![rec("b", &["zz"], true)];
    let e = Engine::restore(5, &groups, &bad).unwrap_err();
    assert_eq!(e.to_string(), "unknown resource 'zz'");
}

#[test]
fn the_same_events_give_the_same_commands() {
    let script = |sim: &mut Sim| {
        sim.group("g");
        sim.resource("a", "g", ResourceProperties::default());
        sim.resource("b", "g", ResourceProperties::default());
        sim.dep("b", "a");
        sim.ok(Event::OnlineGroup { name: "g".into() });
        sim.run(70_000);
        sim.kill_host(sim.host_of("b"), Some(("b", Op::IsAlive)), "crash");
        sim.run(70_000);
        sim.ok(Event::FailResource { name: "a".into() });
        sim.run(10_000);
    };
    let (mut one, mut two) = (Sim::new(), Sim::new());
    script(&mut one);
    script(&mut two);
    assert_eq!(one.history, two.history);
    assert!(one.history.len() > 50);
}

#[test]
fn a_refused_request_returns_no_commands_and_keeps_timers() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let before = sim.engine.clone();
    assert!(sim
        .send(Event::CreateResource(spec(
            "x",
            "g",
            ResourceProperties::default(),
            &["x"]
        )))
        .is_err());
    assert_eq!(format!("{:?}", sim.engine), format!("{before:?}"));
    let c = sim.run(5_000);
    assert_eq!(calls_of(&c, Op::LooksAlive).len(), 1);
}

#[test]
fn an_empty_group_is_as_its_administrator_last_asked() {
    // Nothing in it to wait for: online reads Online at once, offline Offline, and it is announced.
    let mut sim = Sim::new();
    sim.group("empty");
    assert_eq!(sim.gstate("empty"), GroupState::Offline);
    let c = sim.ok(Event::OnlineGroup {
        name: "empty".into(),
    });
    assert_eq!(sim.gstate("empty"), GroupState::Online);
    assert_eq!(
        group_changes(&c),
        [(GroupState::Offline, GroupState::Online)]
    );
    let c = sim.ok(Event::OfflineGroup {
        name: "empty".into(),
    });
    assert_eq!(sim.gstate("empty"), GroupState::Offline);
    assert_eq!(
        group_changes(&c),
        [(GroupState::Online, GroupState::Offline)]
    );
    // Once it has members, their states decide: a new resource starts Offline.
    sim.ok(Event::OnlineGroup {
        name: "empty".into(),
    });
    sim.resource("a", "empty", ResourceProperties::default());
    sim.settle();
    assert_eq!(sim.gstate("empty"), GroupState::Offline);
}
