//! Property test of ownership across a cluster: 3 to 5 engines (one per node, each with a fake
//! shell from tests/common) and the placement core on the leader, over a fake network and raft.
//! Committed records reach a node only while it is connected to the leader, in order, when the
//! test delivers them (so followers lag); reports from nodes reach the leader the same way and are
//! lost with it. Random steps: node deaths and restarts, partitions and heals, a cut-off node
//! noticing it lost quorum (it terminates its groups: that is what its lease promises) and the
//! leader being told that node's lease expired (only then, or once the node is dead), deliveries,
//! reports, moves, pauses with and without drain, resumes, failures, call results, timers, the
//! hour, and administrators' whole-record upserts built on a node's (maybe stale) view. After
//! every step: at most one node believes it may run a group, a resource runs (is up, or has a call
//! under way, or is Failed and still open) only on a node that is its group's owner or is
//! releasing it, by its own view and by the committed one, and no group runs on two nodes at the
//! same instant. At the end, with every node back and the network healed (a stable majority),
//! every group is Online on its owner and nowhere else.

mod common;
use common::Sim;
use keelson_engine::placement::{PlacementEvent, Placer};
use keelson_engine::*;
use keelson_types::{GroupRecord, Op, RecordChange, ResourceRecord};
use proptest::prelude::*;
use std::collections::BTreeMap;

const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
/// Wall-clock origin of the leader's clock (the placement core's `now`).
const WALL: u64 = 1_700_000_000_000;

fn node_name(i: usize) -> String {
    format!("n{i}")
}

fn initial_groups() -> Vec<GroupRecord> {
    let props = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    vec![
        GroupRecord {
            name: "g0".into(),
            want_online: true,
            owner: "n0".into(),
            properties: props(&[("PreferredOwners", "n0,n1"), ("AutoFailbackType", "Allow")]),
            ..Default::default()
        },
        GroupRecord {
            name: "g1".into(),
            want_online: true,
            owner: "n1".into(),
            ..Default::default()
        },
        // No owner yet: the leader assigns it.
        GroupRecord {
            name: "g2".into(),
            want_online: true,
            properties: props(&[("FailoverThreshold", "1")]),
            ..Default::default()
        },
    ]
}

/// Each group: `<g>_a` and `<g>_b` depending on it; g1_b restarts but never fails over. Failed
/// resources are retried after a minute and checked every 30 s, to keep the runs short.
fn resources() -> Vec<ResourceRecord> {
    let mut out = Vec::new();
    for g in GROUPS {
        for (suffix, deps) in [("a", vec![]), ("b", vec![format!("{g}_a")])] {
            let mut properties = BTreeMap::from([
                ("RetryPeriodOnFailure".to_string(), "60000".to_string()),
                ("LooksAlivePollInterval".to_string(), "30000".to_string()),
            ]);
            if g == "g1" && suffix == "b" {
                properties.insert("RestartAction".to_string(), "Restart".to_string());
            }
            out.push(ResourceRecord {
                name: format!("{g}_{suffix}"),
                type_name: "Dummy".into(),
                plugin: "dummy".into(),
                group: g.into(),
                properties,
                depends_on: deps,
                want_online: true,
                ..Default::default()
            });
        }
    }
    out
}

fn resource_names() -> Vec<String> {
    resources().into_iter().map(|r| r.name).collect()
}

