//! Private parameters and the one-request `SetResource`: validated as a whole and refused with
//! nothing changed, persisted in the resource's record, and reaching the plugin through a fresh open
//! (at once when the resource is down, at its next online when it is up); and `handle_committed`,
//! which leaves the engine as it was when the database cannot save a change.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::Op;
use std::collections::BTreeMap;

fn set(
    sim: &mut Sim,
    params: &[(&str, &str)],
    unset: &[&str],
) -> Result<Vec<Command>, EngineError> {
    sim.send(Event::SetResource {
        resource: "a".into(),
        properties: vec![],
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        unset_params: unset.iter().map(|k| k.to_string()).collect(),
    })
}

fn opens(cmds: &[Command]) -> Vec<BTreeMap<String, String>> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Open { params, .. } => Some(params.clone()),
            _ => None,
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_parameter_change_reopens_an_offline_resource_at_once() {
    let mut sim = Sim::with_group(&["a"]);
    let host = sim.host_of("a");
    let c = set(&mut sim, &[("path", "/srv")], &[]).unwrap();
    let id = sim.id("a");
    assert!(
        c.contains(&Command::Close {
            resource: id,
            host,
            deadline_ms: 300_000
        }),
        "{c:?}"
    );
    assert_eq!(opens(&c), [map(&[("path", "/srv")])]);
    let PersistChange::PutResource(rec) = &persists(&c)[0] else {
        panic!("{c:?}")
    };
    assert_eq!(rec.params, map(&[("path", "/srv")]));
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Offline);
}

#[test]
fn a_parameter_change_reaches_an_online_resource_at_its_next_online_only() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let c = set(&mut sim, &[("path", "/srv")], &[]).unwrap();
    assert!(
        opens(&c).is_empty(),
        "an Online resource is not disturbed: {c:?}"
    );
    assert_eq!(sim.state("a"), ResourceState::Online);
    sim.ok(Event::OfflineGroup { name: "g".into() });
    let c = sim.settle();
    assert!(opens(&c).is_empty(), "not reopened on the way down: {c:?}");
    let c = sim.ok(Event::OnlineGroup { name: "g".into() });
    let opened = opens(&c);
    assert_eq!(opened, [map(&[("path", "/srv")])], "{c:?}");
    // The Online call goes to the fresh open, after it.
    let open_at = c
        .iter()
        .position(|c| matches!(c, Command::Open { .. }))
        .unwrap();
    let online_at = c
        .iter()
        .position(|c| matches!(c, Command::Call { op: Op::Online, .. }))
        .unwrap();
    assert!(open_at < online_at);
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online);
    // The next online after that needs no reopen.
    sim.ok(Event::OfflineGroup { name: "g".into() });
    sim.settle();
    let c = sim.ok(Event::OnlineGroup { name: "g".into() });
    assert!(opens(&c).is_empty(), "{c:?}");
}

#[test]
fn unset_removes_and_a_bad_request_changes_nothing_at_all() {
    let mut sim = Sim::with_group(&["a"]);
    set(&mut sim, &[("path", "/srv"), ("mode", "x")], &[]).unwrap();
    sim.settle();
    let before = sim.engine.resources();
    // A bad property refuses the parameters given with it too.
    let e = sim
        .send(Event::SetResource {
            resource: "a".into(),
            properties: vec![("DeadlockTimeout".into(), "abc".into())],
            params: vec![("path".into(), "/other".into())],
            unset_params: vec![],
        })
        .unwrap_err();
    assert!(e.to_string().contains("DeadlockTimeout=abc"), "{e}");
    let e = set(&mut sim, &[], &["colour"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource 'a' has no parameter 'colour' to remove"
    );
    let e = set(&mut sim, &[("path", "/x")], &["path"]).unwrap_err();
    assert_eq!(e.to_string(), "parameter 'path' is given more than once");
    let e = set(&mut sim, &[], &[]).unwrap_err();
    assert!(
        e.to_string().starts_with("nothing to set on resource 'a'"),
        "{e}"
    );
    assert_eq!(sim.engine.resources(), before);
    let c = set(&mut sim, &[], &["mode"]).unwrap();
    assert_eq!(opens(&c), [map(&[("path", "/srv")])]);
    assert_eq!(
        sim.engine.resource("a").unwrap().params,
        map(&[("path", "/srv")])
    );
}

#[test]
fn a_commit_that_fails_leaves_the_engine_as_it_was() {
    let mut sim = Sim::with_group(&["a"]);
    let before = (sim.engine.resources(), sim.engine.groups());
    let mut seen = Vec::new();
    let r = sim.engine.handle_committed(
        sim.now,
        Event::CreateResource(spec("b", "g", Default::default(), &[])),
        |changes| {
            seen.extend(changes.iter().cloned());
            Err("no space left on device")
        },
    );
    assert_eq!(r.unwrap_err(), Refusal::Storage("no space left on device"));
    assert_eq!(
        seen.len(),
        1,
        "the commit was offered the new record: {seen:?}"
    );
    assert_eq!((sim.engine.resources(), sim.engine.groups()), before);
    // Committed: the commands carry no Persist (already saved) but everything else.
    let c = sim
        .engine
        .handle_committed(
            sim.now,
            Event::CreateResource(spec("b", "g", Default::default(), &[])),
            |_| Ok::<(), &str>(()),
        )
        .unwrap();
    assert!(persists(&c).is_empty());
    assert!(opens(&c).len() == 1, "{c:?}");
    assert!(sim.engine.resource("b").is_some());
    let r = sim.engine.handle_committed(
        sim.now,
        Event::DeleteGroup {
            name: "nope".into(),
        },
        |_| Ok::<(), ()>(()),
    );
    assert!(matches!(
        r,
        Err(Refusal::Engine(EngineError::UnknownGroup(_)))
    ));
}

#[test]
fn restore_hands_the_stored_parameters_to_the_open() {
    let groups = [GroupRecord {
        name: "g".into(),
        ..Default::default()
    }];
    let resources = [ResourceRecord {
        name: "a".into(),
        type_name: "Dummy".into(),
        plugin: "dummy".into(),
        group: "g".into(),
        params: map(&[("password", "hunter22")]),
        ..Default::default()
    }];
    let (engine, c) = Engine::restore(5, &groups, &resources).unwrap();
    assert_eq!(opens(&c), [map(&[("password", "hunter22")])]);
    assert_eq!(
        engine.resource("a").unwrap().params,
        map(&[("password", "hunter22")])
    );
}
