//! What the kind of a failure changes, on the fake clock: MISCONFIGURED goes Failed at once and is
//! never restarted; NOT_INSTALLED is not retried here (single node: Failed; in a cluster: the group
//! asks to fail over at once, before any restart); NOT_RUNNING from a health check is logged as "not
//! running" and restarted; a plugin's own failure report is a failed IsAlive at once (and ignored
//! when the resource is not Online); and every failure is kept as its op's last error with its time.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::{LogLevel, Op, ResourceProperties, StatusKind};

/// Answers the outstanding `op` of `name` with `status` and `message`.
fn answer_with(
    sim: &mut Sim,
    name: &str,
    op: Op,
    status: StatusKind,
    message: &str,
) -> Vec<Command> {
    let id = sim.id(name);
    let i = sim
        .calls
        .iter()
        .position(|c| c.0 == id && c.2 == op)
        .unwrap_or_else(|| panic!("no outstanding {op} for {name}: {:?}", sim.calls));
    sim.calls.remove(i);
    sim.ok(Event::CallDone {
        resource: id,
        op,
        status,
        message: message.into(),
    })
}

fn online_one() -> Sim {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online);
    sim
}

fn has_log(cmds: &[Command], level: LogLevel, text: &str) -> bool {
    logs(cmds)
        .iter()
        .any(|(l, m)| *l == level && m.contains(text))
}

fn reports(cmds: &[Command]) -> Vec<PlacementReport> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Placement(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn last_error(sim: &Sim, name: &str, op: Op) -> Option<LastError> {
    sim.engine.resource(name)?.last_errors.get(&op).cloned()
}

#[test]
fn a_misconfigured_online_is_failed_at_once_and_never_restarted() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    let at = sim.now;
    let cmds = answer_with(
        &mut sim,
        "a",
        Op::Online,
        StatusKind::Misconfigured,
        "port=0",
    );
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert!(event_ids(&cmds).contains(&1069), "{cmds:?}");
    assert!(
        has_log(
            &cmds,
            LogLevel::Err,
            "Online of resource 'a' failed (misconfigured): port=0"
        ),
        "{:?}",
        logs(&cmds)
    );
    assert!(has_log(
        &cmds,
        LogLevel::Warn,
        "is misconfigured: it stays Failed"
    ));
    assert!(
        timers(&cmds).is_empty(),
        "no restart, no retry: {:?}",
        timers(&cmds)
    );
    let later = sim.run(24 * 3_600_000);
    assert!(calls_of(&later, Op::Online).is_empty(), "never restarted");
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert_eq!(
        last_error(&sim, "a", Op::Online),
        Some(LastError {
            status: StatusKind::Misconfigured,
            message: "port=0".into(),
            at_ms: at,
        })
    );
    // An administrator's online tries it again.
    let cmds = sim.ok(Event::OnlineResource { name: "a".into() });
    assert_eq!(calls_of(&cmds, Op::Online).len(), 1);
}

#[test]
fn a_generic_online_failure_still_restarts() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    let cmds = answer_with(&mut sim, "a", Op::Online, StatusKind::Error, "boom");
    assert!(has_log(
        &cmds,
        LogLevel::Err,
        "Online of resource 'a' failed: boom"
    ));
    assert!(has_log(
        &cmds,
        LogLevel::Info,
        "will be restarted in 500 ms"
    ));
}

#[test]
fn not_installed_on_a_single_node_stays_failed_and_is_not_retried() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    let cmds = answer_with(
        &mut sim,
        "a",
        Op::Online,
        StatusKind::NotInstalled,
        "no /usr/sbin/httpd",
    );
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert!(has_log(
        &cmds,
        LogLevel::Warn,
        "is not installed on this node"
    ));
    assert!(timers(&cmds).is_empty(), "{:?}", timers(&cmds));
    let later = sim.run(24 * 3_600_000);
    assert!(calls_of(&later, Op::Online).is_empty(), "not retried here");
    assert_eq!(
        last_error(&sim, "a", Op::Online).map(|e| e.status),
        Some(StatusKind::NotInstalled)
    );
}

/// A node `a` of a cluster owning group g with resource r0, Online.
fn cluster_node() -> Sim {
    let g = GroupRecord {
        name: "g".into(),
        want_online: true,
        owner: "a".into(),
        ..Default::default()
    };
    let r = ResourceRecord {
        name: "r0".into(),
        type_name: "Dummy".into(),
        plugin: "dummy".into(),
        group: "g".into(),
        want_online: true,
        ..Default::default()
    };
    let mut sim = Sim::new();
    let (engine, cmds) = Engine::restore_on("a", sim.now, &[g], &[r]).unwrap();
    sim.engine = engine;
    sim.absorb(&cmds);
    sim.settle();
    assert_eq!(sim.state("r0"), ResourceState::Online);
    sim
}