#[derive(Clone, Debug)]
enum Step {
    Kill(usize),
    Revive(usize),
    Partition(usize, usize),
    Heal,
    Deliver(usize, usize),
    Notice(usize),
    Regain(usize),
    ExpireLease(usize),
    Report(usize),
    Reply(usize, usize, bool),
    Settle(usize),
    Advance(u64),
    Fail(usize, usize),
    Move(usize, Option<usize>),
    Pause(usize, bool),
    Resume(usize),
    Hour(u32),
    /// An administrator's `group set` proposed on node i: the whole record as that node sees it
    /// (maybe stale), with one property changed, committed.
    Upsert(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    let n = || 0..5usize;
    prop_oneof![
        2 => n().prop_map(Step::Kill),
        2 => n().prop_map(Step::Revive),
        3 => (n(), 0..3usize).prop_map(|(i, c)| Step::Partition(i, c)),
        2 => Just(Step::Heal),
        8 => (n(), 1..4usize).prop_map(|(i, k)| Step::Deliver(i, k)),
        3 => n().prop_map(Step::Notice),
        3 => n().prop_map(Step::Regain),
        3 => n().prop_map(Step::ExpireLease),
        6 => n().prop_map(Step::Report),
        10 => (n(), 0..8usize, prop::bool::weighted(0.8)).prop_map(|(i, c, ok)| Step::Reply(i, c, ok)),
        5 => n().prop_map(Step::Settle),
        3 => (0..200_000u64).prop_map(Step::Advance),
        3 => (n(), 0..6usize).prop_map(|(i, r)| Step::Fail(i, r)),
        2 => (0..3usize, proptest::option::of(n())).prop_map(|(g, to)| Step::Move(g, to)),
        1 => (n(), any::<bool>()).prop_map(|(i, d)| Step::Pause(i, d)),
        1 => n().prop_map(Step::Resume),
        1 => (0..24u32).prop_map(Step::Hour),
        2 => (n(), 0..3usize).prop_map(|(i, g)| Step::Upsert(i, g)),
    ]
}

/// One node: its engine and fake hosts while it is alive, how much of the log it has applied
/// (kept across a restart: its own log), its network component, whether it holds quorum, and the
/// reports it has not yet got through to the leader.
struct Node {
    sim: Option<Sim>,
    applied: usize,
    component: usize,
    quorum: bool,
    outbox: Vec<PlacementReport>,
    seen: usize,
}

struct World {
    nodes: Vec<Node>,
    /// The committed log (group records only: the leader's commits).
    log: Vec<RecordChange>,
    leader: Option<usize>,
    placer: Placer,
    now: u64,
}

fn records_at(log: &[RecordChange]) -> Vec<GroupRecord> {
    let mut groups: BTreeMap<String, GroupRecord> = initial_groups()
        .into_iter()
        .map(|g| (g.name.clone(), g))
        .collect();
    for change in log {
        if let RecordChange::PutGroup(r) = change {
            let merged = match groups.get(&r.name) {
                Some(held) => r.merge_placement(held),
                None => r.clone(),
            };
            groups.insert(r.name.clone(), merged);
        }
    }
    groups.into_values().collect()
}

impl World {
    fn new(n: usize) -> World {
        let mut w = World {
            nodes: Vec::new(),
            log: Vec::new(),
            leader: None,
            placer: Placer::default(),
            now: 1_000_000,
        };
        for i in 0..n {
            let mut sim = Sim::new();
            let (engine, cmds) =
                Engine::restore_on(&node_name(i), sim.now, &initial_groups(), &resources())
                    .unwrap();
            sim.engine = engine;
            sim.absorb(&cmds);
            w.nodes.push(Node {
                sim: Some(sim),
                applied: 0,
                component: 0,
                quorum: true,
                outbox: Vec::new(),
                seen: 0,
            });
        }
        w.topology();
        w
    }

    fn names(&self) -> Vec<String> {
        (0..self.nodes.len()).map(node_name).collect()
    }

    fn alive(&self, i: usize) -> bool {
        self.nodes[i].sim.is_some()
    }

    /// The component holding a majority of all nodes (alive ones), if any.
    fn majority(&self) -> Option<usize> {
        let n = self.nodes.len();
        (0..3).find(|c| {
            let alive = (0..n)
                .filter(|i| self.alive(*i) && self.nodes[*i].component == *c)
                .count();
            alive * 2 > n
        })
    }

    fn in_majority(&self, i: usize) -> bool {
        self.alive(i) && Some(self.nodes[i].component) == self.majority()
    }

    fn connected_to_leader(&self, i: usize) -> bool {
        match self.leader {
            Some(l) => {
                self.alive(i)
                    && self.in_majority(l)
                    && self.nodes[i].component == self.nodes[l].component
            }
            None => false,
        }
    }

    /// After a death, restart or partition: keep or elect the leader, and tell it who is Up.
    fn topology(&mut self) {
        let keep = self.leader.is_some_and(|l| self.in_majority(l));
        if !keep {
            self.leader = (0..self.nodes.len()).find(|i| self.in_majority(*i));
            if self.leader.is_some() {
                // A new leader holds every committed entry; reports sent to the old one are lost.
                self.placer = Placer::new(&self.names(), &records_at(&self.log));
                for n in &mut self.nodes {
                    n.outbox.clear();
                }
            }
        }
        if self.leader.is_none() {
            return;
        }
        for i in 0..self.nodes.len() {
            let node = node_name(i);
            let event = if self.in_majority(i) {
                PlacementEvent::NodeUp { node }
            } else {
                PlacementEvent::NodeDown { node }
            };
            self.lead(event);
        }
    }

