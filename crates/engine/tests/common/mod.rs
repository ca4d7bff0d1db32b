//! A fake shell for tests: drives the engine with a fake clock, remembers outstanding calls, timers
//! and live hosts from the commands it gets, and answers on request. It also plays the hosts' health
//! polling: each `Command::Poll` plan runs through the real policy (keelson_types::HealthSchedule) on
//! the fake clock, a due check shows as a `Command::Call` of LooksAlive/IsAlive (outstanding until
//! answered, one at a time per resource, as on its host thread), and a failed one is reported to the
//! engine as `Event::HealthFailed`. No sleeps, no real time.
#![allow(dead_code)]

use keelson_engine::*;
use keelson_types::{
    GroupProperties, HealthPlan, HealthSchedule, HealthVerdict, LogLevel, Op, ResourceId,
    ResourceProperties, StatusKind,
};
use std::collections::{BTreeMap, BTreeSet};

/// One resource's polling, as its host runs it.
pub struct Poller {
    pub host: HostId,
    /// None once the engine stopped it (a check already running still reports).
    pub schedule: Option<HealthSchedule>,
    /// The check running now, if any (a host thread runs one at a time).
    pub running: Option<Op>,
}

pub struct Sim {
    pub engine: Engine,
    pub now: u64,
    /// Every command ever returned, in order.
    pub history: Vec<Command>,
    /// Calls (incl. Open) sent and not answered, as the shell sees them.
    pub calls: Vec<(ResourceId, HostId, Op)>,
    /// Timers scheduled and not fired.
    pub timers: Vec<(u64, Timer)>,
    pub live_hosts: BTreeSet<HostId>,
    pub started_hosts: BTreeSet<HostId>,
    pub next_pid: u32,
    /// Health polling by resource, as the hosts run it.
    pub pollers: BTreeMap<ResourceId, Poller>,
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new()
    }
}

impl Sim {
    pub fn new() -> Self {
        Sim {
            engine: Engine::new(),
            now: 1_000_000,
            history: Vec::new(),
            calls: Vec::new(),
            timers: Vec::new(),
            live_hosts: BTreeSet::new(),
            started_hosts: BTreeSet::new(),
            next_pid: 4000,
            pollers: BTreeMap::new(),
        }
    }

    /// Feeds one event; records what comes back.
    pub fn send(&mut self, event: Event) -> Result<Vec<Command>, EngineError> {
        // Every administrator event's dry run must foresee exactly what it then persists.
        let planned = self.engine.admin_changes(&event);
        let cmds = self.engine.handle(self.now, event)?;
        if let Some(planned) = planned {
            let planned = planned.expect("accepted, so its dry run accepted it too");
            assert_eq!(
                keyed(&planned),
                keyed(&persists(&cmds)),
                "the dry run and the event disagree"
            );
        }
        self.absorb(&cmds);
        self.engine.check_invariants().expect("engine invariants");
        Ok(cmds)
    }

    /// Feeds one event that must be accepted.
    pub fn ok(&mut self, event: Event) -> Vec<Command> {
        let dbg = format!("{event:?}");
        self.send(event)
            .unwrap_or_else(|e| panic!("{dbg} refused: {e}"))
    }

    pub fn absorb(&mut self, cmds: &[Command]) {
        for c in cmds {
            match c {
                Command::StartHost { host, .. } => {
                    self.live_hosts.insert(*host);
                }
                Command::StopHost { host } => {
                    self.live_hosts.remove(host);
                    self.calls.retain(|(_, h, _)| h != host);
                    self.pollers.retain(|_, p| p.host != *host);
                }
                Command::Poll {
                    resource,
                    host,
                    plan,
                } => self.absorb_plan(*resource, *host, *plan),
                Command::Close { resource, .. } => {
                    self.pollers.remove(resource);
                }
                Command::Open { resource, host, .. } => {
                    self.calls.push((*resource, *host, Op::Open))
                }
                Command::Call {
                    resource, host, op, ..
                } => self.calls.push((*resource, *host, *op)),
                Command::ScheduleTimer { at, timer } => self.timers.push((*at, *timer)),
                _ => {}
            }
        }
        self.history.extend(cmds.iter().cloned());
    }

