//! Declared plugin parameters end to end, against real keelson-rhs hosts and a real keelson-rcm:
//! `keelson plugin describe` and `plugin list --json` show each type's schema; a plugin compiled
//! against a frozen copy of the original ABI-1 layout still loads and runs, its JSON untouched; a
//! bad declaration refuses the whole plugin at load with one line naming the type and the
//! parameter; the host refuses bad parameters at open naming them, before the plugin runs, and a C
//! plugin reads the checked, defaulted parameters with keelson_param alone. Not rcm's own check at
//! create and set (the validate tests) nor `plugin test`.

mod common;

use common::rcm::{wait_for, Rcm};
use keelson_host::{Host, HostEvent, HostEvents, OpenSpec};
use keelson_plugin_c_example::{ABI1_LEGACY_PLUGIN, BAD_DECLARATION_PLUGIN};
use keelson_proto::ControlRequest as R;
use keelson_types::{Op, ResourceId};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn s(v: &str) -> String {
    v.to_string()
}

/// A plugin directory with dummy, c-example, the ABI-1 plugin and the badly declared one, each
/// under a `libkeelson_plugin_` name so rcm probes it.
fn plugin_dir() -> PathBuf {
    let dir = Rcm::new_dir("schema-plugins");
    for (from, to) in [
        (common::plugin("dummy"), "libkeelson_plugin_dummy.so"),
        (
            common::plugin("c-example"),
            "libkeelson_plugin_c_example.so",
        ),
        (s(ABI1_LEGACY_PLUGIN), "libkeelson_plugin_c_legacy.so"),
        (s(BAD_DECLARATION_PLUGIN), "libkeelson_plugin_c_bad_decl.so"),
    ] {
        std::fs::copy(&from, dir.join(to)).unwrap_or_else(|e| panic!("copy {from}: {e}"));
    }
    dir
}

/// rcm on `plugins`, once every probe has reported; its plugin list then.
fn start(tag: &str, plugins: &std::path::Path) -> (Rcm, Value) {
    let rcm = Rcm::start_with(Rcm::new_dir(tag), plugins, &[], &[]);
    wait_for("every plugin probe reports", LIMIT, || {
        rcm.plugins()["complete"] == true
    });
    let list = rcm.plugins();
    (rcm, list)
}

/// The plugin list entry of the file named `file`.
fn entry<'a>(list: &'a Value, file: &str) -> &'a Value {
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"].as_str().unwrap_or("").ends_with(file))
        .unwrap_or_else(|| panic!("{file} is not listed: {list:#}"))
}