    /// Feeds the leader's placement core; its commits join the log at once (it has a majority).
    fn lead(&mut self, event: PlacementEvent) {
        if self.leader.is_none() {
            return;
        }
        let now = WALL + self.now;
        if let Ok(cmds) = self.placer.handle(now, event) {
            for c in cmds {
                if let Command::Persist(change) = c {
                    self.log.push(change);
                }
            }
        }
    }

    /// Collects the placement reports node `i`'s engine emitted since the last look.
    fn collect(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(sim) = &node.sim else { return };
        for c in &sim.history[node.seen..] {
            if let Command::Placement(r) = c {
                node.outbox.push(r.clone());
            }
        }
        node.seen = sim.history.len();
    }

    fn sync_clock(&mut self, i: usize) {
        let now = self.now;
        if let Some(sim) = self.nodes[i].sim.as_mut() {
            if sim.now < now {
                sim.advance(now - sim.now);
            }
        }
    }

    fn apply(&mut self, s: &Step) {
        let n = self.nodes.len();
        match *s {
            Step::Kill(i) if i < n => {
                let node = &mut self.nodes[i];
                node.sim = None;
                node.quorum = false;
                node.outbox.clear();
                self.topology();
            }
            Step::Revive(i) if i < n && !self.alive(i) => self.revive(i),
            Step::Partition(i, c) if i < n => {
                self.nodes[i].component = c;
                self.topology();
            }
            Step::Heal => {
                for node in &mut self.nodes {
                    node.component = 0;
                }
                self.topology();
            }
            Step::Deliver(i, k) if i < n && self.connected_to_leader(i) => self.deliver(i, k),
            Step::Notice(i)
                if i < n && self.alive(i) && self.nodes[i].quorum && !self.in_majority(i) =>
            {
                self.notice(i)
            }
            Step::Regain(i)
                if i < n
                    && self.alive(i)
                    && !self.nodes[i].quorum
                    && self.in_majority(i)
                    && self.nodes[i].applied == self.log.len() =>
            {
                let sim = self.nodes[i].sim.as_mut().unwrap();
                let cmds = sim.engine.regain_quorum(sim.now);
                sim.absorb(&cmds);
                self.nodes[i].quorum = true;
            }
            Step::ExpireLease(i)
                if i < n
                    && (!self.alive(i) || !self.nodes[i].quorum)
                    && !self.connected_to_leader(i) =>
            {
                self.lead(PlacementEvent::LeaseExpired { node: node_name(i) })
            }
            Step::Report(i) if i < n && self.connected_to_leader(i) => self.report(i),
            Step::Reply(i, c, ok) if i < n && self.alive(i) => {
                let sim = self.nodes[i].sim.as_mut().unwrap();
                if !sim.calls.is_empty() {
                    let c = c % sim.calls.len();
                    answer(sim, c, ok);
                }
            }
            Step::Settle(i) if i < n && self.alive(i) => {
                settle(self.nodes[i].sim.as_mut().unwrap())
            }
            Step::Advance(ms) => {
                self.now += ms;
                for i in 0..n {
                    self.sync_clock(i);
                }
            }
            Step::Fail(i, r) if i < n && self.alive(i) => {
                let name = resource_names()[r % 6].clone();
                let sim = self.nodes[i].sim.as_mut().unwrap();
                if sim.state(&name) == ResourceState::Online {
                    sim.ok(Event::FailResource { name });
                }
            }
            Step::Move(g, to) => self.lead(PlacementEvent::Move {
                group: GROUPS[g].into(),
                to: to.filter(|t| *t < n).map(node_name),
            }),
            Step::Pause(i, drain) if i < n => self.lead(PlacementEvent::Pause {
                node: node_name(i),
                drain,
            }),
            Step::Resume(i) if i < n => self.lead(PlacementEvent::Resume { node: node_name(i) }),
            Step::Hour(h) => self.lead(PlacementEvent::Hour(h)),
            Step::Upsert(i, g) if i < n && self.alive(i) && self.connected_to_leader(i) => {
                self.upsert(i, GROUPS[g])
            }
            _ => {}
        }
        for i in 0..n {
            self.collect(i);
        }
    }

