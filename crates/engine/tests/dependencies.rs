//! Dependency ordering: online after providers, offline in reverse, independents in parallel,
//! refusal of cycles / self / cross-group dependencies, and dependents following their providers.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::{Op, ResourceProperties};

/// ip <- name <- share -> disk (share depends on name and disk; name on ip).
fn file_server() -> Sim {
    let mut sim = Sim::with_group(&["ip", "name", "disk", "share"]);
    sim.dep("name", "ip");
    sim.dep("share", "name");
    sim.dep("share", "disk");
    sim
}

fn names(sim: &Sim, ids: Vec<keelson_types::ResourceId>) -> Vec<String> {
    ids.into_iter().map(|i| sim.name(i)).collect()
}

#[test]
fn online_follows_dependencies_and_independents_start_together() {
    let mut sim = file_server();
    let c = sim.ok(Event::OnlineGroup { name: "g".into() });
    assert_eq!(
        names(&sim, calls_of(&c, Op::Online)),
        ["ip", "disk"],
        "independent providers start at once"
    );
    assert_eq!(sim.gstate("g"), GroupState::Pending);
    let c = sim.reply("ip", Op::Online, true);
    assert_eq!(names(&sim, calls_of(&c, Op::Online)), ["name"]);
    let c = sim.reply("name", Op::Online, true);
    assert!(
        calls_of(&c, Op::Online).is_empty(),
        "share still waits for disk"
    );
    assert_eq!(sim.state("share"), ResourceState::Offline);
    let c = sim.reply("disk", Op::Online, true);
    assert_eq!(names(&sim, calls_of(&c, Op::Online)), ["share"]);
    let c = sim.reply("share", Op::Online, true);
    assert_eq!(sim.gstate("g"), GroupState::Online);
    assert_eq!(
        group_changes(&c),
        [(GroupState::Pending, GroupState::Online)]
    );
}

#[test]
fn offline_goes_in_reverse_dependency_order() {
    let mut sim = file_server();
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let c = sim.ok(Event::OfflineGroup { name: "g".into() });
    assert_eq!(names(&sim, calls_of(&c, Op::Offline)), ["share"]);
    assert_eq!(sim.state("ip"), ResourceState::Online);
    let c = sim.reply("share", Op::Offline, true);
    assert_eq!(names(&sim, calls_of(&c, Op::Offline)), ["name", "disk"]);
    let c = sim.reply("disk", Op::Offline, true);
    assert!(calls_of(&c, Op::Offline).is_empty(), "ip waits for name");
    let c = sim.reply("name", Op::Offline, true);
    assert_eq!(names(&sim, calls_of(&c, Op::Offline)), ["ip"]);
    sim.reply("ip", Op::Offline, true);
    assert_eq!(sim.gstate("g"), GroupState::Offline);
}

#[test]
fn three_independent_resources_start_in_one_step() {
    let mut sim = Sim::with_group(&["a", "b", "c"]);
    let c = sim.ok(Event::OnlineGroup { name: "g".into() });
    assert_eq!(names(&sim, calls_of(&c, Op::Online)), ["a", "b", "c"]);
    for call in c.iter().filter(|c| matches!(c, Command::Call { .. })) {
        let Command::Call { deadline_ms, .. } = call else {
            unreachable!()
        };
        assert_eq!(*deadline_ms, 180_000, "Online carries PendingTimeout");
    }
}

#[test]
fn online_resource_brings_its_providers_and_offline_takes_its_dependents() {
    let mut sim = file_server();
    let c = sim.ok(Event::OnlineResource {
        name: "name".into(),
    });
    assert_eq!(names(&sim, calls_of(&c, Op::Online)), ["ip"]);
    sim.settle();
    assert_eq!(sim.state("name"), ResourceState::Online);
    assert_eq!(
        sim.state("disk"),
        ResourceState::Offline,
        "not a provider of name"
    );
    assert_eq!(sim.gstate("g"), GroupState::PartialOnline);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let c = sim.ok(Event::OfflineResource { name: "ip".into() });
    assert_eq!(names(&sim, calls_of(&c, Op::Offline)), ["share"]);
    sim.settle();
    assert_eq!(sim.state("ip"), ResourceState::Offline);
    assert_eq!(sim.state("name"), ResourceState::Offline);
    assert_eq!(sim.state("share"), ResourceState::Offline);
    assert_eq!(sim.state("disk"), ResourceState::Online);
}

