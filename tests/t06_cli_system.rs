//! The `keelson` CLI against a real node service started by `keelson node start`: building a group,
//! `--wait`, a segfaulting resource blamed by name through `resource get --json`, `events --json` and
//! `log`, bad input refused with one line and exit 1, and `node stop`. Not the CLI's parsing (crates/ctl
//! has unit and fake-rcm tests for that).

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs `keelson --data-dir DIR ARGS…`.
fn keelson(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::artefact("keelson"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KEELSON_DATA_DIR")
        .output()
        .expect("keelson runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = keelson(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "keelson {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(dir, args)).unwrap()
}

/// Stops the node even when an assertion fails half-way.
struct Node<'a>(&'a Path);

impl Drop for Node<'_> {
    fn drop(&mut self) {
        let _ = keelson(self.0, &["node", "stop"]);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(self.0);
        }
    }
}

#[test]
fn the_cli_drives_a_node_and_blames_a_crash_by_name() {
    let dir = common::rcm::Rcm::new_dir("cli");
    let plugins = common::target_dir();
    ok(
        &dir,
        &["node", "start", "--plugin-dir", plugins.to_str().unwrap()],
    );
    let _node = Node(&dir);
    let again = keelson(
        &dir,
        &["node", "start", "--plugin-dir", plugins.to_str().unwrap()],
    );
    assert!(
        !again.status.success(),
        "a second node on the same data dir must be refused"
    );

    let plugins_view = json(&dir, &["plugin", "list", "--json"]);
    assert!(plugins_view.to_string().contains("chaos"), "{plugins_view}");
    let arm = dir.join("arm");
    std::fs::write(&arm, b"").unwrap();
    ok(&dir, &["group", "create", "web"]);
    ok(
        &dir,
        &[
            "resource", "create", "front", "--type", "dummy", "--group", "web",
        ],
    );
    let armed_by = format!("armed_by={}", arm.display());
    ok(
        &dir,
        &[
            "resource",
            "create",
            "crasher",
            "--type",
            "chaos",
            "--group",
            "web",
            "--param",
            "entry=is_alive",
            "--param",
            "fault=segv",
            "--param",
            &armed_by,
            "IsAlivePollInterval=100",
            "RestartAction=Restart",
        ],
    );
    ok(&dir, &["resource", "depend", "front", "--on", "crasher"]);
    ok(
        &dir,
        &["group", "online", "web", "--wait", "--timeout", "20000"],
    );

    // The first IsAlive (100 ms after online) segfaults its host.
    let crashed = common::wait_until(Duration::from_secs(20), || {
        ok(&dir, &["events", "--json", "-n", "100"]).contains("1230")
    });
    assert!(
        crashed,
        "no event 1230:\n{}",
        ok(&dir, &["log", "-n", "200"])
    );
    std::fs::remove_file(&arm).unwrap();
    let events: Vec<Value> = ok(&dir, &["events", "--json", "-n", "100"])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let e1230 = events.iter().find(|e| e["id"] == 1230).expect("1230");
    assert_eq!(e1230["resource"], "crasher");
    assert!(events.iter().any(|e| e["id"] == 1146));
    let log = ok(&dir, &["log", "-n", "500"]);
    assert!(
        log.contains("crashed with SIGSEGV in ISALIVE of resource 'crasher'"),
        "{log}"
    );
    assert!(log.contains("Resource 'crasher' (resource type 'chaos', plugin 'chaos') has crashed or deadlocked; marking it to run in a separate monitor."));

    let healed = common::wait_until(Duration::from_secs(20), || {
        let r = json(&dir, &["resource", "get", "crasher", "--json"]);
        r["state"] == "Online" && r["properties"]["SeparateMonitor"] == true
    });
    assert!(healed, "{}", ok(&dir, &["log", "-n", "200"]));
    let crasher = json(&dir, &["resource", "get", "crasher", "--json"]);
    let front = json(&dir, &["resource", "get", "front", "--json"]);
    assert_ne!(
        crasher["host_pid"], front["host_pid"],
        "the crasher has its own host"
    );
    assert!(
        crasher["call_stats"]["ISALIVE"]["count"].as_u64().unwrap() >= 1,
        "{crasher}"
    );
    let status = json(&dir, &["status", "--json"]);
    assert_eq!(status["hosts"].as_array().unwrap().len(), 2, "{status}");
    assert!(ok(&dir, &["status"]).contains("crasher"));

    // Bad input: one line, exit 1, nothing changed.
    for (args, expect) in [
        (
            vec!["resource", "set", "front", "DeadlockTimeout=abc"],
            "DeadlockTimeout=abc",
        ),
        (
            vec!["resource", "set", "front", "RestartThreshold=-1"],
            "RestartThreshold=-1",
        ),
        (
            vec![
                "resource", "create", "x", "--type", "nope", "--group", "web",
            ],
            "unknown resource type 'nope'",
        ),
        (vec!["resource", "online", "ghost"], "ghost"),
        (
            vec!["resource", "depend", "crasher", "--on", "front"],
            "cycle",
        ),
        (vec!["resource", "delete", "front"], "Online"),
    ] {
        let before = json(&dir, &["resource", "get", "front", "--json"])["properties"].clone();
        let out = keelson(&dir, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(
            stderr.starts_with("keelson: ") && stderr.contains(expect),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            json(&dir, &["resource", "get", "front", "--json"])["properties"],
            before
        );
    }
    ok(&dir, &["node", "stop"]);
    let gone = keelson(&dir, &["status"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("cannot reach the node service"));
}
