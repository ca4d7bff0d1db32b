//! Restart policy: default (first failure restarts after RestartDelay, second within RestartPeriod
//! fails the group: Failed + 1205 + retry after RetryPeriodOnFailure), Restart (resource stays Failed,
//! group stays put, post [8]), NoRestart, thresholds, periods and administrator overrides; a
//! failed Offline that nobody asked for (the resource still wants online) is retried.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::{Op, ResourceProperties, RestartAction};

/// Group g: disk <- app, plus an independent `spooler` with the given policy; all Online.
fn online_group(spooler: ResourceProperties) -> Sim {
    let mut sim = Sim::new();
    sim.group("g");
    sim.resource("disk", "g", ResourceProperties::default());
    sim.resource("app", "g", ResourceProperties::default());
    sim.resource("spooler", "g", spooler);
    sim.dep("app", "disk");
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    assert_eq!(sim.gstate("g"), GroupState::Online);
    sim
}

#[test]
fn default_policy_first_failure_restarts_after_restart_delay() {
    let mut sim = online_group(ResourceProperties::default());
    let c = sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    assert_eq!(sim.state("spooler"), ResourceState::Failed);
    assert_eq!(event_ids(&c), [1069]);
    assert!(timers(&c).contains(&(sim.now + 500, TimerKind::Restart(sim.id("spooler")))));
    assert_eq!(sim.gstate("g"), GroupState::PartialOnline);
    sim.advance(499);
    assert_eq!(sim.state("spooler"), ResourceState::Failed);
    let c = sim.advance(1);
    assert_eq!(calls_of(&c, Op::Online), [sim.id("spooler")]);
    sim.settle();
    assert_eq!(sim.state("spooler"), ResourceState::Online);
    assert_eq!(sim.gstate("g"), GroupState::Online);
}

#[test]
fn default_policy_second_failure_within_restart_period_fails_the_group_and_retries_it() {
    let mut sim = online_group(ResourceProperties::default());
    sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    sim.run(10_000);
    assert_eq!(sim.state("spooler"), ResourceState::Online);
    let c = sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    assert_eq!(event_ids(&c), [1069, 1205]);
    let e1205 = &events(&c)[1];
    assert_eq!(e1205.group.as_deref(), Some("g"));
    assert!(
        e1205.message.contains("'g' completely online or offline"),
        "{}",
        e1205.message
    );
    assert_eq!(sim.gstate("g"), GroupState::Failed);
    let gid = sim.engine.group("g").unwrap().id;
    assert!(timers(&c).contains(&(sim.now + 3_600_000, TimerKind::GroupRetry(gid))));
    // The rest of the group goes offline, dependents first.
    assert_eq!(calls_of(&c, Op::Offline), [sim.id("app")]);
    sim.settle();
    assert_eq!(sim.state("disk"), ResourceState::Offline);
    assert_eq!(sim.state("app"), ResourceState::Offline);
    assert_eq!(sim.state("spooler"), ResourceState::Failed);
    assert_eq!(sim.gstate("g"), GroupState::Failed);
    // Nothing restarts during the retry period (no restart of spooler after 500 ms).
    let c = sim.run(3_599_990);
    assert!(calls_of(&c, Op::Online).is_empty());
    assert_eq!(sim.gstate("g"), GroupState::Failed);
    let c = sim.run(10);
    assert!(logs(&c)
        .iter()
        .any(|(_, m)| m.contains("Retrying failed group 'g'")));
    assert_eq!(sim.gstate("g"), GroupState::Online);
    // The retry forgot the restart history: the next failure restarts again.
    sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    sim.run(500);
    assert_eq!(sim.state("spooler"), ResourceState::Online);
}

#[test]
fn a_failure_after_the_restart_period_restarts_again() {
    let mut sim = online_group(ResourceProperties::default());
    sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    sim.run(900_000);
    let c = sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    assert_eq!(
        event_ids(&c),
        [1069],
        "no 1205: the first restart is older than RestartPeriod"
    );
    sim.run(500);
    assert_eq!(sim.gstate("g"), GroupState::Online);
}