    fn absorb_plan(&mut self, resource: ResourceId, host: HostId, plan: Option<HealthPlan>) {
        let now = self.now;
        let poller = self.pollers.entry(resource).or_insert(Poller {
            host,
            schedule: None,
            running: None,
        });
        poller.host = host;
        match (plan, poller.schedule.as_mut()) {
            (Some(plan), Some(s)) => s.replan(plan, now),
            (Some(plan), None) => poller.schedule = Some(HealthSchedule::start(plan, now)),
            (None, _) => poller.schedule = None,
        }
    }

    /// When the host of `resource` next runs a check of `op` (None: not polling it).
    pub fn poll_due(&self, resource: ResourceId, op: Op) -> Option<u64> {
        self.pollers.get(&resource)?.schedule.as_ref()?.next_of(op)
    }

    /// The earliest check due at or before `until` on a host thread that is free.
    fn next_poll(&self, until: u64) -> Option<(u64, ResourceId)> {
        self.pollers
            .iter()
            .filter(|(_, p)| p.running.is_none() && self.live_hosts.contains(&p.host))
            .filter_map(|(r, p)| Some((p.schedule.as_ref()?.next_due()?, *r)))
            .filter(|(at, _)| *at <= until)
            .min()
    }

    /// Runs the checks due now on the free host thread of `resource` (at most one: it then waits for
    /// its answer), as `Command::Call`s.
    fn run_due_poll(&mut self, resource: ResourceId) -> Vec<Command> {
        let now = self.now;
        let Some(p) = self.pollers.get_mut(&resource) else {
            return vec![];
        };
        if p.running.is_some() || !self.live_hosts.contains(&p.host) {
            return vec![];
        }
        let Some(schedule) = p.schedule.as_mut() else {
            return vec![];
        };
        let Some(op) = schedule.due(now) else {
            return vec![];
        };
        let call = Command::Call {
            resource,
            host: p.host,
            op,
            deadline_ms: schedule.plan().deadline_ms,
        };
        p.running = Some(op);
        self.calls.push((resource, p.host, op));
        self.history.push(call.clone());
        vec![call]
    }

    /// A check the host ran returned: the policy's verdict, a failure reported to the engine, and
    /// the next check if one is due at once (IsAlive after a failed LooksAlive).
    fn poll_answered(&mut self, resource: ResourceId, op: Op, ok: bool) -> Vec<Command> {
        let now = self.now;
        let Some(p) = self.pollers.get_mut(&resource) else {
            return vec![];
        };
        p.running = None;
        let verdict = match p.schedule.as_mut() {
            Some(s) => s.done(op, ok, now),
            // Stopped while it ran: the host still reports what it saw.
            None if !ok => HealthVerdict::IsAliveFailed,
            None => HealthVerdict::Healthy,
        };
        let mut out = Vec::new();
        if verdict != HealthVerdict::Healthy {
            out.extend(self.ok(Event::HealthFailed {
                resource,
                op,
                status: StatusKind::Error,
                message: format!("{op} failed (test)"),
            }));
        }
        out.extend(self.run_due_poll(resource));
        out
    }

    /// Answers outstanding call number `i` (a health check goes to its poller, like on a host).
    pub fn answer(&mut self, i: usize, ok: bool) -> Vec<Command> {
        let (resource, _, op) = self.calls.remove(i);
        if matches!(op, Op::LooksAlive | Op::IsAlive) {
            return self.poll_answered(resource, op, ok);
        }
        let message = if ok {
            String::new()
        } else {
            format!("{op} failed (test)")
        };
        self.ok(Event::CallDone {
            resource,
            op,
            status: StatusKind::from_ok(ok),
            message,
        })
    }

    // ---- setup ----

    pub fn group(&mut self, name: &str) {
        self.ok(Event::CreateGroup {
            name: name.into(),
            properties: GroupProperties::default(),
        });
    }

