//! The host pool of crates/host with real keelson-rhs processes: requests sent while an open is in
//! flight wait behind it and go out in order, a Close supersedes an open in flight (its instance is
//! closed and its waiting calls dropped), a retired host's death is not a failure while a crashed
//! one's is, and a deleted resource's timings go. Not the engine's policy (t05).

mod common;

use keelson_host::{PendingOpen, Pool, PoolOutcome, PoolReport};
use keelson_types::{HostId, Op, ResourceId};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

const LIMIT: Duration = Duration::from_secs(20);

fn open_of(id: u64, type_name: &str, params: &[(&str, &str)]) -> PendingOpen {
    PendingOpen {
        resource: ResourceId(id),
        name: format!("r{id}"),
        type_name: type_name.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        seq: 0,
        deadline_ms: 5_000,
    }
}

/// Feeds the pool its reports, starting every ready open from its plugin, until `done` says so
/// (or the deadline passes); every outcome other than OpenReady is returned in order.
async fn drive(
    pool: &mut Pool,
    reports: &mut UnboundedReceiver<PoolReport>,
    mut done: impl FnMut(&[PoolOutcome]) -> bool,
) -> Vec<PoolOutcome> {
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let report = tokio::time::timeout(left, reports.recv())
            .await
            .unwrap_or_else(|_| panic!("no report within {LIMIT:?}; outcomes so far: {seen:?}"))
            .expect("the pool's channel stays open");
        for outcome in pool.on_report(report) {
            match outcome {
                PoolOutcome::OpenReady { host, open } => {
                    let path = common::plugin(&open.type_name);
                    pool.start_open(host, open, &path);
                }
                other => seen.push(other),
            }
        }
    }
    seen
}

fn calls_done(outcomes: &[PoolOutcome]) -> Vec<(Op, bool)> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            PoolOutcome::CallDone { op, ok, .. } => Some((*op, *ok)),
            _ => None,
        })
        .collect()
}

fn span() -> tracing::Span {
    tracing::Span::none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_sent_before_the_open_and_the_host_wait_and_go_out_in_order() {
    let (mut pool, mut reports) = Pool::new(common::host_config());
    let host = HostId(1);
    // The open comes before its host is even started: it is parked.
    assert!(pool.begin_open(host, open_of(1, "dummy", &[])).is_none());
    let order = [
        Op::LooksAlive,
        Op::IsAlive,
        Op::Online,
        Op::LooksAlive,
        Op::Offline,
    ];
    for op in order {
        assert!(
            pool.call(ResourceId(1), op, 5_000, span()).is_none(),
            "{op:?} waits for the open"
        );
    }
    pool.start_host(host);
    let outcomes = drive(&mut pool, &mut reports, |seen| calls_done(seen).len() == 6).await;
    assert!(
        matches!(outcomes[0], PoolOutcome::HostStarted { host: h, .. } if h == host),
        "{outcomes:?}"
    );
    let mut expected = vec![(Op::Open, true)];
    expected.extend(order.iter().map(|op| (*op, true)));
    assert_eq!(calls_done(&outcomes), expected);
    let stats = pool.call_stats(ResourceId(1));
    assert_eq!(
        stats.get(&Op::LooksAlive).map(|s| s.count),
        Some(2),
        "{stats:?}"
    );
    assert_eq!(pool.call_totals().get(&Op::LooksAlive), Some(&2));

    pool.forget(ResourceId(1));
    assert!(pool.call_stats(ResourceId(1)).is_empty());
    match pool.call(ResourceId(1), Op::LooksAlive, 5_000, span()) {
        Some(PoolOutcome::CallDone {
            ok: false, message, ..
        }) => {
            assert!(message.contains("not open in a host"), "{message}")
        }
        other => panic!("a call on a resource not open fails at once, got {other:?}"),
    }
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_supersedes_an_open_in_flight_and_drops_its_waiting_calls() {
    let (mut pool, mut reports) = Pool::new(common::host_config());
    let host = HostId(1);
    pool.start_host(host);
    drive(&mut pool, &mut reports, |seen| !seen.is_empty()).await;
    // The open is slow (chaos sleeps in it), so the Close arrives while it is in flight.
    let slow = open_of(
        1,
        "chaos",
        &[("entry", "open"), ("fault", "slow"), ("slow_ms", "300")],
    );
    let open = pool.begin_open(host, slow).expect("its host is up");
    let path = common::plugin("chaos");
    pool.start_open(host, open, &path);
    assert!(pool
        .call(ResourceId(1), Op::LooksAlive, 5_000, span())
        .is_none());
    pool.close(ResourceId(1), 2_000);
    // A second resource shows the pool moved on: its open and call answer, the first one's never.
    let open = pool
        .begin_open(host, open_of(2, "dummy", &[]))
        .expect("host up");
    pool.start_open(host, open, &common::plugin("dummy"));
    assert!(pool
        .call(ResourceId(2), Op::IsAlive, 5_000, span())
        .is_none());
    let outcomes = drive(&mut pool, &mut reports, |seen| calls_done(seen).len() == 2).await;
    let first: Vec<_> = outcomes
        .iter()
        .filter(
            |o| matches!(o, PoolOutcome::CallDone { resource, .. } if *resource == ResourceId(1)),
        )
        .collect();
    assert!(first.is_empty(), "the superseded open reported: {first:?}");
    assert_eq!(
        calls_done(&outcomes),
        vec![(Op::Open, true), (Op::IsAlive, true)]
    );
    // A call after the Close is not queued behind the dead open: it fails at once.
    assert!(matches!(
        pool.call(ResourceId(1), Op::LooksAlive, 5_000, span()),
        Some(PoolOutcome::CallDone { ok: false, .. })
    ));
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_a_lost_host_blamed_on_its_call_and_a_retired_host_is_not() {
    let (mut pool, mut reports) = Pool::new(common::host_config());
    pool.start_host(HostId(1));
    pool.start_host(HostId(2));
    drive(&mut pool, &mut reports, |seen| seen.len() == 2).await;
    let crash = open_of(1, "chaos", &[("entry", "looks_alive"), ("fault", "segv")]);
    let open = pool.begin_open(HostId(1), crash).expect("host up");
    pool.start_open(HostId(1), open, &common::plugin("chaos"));
    assert!(pool
        .call(ResourceId(1), Op::LooksAlive, 5_000, span())
        .is_none());
    let outcomes = drive(&mut pool, &mut reports, |seen| {
        seen.iter()
            .any(|o| matches!(o, PoolOutcome::HostLost { .. }))
    })
    .await;
    let lost = outcomes
        .iter()
        .find_map(|o| match o {
            PoolOutcome::HostLost {
                host,
                offender,
                died,
                ..
            } => Some((*host, *offender, died.is_some())),
            _ => None,
        })
        .expect("a lost host");
    assert_eq!(
        lost,
        (HostId(1), Some((ResourceId(1), Op::LooksAlive)), true)
    );
    // The crashed call is not also reported as a failed call: the death drives recovery.
    assert_eq!(calls_done(&outcomes), vec![(Op::Open, true)]);

    // Host 2 retires: its death is expected, so the pool reports nothing for it.
    pool.retire_host(HostId(2));
    pool.start_host(HostId(3));
    let outcomes = drive(&mut pool, &mut reports, |seen| {
        seen.iter()
            .any(|o| matches!(o, PoolOutcome::HostStarted { host, .. } if *host == HostId(3)))
    })
    .await;
    assert!(
        !outcomes
            .iter()
            .any(|o| matches!(o, PoolOutcome::HostLost { .. })),
        "{outcomes:?}"
    );
    pool.shutdown().await;
}
