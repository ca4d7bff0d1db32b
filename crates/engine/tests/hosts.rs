//! Host placement and host death: default host vs separate monitors, the FAILURENOTIFICATION lines,
//! events 1230 and 1146, SeparateMonitor persisted on the offender, re-hosting of offender and
//! innocents, restart policy on the offender, MonitorProcessId, and a SeparateMonitor set by hand.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::{LogLevel, Op, ResourceProperties};

fn online(names: &[&str]) -> Sim {
    let mut sim = Sim::with_group(names);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    sim
}

fn starts(cmds: &[Command]) -> Vec<(HostId, Option<keelson_types::ResourceId>)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::StartHost { host, dedicated_to } => Some((*host, *dedicated_to)),
            _ => None,
        })
        .collect()
}

fn opens(cmds: &[Command]) -> Vec<(String, HostId)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Open { name, host, .. } => Some((name.clone(), *host)),
            _ => None,
        })
        .collect()
}

#[test]
fn resources_share_the_default_host_unless_separate_monitor() {
    let mut sim = Sim::new();
    sim.group("g");
    let c = sim.resource("a", "g", ResourceProperties::default());
    assert_eq!(starts(&c), [(HostId(1), None)]);
    assert_eq!(opens(&c), [("a".to_string(), HostId(1))]);
    let c = sim.resource("b", "g", ResourceProperties::default());
    assert!(starts(&c).is_empty(), "b joins the default host");
    assert_eq!(opens(&c), [("b".to_string(), HostId(1))]);
    let props = ResourceProperties {
        separate_monitor: true,
        ..Default::default()
    };
    let c = sim.resource("c", "g", props);
    assert_eq!(starts(&c), [(HostId(2), Some(sim.id("c")))]);
    sim.settle();
    let (a, c) = (
        sim.engine.resource("a").unwrap(),
        sim.engine.resource("c").unwrap(),
    );
    assert!(a.monitor_process_id.is_some() && c.monitor_process_id.is_some());
    assert_ne!(a.monitor_process_id, c.monitor_process_id);
    assert_eq!(sim.engine.hosts().len(), 2);
}

#[test]
fn host_death_blames_the_offender_and_rehosts_everyone() {
    let mut sim = online(&["a", "b", "c"]);
    let old = sim.host_of("b");
    let old_pid = sim.engine.resource("b").unwrap().monitor_process_id;
    let c = sim.kill_host(old, Some(("b", Op::LooksAlive)), "deadlock in LOOKSALIVE");
    let l = logs(&c);
    assert!(l.contains(&(
        LogLevel::Info,
        "HandleMonitorReply: FAILURENOTIFICATION for 'b', gen(0) result 4.".into()
    )));
    assert!(l.contains(&(
        LogLevel::Warn,
        "Resource 'b' (resource type 'Dummy', plugin 'dummy') has crashed or deadlocked; marking it to run in a \
         separate monitor."
            .into()
    )));
    let ev = events(&c);
    let e1230 = ev.iter().find(|e| e.id == 1230).expect("1230");
    assert!(e1230.message.starts_with("Cluster resource 'b' (resource type 'Dummy', plugin 'dummy') either crashed or deadlocked."));
    assert_eq!(e1230.resource.as_deref(), Some("b"));
    let e1146 = ev.iter().find(|e| e.id == 1146).expect("1146");
    assert_eq!(e1146.level, EventLevel::Critical);
    assert!(e1146
        .message
        .starts_with("The cluster resource host subsystem (RHS) stopped unexpectedly."));
    assert!(ev
        .iter()
        .any(|e| e.id == 1069 && e.resource.as_deref() == Some("b")));
    // SeparateMonitor=true, persisted.
    let saved = persists(&c).into_iter().find_map(|p| match p {
        PersistChange::PutResource(r) if r.name == "b" => Some(r),
        _ => None,
    });
    assert_eq!(
        saved
            .expect("b persisted")
            .properties
            .get("SeparateMonitor")
            .map(String::as_str),
        Some("true")
    );
    assert!(
        sim.engine
            .resource("b")
            .unwrap()
            .properties
            .separate_monitor
    );
    // Re-hosting: innocents in a fresh default host, the offender in its own.
    let s = starts(&c);
    assert_eq!(s.len(), 2, "{s:?}");
    let fresh_default = s.iter().find(|(_, d)| d.is_none()).unwrap().0;
    let own = s.iter().find(|(_, d)| *d == Some(sim.id("b"))).unwrap().0;
    assert_ne!(fresh_default, old);
    let o = opens(&c);
    assert!(
        o.contains(&("a".to_string(), fresh_default))
            && o.contains(&("c".to_string(), fresh_default))
    );
    assert!(o.contains(&("b".to_string(), own)));
    // Innocents that were Online come back at once; the offender is Failed and restarts per policy.
    assert_eq!(calls_of(&c, Op::Online), [sim.id("a"), sim.id("c")]);
    assert_eq!(sim.state("b"), ResourceState::Failed);
    assert!(timers(&c).contains(&(sim.now + 500, TimerKind::Restart(sim.id("b")))));
    sim.run(500);
    for r in ["a", "b", "c"] {
        assert_eq!(sim.state(r), ResourceState::Online, "{r}");
    }
    assert_eq!(sim.host_of("b"), own);
    assert_eq!(sim.host_of("a"), fresh_default);
    let b = sim.engine.resource("b").unwrap();
    assert_ne!(b.monitor_process_id, old_pid);
    assert_ne!(
        b.monitor_process_id,
        sim.engine.resource("a").unwrap().monitor_process_id
    );
    assert_eq!(b.gen, 1);
}