    pub fn resource(&mut self, name: &str, group: &str, props: ResourceProperties) -> Vec<Command> {
        self.ok(Event::CreateResource(spec(name, group, props, &[])))
    }

    pub fn dep(&mut self, resource: &str, provider: &str) {
        self.ok(Event::AddDependency {
            resource: resource.into(),
            provider: provider.into(),
        });
    }

    pub fn set(&mut self, resource: &str, name: &str, value: &str) {
        self.ok(Event::SetResourceProperty {
            resource: resource.into(),
            name: name.into(),
            value: value.into(),
        });
    }

    /// One group `g` with default-policy resources `names`, opened, Offline.
    pub fn with_group(names: &[&str]) -> Sim {
        let mut sim = Sim::new();
        sim.group("g");
        for n in names {
            sim.resource(n, "g", ResourceProperties::default());
        }
        sim.settle();
        sim
    }

    // ---- queries ----

    pub fn id(&self, name: &str) -> ResourceId {
        self.engine
            .resource(name)
            .unwrap_or_else(|| panic!("no resource {name}"))
            .id
    }

    pub fn name(&self, id: ResourceId) -> String {
        self.engine
            .resource_by_id(id)
            .map(|r| r.name)
            .unwrap_or_else(|| format!("{id}"))
    }

    pub fn state(&self, name: &str) -> ResourceState {
        self.engine.resource(name).unwrap().state
    }

    pub fn gstate(&self, name: &str) -> GroupState {
        self.engine.group(name).unwrap().state
    }

    pub fn host_of(&self, name: &str) -> HostId {
        self.engine.resource(name).unwrap().host.expect("hosted")
    }

    /// Names of the resources with an outstanding call of `op`.
    pub fn pending(&self, op: Op) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| c.2 == op)
            .map(|c| self.name(c.0))
            .collect()
    }

    // ---- acting as the shell ----

    /// Answers the outstanding `op` call of `name`.
    pub fn reply(&mut self, name: &str, op: Op, ok: bool) -> Vec<Command> {
        let id = self.id(name);
        let i = self
            .calls
            .iter()
            .position(|c| c.0 == id && c.2 == op)
            .unwrap_or_else(|| panic!("no outstanding {op} for {name}: {:?}", self.calls));
        self.answer(i, ok)
    }

    /// Answers every outstanding call ok (and reports started hosts) until nothing is outstanding.
    pub fn settle(&mut self) -> Vec<Command> {
        let mut all = Vec::new();
        for _ in 0..1000 {
            let fresh: Vec<HostId> = self
                .live_hosts
                .difference(&self.started_hosts)
                .copied()
                .collect();
            for h in fresh {
                self.started_hosts.insert(h);
                self.next_pid += 1;
                all.extend(self.ok(Event::HostStarted {
                    host: h,
                    pid: self.next_pid,
                }));
            }
            if self.calls.is_empty() {
                return all;
            }
            all.extend(self.answer(0, true));
        }
        panic!("settle did not converge");
    }

    /// Fires the earliest timer, or runs the earliest health check, due at or before `until`
    /// (advancing the clock to it), if any. A timer goes first when both are due at once.
    pub fn fire_next(&mut self, until: u64) -> Option<Vec<Command>> {
        let timer = (0..self.timers.len())
            .filter(|i| self.timers[*i].0 <= until)
            .min_by_key(|i| (self.timers[*i].0, *i));
        let poll = self.next_poll(until);
        match (timer, poll) {
            (Some(i), Some((at, _))) if self.timers[i].0 <= at => Some(self.fire_timer(i)),
            (_, Some((at, resource))) => {
                self.now = self.now.max(at);
                Some(self.run_due_poll(resource))
            }
            (Some(i), None) => Some(self.fire_timer(i)),
            (None, None) => None,
        }
    }

    fn fire_timer(&mut self, i: usize) -> Vec<Command> {
        let (at, timer) = self.timers.remove(i);
        self.now = self.now.max(at);
        self.ok(Event::TimerFired { timer })
    }

    /// Moves the clock forward `ms`, firing due timers in order; calls are left unanswered.
    pub fn advance(&mut self, ms: u64) -> Vec<Command> {
        let until = self.now + ms;
        let mut all = Vec::new();
        while let Some(c) = self.fire_next(until) {
            all.extend(c);
        }
        self.now = until;
        all
    }

    /// Moves the clock forward `ms`, firing due timers in order and answering every call ok.
    pub fn run(&mut self, ms: u64) -> Vec<Command> {
        let until = self.now + ms;
        let mut all = self.settle();
        while let Some(c) = self.fire_next(until) {
            all.extend(c);
            all.extend(self.settle());
        }
        self.now = until;
        all
    }

    /// The host `host` died, blaming `offender` (name, op) if given.
    pub fn kill_host(
        &mut self,
        host: HostId,
        offender: Option<(&str, Op)>,
        cause: &str,
    ) -> Vec<Command> {
        self.live_hosts.remove(&host);
        self.calls.retain(|c| c.1 != host);
        self.pollers.retain(|_, p| p.host != host);
        let offender = offender.map(|(n, op)| (self.id(n), op));
        self.ok(Event::HostDied {
            host,
            offender,
            offending_plugin: None,
            cause: cause.into(),
        })
    }

    /// The host `host` died of a crash in `plugin`'s code on a thread of its own.
    pub fn kill_host_in_plugin(&mut self, host: HostId, plugin: &str, cause: &str) -> Vec<Command> {
        self.live_hosts.remove(&host);
        self.calls.retain(|c| c.1 != host);
        self.ok(Event::HostDied {
            host,
            offender: None,
            offending_plugin: Some(plugin.into()),
            cause: cause.into(),
        })
    }
}

