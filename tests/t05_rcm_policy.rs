//! Policy, ordering, persistence, authorisation and bad input with a real keelson-rcm: the default
//! restart policy (first failure restarts, second within RestartPeriod fails the group, event 1205),
//! RestartAction=Restart keeping the group in place (post [8]), dependency order in the cluster log,
//! kill -9 and restart bringing back what was Online with no orphan host, an unauthorised peer
//! refused and audited, and every kind of bad input refused with one clear error and no change.

mod common;

use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(15);

fn s(v: &str) -> String {
    v.to_string()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (s(k), s(v))
}

fn dummy(rcm: &Rcm, name: &str, group: &str, props: &[(&str, &str)]) {
    let properties = props.iter().map(|(k, v)| pair(k, v)).collect();
    rcm.ok(R::ResourceCreate {
        name: s(name),
        type_name: s("dummy"),
        group: s(group),
        params: vec![],
        properties,
    });
}

fn event_ids(rcm: &Rcm) -> Vec<u64> {
    rcm.events()
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect()
}

#[test]
fn default_policy_restarts_once_then_fails_the_group() {
    let rcm = Rcm::start("policy-default");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    dummy(&rcm, "flaky", "g", &[("RestartDelay", "20")]);
    dummy(&rcm, "steady", "g", &[]);
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_group("g", "Online", LIMIT);

    rcm.ok(R::ResourceFail { name: s("flaky") });
    assert!(common::wait_until(LIMIT, || rcm
        .cluster_log()
        .contains("Resource 'flaky' will be restarted")));
    rcm.wait_state("flaky", "Online", LIMIT);
    rcm.wait_group("g", "Online", LIMIT);
    assert!(
        !event_ids(&rcm).contains(&1205),
        "one failure must not fail the group"
    );

    rcm.ok(R::ResourceFail { name: s("flaky") });
    rcm.wait_group("g", "Failed", LIMIT);
    assert!(event_ids(&rcm).contains(&1069), "{:?}", rcm.events());
    let e1205 = rcm
        .events()
        .into_iter()
        .find(|e| e["id"] == 1205)
        .expect("event 1205");
    assert_eq!(e1205["group"], "g");
    rcm.wait_state("steady", "Offline", LIMIT);
}

#[test]
fn restart_action_restart_keeps_the_group_in_place() {
    let rcm = Rcm::start("policy-restart");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    dummy(
        &rcm,
        "optional",
        "g",
        &[("RestartAction", "Restart"), ("RestartDelay", "20")],
    );
    dummy(&rcm, "critical", "g", &[]);
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_group("g", "Online", LIMIT);
    rcm.ok(R::ResourceFail {
        name: s("optional"),
    });
    rcm.wait_state("optional", "Online", LIMIT);
    rcm.ok(R::ResourceFail {
        name: s("optional"),
    });
    rcm.wait_state("optional", "Failed", LIMIT);
    rcm.wait_group("g", "PartialOnline", LIMIT);
    assert_eq!(rcm.resource("critical")["state"], "Online");
    assert!(
        !event_ids(&rcm).contains(&1205),
        "the group must not fail because of 'optional'"
    );
}

#[test]
fn dependencies_order_online_and_offline_in_the_cluster_log() {
    let rcm = Rcm::start("deps");
    rcm.ok(R::GroupCreate {
        name: s("sql"),
        properties: vec![],
    });
    dummy(&rcm, "disk", "sql", &[]);
    dummy(&rcm, "ip", "sql", &[]);
    rcm.ok(R::ResourceCreate {
        name: s("engine"),
        type_name: s("dummy"),
        group: s("sql"),
        params: vec![pair("online_delay_ms", "30")],
        properties: vec![],
    });
    rcm.ok(R::ResourceDepend {
        name: s("engine"),
        on: s("disk"),
    });
    rcm.ok(R::ResourceDepend {
        name: s("engine"),
        on: s("ip"),
    });
    rcm.ok(R::GroupOnline { name: s("sql") });
    rcm.wait_group("sql", "Online", LIMIT);
    rcm.ok(R::GroupOffline { name: s("sql") });
    rcm.wait_group("sql", "Offline", LIMIT);

    let log = rcm.cluster_log();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{log}"))
    };
    let engine_starts = at("Resource 'engine' state Offline -> OnlinePending");
    assert!(at("Resource 'disk' state OnlinePending -> Online") < engine_starts);
    assert!(at("Resource 'ip' state OnlinePending -> Online") < engine_starts);
    // Independent providers start together: both are pending before either is online.
    assert!(
        at("Resource 'ip' state Offline -> OnlinePending")
            < at("Resource 'disk' state OnlinePending -> Online")
    );
    let engine_down = at("Resource 'engine' state OfflinePending -> Offline");
    assert!(engine_down < at("Resource 'disk' state Online -> OfflinePending"));
    assert!(engine_down < at("Resource 'ip' state Online -> OfflinePending"));
}

