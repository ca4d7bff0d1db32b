//! Property test: random sequences of administrator requests, call results (ok/fail), timer firings
//! and host deaths never break the invariants: (a) a resource is Online only if everything it depends
//! on is Online, (b) at most one host per resource, (c) state strings are always one of the listed
//! ones, (d) the engine never panics, (e) a refused administrator request changes nothing, and (f)
//! every accepted one persists exactly what its dry run said it would, and (g) a follower engine that
//! is handed only the persisted record changes (as a raft replica is) holds the same configuration.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::{GroupProperties, Op, ResourceProperties};
use proptest::prelude::*;
use std::collections::BTreeMap;

const GROUPS: [&str; 2] = ["g0", "g1"];
const RESOURCES: [&str; 6] = ["r0", "r1", "r2", "r3", "r4", "r5"];
const PROPS: [(&str, &str); 8] = [
    ("SeparateMonitor", "true"),
    ("SeparateMonitor", "false"),
    ("RestartAction", "NoRestart"),
    ("RestartAction", "Restart"),
    ("RestartThreshold", "0"),
    ("RestartThreshold", "3"),
    ("RestartDelay", "0"),
    ("PendingTimeout", "100"),
];

#[derive(Clone, Debug)]
enum Action {
    CreateGroup(usize),
    DeleteGroup(usize),
    CreateResource(usize, usize),
    DeleteResource(usize),
    AddDep(usize, usize),
    RemoveDep(usize, usize),
    SetProp(usize, usize),
    /// `resource set` with a property (maybe a bad one) and a parameter set or removed.
    SetResource(usize, usize, bool),
    OnlineResource(usize),
    OfflineResource(usize),
    OnlineGroup(usize),
    OfflineGroup(usize),
    FailResource(usize),
    Reply(usize, bool),
    FireTimer(usize),
    KillHost(usize, Option<usize>),
    /// A host dies of a crash on a thread of the plugin every resource here comes from.
    KillHostInPlugin(usize),
    Advance(u64),
    Settle,
}

fn action() -> impl Strategy<Value = Action> {
    let g = 0..GROUPS.len();
    let r = || 0..RESOURCES.len();
    prop_oneof![
        2 => g.clone().prop_map(Action::CreateGroup),
        1 => g.clone().prop_map(Action::DeleteGroup),
        4 => (r(), g.clone()).prop_map(|(r, g)| Action::CreateResource(r, g)),
        1 => r().prop_map(Action::DeleteResource),
        3 => (r(), r()).prop_map(|(a, b)| Action::AddDep(a, b)),
        1 => (r(), r()).prop_map(|(a, b)| Action::RemoveDep(a, b)),
        2 => (r(), 0..PROPS.len()).prop_map(|(r, p)| Action::SetProp(r, p)),
        2 => (r(), 0..PROPS.len() + 1, any::<bool>()).prop_map(|(r, p, set)| Action::SetResource(r, p, set)),
        3 => r().prop_map(Action::OnlineResource),
        2 => r().prop_map(Action::OfflineResource),
        3 => g.clone().prop_map(Action::OnlineGroup),
        1 => g.prop_map(Action::OfflineGroup),
        2 => r().prop_map(Action::FailResource),
        10 => (0..8usize, any::<bool>()).prop_map(|(i, ok)| Action::Reply(i, ok)),
        6 => (0..8usize).prop_map(Action::FireTimer),
        2 => (0..3usize, proptest::option::of(0..4usize)).prop_map(|(h, o)| Action::KillHost(h, o)),
        1 => (0..3usize).prop_map(Action::KillHostInPlugin),
        2 => (0..200_000u64).prop_map(Action::Advance),
        3 => Just(Action::Settle),
    ]
}

