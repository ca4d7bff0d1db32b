//! The real `keelson` binary against a real keelson-rcm (target/<profile>/keelson-rcm, built by
//! `cargo build --workspace`) on private data directories: the first steps a newcomer takes —
//! `node start` (also twice at once, and in the foreground), an empty group, `--wait`, `log --json`,
//! group properties, a restart, `node stop` — each answered in full. Not the CLI's parsing
//! (cli_fake_rcm.rs and the unit tests) and not rcm's policies (tests/ at the workspace root).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest any wait in these tests.
const LIMIT: Duration = Duration::from_secs(20);

/// target/<profile>, where cargo put the keelson binary (and the workspace build put the rest).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_keelson"))
        .parent()
        .expect("keelson lives in target/<profile>")
        .to_path_buf()
}

fn artefact(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before `cargo test`",
        path.display()
    );
    path
}

/// A fresh data directory, removed (after `node stop`) on drop unless the test failed.
struct Node {
    dir: PathBuf,
}

impl Node {
    fn new(tag: &str) -> Node {
        let dir =
            std::env::temp_dir().join(format!("keelson-ctl-real-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Node { dir }
    }

    /// `keelson --data-dir DIR ARGS…` with this build's keelson-rcm, keelson-rhs and plugins.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keelson"));
        cmd.arg("--data-dir").arg(&self.dir).args(args);
        cmd.env_remove("KEELSON_DATA_DIR")
            .env("KEELSON_RCM", artefact("keelson-rcm"))
            .env("KEELSON_RHS", artefact("keelson-rhs"));
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("keelson runs")
    }

    /// Runs keelson; it must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "keelson {args:?} failed: {}\ncluster.log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.cluster_log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn start(&self) {
        let plugins = target_dir();
        self.ok(&["node", "start", "--plugin-dir", plugins.to_str().unwrap()]);
    }