#[test]
fn a_second_crash_reports_the_next_generation_and_fails_the_group_by_default() {
    let mut sim = online(&["a", "b"]);
    sim.kill_host(sim.host_of("b"), Some(("b", Op::IsAlive)), "crash");
    sim.run(1_000);
    let c = sim.kill_host(sim.host_of("b"), Some(("b", Op::IsAlive)), "crash again");
    assert!(logs(&c)
        .iter()
        .any(|(_, m)| m == "HandleMonitorReply: FAILURENOTIFICATION for 'b', gen(1) result 4."));
    assert!(
        event_ids(&c).contains(&1205),
        "second failure within RestartPeriod fails the group"
    );
    assert!(
        calls_of(&c, Op::Online).is_empty(),
        "a lives in another host and is unaffected by the death…"
    );
    assert_eq!(
        calls_of(&c, Op::Offline),
        [sim.id("a")],
        "…but the failed group takes it offline"
    );
    assert_eq!(sim.gstate("g"), GroupState::Failed);
    let own = persists(&c)
        .iter()
        .any(|p| matches!(p, PersistChange::PutResource(r) if r.name == "b"));
    assert!(
        !own,
        "SeparateMonitor was already true: nothing new to persist"
    );
}

#[test]
fn innocents_come_back_in_dependency_order() {
    let mut sim = Sim::with_group(&["ip", "name", "bad"]);
    sim.dep("name", "ip");
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let c = sim.kill_host(sim.host_of("bad"), Some(("bad", Op::IsAlive)), "SIGSEGV");
    assert_eq!(calls_of(&c, Op::Online), [sim.id("ip")]);
    assert_eq!(sim.state("name"), ResourceState::Offline);
    let c = sim.reply("ip", Op::Open, true);
    assert!(calls_of(&c, Op::Online).is_empty());
    let c = sim.reply("ip", Op::Online, true);
    assert_eq!(calls_of(&c, Op::Online), [sim.id("name")]);
}

#[test]
fn innocents_that_were_offline_are_reopened_but_stay_offline() {
    let mut sim = Sim::with_group(&["a", "b"]);
    sim.ok(Event::OnlineResource { name: "b".into() });
    sim.settle();
    let c = sim.kill_host(sim.host_of("b"), Some(("b", Op::Online)), "crash");
    assert!(opens(&c).iter().any(|(n, _)| n == "a"));
    assert!(calls_of(&c, Op::Online).is_empty());
    assert_eq!(sim.state("a"), ResourceState::Offline);
}

#[test]
fn a_dependent_in_another_host_follows_its_rehosted_provider() {
    let mut sim = Sim::new();
    sim.group("g");
    sim.resource("a", "g", ResourceProperties::default());
    sim.resource("bad", "g", ResourceProperties::default());
    let sep = ResourceProperties {
        separate_monitor: true,
        ..Default::default()
    };
    sim.resource("x", "g", sep);
    sim.dep("x", "a");
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    let c = sim.kill_host(sim.host_of("a"), Some(("bad", Op::LooksAlive)), "deadlock");
    assert_eq!(
        calls_of(&c, Op::Offline),
        [sim.id("x")],
        "x may not stay Online above a provider that is not"
    );
    sim.run(1_000);
    for r in ["a", "bad", "x"] {
        assert_eq!(sim.state(r), ResourceState::Online, "{r}");
    }
}

