//! Validation before commit, end to end with a real rcm and real throwaway hosts: `resource create`
//! and `resource set --param` run the type's `validate` (in a keelson-rhs, never in rcm) on the
//! whole parameter set first, and a refusal is one error naming the resource, the parameter and the
//! reason, a non-zero exit from the CLI, and no change (no record, no audit line claiming success,
//! nothing after a restart). A validate that hangs is killed at the resource's DeadlockTimeout and
//! refused; a secret the plugin echoes in its refusal reaches no reply, log, event or audit line.
//! On one node and on a one-node cluster (where the change would go through raft). The schema check
//! that runs before validate is unit-tested in rcm (core/validation_gate.rs) until plugins declare
//! schemas.

mod common;

use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
/// The DeadlockTimeout given to the resource whose validate hangs.
const HANG_DEADLOCK_MS: u64 = 400;
const SECRET: &str = "Hunter2-Secret-Value";

fn s(v: &str) -> String {
    v.to_string()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (s(k), s(v))).collect()
}

fn create(name: &str, type_name: &str, params: &[(&str, &str)], props: &[(&str, &str)]) -> R {
    R::ResourceCreate {
        name: s(name),
        type_name: s(type_name),
        group: s("g"),
        params: pairs(params),
        properties: pairs(props),
    }
}

fn set_params(name: &str, params: &[(&str, &str)]) -> R {
    R::ResourceSet {
        name: s(name),
        properties: vec![],
        params: pairs(params),
        unset_params: vec![],
    }
}

/// The names of every resource the node knows, sorted.
fn resource_names(rcm: &Rcm) -> Vec<String> {
    let mut names: Vec<String> = rcm
        .ok(R::ResourceList)
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

/// The one good resource, `web` (demo-service on port 8089), and nothing else.
fn assert_only_web(rcm: &Rcm, after: &str) {
    assert_eq!(resource_names(rcm), ["web"], "after {after}");
    let web = rcm.resource("web");
    assert_eq!(
        web["parameters"],
        serde_json::json!({"port": "8089"}),
        "after {after}"
    );
}

/// Every refusal the node must give, each checked for its words and for changing nothing.
fn refuse_bad_parameters(rcm: &Rcm) {
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(create("web", "demo-service", &[("port", "8089")], &[]));
    let cases: [(R, &[&str]); 4] = [
        (
            create("bad-port", "demo-service", &[("port", "0")], &[]),
            &[
                "resource 'bad-port'",
                "type 'demo-service'",
                "port 0",
                "1..=65535",
            ],
        ),
        (
            create("bad-colour", "demo-service", &[("colour", "red")], &[]),
            &["resource 'bad-colour'", "unknown parameter 'colour'"],
        ),
        (
            create("no-label", "journal", &[("journal", "/tmp/x.journal")], &[]),
            &["resource 'no-label'", "type 'journal'", "label: required"],
        ),
        (
            set_params("web", &[("port", "abc")]),
            &[
                "resource 'web'",
                "port",
                "\"abc\"",
                "expected a non-negative integer",
            ],
        ),
    ];
    for (request, words) in cases {
        let shown = format!("{request:?}");
        let message = rcm.refused(request);
        for word in words {
            assert!(
                message.contains(word),
                "{shown}: {message:?} lacks {word:?}"
            );
        }
        assert!(message.ends_with("nothing was changed"), "{message}");
        assert_only_web(rcm, &shown);
    }
}

/// A validate that never returns: refused once the resource's DeadlockTimeout has passed, its host
/// killed, nothing created.
fn refuse_hanging_validate(rcm: &Rcm) {
    let start = Instant::now();
    let message = rcm.refused(create(
        "stuck",
        "chaos",
        &[("entry", "validate"), ("fault", "hang")],
        &[("DeadlockTimeout", &HANG_DEADLOCK_MS.to_string())],
    ));
    let took = start.elapsed();
    for word in [
        "resource 'stuck'",
        "type 'chaos'",
        "hung",
        "VALIDATE",
        &format!("DeadlockTimeout {HANG_DEADLOCK_MS} ms"),
        "was killed",
    ] {
        assert!(message.contains(word), "{message:?} lacks {word:?}");
    }
    assert!(
        took >= Duration::from_millis(HANG_DEADLOCK_MS) && took < LIMIT,
        "refused after {took:?}"
    );
    let pid: u32 = message
        .split("validation host ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no host pid in {message:?}"));
    assert!(
        common::wait_until(LIMIT, || gone(pid)),
        "validation host {pid} still runs"
    );
    assert_only_web(rcm, "the hanging validate");
}

