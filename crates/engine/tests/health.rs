//! Health polling (LooksAlive / IsAlive intervals and deadlines, LooksAlive failure → IsAlive at once,
//! IsAlive failure → Failed + 1069) and PendingTimeout → Terminate + Failed.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::{HealthPlan, Op, ResourceProperties};

fn online_one() -> Sim {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online);
    sim
}

#[test]
fn coming_online_schedules_looks_alive_and_is_alive_at_their_intervals() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    let t0 = sim.now;
    let c = sim.reply("a", Op::Online, true);
    let id = sim.id("a");
    // The engine hands the host its plan; the host's schedule (the same policy, here on the fake
    // clock) has the first checks one interval after Online.
    assert!(
        c.contains(&Command::Poll {
            resource: id,
            host: sim.host_of("a"),
            plan: Some(HealthPlan {
                looks_alive_ms: 5_000,
                is_alive_ms: 60_000,
                deadline_ms: 300_000,
            }),
        }),
        "{c:?}"
    );
    let t = [
        (sim.poll_due(id, Op::LooksAlive), Op::LooksAlive),
        (sim.poll_due(id, Op::IsAlive), Op::IsAlive),
    ];
    assert!(t.contains(&(Some(t0 + 5_000), Op::LooksAlive)), "{t:?}");
    assert!(t.contains(&(Some(t0 + 60_000), Op::IsAlive)), "{t:?}");
}

#[test]
fn looks_alive_every_5s_and_is_alive_every_60s_with_deadlock_timeout_deadlines() {
    let mut sim = online_one();
    let c = sim.advance(4_999);
    assert!(calls_of(&c, Op::LooksAlive).is_empty());
    let c = sim.advance(1);
    assert_eq!(calls_of(&c, Op::LooksAlive).len(), 1);
    assert_eq!(call_deadline(&c, Op::LooksAlive), 300_000);
    sim.settle();
    let c = sim.run(55_000);
    assert_eq!(
        calls_of(&c, Op::LooksAlive).len(),
        11,
        "one every 5 s up to t=60s"
    );
    assert_eq!(calls_of(&c, Op::IsAlive).len(), 1);
    assert_eq!(call_deadline(&c, Op::IsAlive), 300_000);
    let c = sim.run(60_000);
    assert_eq!(calls_of(&c, Op::IsAlive).len(), 1);
    assert_eq!(sim.state("a"), ResourceState::Online);
}

#[test]
fn poll_intervals_and_deadlines_follow_properties() {
    let mut sim = Sim::with_group(&["a"]);
    sim.set("a", "LooksAlivePollInterval", "1000");
    sim.set("a", "DeadlockTimeout", "7000");
    sim.set("a", "PendingTimeout", "9000");
    let c = sim.ok(Event::OnlineGroup { name: "g".into() });
    assert_eq!(call_deadline(&c, Op::Online), 9_000);
    sim.settle();
    let c = sim.run(10_000);
    assert_eq!(calls_of(&c, Op::LooksAlive).len(), 10);
    assert_eq!(call_deadline(&c, Op::LooksAlive), 7_000);
}

#[test]
fn a_failed_looks_alive_runs_is_alive_at_once() {
    let mut sim = online_one();
    sim.advance(5_000);
    let c = sim.reply("a", Op::LooksAlive, false);
    assert_eq!(
        calls_of(&c, Op::IsAlive),
        [sim.id("a")],
        "IsAlive in the same step"
    );
    assert!(logs(&c)
        .iter()
        .any(|(_, m)| m.starts_with("LooksAlive failed for resource 'a'")));
    let c = sim.reply("a", Op::IsAlive, true);
    assert_eq!(
        sim.state("a"),
        ResourceState::Online,
        "IsAlive says it is fine"
    );
    assert!(event_ids(&c).is_empty());
}

#[test]
fn a_failed_is_alive_fails_the_resource_with_event_1069() {
    let mut sim = online_one();
    sim.advance(5_000);
    sim.reply("a", Op::LooksAlive, false);
    let c = sim.reply("a", Op::IsAlive, false);
    assert_eq!(sim.state("a"), ResourceState::Failed);
    let e = events(&c);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].id, 1069);
    assert_eq!(e[0].level, EventLevel::Error);
    assert_eq!(e[0].resource.as_deref(), Some("a"));
    assert_eq!(e[0].group.as_deref(), Some("g"));
    assert_eq!(
        e[0].message,
        "Cluster resource 'a' in clustered service or application 'g' failed."
    );
    // The periodic IsAlive failing does the same.
    let mut sim = online_one();
    sim.run(59_999);
    sim.advance(1);
    let c = sim.reply("a", Op::IsAlive, false);
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert_eq!(event_ids(&c), [1069]);
}

#[test]
fn polls_stop_when_the_resource_leaves_online() {
    let mut sim = online_one();
    sim.ok(Event::OfflineGroup { name: "g".into() });
    sim.settle();
    let c = sim.advance(120_000);
    assert!(calls_of(&c, Op::LooksAlive).is_empty() && calls_of(&c, Op::IsAlive).is_empty());
    // A health result arriving after the resource went offline is ignored.
    let mut sim = online_one();
    sim.advance(5_000);
    sim.ok(Event::OfflineGroup { name: "g".into() });
    sim.reply("a", Op::Offline, true);
    let c = sim.reply("a", Op::LooksAlive, false);
    assert!(calls_of(&c, Op::IsAlive).is_empty());
    assert_eq!(sim.state("a"), ResourceState::Offline);
}

#[test]
fn online_pending_timeout_terminates_and_fails_then_restart_policy_applies() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.advance(179_999);
    assert_eq!(sim.state("a"), ResourceState::OnlinePending);
    let c = sim.advance(1);
    assert_eq!(calls_of(&c, Op::Terminate), [sim.id("a")]);
    assert_eq!(call_deadline(&c, Op::Terminate), 300_000);
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert_eq!(event_ids(&c), [1069]);
    assert!(timers(&c).contains(&(sim.now + 500, TimerKind::Restart(sim.id("a")))));
    // The hung Online finally returning is stale.
    let c = sim.reply("a", Op::Online, true);
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert!(c.is_empty(), "{c:?}");
}

#[test]
fn offline_pending_timeout_terminates_and_fails_without_restart() {
    let mut sim = online_one();
    sim.ok(Event::OfflineGroup { name: "g".into() });
    let c = sim.advance(180_000);
    assert_eq!(calls_of(&c, Op::Terminate), [sim.id("a")]);
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert!(!timers(&c)
        .iter()
        .any(|(_, k)| matches!(k, TimerKind::Restart(_) | TimerKind::GroupRetry(_))));
}

#[test]
fn separate_property_values_do_not_leak_between_resources() {
    let mut sim = Sim::new();
    sim.group("g");
    let props = ResourceProperties {
        looks_alive_poll_interval_ms: 2_000,
        ..Default::default()
    };
    sim.resource("fast", "g", props);
    sim.resource("slow", "g", ResourceProperties::default());
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let c = sim.run(10_000);
    let fast = sim.id("fast");
    let n_fast = calls_of(&c, Op::LooksAlive)
        .iter()
        .filter(|r| **r == fast)
        .count();
    assert_eq!(n_fast, 5);
    assert_eq!(calls_of(&c, Op::LooksAlive).len(), 7);
}