pub fn spec(
    name: &str,
    group: &str,
    properties: ResourceProperties,
    deps: &[&str],
) -> ResourceSpec {
    ResourceSpec {
        name: name.into(),
        group: group.into(),
        type_name: "Dummy".into(),
        plugin: "dummy".into(),
        properties,
        params: Default::default(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    }
}

// ---- reading command lists ----

/// The deadline of the first `Call` of `op`.
pub fn call_deadline(cmds: &[Command], op: Op) -> u64 {
    cmds.iter()
        .find_map(|c| match c {
            Command::Call {
                op: o, deadline_ms, ..
            } if *o == op => Some(*deadline_ms),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {op} call in {cmds:?}"))
}

/// Resource ids of the `Call`s of `op`, in order.
pub fn calls_of(cmds: &[Command], op: Op) -> Vec<ResourceId> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Call {
                resource, op: o, ..
            } if *o == op => Some(*resource),
            _ => None,
        })
        .collect()
}

/// `(level, message)` of every RCM log line.
pub fn logs(cmds: &[Command]) -> Vec<(LogLevel, String)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Log {
                level,
                component,
                message,
            } if component == "RCM" => Some((*level, message.clone())),
            _ => None,
        })
        .collect()
}

/// Every raised cluster event.
pub fn events(cmds: &[Command]) -> Vec<ClusterEvent> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::RaiseEvent(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

pub fn event_ids(cmds: &[Command]) -> Vec<u32> {
    events(cmds).iter().map(|e| e.id).collect()
}

/// `(at, kind)` of every scheduled timer.
pub fn timers(cmds: &[Command]) -> Vec<(u64, TimerKind)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::ScheduleTimer { at, timer } => Some((*at, timer.kind)),
            _ => None,
        })
        .collect()
}

/// Every persisted change.
/// Changes by record (order aside).
pub fn keyed(
    changes: &[PersistChange],
) -> std::collections::BTreeMap<(bool, String), PersistChange> {
    changes
        .iter()
        .map(|c| {
            let (group, name) = c.key();
            ((group, name.to_string()), c.clone())
        })
        .collect()
}

pub fn persists(cmds: &[Command]) -> Vec<PersistChange> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Persist(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

pub fn group_changes(cmds: &[Command]) -> Vec<(GroupState, GroupState)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::GroupStateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}