#[test]
fn an_unattributed_host_death_fails_its_members_without_blame() {
    let mut sim = online(&["a", "b"]);
    let c = sim.kill_host(sim.host_of("a"), None, "killed by SIGKILL");
    assert_eq!(event_ids(&c), [1146, 1069, 1069]);
    assert!(!logs(&c)
        .iter()
        .any(|(_, m)| m.contains("FAILURENOTIFICATION")));
    assert!(
        !sim.engine
            .resource("a")
            .unwrap()
            .properties
            .separate_monitor
    );
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert_eq!(starts(&c).len(), 1, "one fresh default host");
    sim.run(500);
    assert_eq!(sim.gstate("g"), GroupState::Online);
}

#[test]
fn a_host_death_naming_a_resource_from_elsewhere_blames_nobody() {
    let mut sim = Sim::new();
    sim.group("g");
    sim.resource("a", "g", ResourceProperties::default());
    sim.resource(
        "s",
        "g",
        ResourceProperties {
            separate_monitor: true,
            ..Default::default()
        },
    );
    sim.settle();
    let c = sim.kill_host(
        sim.host_of("s"),
        Some(("a", Op::IsAlive)),
        "confused report",
    );
    assert!(!event_ids(&c).contains(&1230));
}

#[test]
fn stale_host_reports_are_ignored() {
    let mut sim = online(&["a"]);
    let host = sim.host_of("a");
    sim.kill_host(host, Some(("a", Op::IsAlive)), "crash");
    let c = sim.ok(Event::HostDied {
        host,
        offender: None,
        offending_plugin: None,
        cause: "again".into(),
    });
    assert!(c.is_empty());
    let c = sim.ok(Event::HostDied {
        host: HostId(99),
        offender: None,
        offending_plugin: None,
        cause: "who".into(),
    });
    assert!(c.is_empty());
    let c = sim.ok(Event::HostStarted {
        host: HostId(99),
        pid: 1,
    });
    assert!(c.is_empty());
}

#[test]
fn separate_monitor_set_by_hand_moves_the_resource_at_its_next_online() {
    let mut sim = online(&["a", "b"]);
    let default = sim.host_of("a");
    let c = sim.ok(Event::SetResourceProperty {
        resource: "a".into(),
        name: "SeparateMonitor".into(),
        value: "true".into(),
    });
    assert!(
        starts(&c).is_empty() && opens(&c).is_empty(),
        "no move while Online"
    );
    assert_eq!(sim.host_of("a"), default);
    sim.ok(Event::OfflineResource { name: "a".into() });
    sim.settle();
    assert_eq!(sim.host_of("a"), default, "no move while going offline");
    let c = sim.ok(Event::OnlineResource { name: "a".into() });
    assert!(c.contains(&Command::Close {
        resource: sim.id("a"),
        host: default,
        deadline_ms: 300_000
    }));
    let s = starts(&c);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].1, Some(sim.id("a")));
    assert_eq!(opens(&c), [("a".to_string(), s[0].0)]);
    let online_at = c
        .iter()
        .position(|c| matches!(c, Command::Call { op: Op::Online, .. }))
        .unwrap();
    let open_at = c
        .iter()
        .position(|c| matches!(c, Command::Open { .. }))
        .unwrap();
    assert!(open_at < online_at);
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online);
    assert_eq!(sim.host_of("b"), default);
}

#[test]
fn deleting_the_only_resource_of_a_separate_monitor_stops_it() {
    let mut sim = Sim::new();
    sim.group("g");
    sim.resource(
        "s",
        "g",
        ResourceProperties {
            separate_monitor: true,
            ..Default::default()
        },
    );
    sim.settle();
    let (host, id) = (sim.host_of("s"), sim.id("s"));
    let c = sim.ok(Event::DeleteResource { name: "s".into() });
    assert!(c.contains(&Command::Close {
        resource: id,
        host,
        deadline_ms: 300_000
    }));
    assert!(c.contains(&Command::StopHost { host }));
    assert!(sim.engine.hosts().is_empty());
}

#[test]
fn a_failed_open_is_reopened_at_the_next_online() {
    let mut sim = Sim::new();
    sim.group("g");
    sim.resource("a", "g", ResourceProperties::default());
    sim.reply("a", Op::Open, false);
    assert_eq!(sim.engine.resource("a").unwrap().host, None);
    let c = sim.ok(Event::OnlineResource { name: "a".into() });
    assert_eq!(opens(&c).len(), 1);
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online);
}