    /// A node restarts from its own log (what it had applied), without quorum until it has
    /// caught up and regained it.
    fn revive(&mut self, i: usize) {
        let mut sim = Sim::new();
        sim.now = self.now;
        let groups = records_at(&self.log[..self.nodes[i].applied]);
        let (engine, cmds) =
            Engine::restore_waiting_for_quorum(&node_name(i), sim.now, &groups, &resources())
                .unwrap();
        sim.engine = engine;
        sim.absorb(&cmds);
        let node = &mut self.nodes[i];
        node.sim = Some(sim);
        node.quorum = false;
        node.seen = 0;
        self.topology();
    }

    fn upsert(&mut self, i: usize, group: &str) {
        let sim = self.nodes[i].sim.as_ref().unwrap();
        let mut record = sim.engine.group_record(group).unwrap();
        let toggled = match record.properties.get("FailoverPeriod").map(String::as_str) {
            Some("7200000") => "3600000",
            _ => "7200000",
        };
        record
            .properties
            .insert("FailoverPeriod".into(), toggled.into());
        let change = RecordChange::PutGroup(record);
        self.log.push(change.clone());
        self.lead(PlacementEvent::Committed(vec![change]));
    }

    fn deliver(&mut self, i: usize, k: usize) {
        let node = &mut self.nodes[i];
        let end = (node.applied + k).min(self.log.len());
        let batch = self.log[node.applied..end].to_vec();
        node.applied = end;
        let sim = node.sim.as_mut().unwrap();
        let cmds = sim.engine.apply_records(sim.now, &batch);
        sim.absorb(&cmds);
        sim.engine.check_invariants().expect("engine invariants");
    }

    /// Cut off from the majority, the node notices before its lease ends and terminates its
    /// groups; the Terminate calls finish within the lease too.
    fn notice(&mut self, i: usize) {
        let sim = self.nodes[i].sim.as_mut().unwrap();
        let cmds = sim.engine.lose_quorum(sim.now);
        sim.absorb(&cmds);
        for _ in 0..100 {
            let Some(c) = sim.calls.iter().position(|c| c.2 == Op::Terminate) else {
                break;
            };
            answer(sim, c, true);
        }
        self.nodes[i].quorum = false;
    }

    fn report(&mut self, i: usize) {
        let mut reports = std::mem::take(&mut self.nodes[i].outbox);
        reports.extend(
            self.nodes[i]
                .sim
                .as_ref()
                .unwrap()
                .engine
                .pending_releases(),
        );
        for r in reports {
            self.lead(PlacementEvent::from(r));
        }
    }

    // ---- the invariants ----

    fn committed(&self, group: &str) -> GroupRecord {
        records_at(&self.log)
            .into_iter()
            .find(|g| g.name == group)
            .unwrap()
    }

    fn check(&self) -> Result<(), String> {
        for g in GROUPS {
            let committed = self.committed(g);
            let mut believers = Vec::new();
            let mut running = Vec::new();
            for (i, node) in self.nodes.iter().enumerate() {
                let Some(sim) = &node.sim else { continue };
                let me = node_name(i);
                let view = sim.engine.group_record(g).unwrap();
                if node.quorum && view.owner == me && view.placement.releasing_from.is_empty() {
                    believers.push(me.clone());
                }
                let runs = sim
                    .engine
                    .resources()
                    .iter()
                    .filter(|r| r.group == g)
                    .any(|r| runs(sim, r));
                if !runs {
                    continue;
                }
                let holds = |r: &GroupRecord| r.owner == me || r.placement.releasing_from == me;
                if !holds(&view) {
                    return Err(format!("{g} runs on {me}, which (by its own view) neither owns nor releases it: {view:?}"));
                }
                if !holds(&committed) {
                    return Err(format!("{g} runs on {me}, which (by the committed record) neither owns nor releases it: {committed:?}"));
                }
                running.push(me);
            }
            if believers.len() > 1 {
                return Err(format!(
                    "{g} has more than one owner that may run it: {believers:?}"
                ));
            }
            if running.len() > 1 {
                return Err(format!("{g} runs on two nodes at once: {running:?}"));
            }
        }
        Ok(())
    }