/// Whether process `pid` has exited (gone, or a zombie not reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// A plugin that echoes its secret in its refusal: the secret reaches no reply, log, event or
/// audit line.
fn refuse_without_echoing_a_secret(rcm: &Rcm) {
    let message = rcm.refused(create(
        "leaky",
        "chaos",
        &[
            ("entry", "validate"),
            ("fault", "error"),
            ("leak_password", SECRET),
        ],
        &[],
    ));
    assert!(
        message.contains("injected failure in validate (my password is ***)"),
        "{message}"
    );
    assert!(!message.contains(SECRET), "{message}");
    assert_only_web(rcm, "the leaky refusal");
}

/// What the data directory's logs say: no secret anywhere, and every refused request audited as
/// refused (never done).
fn check_logs(dir: &std::path::Path) {
    for file in ["cluster.log", "events.jsonl", "audit.log", "rcm.out"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(!text.contains(SECRET), "{file} holds the secret:\n{text}");
    }
    let audit = std::fs::read_to_string(dir.join("audit.log")).expect("an audit log");
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    for name in ["bad-port", "bad-colour", "no-label", "stuck", "leaky"] {
        let results: Vec<&str> = records
            .iter()
            .filter(|r| {
                let request = r["request"].as_str().unwrap_or_default();
                request.starts_with("ResourceCreate") && request.contains(&format!("'{name}'"))
            })
            .map(|r| r["result"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(results.len(), 2, "{name}: {results:?}");
        assert_eq!(results[0], "pending");
        assert!(results[1].starts_with("refused: "), "{name}: {results:?}");
    }
    let log = std::fs::read_to_string(dir.join("cluster.log")).unwrap_or_default();
    assert!(
        log.contains("refused: resource 'bad-port'"),
        "the refusal is in the cluster log:\n{log}"
    );
}

#[test]
fn bad_parameters_are_refused_before_anything_changes_on_one_node() {
    let rcm = Rcm::start("validate-node");
    refuse_bad_parameters(&rcm);
    refuse_hanging_validate(&rcm);
    refuse_without_echoing_a_secret(&rcm);
    // A good change still goes through, validated the same way.
    rcm.ok(set_params("web", &[("port", "8090")]));
    assert_eq!(rcm.resource("web")["parameters"]["port"], "8090");
    rcm.ok(set_params("web", &[("port", "8089")]));
    let dir = rcm.keep_dir();
    check_logs(&dir);
    let again = Rcm::start_in(dir);
    assert_only_web(&again, "a restart");
}

#[test]
fn the_cli_exits_non_zero_with_the_one_line_refusal() {
    let rcm = Rcm::start("validate-cli");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    let (ok, out, err) = rcm.cli(&[
        "resource",
        "create",
        "bad",
        "--type",
        "demo-service",
        "--group",
        "g",
        "--param",
        "port=70000",
    ]);
    assert!(!ok, "the CLI succeeded: {out}");
    assert!(
        err.contains("resource 'bad'") && err.contains("port 70000: it must be 1..=65535"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(resource_names(&rcm).is_empty());
}

#[test]
fn bad_parameters_are_refused_before_anything_is_proposed_in_a_cluster() {
    let rcm = Rcm::start_in_with_args(
        Rcm::new_dir("validate-cluster"),
        &["--node-name", "n1", "--raft-port", "0"],
    );
    rcm.ok(R::ClusterCreate {
        name: s("prod"),
        nodes: vec![(s("n1"), vec![s("127.0.0.1")])],
        virtual_subnet: None,
    });
    refuse_bad_parameters(&rcm);
    refuse_hanging_validate(&rcm);
    let dir: PathBuf = rcm.keep_dir();
    let again = Rcm::start_in_with_args(dir, &["--node-name", "n1", "--raft-port", "0"]);
    common::rcm::wait_for("the cluster node answers with its resources", LIMIT, || {
        again
            .request(R::ResourceList)
            .first()
            .is_some_and(|r| matches!(r, keelson_proto::ControlReply::Json(_)))
    });
    assert_only_web(&again, "a restart of the cluster node");
}