#[test]
fn restart_action_restart_keeps_the_group_in_place_post_8() {
    let props = ResourceProperties {
        restart_action: RestartAction::Restart,
        ..Default::default()
    };
    let mut sim = online_group(props);
    // "After a single successful restart of the resource, execute another simulated failure and the
    // resource will go into a Failed state but will not force a failover of the group."
    sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    sim.run(500);
    assert_eq!(sim.state("spooler"), ResourceState::Online);
    let c = sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    assert_eq!(event_ids(&c), [1069], "no group failure");
    assert!(calls_of(&c, Op::Offline).is_empty(), "nothing else moves");
    assert_eq!(sim.state("spooler"), ResourceState::Failed);
    assert_eq!(sim.state("disk"), ResourceState::Online);
    assert_eq!(sim.state("app"), ResourceState::Online);
    assert_eq!(sim.gstate("g"), GroupState::PartialOnline);
    assert!(timers(&c).contains(&(sim.now + 3_600_000, TimerKind::Retry(sim.id("spooler")))));
    sim.run(3_599_999);
    assert_eq!(sim.state("spooler"), ResourceState::Failed);
    sim.run(1);
    assert_eq!(
        sim.state("spooler"),
        ResourceState::Online,
        "retried after RetryPeriodOnFailure"
    );
    assert_eq!(sim.gstate("g"), GroupState::Online);
}

#[test]
fn no_restart_leaves_the_resource_failed() {
    let props = ResourceProperties {
        restart_action: RestartAction::NoRestart,
        ..Default::default()
    };
    let mut sim = online_group(props);
    let c = sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    assert_eq!(event_ids(&c), [1069]);
    assert!(!timers(&c)
        .iter()
        .any(|(_, k)| matches!(k, TimerKind::Restart(_) | TimerKind::Retry(_))));
    sim.run(10_000_000);
    assert_eq!(sim.state("spooler"), ResourceState::Failed);
    assert_eq!(sim.gstate("g"), GroupState::PartialOnline);
    // An administrator's online brings it back.
    sim.ok(Event::OnlineResource {
        name: "spooler".into(),
    });
    sim.settle();
    assert_eq!(sim.state("spooler"), ResourceState::Online);
}

#[test]
fn restart_threshold_counts_restarts_within_the_period() {
    let props = ResourceProperties {
        restart_threshold: 3,
        ..Default::default()
    };
    let mut sim = online_group(props);
    for _ in 0..3 {
        let c = sim.ok(Event::FailResource {
            name: "spooler".into(),
        });
        assert_eq!(event_ids(&c), [1069]);
        sim.run(1_000);
        assert_eq!(sim.state("spooler"), ResourceState::Online);
    }
    let c = sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    assert_eq!(event_ids(&c), [1069, 1205]);
}

#[test]
fn a_failed_online_call_goes_through_the_restart_policy() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    let c = sim.reply("a", Op::Online, false);
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert_eq!(event_ids(&c), [1069]);
    sim.advance(500);
    let c = sim.reply("a", Op::Online, false);
    assert_eq!(event_ids(&c), [1069, 1205]);
    assert_eq!(sim.gstate("g"), GroupState::Failed);
}

#[test]
fn online_group_on_a_failed_group_retries_now() {
    let mut sim = online_group(ResourceProperties::default());
    sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    sim.run(1_000);
    sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    sim.settle();
    assert_eq!(sim.gstate("g"), GroupState::Failed);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    assert_eq!(sim.gstate("g"), GroupState::Online);
    // The pending group retry is now stale: nothing happens when it fires.
    let c = sim.run(4_000_000);
    assert!(calls_of(&c, Op::Offline).is_empty());
    assert_eq!(sim.gstate("g"), GroupState::Online);
}

#[test]
fn a_dependent_whose_offline_fails_while_it_should_be_online_is_retried_after_retry_period() {
    // disk fails: app goes offline with it, and its Offline fails. Not an administrator's offline
    // (app still wants online): it stays Failed, and is tried again after RetryPeriodOnFailure.
    let mut sim = online_group(ResourceProperties::default());
    sim.ok(Event::FailResource {
        name: "disk".into(),
    });
    assert_eq!(sim.state("app"), ResourceState::OfflinePending);
    let c = sim.reply("app", Op::Offline, false);
    assert_eq!(sim.state("app"), ResourceState::Failed);
    let retry = (sim.now + 3_600_000, TimerKind::Retry(sim.id("app")));
    assert!(timers(&c).contains(&retry), "{:?}", timers(&c));
    sim.run(10_000);
    assert_eq!(sim.state("disk"), ResourceState::Online);
    assert_eq!(
        sim.state("app"),
        ResourceState::Failed,
        "no restart of its own"
    );
    sim.run(3_600_000);
    assert_eq!(sim.state("app"), ResourceState::Online);
    assert_eq!(sim.gstate("g"), GroupState::Online);
}