#[test]
fn not_installed_in_a_cluster_fails_the_group_over_at_once_without_a_restart() {
    let mut sim = cluster_node();
    let id = sim.id("r0");
    let cmds = sim.ok(Event::HealthFailed {
        resource: id,
        op: Op::IsAlive,
        status: StatusKind::NotInstalled,
        message: "the binary is gone".into(),
    });
    assert_eq!(
        reports(&cmds),
        [PlacementReport::GroupFailed {
            group: "g".into(),
            node: "a".into(),
            resource: "r0".into(),
        }],
        "asks to fail over at once, though the default policy has a restart left"
    );
    assert!(has_log(
        &cmds,
        LogLevel::Warn,
        "is not installed on node 'a'"
    ));
    assert_eq!(sim.gstate("g"), GroupState::Failed);
    assert!(
        !timers(&cmds)
            .iter()
            .any(|(_, k)| matches!(k, TimerKind::GroupRetry(_) | TimerKind::Restart(_))),
        "neither restarted nor retried here: {:?}",
        timers(&cmds)
    );
}

#[test]
fn not_running_from_is_alive_is_logged_as_such_and_restarted() {
    let mut sim = online_one();
    let id = sim.id("a");
    let cmds = sim.ok(Event::HealthFailed {
        resource: id,
        op: Op::IsAlive,
        status: StatusKind::NotRunning,
        message: "pid file gone".into(),
    });
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert!(
        has_log(
            &cmds,
            LogLevel::Warn,
            "IsAlive found resource 'a' not running: pid file gone"
        ),
        "{:?}",
        logs(&cmds)
    );
    assert!(
        !logs(&cmds)
            .iter()
            .any(|(_, m)| m.contains("IsAlive failed")),
        "not logged as an error: {:?}",
        logs(&cmds)
    );
    assert!(has_log(
        &cmds,
        LogLevel::Err,
        "Resource 'a' failed: not running: pid file gone."
    ));
    assert!(event_ids(&cmds).contains(&1069));
    sim.run(500);
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online, "restarted");
    assert_eq!(
        last_error(&sim, "a", Op::IsAlive).map(|e| e.status),
        Some(StatusKind::NotRunning)
    );
}

#[test]
fn a_failure_report_is_a_failed_is_alive_at_once_and_ignored_when_not_online() {
    let mut sim = online_one();
    let id = sim.id("a");
    let at = sim.now;
    let cmds = sim.ok(Event::FailureReported {
        resource: id,
        message: "child exited".into(),
    });
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert!(
        has_log(
            &cmds,
            LogLevel::Err,
            "IsAlive failed for resource 'a': reported by the plugin: child exited"
        ),
        "{:?}",
        logs(&cmds)
    );
    assert!(event_ids(&cmds).contains(&1069));
    assert!(has_log(
        &cmds,
        LogLevel::Info,
        "will be restarted in 500 ms"
    ));
    assert_eq!(
        last_error(&sim, "a", Op::IsAlive),
        Some(LastError {
            status: StatusKind::Reported,
            message: "reported by the plugin: child exited".into(),
            at_ms: at,
        })
    );
    // A second report while it is Failed (restart pending) changes nothing.
    let cmds = sim.ok(Event::FailureReported {
        resource: id,
        message: "again".into(),
    });
    assert!(has_log(
        &cmds,
        LogLevel::Info,
        "Failure report for resource 'a' ignored: it is Failed"
    ));
    assert!(event_ids(&cmds).is_empty() && timers(&cmds).is_empty());
    sim.run(500);
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online);
}

#[test]
fn timeouts_and_open_failures_are_kept_as_last_errors_per_op() {
    let mut sim = Sim::new();
    sim.group("g");
    sim.resource("a", "g", ResourceProperties::default());
    sim.set("a", "PendingTimeout", "1000");
    let cmds = answer_with(&mut sim, "a", Op::Open, StatusKind::Invalid, "bad json");
    assert!(has_log(
        &cmds,
        LogLevel::Err,
        "Open of resource 'a' failed: bad json"
    ));
    sim.advance(10);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    answer_with(&mut sim, "a", Op::Open, StatusKind::Ok, "");
    sim.advance(1_000);
    let e = sim.engine.resource("a").unwrap().last_errors;
    assert_eq!(e[&Op::Open].status, StatusKind::Invalid);
    assert_eq!(e[&Op::Online].status, StatusKind::Timeout);
    assert_eq!(e[&Op::Online].message, "ONLINE timed out after 1000 ms");
    assert!(e[&Op::Online].at_ms > e[&Op::Open].at_ms);
    assert!(!e.contains_key(&Op::IsAlive));
}