/// A group "g" Online with "a" and "c" from plugin chaos and "b" from plugin dummy, one host.
fn online_with_chaos() -> Sim {
    let mut sim = Sim::new();
    sim.group("g");
    for (name, plugin) in [("a", "chaos"), ("b", "dummy"), ("c", "chaos")] {
        let mut spec = spec(name, "g", ResourceProperties::default(), &[]);
        spec.plugin = plugin.into();
        sim.ok(Event::CreateResource(spec));
    }
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    sim
}

#[test]
fn a_crash_on_a_plugins_own_thread_blames_each_of_its_resources_in_that_host() {
    let mut sim = online_with_chaos();
    let old = sim.host_of("a");
    assert_eq!(sim.host_of("b"), old);
    let c = sim.kill_host_in_plugin(old, "chaos", "SIGSEGV in plugin 'chaos''s code");
    let l = logs(&c);
    assert!(
        l.contains(&(
            LogLevel::Warn,
            "Plugin 'chaos' crashed on a thread of its own; blaming each of its resources there: 'a', 'c'."
                .into()
        )),
        "{l:?}"
    );
    for name in ["a", "c"] {
        let notification =
            format!("HandleMonitorReply: FAILURENOTIFICATION for '{name}', gen(0) result 4.");
        assert!(l.contains(&(LogLevel::Info, notification)), "{name}: {l:?}");
    }
    let ev = events(&c);
    let blamed: Vec<_> = ev
        .iter()
        .filter(|e| e.id == 1230)
        .map(|e| e.resource.clone().unwrap())
        .collect();
    assert_eq!(blamed, ["a", "c"], "one 1230 per resource of the plugin");
    assert_eq!(
        ev.iter().filter(|e| e.id == 1146).count(),
        1,
        "one host died"
    );
    let saved: Vec<String> = persists(&c)
        .into_iter()
        .filter_map(|p| match p {
            PersistChange::PutResource(r)
                if r.properties.get("SeparateMonitor").map(String::as_str) == Some("true") =>
            {
                Some(r.name)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        saved,
        ["a", "c"],
        "SeparateMonitor persisted for each offender only"
    );

    // Each offender in a host of its own, the innocent in a fresh default host and Online at once.
    let s = starts(&c);
    assert_eq!(s.len(), 3, "{s:?}");
    let fresh_default = s.iter().find(|(_, d)| d.is_none()).unwrap().0;
    let own_a = s.iter().find(|(_, d)| *d == Some(sim.id("a"))).unwrap().0;
    let own_c = s.iter().find(|(_, d)| *d == Some(sim.id("c"))).unwrap().0;
    assert!(own_a != own_c && own_a != fresh_default && fresh_default != old);
    assert_eq!(calls_of(&c, Op::Online), [sim.id("b")]);
    assert_eq!(sim.state("a"), ResourceState::Failed);
    assert_eq!(sim.state("c"), ResourceState::Failed);
    sim.run(500);
    for r in ["a", "b", "c"] {
        assert_eq!(sim.state(r), ResourceState::Online, "{r}");
    }
    assert_eq!(sim.host_of("a"), own_a);
    assert_eq!(sim.host_of("c"), own_c);
    assert_eq!(sim.host_of("b"), fresh_default);
}

#[test]
fn a_call_offender_takes_precedence_and_an_absent_plugin_blames_nobody() {
    let mut sim = online_with_chaos();
    let old = sim.host_of("a");
    let c = sim.ok(Event::HostDied {
        host: old,
        offender: Some((sim.id("c"), Op::IsAlive)),
        offending_plugin: Some("chaos".into()),
        cause: "crash in ISALIVE".into(),
    });
    sim.live_hosts.remove(&old);
    sim.calls.retain(|call| call.1 != old);
    let blamed: Vec<_> = events(&c)
        .into_iter()
        .filter(|e| e.id == 1230)
        .map(|e| e.resource)
        .collect();
    assert_eq!(blamed, [Some("c".to_string())], "the call's resource only");
    sim.run(500);

    // A plugin with no resource in the dead host: nobody is blamed, the Online ones just failed.
    let host = sim.host_of("c"); // c's own host: no dummy resource in it
    let b_host = sim.host_of("b");
    let c = sim.kill_host_in_plugin(host, "dummy", "crash");
    assert!(logs(&c).contains(&(
        LogLevel::Warn,
        "Plugin 'dummy' crashed on a thread of its own; none of its resources was in that host; nobody is blamed."
            .into()
    )));
    assert!(!event_ids(&c).contains(&1230));
    assert!(events(&c)
        .iter()
        .any(|e| e.id == 1069 && e.resource.as_deref() == Some("c")));
    assert_eq!(sim.host_of("b"), b_host, "b's host lives on");
}