#[test]
fn offline_group_cancels_a_pending_restart() {
    let mut sim = online_group(ResourceProperties::default());
    sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    sim.ok(Event::OfflineGroup { name: "g".into() });
    sim.settle();
    assert_eq!(sim.state("spooler"), ResourceState::Offline);
    let c = sim.run(10_000);
    assert!(calls_of(&c, Op::Online).is_empty());
    assert_eq!(sim.gstate("g"), GroupState::Offline);
}

#[test]
fn simulated_failure_needs_an_online_resource() {
    let mut sim = Sim::with_group(&["a"]);
    let e = sim
        .send(Event::FailResource { name: "a".into() })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot fail resource 'a': it is Offline, not Online"
    );
}

/// Every group state announced in `cmds`, in order.
fn announced(cmds: &[Command]) -> Vec<GroupState> {
    group_changes(cmds).into_iter().map(|(_, to)| to).collect()
}

#[test]
fn an_ordinary_restart_reads_pending_not_failed() {
    // One resource alone in its group, and a provider with a dependent: during RestartDelay neither
    // group reads Failed (nothing there is past its threshold); both read Pending until Online again.
    let mut sim = Sim::new();
    sim.group("solo");
    sim.group("pair");
    sim.resource("only", "solo", ResourceProperties::default());
    sim.resource("disk", "pair", ResourceProperties::default());
    sim.resource("app", "pair", ResourceProperties::default());
    sim.dep("app", "disk");
    sim.ok(Event::OnlineGroup {
        name: "solo".into(),
    });
    sim.ok(Event::OnlineGroup {
        name: "pair".into(),
    });
    sim.settle();
    assert_eq!(sim.gstate("solo"), GroupState::Online);
    assert_eq!(sim.gstate("pair"), GroupState::Online);

    let mut seen = announced(&sim.ok(Event::FailResource {
        name: "only".into(),
    }));
    seen.extend(announced(&sim.ok(Event::FailResource {
        name: "disk".into(),
    })));
    seen.extend(announced(&sim.settle()));
    assert_eq!(sim.state("only"), ResourceState::Failed);
    assert_eq!(sim.state("disk"), ResourceState::Failed);
    assert_eq!(sim.state("app"), ResourceState::Offline);
    assert_eq!(sim.gstate("solo"), GroupState::Pending);
    assert_eq!(sim.gstate("pair"), GroupState::Pending);
    sim.advance(499);
    assert_eq!(sim.gstate("solo"), GroupState::Pending);
    seen.extend(announced(&sim.run(1)));
    assert_eq!(sim.gstate("solo"), GroupState::Online);
    assert_eq!(sim.gstate("pair"), GroupState::Online);
    assert!(
        !seen.contains(&GroupState::Failed),
        "an ordinary restart never announces Failed: {seen:?}"
    );

    // Past the threshold the group does fail (over), and reads Failed.
    sim.ok(Event::FailResource {
        name: "only".into(),
    });
    assert_eq!(sim.gstate("solo"), GroupState::Failed);
}

#[test]
fn a_failed_resource_left_failed_still_fails_its_group() {
    // RestartAction=Restart past its threshold: Failed until RetryPeriodOnFailure, not restarting.
    let props = ResourceProperties {
        restart_action: RestartAction::Restart,
        restart_threshold: 0,
        ..Default::default()
    };
    let mut sim = Sim::new();
    sim.group("g");
    sim.resource("a", "g", props);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    sim.ok(Event::FailResource { name: "a".into() });
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert_eq!(sim.gstate("g"), GroupState::Failed);
}

#[test]
fn a_restart_delay_past_what_a_deadline_holds_is_refused_and_the_longest_one_reads_right() {
    let mut sim = online_group(ResourceProperties::default());
    let refused = sim.send(Event::SetResourceProperty {
        resource: "spooler".into(),
        name: "RestartDelay".into(),
        value: u64::MAX.to_string(),
    });
    let e = refused.expect_err("a RestartDelay that saturates every deadline");
    assert!(e.to_string().contains("expected at most 4294967295"), "{e}");
    sim.set("spooler", "RestartDelay", "4294967295");
    let c = sim.ok(Event::FailResource {
        name: "spooler".into(),
    });
    assert!(
        logs(&c)
            .iter()
            .any(|(_, m)| m == "Resource 'spooler' will be restarted in 4294967295 ms."),
        "{:?}",
        logs(&c)
    );
}
