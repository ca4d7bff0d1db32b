//! Pins the JSON of every control view (`keelson ... --json` prints it): one fixed value per view,
//! its exact text, and the round trip back. A renamed, reordered or retyped field fails here
//! before any user's script sees it. Also checks that every view's keys come out sorted, as the
//! `serde_json::Value` views that rcm sent before these structs did.

use keelson_proto::view::{
    CallStats, Conflict, Database, DatabaseState, Group, GroupSummary, Host, LastError, LogHealth,
    Member, PluginFile, PluginList, PropertyValue as V, Resource, ResourceSummary, Status,
    StatusGroup,
};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

fn s(v: &str) -> String {
    v.to_string()
}

fn map<T>(pairs: Vec<(&str, T)>) -> BTreeMap<String, T> {
    pairs.into_iter().map(|(k, v)| (s(k), v)).collect()
}

/// `view` serializes to exactly `golden`, `golden` parses back to `view`, and the keys are sorted
/// at every level (re-encoding through a sorted `serde_json::Value` changes nothing).
fn pinned<T: Serialize + DeserializeOwned + PartialEq + Debug>(view: &T, golden: &str) {
    let text = serde_json::to_string(view).unwrap();
    assert_eq!(
        text,
        golden,
        "the JSON of {} drifted",
        std::any::type_name::<T>()
    );
    assert_eq!(&serde_json::from_str::<T>(golden).unwrap(), view);
    let sorted = serde_json::from_str::<serde_json::Value>(&text)
        .unwrap()
        .to_string();
    assert_eq!(sorted, text, "keys are not in sorted order");
}

#[test]
fn resource_get() {
    let view = Resource {
        call_stats: map(vec![(
            "LOOKSALIVE",
            CallStats {
                count: 12,
                last_us: 41,
                max_us: 95,
                p50_us: 40,
                p99_us: 90,
            },
        )]),
        depends_on: vec![s("Disk")],
        group: s("FS"),
        host_pid: Some(4242),
        id: 17,
        last_errors: map(vec![(
            "ONLINE",
            LastError {
                at: s("2026-12-01T19:00:00.000Z"),
                message: s("port=0"),
                status: s("misconfigured"),
            },
        )]),
        name: s("Share"),
        owner_node: s("n1"),
        parameters: map(vec![("db_password", s("***")), ("path", s("/srv"))]),
        plugin: s("dummy"),
        properties: map(vec![
            ("DeadlockTimeout", V::Number(300000)),
            ("MonitorProcessId", V::Number(4242)),
            ("RestartAction", V::Text(s("Restart"))),
            ("SeparateMonitor", V::Flag(true)),
        ]),
        state: s("Online"),
        state_dir: Some(s("/var/lib/keelson/resources/17")),
        type_name: s("dummy"),
    };
    pinned(
        &view,
        r#"{"call_stats":{"LOOKSALIVE":{"count":12,"last_us":41,"max_us":95,"p50_us":40,"p99_us":90}},"depends_on":["Disk"],"group":"FS","host_pid":4242,"id":17,"last_errors":{"ONLINE":{"at":"2026-12-01T19:00:00.000Z","message":"port=0","status":"misconfigured"}},"name":"Share","owner_node":"n1","parameters":{"db_password":"***","path":"/srv"},"plugin":"dummy","properties":{"DeadlockTimeout":300000,"MonitorProcessId":4242,"RestartAction":"Restart","SeparateMonitor":true},"state":"Online","state_dir":"/var/lib/keelson/resources/17","type":"dummy"}"#,
    );
}

#[test]
fn resource_get_without_a_host() {
    let view = Resource {
        name: s("Disk"),
        properties: map(vec![("MonitorProcessId", V::Unset)]),
        state: s("Offline"),
        ..Resource::default()
    };
    pinned(
        &view,
        r#"{"call_stats":{},"depends_on":[],"group":"","host_pid":null,"id":0,"last_errors":{},"name":"Disk","owner_node":"","parameters":{},"plugin":"","properties":{"MonitorProcessId":null},"state":"Offline","state_dir":null,"type":""}"#,
    );
}

