//! The cluster-wide properties on a one-node cluster: `cluster get` shows WSFC's defaults and
//! ranges, `cluster set` commits a change through raft that survives a restart, values out of
//! range, unknown names and non-numbers are refused with the property named and nothing committed,
//! and values below WSFC's ranges are accepted only with the test-only switch
//! (`TestOnlyLowerLimits=1`). Also the real `keelson cluster get/set` on it. Not multi-node
//! replication of the value (t15's machinery; the state machine's tests in crates/raft).

mod common;

use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn start_in(dir: PathBuf) -> Rcm {
    Rcm::start_in_with_args(dir, &["--node-name", "n1", "--raft-port", "0"])
}

fn set(pairs: &[(&str, &str)]) -> R {
    R::ClusterSet {
        properties: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn get_all(rcm: &Rcm) -> Value {
    rcm.ok(R::ClusterGet { names: vec![] })
}

fn applied(rcm: &Rcm) -> u64 {
    rcm.ok(R::ClusterStatus)["applied_index"].as_u64().unwrap()
}

/// (value, default, min, max) of one property in a `cluster get` view.
fn shown(view: &Value, name: &str) -> (u64, u64, u64, u64) {
    let p = &view["properties"][name];
    let n = |k: &str| {
        p[k].as_u64()
            .unwrap_or_else(|| panic!("{name}.{k} in {view}"))
    };
    (n("value"), n("default"), n("min"), n("max"))
}

#[test]
fn cluster_properties_have_wsfcs_defaults_are_committed_and_refuse_bad_values() {
    let rcm = start_in(Rcm::new_dir("t16"));
    // Not in a cluster: the same refusal as cluster status, for both.
    for request in [
        R::ClusterGet { names: vec![] },
        set(&[("SameSubnetDelay", "2000")]),
    ] {
        let e = rcm.refused(request);
        assert!(e.contains("not in a cluster"), "{e}");
    }
    rcm.ok(R::ClusterCreate {
        name: "prod".into(),
        nodes: vec![("n1".into(), vec!["127.0.0.1".into()])],
        virtual_subnet: None,
    });

    let view = get_all(&rcm);
    assert_eq!(view["cluster"], "prod");
    assert_eq!(shown(&view, "SameSubnetDelay"), (1000, 1000, 250, 2000));
    assert_eq!(shown(&view, "SameSubnetThreshold"), (5, 5, 3, 10));
    assert_eq!(shown(&view, "CrossSubnetDelay"), (1000, 1000, 250, 4000));
    assert_eq!(shown(&view, "CrossSubnetThreshold"), (5, 5, 3, 10));
    assert_eq!(shown(&view, "TestOnlyLowerLimits"), (0, 0, 0, 1));
    assert_eq!(view["properties"].as_object().unwrap().len(), 9, "{view}");

    let before = applied(&rcm);
    let done = rcm.ok(set(&[("SameSubnetDelay", "2000")]));
    assert!(
        done.as_str().unwrap().contains("SameSubnetDelay=2000"),
        "{done}"
    );
    assert_eq!(applied(&rcm), before + 1, "one committed entry");
    let one = rcm.ok(R::ClusterGet {
        names: vec!["SameSubnetDelay".into()],
    });
    assert_eq!(shown(&one, "SameSubnetDelay"), (2000, 1000, 250, 2000));
    assert_eq!(one["properties"].as_object().unwrap().len(), 1, "{one}");
    // Raft follows: restarted with heartbeats every Delay / 2 and an election timeout past the
    // slower route kind's (Threshold + 1) x Delay + 2 heartbeats + Delay; and it still commits.
    let start = std::time::Instant::now();
    let status = loop {
        let status = rcm.ok(R::ClusterStatus);
        if status["raft_heartbeat_ms"] == 1000 {
            break status;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "raft never took the new timing: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(
        (
            status["raft_election_min_ms"].as_u64(),
            status["raft_election_max_ms"].as_u64()
        ),
        (Some(6 * 2000 + 2 * 1000 + 2000), Some(16000 + 2 * 2000)),
        "{status}"
    );
    rcm.ok(R::GroupCreate {
        name: "after-the-retiming".into(),
        properties: vec![],
    });
    // The owner's report of the group's state is committed in the background after the create:
    // wait for it, so that nothing else commits while refusals are counted.
    let start = std::time::Instant::now();
    loop {
        let g = rcm.group_json("after-the-retiming");
        if g["owner_state_epoch"] == g["placement_epoch"] {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the group's owner never reported its state: {g}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // Refused with the property, the value and the range named; nothing committed.
    let at = applied(&rcm);
    for (request, want) in [
        (
            set(&[("SameSubnetDelay", "2001")]),
            "SameSubnetDelay 2001 is out of range: it must be 250..2000 ms",
        ),
        (
            // All or nothing: the good one is not committed either.
            set(&[("CrossSubnetDelay", "3000"), ("SameSubnetThreshold", "2")]),
            "SameSubnetThreshold 2 is out of range: it must be 3..10",
        ),
        (
            set(&[("SameSubnetDelay", "100")]),
            "SameSubnetDelay 100 is out of range: it must be 250..2000 ms",
        ),
        (
            set(&[("SameSubnetDelay", "soon")]),
            "SameSubnetDelay 'soon' is not a whole number: it must be 250..2000 ms",
        ),
        (
            set(&[("SameSubnetDelayy", "1000")]),
            "unknown cluster property 'SameSubnetDelayy'",
        ),
        (
            set(&[("TestOnlyLowerLimits", "yes")]),
            "TestOnlyLowerLimits 'yes' is neither 0 nor 1",
        ),
        (set(&[]), "nothing to set"),
    ] {
        let e = rcm.refused(request);
        assert!(e.starts_with(want), "{e} (wanted {want})");
    }
    let e = rcm.refused(R::ClusterGet {
        names: vec!["Nope".into()],
    });
    assert!(e.starts_with("unknown cluster property 'Nope'"), "{e}");
    assert_eq!(applied(&rcm), at, "a refusal commits nothing");
    let view = get_all(&rcm);
    assert_eq!(shown(&view, "CrossSubnetDelay").0, 1000, "{view}");
    assert_eq!(shown(&view, "SameSubnetDelay").0, 2000, "{view}");

    // Lower values only with the test-only switch, which lowers the ranges shown.
    rcm.ok(set(&[
        ("SameSubnetDelay", "100"),
        ("TestOnlyLowerLimits", "1"),
    ]));
    let view = get_all(&rcm);
    assert_eq!(shown(&view, "SameSubnetDelay"), (100, 1000, 10, 2000));
    assert_eq!(shown(&view, "TestOnlyLowerLimits"), (1, 0, 0, 1));
    let warned = common::wait_until(Duration::from_secs(10), || {
        rcm.cluster_log()
            .contains("TestOnlyLowerLimits=1 allows heartbeat settings below WSFC's ranges")
    });
    assert!(warned, "the switch is warned about in the cluster log");
    // Switching it off while a value is below WSFC's range is refused; with the value, allowed.
    let at = applied(&rcm);
    let e = rcm.refused(set(&[("TestOnlyLowerLimits", "0")]));
    assert!(
        e.starts_with("TestOnlyLowerLimits=0 is refused while SameSubnetDelay is below"),
        "{e}"
    );
    assert_eq!(applied(&rcm), at);
    rcm.ok(set(&[
        ("TestOnlyLowerLimits", "0"),
        ("SameSubnetDelay", "2000"),
    ]));
    rcm.ok(set(&[("CrossSubnetThreshold", "7")]));

    // A restart comes back with them from the cluster database.
    let dir = rcm.keep_dir();
    let rcm = start_in(dir.clone());
    let view = get_all(&rcm);
    assert_eq!(shown(&view, "SameSubnetDelay"), (2000, 1000, 250, 2000));
    assert_eq!(shown(&view, "CrossSubnetThreshold"), (7, 5, 3, 10));
    assert_eq!(shown(&view, "TestOnlyLowerLimits"), (0, 0, 0, 1));

    // The CLI: a table, --json, a set, and a refusal as one line with a non-zero exit.
    let (ok, out, err) = rcm.cli(&["cluster", "get"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("cluster prod\n"), "{out}");
    let row: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("SameSubnetDelay "))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(row, ["SameSubnetDelay", "2000", "1000", "250..2000", "ms"]);
    let (ok, out, err) = rcm.cli(&["cluster", "get", "CrossSubnetDelay", "--json"]);
    assert!(ok, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown(&json, "CrossSubnetDelay"), (1000, 1000, 250, 4000));
    let (ok, out, err) = rcm.cli(&["cluster", "set", "CrossSubnetDelay=4000"]);
    assert!(ok && out.contains("CrossSubnetDelay=4000"), "{out}{err}");
    let at = applied(&rcm);
    let (ok, out, err) = rcm.cli(&["cluster", "set", "CrossSubnetDelay=4001"]);
    assert!(!ok, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("CrossSubnetDelay 4001 is out of range: it must be 250..4000 ms"),
        "{err}"
    );
    assert_eq!(applied(&rcm), at);
    drop(rcm);
    let _ = std::fs::remove_dir_all(&dir);
}
