//! The engine decides every deadline: Open, Close, Terminate and every call carry the resource's
//! DeadlockTimeout or PendingTimeout as it is when the command is sent, so a change made while the
//! resource is open applies to its next call of every kind, Close included.

mod common;
use common::*;
use keelson_engine::*;
use keelson_types::Op;

fn open_deadline(cmds: &[Command]) -> u64 {
    cmds.iter()
        .find_map(|c| match c {
            Command::Open { deadline_ms, .. } => Some(*deadline_ms),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Open in {cmds:?}"))
}

fn close_deadline(cmds: &[Command]) -> u64 {
    cmds.iter()
        .find_map(|c| match c {
            Command::Close { deadline_ms, .. } => Some(*deadline_ms),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Close in {cmds:?}"))
}

#[test]
fn open_carries_the_deadlock_timeout() {
    let mut sim = Sim::new();
    sim.group("g");
    let c = sim.resource("a", "g", Default::default());
    assert_eq!(open_deadline(&c), 300_000);
}

#[test]
fn a_deadlock_timeout_changed_while_open_applies_to_the_close() {
    let mut sim = Sim::with_group(&["a"]);
    sim.set("a", "DeadlockTimeout", "250");
    let c = sim.ok(Event::DeleteResource { name: "a".into() });
    assert_eq!(close_deadline(&c), 250);
}

#[test]
fn a_deadlock_timeout_changed_while_open_applies_to_the_reopen_and_its_close() {
    let mut sim = Sim::with_group(&["a"]);
    sim.set("a", "DeadlockTimeout", "4000");
    let c = sim.ok(Event::SetResource {
        resource: "a".into(),
        properties: vec![],
        params: vec![("path".into(), "/srv".into())],
        unset_params: vec![],
    });
    assert_eq!(close_deadline(&c), 4_000);
    assert_eq!(open_deadline(&c), 4_000);
}

#[test]
fn timeouts_changed_while_online_apply_to_the_next_calls() {
    let mut sim = Sim::with_group(&["a"]);
    sim.ok(Event::OnlineGroup { name: "g".into() });
    sim.settle();
    assert_eq!(sim.state("a"), ResourceState::Online);
    sim.set("a", "DeadlockTimeout", "1234");
    sim.set("a", "PendingTimeout", "5678");
    let c = sim.advance(5_000);
    assert_eq!(call_deadline(&c, Op::LooksAlive), 1_234);
    sim.settle();
    let c = sim.ok(Event::OfflineGroup { name: "g".into() });
    assert_eq!(call_deadline(&c, Op::Offline), 5_678);
    // The Offline hangs: PendingTimeout (the new one) expires and Terminate carries DeadlockTimeout.
    let c = sim.advance(5_678);
    assert_eq!(call_deadline(&c, Op::Terminate), 1_234);
}