#[test]
fn resource_list() {
    let view = vec![
        ResourceSummary {
            group: s("FS"),
            host_pid: Some(7),
            name: s("Disk"),
            state: s("Online"),
            type_name: s("dummy"),
        },
        ResourceSummary {
            group: s("FS"),
            host_pid: None,
            name: s("Share"),
            state: s("OfflinePending"),
            type_name: s("chaos"),
        },
    ];
    pinned(
        &view,
        r#"[{"group":"FS","host_pid":7,"name":"Disk","state":"Online","type":"dummy"},{"group":"FS","host_pid":null,"name":"Share","state":"OfflinePending","type":"chaos"}]"#,
    );
}

#[test]
fn group_get() {
    let view = Group {
        name: s("FS"),
        owner_node: s("n1"),
        properties: map(vec![
            ("AutoFailbackType", V::Number(0)),
            ("FailoverThreshold", V::Text(s("nodes-1"))),
        ]),
        resources: vec![s("Disk"), s("Share")],
        state: s("PartialOnline"),
        failovers_in_period: 1,
        failover_threshold: 2,
        last_move: Some(keelson_proto::view::GroupMove {
            at: s("2026-12-01T15:00:00.000Z"),
            from: s("n2"),
            reason: s("failure"),
            to: s("n1"),
        }),
        left_failed: false,
        owner_state: s("PartialOnline"),
        owner_state_epoch: Some(7),
        placement_epoch: 7,
        preferred_owners: vec![s("n2"), s("n1")],
        releasing_from: s(""),
    };
    pinned(
        &view,
        r#"{"failover_threshold":2,"failovers_in_period":1,"last_move":{"at":"2026-12-01T15:00:00.000Z","from":"n2","reason":"failure","to":"n1"},"left_failed":false,"name":"FS","owner_node":"n1","owner_state":"PartialOnline","owner_state_epoch":7,"placement_epoch":7,"preferred_owners":["n2","n1"],"properties":{"AutoFailbackType":0,"FailoverThreshold":"nodes-1"},"releasing_from":"","resources":["Disk","Share"],"state":"PartialOnline"}"#,
    );
}

#[test]
fn group_list() {
    let view = vec![GroupSummary {
        name: s("FS"),
        owner_node: s("n1"),
        owner_state: s("Offline"),
        resources: vec![],
        state: s("Offline"),
    }];
    pinned(
        &view,
        r#"[{"name":"FS","owner_node":"n1","owner_state":"Offline","resources":[],"state":"Offline"}]"#,
    );
}

fn log(file: &str, write_failures: u64, last_error: Option<&str>) -> LogHealth {
    LogHealth {
        file: s(file),
        last_error: last_error.map(s),
        write_failures,
    }
}

#[test]
fn status_with_a_healthy_database() {
    let view = Status {
        calls_completed: map(vec![("ISALIVE", 3), ("LOOKSALIVE", 120)]),
        database: Database {
            note: None,
            reason: None,
            state: DatabaseState::Ok,
            unsaved_changes: 0,
        },
        groups: vec![StatusGroup {
            name: s("FS"),
            owner_node: s("n1"),
            resources: vec![Member {
                host_pid: Some(10),
                name: s("Disk"),
                state: s("Online"),
                type_name: s("dummy"),
            }],
            state: s("Online"),
        }],
        hosts: vec![
            Host {
                pid: Some(10),
                resources: vec![s("Disk")],
                separate: false,
            },
            Host {
                pid: None,
                resources: vec![],
                separate: true,
            },
        ],
        logs: vec![
            log("cluster.log", 0, None),
            log("events.jsonl", 0, None),
            log("audit.log", 0, None),
        ],
        node: s("n1"),
        pid: 4000,
    };
    pinned(
        &view,
        concat!(
            r#"{"calls_completed":{"ISALIVE":3,"LOOKSALIVE":120},"database":{"state":"ok","unsaved_changes":0},"#,
            r#""groups":[{"name":"FS","owner_node":"n1","resources":[{"host_pid":10,"name":"Disk","state":"Online","type":"dummy"}],"state":"Online"}],"#,
            r#""hosts":[{"pid":10,"resources":["Disk"],"separate":false},{"pid":null,"resources":[],"separate":true}],"#,
            r#""logs":[{"file":"cluster.log","last_error":null,"write_failures":0},{"file":"events.jsonl","last_error":null,"write_failures":0},{"file":"audit.log","last_error":null,"write_failures":0}],"#,
            r#""node":"n1","pid":4000}"#
        ),
    );
}