    fn cluster_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("cluster.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.run(&["node", "stop", "--timeout", "5000"]);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn node_stop_on_a_node_with_no_resources_answers_and_exits_0() {
    let node = Node::new("stop");
    node.start();
    let out = node.run(&["node", "stop"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "node service stopping\nnode service stopped\n");
    assert_eq!(stderr, "");
    assert!(!node.dir.join("rcm.sock").exists());
}

#[test]
fn of_two_concurrent_node_starts_one_starts_and_the_other_says_it_is_already_running() {
    let node = Node::new("twice");
    let plugins = target_dir();
    let start = || {
        node.command(&["node", "start", "--plugin-dir", plugins.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("keelson runs")
    };
    let (a, b) = (start(), start());
    let runs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let started: Vec<&Output> = runs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(started.len(), 1, "exactly one start succeeds: {runs:?}");
    assert!(text(started[0])
        .0
        .starts_with("node service started (keelson-rcm pid "));
    let refused = runs.iter().find(|o| !o.status.success()).unwrap();
    let (stdout, stderr) = text(refused);
    assert_eq!(stdout, "", "the refused start says nothing on stdout");
    assert!(
        stderr.starts_with("keelson: a node service is already running on ")
            || stderr.starts_with("keelson: a node service already answers at "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(refused.status.code(), Some(1));
    // The one that said "started" is the one that runs.
    let pid = node.json(&["status", "--json"])["pid"].as_u64().unwrap();
    assert!(
        text(started[0]).0.contains(&format!("pid {pid},")),
        "{:?} vs pid {pid}",
        text(started[0])
    );
}

#[test]
fn node_start_in_the_foreground_shows_the_cluster_log_on_stderr() {
    let node = Node::new("foreground");
    let plugins = target_dir();
    let mut child = node
        .command(&[
            "node",
            "start",
            "--foreground",
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("[RCM] node service ready on "))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no ready line on stderr within {LIMIT:?}: {seen:?}");
            }
        }
    }
    assert!(
        seen[0].contains("INFO [RCM] node service starting: pid "),
        "cluster-log lines, from the first: {seen:?}"
    );
    node.ok(&["node", "stop"]);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen:?}");
    reader.join().unwrap();
}

#[test]
fn an_empty_group_comes_online_at_once_and_shows_its_defaults_plainly() {
    let node = Node::new("empty");
    node.start();
    node.ok(&["group", "create", "empty"]);
    let began = Instant::now();
    let out = node.ok(&["group", "online", "empty", "--wait", "--timeout", "10000"]);
    assert!(
        out.starts_with("group 'empty' coming online\ngroup 'empty' is Online (after "),
        "{out}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let view = node.json(&["group", "get", "empty", "--json"]);
    assert_eq!(view["state"], "Online");
    assert_eq!(view["properties"]["FailoverThreshold"], "nodes-1", "{view}");
    let shown = node.ok(&["group", "get", "empty"]);
    assert!(
        shown.contains("  FailoverThreshold   = nodes-1\n"),
        "{shown}"
    );
    node.ok(&["group", "set", "empty", "FailoverThreshold=2"]);
    let view = node.json(&["group", "get", "empty", "--json"]);
    assert_eq!(view["properties"]["FailoverThreshold"], 2, "{view}");
    node.ok(&["group", "offline", "empty", "--wait", "--timeout", "10000"]);
    assert_eq!(
        node.json(&["group", "get", "empty", "--json"])["state"],
        "Offline"
    );
}

#[test]
fn log_json_prints_one_object_per_line() {
    let node = Node::new("logjson");
    node.start();
    node.ok(&["group", "create", "web"]);
    let out = node.ok(&["log", "--json", "-n", "20"]);
    let objects: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert!(objects.len() >= 3, "{out}");
    let created = objects
        .iter()
        .find(|o| o["message"] == "Created group 'web'.")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(created["level"], "INFO");
    assert_eq!(created["component"], "RCM");
    assert!(created["pid"].as_u64().is_some() && created["tid"].as_u64().is_some());
    assert!(
        created["time"].as_str().unwrap().ends_with('Z'),
        "{created}"
    );
    assert!(created["line"]
        .as_str()
        .unwrap()
        .ends_with("Created group 'web'."));
}

#[test]
fn an_ordinary_restart_never_shows_the_group_failed() {
    let node = Node::new("restart");
    node.start();
    node.ok(&["group", "create", "g"]);
    node.ok(&[
        "resource",
        "create",
        "a",
        "--type",
        "dummy",
        "--group",
        "g",
        "RestartDelay=5000",
    ]);
    node.ok(&["group", "online", "g", "--wait", "--timeout", "10000"]);
    node.ok(&["resource", "fail", "a"]);
    let resource = node.json(&["resource", "get", "a", "--json"]);
    let group = node.json(&["group", "get", "g", "--json"]);
    assert_eq!(resource["state"], "Failed", "{resource}");
    assert_eq!(group["state"], "Pending", "restart under way: {group}");
    // Watched through the restart (no administrator action): never Failed, Online again.
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    loop {
        let state = node.json(&["group", "get", "g", "--json"])["state"].clone();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "Online" {
            break;
        }
        assert!(Instant::now() < deadline, "never Online again: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!seen.iter().any(|s| s == "Failed"), "{seen:?}");
    let log = node.cluster_log();
    assert!(
        log.contains("Resource 'a' will be restarted in 5000 ms."),
        "{log}"
    );
}

#[test]
fn a_refused_peer_is_logged_with_its_pid_as_a_number() {
    if keelson_sys::process::geteuid() != 0 {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "CI runs as root: this test must run there");
        println!("skipping: needs root to act as another user");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let node = Node::new("peerpid");
    node.start();
    // Let `nobody` reach the socket, so that rcm itself refuses it.
    let open = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    open(&node.dir, 0o755).unwrap();
    open(&node.dir.join("rcm.sock"), 0o666).unwrap();
    let out = node
        .command(&["status"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{:?}", text(&out));
    let log = node.cluster_log();
    let line = log
        .lines()
        .find(|l| l.contains("refused Status from uid 65534 gid 65534 pid "))
        .unwrap_or_else(|| panic!("not logged:\n{log}"));
    let pid = line.rsplit(' ').next().unwrap();
    assert!(pid.parse::<u32>().is_ok(), "pid as a number: {line}");
}