fn apply(sim: &mut Sim, a: &Action) {
    let res = |i: usize| RESOURCES[i].to_string();
    let grp = |i: usize| GROUPS[i].to_string();
    let event = match a {
        Action::CreateGroup(g) => Event::CreateGroup {
            name: grp(*g),
            properties: GroupProperties::default(),
        },
        Action::DeleteGroup(g) => Event::DeleteGroup { name: grp(*g) },
        Action::CreateResource(r, g) => {
            Event::CreateResource(spec(&res(*r), &grp(*g), ResourceProperties::default(), &[]))
        }
        Action::DeleteResource(r) => Event::DeleteResource { name: res(*r) },
        Action::AddDep(a, b) => Event::AddDependency {
            resource: res(*a),
            provider: res(*b),
        },
        Action::RemoveDep(a, b) => Event::RemoveDependency {
            resource: res(*a),
            provider: res(*b),
        },
        Action::SetProp(r, p) => Event::SetResourceProperty {
            resource: res(*r),
            name: PROPS[*p].0.into(),
            value: PROPS[*p].1.into(),
        },
        Action::SetResource(r, p, set) => Event::SetResource {
            resource: res(*r),
            properties: match PROPS.get(*p) {
                Some((name, value)) => vec![(name.to_string(), value.to_string())],
                None => vec![("DeadlockTimeout".into(), "abc".into())],
            },
            params: match set {
                true => vec![("path".into(), format!("/srv/{p}"))],
                false => vec![],
            },
            unset_params: match set {
                true => vec![],
                false => vec!["path".into()],
            },
        },
        Action::OnlineResource(r) => Event::OnlineResource { name: res(*r) },
        Action::OfflineResource(r) => Event::OfflineResource { name: res(*r) },
        Action::OnlineGroup(g) => Event::OnlineGroup { name: grp(*g) },
        Action::OfflineGroup(g) => Event::OfflineGroup { name: grp(*g) },
        Action::FailResource(r) => Event::FailResource { name: res(*r) },
        Action::Reply(i, ok) => {
            if sim.calls.is_empty() {
                return;
            }
            // Through the Sim, so that a health check's answer goes to its host's poller.
            let i = i % sim.calls.len();
            sim.answer(i, *ok);
            return;
        }
        Action::FireTimer(i) => {
            if sim.timers.is_empty() {
                return;
            }
            let mut order: Vec<usize> = (0..sim.timers.len()).collect();
            order.sort_by_key(|j| sim.timers[*j].0);
            let (at, timer) = sim
                .timers
                .remove(order[i % order.len()].min(sim.timers.len() - 1));
            sim.now = sim.now.max(at);
            Event::TimerFired { timer }
        }
        Action::KillHost(h, o) => {
            let hosts: Vec<HostId> = sim.live_hosts.iter().copied().collect();
            if hosts.is_empty() {
                return;
            }
            let host = hosts[h % hosts.len()];
            let members: Vec<_> = sim
                .engine
                .hosts()
                .into_iter()
                .find(|v| v.id == host)
                .map(|v| v.resources)
                .unwrap_or_default();
            let offender = o.and_then(|o| {
                members
                    .get(o % members.len().max(1))
                    .map(|r| (*r, Op::IsAlive))
            });
            sim.live_hosts.remove(&host);
            sim.calls.retain(|c| c.1 != host);
            sim.pollers.retain(|_, p| p.host != host);
            Event::HostDied {
                host,
                offender,
                offending_plugin: None,
                cause: "prop".into(),
            }
        }
        Action::KillHostInPlugin(h) => {
            let hosts: Vec<HostId> = sim.live_hosts.iter().copied().collect();
            if hosts.is_empty() {
                return;
            }
            let host = hosts[h % hosts.len()];
            sim.live_hosts.remove(&host);
            sim.calls.retain(|c| c.1 != host);
            Event::HostDied {
                host,
                offender: None,
                offending_plugin: Some("dummy".into()),
                cause: "prop".into(),
            }
        }
        Action::Advance(ms) => {
            sim.now += ms;
            return;
        }
        Action::Settle => {
            sim.settle();
            return;
        }
    };
    // Admin refusals are fine, but change nothing at all; Sim::send checks the engine's own
    // invariants (and that each admin event's dry run foresaw what it persisted) after every event.
    let before = (
        sim.engine.resources(),
        sim.engine.groups(),
        sim.engine.hosts(),
    );
    if sim.send(event).is_err() {
        let after = (
            sim.engine.resources(),
            sim.engine.groups(),
            sim.engine.hosts(),
        );
        assert_eq!(before, after, "a refused request changed the engine");
    }
}

