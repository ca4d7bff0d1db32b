//! Health polling runs inside the host, end to end with a real rcm: the host runs LooksAlive and
//! IsAlive on the resource's own thread by the plan the engine handed it, a failed LooksAlive runs
//! IsAlive at once (in the host), rcm hears the failure and the checks' statistics, and a poll
//! interval changed while the resource is Online applies at once.

mod common;

use common::rcm::Rcm;
use common::wait_until;
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn s(v: &str) -> String {
    v.to_string()
}

/// A node with one Online chaos resource 'la' whose LooksAlive always fails (IsAlive is fine).
fn online_with_failing_looks_alive(tag: &str, properties: Vec<(String, String)>) -> Rcm {
    let rcm = Rcm::start(tag);
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("la"),
        type_name: s("chaos"),
        group: s("g"),
        params: vec![(s("entry"), s("looks_alive")), (s("fault"), s("error"))],
        properties,
    });
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("la", "Online", LIMIT);
    rcm
}

fn looks_alive_failures(rcm: &Rcm) -> usize {
    rcm.cluster_log()
        .matches("LooksAlive failed for resource 'la'")
        .count()
}

fn count(view: &Value, op: &str) -> u64 {
    view["call_stats"][op]["count"].as_u64().unwrap_or(0)
}

#[test]
fn a_failed_looks_alive_runs_is_alive_at_once_in_the_host_and_rcm_hears_it() {
    // IsAlive's own interval is far away: any IsAlive run is the one a failed LooksAlive asked for.
    let rcm = online_with_failing_looks_alive(
        "health-fail",
        vec![
            (s("LooksAlivePollInterval"), s("100")),
            (s("IsAlivePollInterval"), s("3600000")),
        ],
    );
    assert!(
        wait_until(LIMIT, || looks_alive_failures(&rcm) >= 2),
        "no LooksAlive failure reached rcm:\n{}",
        rcm.cluster_log()
    );
    let view = rcm.wait_resource("la", LIMIT, "with IsAlive statistics", |v| {
        count(v, "ISALIVE") >= 1 && count(v, "LOOKSALIVE") >= 1
    });
    assert_eq!(view["state"], "Online", "IsAlive passed: {view:#}");
    assert!(
        rcm.cluster_log().contains("running IsAlive."),
        "{}",
        rcm.cluster_log()
    );
    let status = rcm.ok(R::Status);
    assert!(
        status["calls_completed"]["LOOKSALIVE"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "the host's statistics count in the node's totals: {status:#}"
    );
}

#[test]
fn a_poll_interval_changed_while_online_applies_at_once() {
    // Default polling: the first LooksAlive is 5 s away.
    let rcm = online_with_failing_looks_alive("health-replan", vec![]);
    rcm.ok(R::ResourceSet {
        name: s("la"),
        properties: vec![(s("LooksAlivePollInterval"), s("50"))],
        params: vec![],
        unset_params: vec![],
    });
    // Five failures (every 50 ms) long before the old interval's first check would have run.
    assert!(
        wait_until(Duration::from_millis(3_000), || looks_alive_failures(&rcm)
            >= 5),
        "the new interval did not apply: {} failures\n{}",
        looks_alive_failures(&rcm),
        rcm.cluster_log()
    );
    assert_eq!(rcm.resource("la")["state"], "Online");
}
