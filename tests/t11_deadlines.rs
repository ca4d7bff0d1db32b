//! The engine decides every deadline, end to end with a real rcm and real hosts: a DeadlockTimeout
//! changed while a resource is open applies to its Close, both in the host's deadlock monitor and in
//! rcm's watchdog behind it (a Close that hangs is found at the new value, not at the one the
//! resource was opened with, 300 s by default).

mod common;

use common::rcm::Rcm;
use common::wait_until;
use keelson_proto::ControlRequest as R;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
/// The DeadlockTimeout set while the resource is open.
const NEW_DEADLOCK_MS: u64 = 300;

fn s(v: &str) -> String {
    v.to_string()
}

/// A node with one chaos resource, open and Offline, whose CLOSE hangs forever; its DeadlockTimeout
/// lowered to NEW_DEADLOCK_MS after it was opened. Returns the node and the resource's host pid.
fn open_with_hanging_close(tag: &str) -> (Rcm, u32) {
    let rcm = Rcm::start(tag);
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("stuck"),
        type_name: s("chaos"),
        group: s("g"),
        params: vec![(s("entry"), s("close")), (s("fault"), s("hang"))],
        properties: vec![],
    });
    let view = rcm.wait_resource("stuck", LIMIT, "open", |v| v["host_pid"].is_number());
    let pid = view["host_pid"].as_u64().expect("a pid") as u32;
    rcm.ok(R::ResourceSet {
        name: s("stuck"),
        properties: vec![(s("DeadlockTimeout"), NEW_DEADLOCK_MS.to_string())],
        params: vec![],
        unset_params: vec![],
    });
    (rcm, pid)
}

/// Waits for the host-death line that blames CLOSE of 'stuck'; returns (line, ms it reports).
fn close_deadlock_line(rcm: &Rcm, found_by: &str) -> (String, u64) {
    let marker = "deadlocked: call CLOSE of resource 'stuck' ran ";
    let found = wait_until(LIMIT, || {
        rcm.cluster_log()
            .lines()
            .any(|l| l.contains(marker) && l.contains(found_by))
    });
    let log = rcm.cluster_log();
    assert!(
        found,
        "no deadlock of CLOSE {found_by} within {LIMIT:?}:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains(marker) && l.contains(found_by))
        .expect("just found")
        .to_string();
    let rest = &line[line.find(marker).expect("marker") + marker.len()..];
    let ms: u64 = rest
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {line}"));
    (line, ms)
}

#[test]
fn a_deadlock_timeout_changed_while_open_applies_to_the_close_in_the_host() {
    let (rcm, _) = open_with_hanging_close("close-deadline");
    rcm.ok(R::ResourceDelete { name: s("stuck") });
    let (line, ms) = close_deadlock_line(&rcm, "found by the host's deadlock monitor");
    assert!(
        (NEW_DEADLOCK_MS..NEW_DEADLOCK_MS + 5_000).contains(&ms),
        "the host's monitor did not fire at the new DeadlockTimeout ({NEW_DEADLOCK_MS} ms): {line}"
    );
    assert!(
        rcm.cluster_log()
            .contains("RhsCall::DeadlockMonitor: Call CLOSE timed out for resource 'stuck'."),
        "{}",
        rcm.cluster_log()
    );
}

#[test]
fn a_deadlock_timeout_changed_while_open_applies_to_rcms_close_watchdog() {
    let (rcm, pid) = open_with_hanging_close("close-watchdog");
    // A stopped host cannot run its own monitor: only rcm's watchdog (deadline + 2 s grace) can
    // find the hung CLOSE.
    keelson_sys::process::kill(pid, keelson_sys::Signal::SIGSTOP).expect("SIGSTOP the host");
    rcm.ok(R::ResourceDelete { name: s("stuck") });
    let (line, ms) = close_deadlock_line(&rcm, "killed by rcm's watchdog");
    let grace = keelson_types::DEFAULT_WATCHDOG_GRACE_MS;
    assert!(
        (NEW_DEADLOCK_MS + grace..NEW_DEADLOCK_MS + grace + 5_000).contains(&ms),
        "rcm's watchdog did not fire at the new DeadlockTimeout ({NEW_DEADLOCK_MS} ms + {grace} ms): {line}"
    );
}