/// (g): the record changes persisted since the last sync, applied to the follower as one committed
/// batch, leave it with the same configuration; applying them again (a replayed entry) still does.
fn sync(sim: &Sim, follower: &mut Engine, synced: &mut usize) -> Result<(), TestCaseError> {
    let batch = persists(&sim.history[*synced..]);
    *synced = sim.history.len();
    if batch.is_empty() {
        return Ok(());
    }
    let logs = logs(&follower.apply_records(sim.now, &batch));
    let errors: Vec<_> = logs
        .iter()
        .filter(|(l, m)| *l == keelson_types::LogLevel::Err && m.contains("cannot apply"))
        .collect();
    prop_assert!(
        errors.is_empty(),
        "(g) the follower could not apply {batch:?}: {errors:?}"
    );
    prop_assert_eq!(
        follower.records(),
        sim.engine.records(),
        "(g) after {:?}",
        batch
    );
    prop_assert!(
        follower.check_invariants().is_ok(),
        "(g) {:?}",
        follower.check_invariants()
    );
    follower.apply_records(sim.now, &batch);
    prop_assert_eq!(
        follower.records(),
        sim.engine.records(),
        "(g) replaying {:?}",
        batch
    );
    Ok(())
}

fn check(sim: &Sim) -> Result<(), TestCaseError> {
    let views = sim.engine.resources();
    let by_name: BTreeMap<&str, &ResourceView> =
        views.iter().map(|v| (v.name.as_str(), v)).collect();
    let resource_states: Vec<&str> = ResourceState::ALL.iter().map(|s| s.as_str()).collect();
    let group_states = ["Online", "Offline", "PartialOnline", "Failed", "Pending"];
    for v in &views {
        prop_assert!(
            resource_states.contains(&v.state.to_string().as_str()),
            "{}",
            v.state
        );
        if v.state == ResourceState::Online {
            for d in &v.depends_on {
                prop_assert_eq!(
                    by_name[d.as_str()].state,
                    ResourceState::Online,
                    "(a) {} Online above {}",
                    v.name,
                    d
                );
            }
        }
        let holders = sim
            .engine
            .hosts()
            .iter()
            .filter(|h| h.resources.contains(&v.id))
            .count();
        prop_assert!(holders <= 1, "(b) {} open in {} hosts", v.name, holders);
    }
    for g in sim.engine.groups() {
        prop_assert!(
            group_states.contains(&g.state.to_string().as_str()),
            "{}",
            g.state
        );
    }
    prop_assert!(
        sim.engine.check_invariants().is_ok(),
        "{:?}",
        sim.engine.check_invariants()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_keep_the_invariants(actions in proptest::collection::vec(action(), 1..120)) {
        // A populated start (two groups, dependency chains) so that random steps hit the interesting
        // cases often; the random steps can still delete and rebuild all of it.
        let mut sim = Sim::new();
        sim.group("g0");
        sim.group("g1");
        for (i, r) in RESOURCES.iter().enumerate() {
            sim.resource(r, GROUPS[i / 4], ResourceProperties::default());
        }
        for (a, b) in [("r1", "r0"), ("r2", "r1"), ("r3", "r0"), ("r5", "r4")] {
            sim.dep(a, b);
        }
        let mut follower = Engine::new();
        let mut synced = 0;
        sync(&sim, &mut follower, &mut synced)?;
        for a in &actions {
            apply(&mut sim, a);
            check(&sim)?;
            sync(&sim, &mut follower, &mut synced)?;
        }
        // Whatever happened, letting time run with healthy answers never breaks anything either.
        sim.run(4_000_000);
        check(&sim)?;
    }
}