#[test]
fn status_with_the_database_unavailable_and_a_log_failing() {
    let view = Status {
        database: Database {
            note: Some(s(
                "changes are refused until the cluster database can be reopened",
            )),
            reason: Some(s("No space left on device (os error 28)")),
            state: DatabaseState::Unavailable,
            unsaved_changes: 2,
        },
        logs: vec![log("cluster.log", 5, Some("No space left on device"))],
        node: s("n1"),
        pid: 1,
        ..Status::default()
    };
    pinned(
        &view,
        concat!(
            r#"{"calls_completed":{},"database":{"note":"changes are refused until the cluster database can be reopened","#,
            r#""reason":"No space left on device (os error 28)","state":"unavailable","unsaved_changes":2},"#,
            r#""groups":[],"hosts":[],"logs":[{"file":"cluster.log","last_error":"No space left on device","write_failures":5}],"#,
            r#""node":"n1","pid":1}"#
        ),
    );
}

#[test]
fn plugin_list() {
    let view = PluginList {
        complete: false,
        conflicts: vec![Conflict {
            files: vec![s("/p/a.so"), s("/p/b.so")],
            type_name: s("x"),
        }],
        plugins: vec![
            PluginFile {
                name: Some(s("dummy")),
                path: s("/p/libkeelson_plugin_dummy.so"),
                probe_ms: Some(12),
                status: s("loaded"),
                types: vec![s("dummy")],
                ..PluginFile::default()
            },
            PluginFile {
                conflicting_types: vec![s("x")],
                error: Some(s("type 'x' is also provided by /p/b.so")),
                name: Some(s("a")),
                path: s("/p/a.so"),
                probe_ms: Some(3),
                schemas: vec![],
                status: s("conflict"),
                types: vec![s("x"), s("y")],
            },
            PluginFile {
                path: s("/p/h.so"),
                status: s("probing"),
                ..PluginFile::default()
            },
            PluginFile {
                error: Some(s("hung at load: 500 ms")),
                path: s("/p/hung.so"),
                probe_ms: Some(500),
                status: s("hung"),
                ..PluginFile::default()
            },
        ],
        probe_timeout_ms: 500,
    };
    pinned(
        &view,
        concat!(
            r#"{"complete":false,"conflicts":[{"files":["/p/a.so","/p/b.so"],"type":"x"}],"plugins":["#,
            r#"{"name":"dummy","path":"/p/libkeelson_plugin_dummy.so","probe_ms":12,"status":"loaded","types":["dummy"]},"#,
            r#"{"conflicting_types":["x"],"error":"type 'x' is also provided by /p/b.so","name":"a","path":"/p/a.so","probe_ms":3,"status":"conflict","types":["x","y"]},"#,
            r#"{"path":"/p/h.so","status":"probing","types":[]},"#,
            r#"{"error":"hung at load: 500 ms","path":"/p/hung.so","probe_ms":500,"status":"hung","types":[]}],"#,
            r#""probe_timeout_ms":500}"#
        ),
    );
}