#[test]
fn describe_and_list_show_every_declared_parameter_and_the_type_defaults() {
    let plugins = plugin_dir();
    let (rcm, list) = start("schema-describe", &plugins);

    // plugin list --json: each type's schema, absent fields left out.
    let c = entry(&list, "libkeelson_plugin_c_example.so");
    assert_eq!(c["status"], "loaded", "{c:#}");
    assert_eq!(
        c["schemas"],
        json!([{
            "declared": true,
            "defaults": {"LooksAlivePollInterval": 2000, "PendingTimeout": 10000},
            "params": [
                {"default": "c-example resource online",
                 "description": "the line online writes to the cluster log",
                 "name": "message", "required": false, "secret": false, "type": "string"},
                {"default": "info", "description": "the level of that line", "name": "log_level",
                 "options": ["info", "warn"], "required": false, "secret": false, "type": "enum"},
                {"default": "0", "description": "is_alive fails after this many checks (0: never)",
                 "max": 1000000, "min": 0, "name": "fail_after", "required": false,
                 "secret": false, "type": "integer"}
            ],
            "type": "c-example"
        }])
    );
    let dummy = &entry(&list, "libkeelson_plugin_dummy.so")["schemas"][0];
    assert_eq!(dummy["declared"], true);
    let names: Vec<&str> = dummy["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "online_delay_ms",
            "offline_delay_ms",
            "fail_looks_alive",
            "fail_is_alive"
        ]
    );
    assert_eq!(
        dummy["params"][0],
        json!({"default": "0", "description": "time spent inside online, in ms", "min": 0,
               "name": "online_delay_ms", "required": false, "secret": false, "type": "integer"})
    );
    let (ok, out, err) = rcm.cli(&["plugin", "list", "--json"]);
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        entry(&cli, "libkeelson_plugin_c_example.so")["schemas"],
        c["schemas"]
    );

    // plugin describe: the table and the defaults.
    let (ok, out, err) = rcm.cli(&["plugin", "describe", "c-example"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("type c-example (plugin c-example, "),
        "{out}"
    );
    for line in [
        "  NAME       TYPE                 REQUIRED  DEFAULT                    SECRET  DESCRIPTION",
        "  message    string               no        c-example resource online  no      the line online writes to the cluster log",
        "  log_level  enum info|warn       no        info                       no      the level of that line",
        "  fail_after integer 0..=1000000  no        0                          no      is_alive fails after this many checks (0: never)",
        "type defaults (where a resource sets none): LooksAlivePollInterval 2000 ms, PendingTimeout 10000 ms",
    ] {
        assert!(
            out.lines().any(|l| l.split_whitespace().eq(line.split_whitespace())),
            "no line like {line:?} in:\n{out}"
        );
    }
    let (ok, out, err) = rcm.cli(&["plugin", "describe", "dummy", "--json"]);
    assert!(ok, "{err}");
    let described: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(described["type"], "dummy");
    assert_eq!(described["plugin"], "dummy");
    assert_eq!(described["params"], dummy["params"]);
    assert!(described["path"]
        .as_str()
        .unwrap()
        .ends_with("/libkeelson_plugin_dummy.so"));
    let (ok, out, _) = rcm.cli(&["plugin", "describe", "c-legacy"]);
    assert!(ok);
    assert!(
        out.contains(
            "parameters: not declared (any are accepted; the type's own validate decides)"
        ),
        "{out}"
    );

    // An unknown type: one error naming it, a non-zero exit, nothing on stdout.
    let (ok, out, err) = rcm.cli(&["plugin", "describe", "nope"]);
    assert!(!ok && out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("keelson: no plugin provides resource type 'nope' (types: "),
        "{err}"
    );
    drop(rcm);
    let _ = std::fs::remove_dir_all(&plugins);
}

#[test]
fn an_abi1_plugin_still_loads_and_runs_and_a_bad_declaration_is_refused_at_load() {
    let plugins = plugin_dir();
    let (rcm, list) = start("schema-legacy", &plugins);

    let bad = entry(&list, "libkeelson_plugin_c_bad_decl.so");
    assert_eq!(bad["status"], "failed", "{bad:#}");
    let error = bad["error"].as_str().unwrap();
    assert!(
        error.ends_with("libkeelson_plugin_c_bad_decl.so: type 'c-bad-decl': parameter 'port' is declared twice"),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error:?}");

    let legacy = entry(&list, "libkeelson_plugin_c_legacy.so");
    assert_eq!(legacy["status"], "loaded", "{legacy:#}");
    assert_eq!(legacy["types"], json!(["c-legacy"]));
    assert_eq!(legacy["schemas"][0]["declared"], false);

    // It runs: undeclared, so any parameter reaches it, as JSON, unchanged.
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("old"),
        type_name: s("c-legacy"),
        group: s("g"),
        params: vec![(s("colour"), s("red"))],
        properties: vec![],
    });
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("old", "Online", LIMIT);
    wait_for("the ABI-1 plugin logs its online", LIMIT, || {
        rcm.cluster_log()
            .contains(r#"c-legacy online with {"colour":"red"}"#)
    });
    drop(rcm);
    let _ = std::fs::remove_dir_all(&plugins);
}