#[test]
fn kill_dash_nine_and_restart_restore_online_with_no_orphan_host() {
    let mut rcm = Rcm::start("restore");
    rcm.ok(R::GroupCreate {
        name: s("up"),
        properties: vec![],
    });
    rcm.ok(R::GroupCreate {
        name: s("down"),
        properties: vec![],
    });
    dummy(&rcm, "a", "up", &[]);
    dummy(&rcm, "b", "up", &[("SeparateMonitor", "true")]);
    dummy(&rcm, "c", "down", &[]);
    rcm.ok(R::GroupOnline { name: s("up") });
    rcm.wait_group("up", "Online", LIMIT);
    let hosts: Vec<u32> = rcm.ok(R::Status)["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["pid"].as_u64().map(|p| p as u32))
        .collect();
    assert_eq!(hosts.len(), 2, "a default host and b's own");
    rcm.kill9();
    assert!(
        common::wait_until(LIMIT, || hosts
            .iter()
            .all(|p| !keelson_sys::process::is_alive(*p))),
        "orphan hosts left: {hosts:?}"
    );
    let rcm = Rcm::start_in(rcm.keep_dir());
    rcm.wait_group("up", "Online", LIMIT);
    assert_eq!(rcm.group_state("down"), "Offline");
    let b = rcm.resource("b");
    assert_eq!(b["properties"]["SeparateMonitor"], true);
    assert_ne!(b["host_pid"], rcm.resource("a")["host_pid"]);
    assert!(!hosts.contains(&(b["host_pid"].as_u64().unwrap() as u32)));
}

#[test]
fn bad_input_is_refused_with_one_clear_error_and_changes_nothing() {
    let rcm = Rcm::start("badinput");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    dummy(&rcm, "a", "g", &[]);
    dummy(&rcm, "b", "g", &[]);
    rcm.ok(R::ResourceDepend {
        name: s("a"),
        on: s("b"),
    });
    rcm.ok(R::ResourceOnline { name: s("a") });
    rcm.wait_state("a", "Online", LIMIT);
    let snapshot = |rcm: &Rcm| -> Vec<Value> {
        vec![rcm.ok(R::Status), rcm.resource("a"), rcm.resource("b")]
            .into_iter()
            .map(|mut v| {
                v.as_object_mut().map(|o| o.remove("call_stats"));
                v
            })
            .collect()
    };
    let before = snapshot(&rcm);
    let cases: Vec<(R, &str)> = vec![
        (
            R::ResourceCreate {
                name: s("x"),
                type_name: s("nope"),
                group: s("g"),
                params: vec![],
                properties: vec![],
            },
            "unknown resource type 'nope'",
        ),
        (
            R::ResourceCreate {
                name: s("x"),
                type_name: s("dummy"),
                group: s("nogroup"),
                params: vec![],
                properties: vec![],
            },
            "nogroup",
        ),
        (
            R::ResourceCreate {
                name: s("a"),
                type_name: s("dummy"),
                group: s("g"),
                params: vec![],
                properties: vec![],
            },
            "'a'",
        ),
        (
            R::ResourceSet {
                name: s("a"),
                properties: vec![pair("DeadlockTimeout", "abc")],
                params: vec![],
                unset_params: vec![],
            },
            "DeadlockTimeout=abc",
        ),
        (
            R::ResourceSet {
                name: s("a"),
                properties: vec![pair("RestartThreshold", "-1")],
                params: vec![],
                unset_params: vec![],
            },
            "RestartThreshold=-1",
        ),
        (
            R::ResourceSet {
                name: s("a"),
                properties: vec![pair("LooksAlivePollInterval", "10"), pair("Colour", "red")],
                params: vec![],
                unset_params: vec![],
            },
            "Colour",
        ),
        (
            R::ResourceSet {
                name: s("a"),
                properties: vec![pair("MonitorProcessId", "1")],
                params: vec![],
                unset_params: vec![],
            },
            "MonitorProcessId",
        ),
        (R::ResourceOnline { name: s("ghost") }, "'ghost'"),
        (R::GroupOnline { name: s("phantom") }, "'phantom'"),
        (
            R::ResourceDepend {
                name: s("b"),
                on: s("a"),
            },
            "cycle",
        ),
        (
            R::ResourceDepend {
                name: s("a"),
                on: s("a"),
            },
            "itself",
        ),
        (R::ResourceDelete { name: s("a") }, "Online"),
        (R::GroupDelete { name: s("g") }, "g"),
        (
            R::GroupCreate {
                name: s("g"),
                properties: vec![],
            },
            "'g'",
        ),
        (
            R::GroupCreate {
                name: s("h"),
                properties: vec![pair("AutoFailbackType", "Sometimes")],
            },
            "AutoFailbackType=Sometimes",
        ),
    ];
    for (request, expect) in cases {
        let shown = format!("{request:?}");
        let message = rcm.refused(request);
        assert!(
            message.contains(expect),
            "{shown}: {message:?} does not mention {expect:?}"
        );
        assert!(!message.contains('\n'), "one line: {message:?}");
        assert_eq!(snapshot(&rcm), before, "{shown} changed something");
    }
    assert!(rcm
        .ok(R::GroupList)
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["name"] != "h"));
    // Refused changes are audited too.
    let audit = std::fs::read_to_string(rcm.dir.join("audit.log")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("refused: ") && l.contains("DeadlockTimeout=abc")),
        "{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("done: ") && l.contains("GroupCreate")),
        "{audit}"
    );
}