#[test]
fn cycles_self_and_cross_group_dependencies_are_refused_and_change_nothing() {
    let mut sim = Sim::with_group(&["a", "b", "c"]);
    sim.dep("a", "b");
    sim.dep("b", "c");
    let before = sim.engine.resources();
    let e = sim
        .send(Event::AddDependency {
            resource: "c".into(),
            provider: "a".into(),
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "making 'c' depend on 'a' would create a dependency cycle: c -> a -> b -> c"
    );
    let e = sim
        .send(Event::AddDependency {
            resource: "a".into(),
            provider: "a".into(),
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "resource 'a' cannot depend on itself");
    sim.group("other");
    sim.resource("x", "other", ResourceProperties::default());
    sim.settle();
    let before_x = sim.engine.resources();
    let e = sim
        .send(Event::AddDependency {
            resource: "x".into(),
            provider: "a".into(),
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource 'x' (group 'other') cannot depend on 'a' (group 'g'): dependencies must stay within one group"
    );
    assert_eq!(sim.engine.resources(), before_x);
    assert_eq!(before, before_x[..3]);
    let e = sim
        .send(Event::CreateResource(spec(
            "y",
            "other",
            ResourceProperties::default(),
            &["a"],
        )))
        .unwrap_err();
    assert!(matches!(e, EngineError::CrossGroup { .. }));
    assert!(
        sim.engine.resource("y").is_none(),
        "refused creation leaves nothing behind"
    );
    let e = sim
        .send(Event::AddDependency {
            resource: "a".into(),
            provider: "nope".into(),
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "unknown resource 'nope'");
}

#[test]
fn dependency_on_a_down_provider_is_refused_while_online() {
    let mut sim = Sim::with_group(&["a", "b"]);
    sim.ok(Event::OnlineResource { name: "a".into() });
    sim.settle();
    let e = sim
        .send(Event::AddDependency {
            resource: "a".into(),
            provider: "b".into(),
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot make 'a' depend on 'b' now: 'a' is Online and 'b' is Offline"
    );
    sim.ok(Event::OnlineResource { name: "b".into() });
    sim.settle();
    sim.dep("a", "b");
    sim.ok(Event::RemoveDependency {
        resource: "a".into(),
        provider: "b".into(),
    });
    let e = sim
        .send(Event::RemoveDependency {
            resource: "a".into(),
            provider: "b".into(),
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "resource 'a' does not depend on 'b'");
}

#[test]
fn a_failing_provider_takes_dependents_down_at_once_and_they_return_after_its_restart() {
    let mut sim = file_server();
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let c = sim.ok(Event::FailResource { name: "ip".into() });
    assert_eq!(sim.state("ip"), ResourceState::Failed);
    assert_eq!(sim.state("name"), ResourceState::OfflinePending);
    assert_eq!(
        sim.state("share"),
        ResourceState::OfflinePending,
        "transitive dependent leaves Online too"
    );
    // Dependents' Offline calls go out before their providers'.
    assert_eq!(names(&sim, calls_of(&c, Op::Offline)), ["share", "name"]);
    assert_eq!(sim.state("disk"), ResourceState::Online);
    sim.settle();
    sim.run(500);
    for r in ["ip", "name", "share", "disk"] {
        assert_eq!(sim.state(r), ResourceState::Online, "{r}");
    }
}

#[test]
fn a_dependent_finishing_online_after_its_provider_failed_goes_offline_again() {
    let mut sim = Sim::with_group(&["a", "b"]);
    sim.dep("b", "a");
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.reply("a", Op::Online, true);
    assert_eq!(sim.state("b"), ResourceState::OnlinePending);
    sim.ok(Event::FailResource { name: "a".into() });
    let c = sim.reply("b", Op::Online, true);
    assert_eq!(sim.state("b"), ResourceState::OfflinePending);
    assert_eq!(names(&sim, calls_of(&c, Op::Offline)), ["b"]);
}