#[test]
fn a_c_plugin_gets_checked_and_defaulted_parameters_through_rcm() {
    let plugins = plugin_dir();
    let (rcm, _) = start("schema-c", &plugins);
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    for (name, params) in [
        (
            "said",
            vec![
                (s("message"), s("hello from C")),
                (s("log_level"), s("warn")),
            ],
        ),
        ("plain", vec![]),
    ] {
        rcm.ok(R::ResourceCreate {
            name: s(name),
            type_name: s("c-example"),
            group: s("g"),
            params,
            properties: vec![],
        });
    }
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("said", "Online", LIMIT);
    rcm.wait_state("plain", "Online", LIMIT);
    // The given message at the given level; the declared default where none was given (without
    // it the plugin's validate2 refuses an empty message).
    wait_for("both online lines", LIMIT, || {
        let log = rcm.cluster_log();
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("hello from C"))
            && log
                .lines()
                .any(|l| l.contains("INFO") && l.contains("c-example resource online"))
    });
    // Its online reports progress 100 (set_status): the cluster log shows it under its name.
    wait_for("the progress line", LIMIT, || {
        rcm.cluster_log()
            .lines()
            .any(|l| l.contains("[RHS] [said] progress 100% (set_status)"))
    });
    drop(rcm);
    let _ = std::fs::remove_dir_all(&plugins);
}

async fn spawn() -> (Host, HostEvents) {
    Host::spawn(&common::host_config())
        .await
        .expect("host spawns")
}

fn c_example(id: u64, params: &str) -> OpenSpec {
    OpenSpec::new(
        ResourceId(id),
        &format!("c{id}"),
        &common::plugin("c-example"),
        "c-example",
    )
    .params(params)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_refuses_bad_parameters_at_open_naming_them_before_the_plugin_runs() {
    let (host, mut events) = spawn().await;
    let cases = [
        (
            r#"{"fail_after":"abc"}"#,
            "parameter 'fail_after'=\"abc\": expected an integer",
        ),
        (
            r#"{"fail_after":"-1"}"#,
            "parameter 'fail_after'=\"-1\": expected an integer in 0..=1000000",
        ),
        (
            r#"{"log_level":"loud"}"#,
            "parameter 'log_level'=\"loud\": expected one of info, warn",
        ),
        (
            r#"{"colour":"red"}"#,
            "unknown parameter 'colour' (known: message, log_level, fail_after)",
        ),
        // The plugin's own rule, past the schema: validate2/open2 see the pairs.
        (
            r#"{"message":""}"#,
            "c-example: parameter 'message' must not be empty",
        ),
    ];
    for (i, (params, want)) in cases.iter().enumerate() {
        let err = host
            .open(c_example(i as u64 + 1, params))
            .await
            .err()
            .unwrap_or_else(|| panic!("{params} was accepted"))
            .to_string();
        assert_eq!(
            err,
            format!("resource 'c{}': open failed (status 3): {want}", i + 1)
        );
    }

    // Good parameters: the declared defaults reach the plugin through keelson_param
    // (fail_after=2: the third is_alive fails).
    let r = host
        .open(c_example(10, r#"{"fail_after":"2"}"#))
        .await
        .unwrap();
    assert_eq!(r.call(Op::Validate).await.unwrap().status, 0);
    assert_eq!(r.call(Op::Online).await.unwrap().status, 0);
    for _ in 0..2 {
        assert_eq!(r.call(Op::IsAlive).await.unwrap().status, 0);
    }
    let third = r.call(Op::IsAlive).await.unwrap();
    assert_eq!(
        (third.status, third.message.as_str()),
        (1, "c-example: is_alive fails after 2 checks (fail_after)")
    );
    let mut saw_default_message = false;
    for _ in 0..1000 {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), events.recv()).await
        else {
            break;
        };
        if let HostEvent::Log { message, .. } = event {
            if message.contains("c-example resource online") {
                saw_default_message = true;
                break;
            }
        }
    }
    assert!(saw_default_message, "the default message was never logged");

    // The ABI-1 plugin gets its JSON untouched, and its own validate decides.
    let legacy = OpenSpec::new(ResourceId(20), "old", ABI1_LEGACY_PLUGIN, "c-legacy")
        .params(r#"{"x":"refuse"}"#);
    let err = host.open(legacy).await.err().unwrap().to_string();
    assert!(
        err.ends_with("c-legacy: the plugin's own validate refuses \"refuse\""),
        "{err}"
    );

    // A bad declaration: the load fails naming the type and the parameter; the host lives on.
    let err = host
        .load_plugin(BAD_DECLARATION_PLUGIN)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "plugin {BAD_DECLARATION_PLUGIN}: type 'c-bad-decl': parameter 'port' is declared twice"
        )
    );
    assert_eq!(r.call(Op::LooksAlive).await.unwrap().status, 0);
}