#[test]
fn a_view_with_fields_missing_or_added_still_reads() {
    let status: Status = serde_json::from_str(r#"{"node":"n1","future":[1,2]}"#).unwrap();
    assert_eq!(status.node, "n1");
    assert_eq!(status.pid, 0, "a pid not said reads as 0");
    assert_eq!(status.database.state, DatabaseState::Ok);
    let plugins: PluginList = serde_json::from_str(r#"{"plugins":[]}"#).unwrap();
    assert!(
        plugins.complete,
        "a list that does not say is taken as complete"
    );
    let bad = serde_json::from_str::<Resource>(r#"{"properties":{"X":1.5}}"#);
    assert!(
        bad.is_err(),
        "a property that is no number, flag or text is refused"
    );
}

#[test]
fn cluster_get() {
    use keelson_proto::view::{ClusterProperties, ClusterProperty};
    let view = ClusterProperties {
        cluster: s("prod"),
        properties: map(vec![(
            "SameSubnetDelay",
            ClusterProperty {
                default: 1000,
                max: 2000,
                min: 250,
                value: 2000,
                text: None,
            },
        )]),
    };
    pinned(
        &view,
        r#"{"cluster":"prod","properties":{"SameSubnetDelay":{"default":1000,"max":2000,"min":250,"value":2000}}}"#,
    );
}

#[test]
fn cluster_quorum() {
    use keelson_proto::view::{Quorum, WitnessLease};
    let view = Quorum {
        cluster: s("lab"),
        lease: Some(WitnessLease {
            expires_in_ms: Some(1200),
            generation: 2,
            holder: s("n1"),
            released: false,
        }),
        model: s("Node and File Share Majority (file-share witness /srv/w)"),
        needed: 2,
        quorum_ok: true,
        verdict: s("in quorum: 3 of 3 votes"),
        voters: vec![s("n1"), s("n2"), s("witness")],
        votes: 3,
        votes_total: 3,
        witness_host: s("n1"),
        witness_id: 3,
    };
    pinned(
        &view,
        r#"{"cluster":"lab","lease":{"expires_in_ms":1200,"generation":2,"holder":"n1","released":false},"model":"Node and File Share Majority (file-share witness /srv/w)","needed":2,"quorum_ok":true,"verdict":"in quorum: 3 of 3 votes","voters":["n1","n2","witness"],"votes":3,"votes_total":3,"witness_host":"n1","witness_id":3}"#,
    );
}

#[test]
fn type_schema() {
    use keelson_types::{ParamKind, ParamSpec, TypeDefaults, TypeSchema};
    let spec = |name: &str, kind| ParamSpec {
        name: s(name),
        kind,
        required: false,
        default: None,
        secret: false,
        description: String::new(),
    };
    let schema = TypeSchema {
        declared: true,
        params: vec![
            ParamSpec {
                required: true,
                description: s("TCP port"),
                ..spec(
                    "port",
                    ParamKind::Integer {
                        min: Some(1),
                        max: Some(65535),
                    },
                )
            },
            ParamSpec {
                default: Some(s("safe")),
                ..spec(
                    "mode",
                    ParamKind::Enum {
                        options: vec![s("fast"), s("safe")],
                    },
                )
            },
            ParamSpec {
                secret: true,
                ..spec("password", ParamKind::String)
            },
        ],
        defaults: TypeDefaults {
            pending_timeout_ms: Some(10000),
            ..TypeDefaults::default()
        },
    };
    pinned(
        &keelson_proto::view::TypeSchemaView::of("web", &schema),
        concat!(
            r#"{"declared":true,"defaults":{"PendingTimeout":10000},"params":["#,
            r#"{"description":"TCP port","max":65535,"min":1,"name":"port","required":true,"secret":false,"type":"integer"},"#,
            r#"{"default":"safe","name":"mode","options":["fast","safe"],"required":false,"secret":false,"type":"enum"},"#,
            r#"{"name":"password","required":false,"secret":true,"type":"string"}],"type":"web"}"#
        ),
    );
}