    /// A stable majority: everyone back, the network healed, every node resumed, the log delivered,
    /// reports through, calls answered, time running (past RetryPeriodOnFailure, for groups that
    /// stayed Failed).
    fn stabilize(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if !self.alive(i) {
                self.revive(i);
            }
        }
        self.apply(&Step::Heal);
        for i in 0..self.nodes.len() {
            self.lead(PlacementEvent::Resume { node: node_name(i) });
        }
        for round in 0..40 {
            for i in 0..self.nodes.len() {
                self.deliver(i, usize::MAX / 2);
                if !self.nodes[i].quorum {
                    self.apply(&Step::Regain(i));
                }
                settle(self.nodes[i].sim.as_mut().unwrap());
                self.collect(i);
                self.report(i);
                self.check()?;
            }
            // Time runs with every call answered (past RetryPeriodOnFailure once, for groups that
            // stayed Failed).
            let ms = if round == 20 { 120_000 } else { 1_000 };
            self.now += ms;
            for i in 0..self.nodes.len() {
                let sim = self.nodes[i].sim.as_mut().unwrap();
                run_until(sim, self.now);
                self.collect(i);
            }
            self.check()?;
        }
        for g in GROUPS {
            let committed = self.committed(g);
            if !committed.placement.releasing_from.is_empty() {
                return Err(format!("{g} is still being released: {committed:?}"));
            }
            let owner: usize = committed
                .owner
                .trim_start_matches('n')
                .parse()
                .map_err(|_| format!("{g} has no owner: {committed:?}"))?;
            let sim = self.nodes[owner].sim.as_ref().unwrap();
            let state = sim.engine.group(g).unwrap().state;
            if state != GroupState::Online {
                return Err(format!(
                    "{g} is {state} on its owner {}: {:?}",
                    committed.owner,
                    sim.engine.resources()
                ));
            }
        }
        Ok(())
    }
}

/// Whether a resource may be running on its node: up, or a call is under way, or Failed and still
/// open (nobody terminated it).
fn runs(sim: &Sim, r: &ResourceView) -> bool {
    let call = sim
        .calls
        .iter()
        .any(|c| c.0 == r.id && matches!(c.2, Op::Online | Op::Offline | Op::Terminate));
    let failed_open = r.state == ResourceState::Failed && r.host.is_some();
    !matches!(r.state, ResourceState::Offline | ResourceState::Failed) || call || failed_open
}

/// Answers call `i`; Open and Terminate always succeed, and a Terminate that returns has ended
/// every Online or Offline call of that resource sent before it.
fn answer(sim: &mut Sim, i: usize, ok: bool) {
    let (resource, _, op) = sim.calls[i];
    let ok = ok || matches!(op, Op::Open | Op::Terminate);
    if op == Op::Terminate {
        let mut j = 0;
        sim.calls.retain(|c| {
            j += 1;
            j > i || !(c.0 == resource && matches!(c.2, Op::Online | Op::Offline))
        });
    }
    let i = sim
        .calls
        .iter()
        .position(|c| c.0 == resource && c.2 == op)
        .expect("the call being answered");
    sim.answer(i, ok);
}

/// Fires timers and health checks up to `until`, answering every call ok as it goes.
fn run_until(sim: &mut Sim, until: u64) {
    settle(sim);
    for _ in 0..100_000 {
        if sim.fire_next(until).is_none() {
            break;
        }
        settle(sim);
    }
    sim.now = sim.now.max(until);
}

fn settle(sim: &mut Sim) {
    for _ in 0..1000 {
        if sim.calls.is_empty() {
            break;
        }
        answer(sim, 0, true);
    }
    sim.settle();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_group_runs_on_two_nodes_and_every_group_ends_online(
        nodes in 3..=5usize,
        steps in proptest::collection::vec(step(), 1..100),
    ) {
        let mut w = World::new(nodes);
        let mut done = Vec::new();
        let check = |w: &World, done: &[Step]| -> Result<(), TestCaseError> {
            w.check().map_err(|e| TestCaseError::fail(format!("{e}\nafter {nodes} nodes, steps {done:?}")))
        };
        check(&w, &done)?;
        for s in &steps {
            w.apply(s);
            done.push(s.clone());
            check(&w, &done)?;
        }
        if let Err(e) = w.stabilize() {
            return Err(TestCaseError::fail(format!("liveness: {e}\nafter {nodes} nodes, steps {done:?}")));
        }
    }
}

/// A case the property test found (shrunk): a resource failure, its restart and a failed call
/// answered in that order must still end with every group Online.
#[test]
fn a_failure_its_restart_and_a_failed_reply_end_online() {
    let steps = [
        Step::Settle(0),
        Step::Fail(0, 0),
        Step::Advance(500),
        Step::Reply(0, 1, true),
        Step::Advance(179_500),
    ];
    let mut w = World::new(3);
    for s in &steps {
        w.apply(s);
        w.check().unwrap();
    }
    w.stabilize().unwrap();
}