#[test]
fn an_unauthorised_peer_is_refused_and_audited() {
    if keelson_sys::process::geteuid() != 0 {
        assert!(
            !common::in_ci(),
            "CI runs as root: this test must run there"
        );
        println!("skipping: needs root to act as another user");
        return;
    }
    let rcm = Rcm::start("authz");
    let socket = rcm.dir.join("rcm.sock");
    // Open the socket file to everyone so the kernel lets `nobody` connect; rcm must still refuse.
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    std::fs::set_permissions(
        &rcm.dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = std::process::Command::new(common::artefact("keelson"))
        .args(["--data-dir"])
        .arg(&rcm.dir)
        .args(["group", "create", "intruders"])
        .env_remove("KEELSON_DATA_DIR")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody must be refused: {stderr}");
    assert!(stderr.contains("permission denied: uid 65534"), "{stderr}");
    assert!(
        rcm.ok(R::GroupList).as_array().unwrap().is_empty(),
        "nothing changed"
    );
    let audit = std::fs::read_to_string(rcm.dir.join("audit.log")).unwrap();
    let line = audit
        .lines()
        .find(|l| l.contains("\"uid\":65534"))
        .unwrap_or_else(|| panic!("not audited:\n{audit}"));
    assert!(
        line.contains("\"allowed\":false") && line.contains("intruders"),
        "{line}"
    );
}

use std::os::unix::process::CommandExt;

#[test]
fn separate_monitor_set_by_hand_moves_the_resource_at_its_next_online() {
    let rcm = Rcm::start("sepmon-hand");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    dummy(&rcm, "a", "g", &[]);
    dummy(&rcm, "b", "g", &[]);
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_group("g", "Online", LIMIT);
    let shared = rcm.resource("b")["host_pid"].clone();
    assert_eq!(rcm.resource("a")["host_pid"], shared);

    rcm.ok(R::ResourceSet {
        name: s("a"),
        properties: vec![pair("SeparateMonitor", "true")],
        params: vec![],
        unset_params: vec![],
    });
    assert_eq!(rcm.resource("a")["properties"]["SeparateMonitor"], true);
    rcm.ok(R::ResourceOffline { name: s("a") });
    rcm.wait_state("a", "Offline", LIMIT);
    rcm.ok(R::ResourceOnline { name: s("a") });
    let a = rcm.wait_resource("a", LIMIT, "Online in a host of its own", |v| {
        v["state"] == "Online" && v["host_pid"] != shared && !v["host_pid"].is_null()
    });
    assert_eq!(
        rcm.resource("b")["host_pid"],
        shared,
        "b stays where it was"
    );
    let status = rcm.ok(R::Status);
    let own = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["pid"] == a["host_pid"])
        .cloned();
    assert_eq!(
        own.as_ref().map(|h| h["separate"].clone()),
        Some(Value::Bool(true)),
        "{status}"
    );
}
