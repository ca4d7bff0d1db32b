//! The plugin author's guide cannot rot: its two example plugins (examples/plugin-rust, built with
//! cargo outside the workspace, and examples/plugin-c, built with cc from the header alone) are
//! built and run through `keelson plugin test` with the command lines read out of docs/plugins.md,
//! and must pass every rule. Paths are moved into this test's own directories (the Rust build into
//! target/plugin-guide-examples, the C library and the marker files into a temp dir); nothing else
//! of the commands changes. The Rust example's watcher thread is also run under a real rcm: a
//! deleted marker file is reported and restarted with the polls a minute away. Not plugin test's
//! own rules (t29).

mod common;

use common::rcm::{wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root (the root package's manifest dir).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The guide's command lines: every line of docs/plugins.md that starts with `$ ` and then
/// `prefix`, without the `$ `, split on spaces (the guide's commands quote nothing).
fn guide_commands(prefix: &str) -> Vec<Vec<String>> {
    let guide = std::fs::read_to_string(root().join("docs/plugins.md")).expect("docs/plugins.md");
    guide
        .lines()
        .filter_map(|l| l.strip_prefix("$ "))
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The one guide command that starts with `prefix`.
fn guide_command(prefix: &str) -> Vec<String> {
    let mut found = guide_commands(prefix);
    assert_eq!(
        found.len(),
        1,
        "docs/plugins.md: one `$ {prefix}…` line, found {found:?}"
    );
    found.remove(0)
}

/// A scratch directory of this test, emptied first.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keelson-t30-{tag}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("empty the scratch dir");
    }
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `argv` from the repository root to its end (bounded), with `keelson` being this build's.
fn run(argv: &[String], limit: Duration) -> Output {
    let program = match argv[0].as_str() {
        "keelson" => common::artefact("keelson"),
        "cargo" => PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())),
        other => PathBuf::from(other),
    };
    let child = Command::new(&program)
        .args(&argv[1..])
        .current_dir(root())
        .env("KEELSON_RHS", common::artefact("keelson-rhs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    // Drain the pipes while waiting, so a chatty build never blocks on a full pipe.
    let waiter = std::thread::spawn(move || child.wait_with_output());
    let ended = common::wait_until(limit, || waiter.is_finished());
    assert!(ended, "{argv:?} did not finish within {limit:?}");
    waiter
        .join()
        .expect("waiter")
        .expect("wait for the command")
}

fn assert_ok(argv: &[String], out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{argv:?} failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Moves `/tmp/…` parameter values into `dir`.
fn private_paths(argv: Vec<String>, dir: &Path) -> Vec<String> {
    argv.into_iter()
        .map(|a| a.replace("=/tmp/", &format!("={}/", dir.display())))
        .collect()
}

/// Runs the guide's plugin test line (with `plugin` in place of its path) and checks it passed
/// every step, the expect_invalid cases included.
fn plugin_test_passes(mut argv: Vec<String>, plugin: &Path, dir: &Path) {
    assert_eq!(&argv[..3], ["keelson", "plugin", "test"], "{argv:?}");
    argv[3] = plugin.display().to_string();
    let mut argv = private_paths(argv, dir);
    let text = assert_ok(&argv, &run(&argv, Duration::from_secs(60)));
    assert!(
        !text.contains("  FAIL  ") && !text.contains("  WARN  "),
        "{text}"
    );
    argv.push("--json".into());
    let out = run(&argv, Duration::from_secs(60));
    let report: serde_json::Value =
        serde_json::from_str(&assert_ok(&argv, &out)).expect("plugin test --json");
    assert_eq!(report["passed"], true, "{report:#}");
    let steps = report["types"][0]["steps"].as_array().expect("steps");
    let cases = steps
        .iter()
        .filter(|s| s["step"] == "expect_invalid")
        .count();
    assert_eq!(
        cases,
        argv.iter().filter(|a| *a == "--expect-invalid").count(),
        "{report:#}"
    );
    assert!(steps.iter().all(|s| s["result"] == "pass"), "{report:#}");
    assert_eq!(steps.len(), 30 + cases, "{report:#}");
    // Offline removed every marker file it wrote.
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("read the scratch dir")
        .collect();
    assert!(
        left.iter()
            .all(|e| e.as_ref().is_ok_and(|e| e.path() == plugin)),
        "{left:?}"
    );
}

/// Builds the Rust example with the guide's cargo line into target/plugin-guide-examples; the
/// library built, and the guide's plugin test line.
fn build_rust_example() -> (PathBuf, Vec<String>) {
    let mut build = guide_command("cargo build");
    assert!(build.contains(&"--offline".to_string()), "{build:?}");
    let manifest = &build[build.iter().position(|a| a == "--manifest-path").unwrap() + 1];
    assert_eq!(manifest, "examples/plugin-rust/Cargo.toml");
    let target = common::target_dir()
        .parent()
        .expect("target/")
        .join("plugin-guide-examples");
    build.extend(["--target-dir".into(), target.display().to_string()]);
    assert_ok(&build, &run(&build, Duration::from_secs(600)));

    let test = guide_command("keelson plugin test examples/plugin-rust/");
    let built = test[3].replace("examples/plugin-rust/target/", "");
    let plugin = target.join(built);
    assert!(
        plugin.ends_with("debug/libkeelson_plugin_marker.so"),
        "{plugin:?}"
    );
    (plugin, test)
}

#[test]
fn the_rust_example_builds_outside_the_workspace_and_passes_plugin_test() {
    let (plugin, test) = build_rust_example();
    let dir = scratch("rust");
    plugin_test_passes(test, &plugin, &dir);
    std::fs::remove_dir_all(&dir).expect("remove the scratch dir");
}

#[test]
fn the_c_example_builds_from_the_header_alone_and_passes_plugin_test() {
    let dir = scratch("c");
    let mut cc = guide_command("cc ");
    for flag in ["-shared", "-fPIC", "-fvisibility=hidden"] {
        assert!(cc.contains(&flag.to_string()), "{cc:?} lacks {flag}");
    }
    let out = cc.iter().position(|a| a == "-o").expect("cc -o") + 1;
    let library = dir.join(&cc[out]);
    cc[out] = library.display().to_string();
    let built = run(&cc, Duration::from_secs(120));
    assert_ok(&cc, &built);
    assert!(
        built.stderr.is_empty(),
        "warnings: {}",
        String::from_utf8_lossy(&built.stderr)
    );

    let test = guide_command("keelson plugin test ./");
    assert_eq!(
        test[3],
        format!("./{}", library.file_name().unwrap().to_string_lossy())
    );
    plugin_test_passes(test, &library, &dir);
    std::fs::remove_dir_all(&dir).expect("remove the scratch dir");
}

/// `keelson plugin describe marker` prints the guide's sample of it (all but the file's path, which
/// is this test's own).
fn describe_matches_the_guide(rcm: &Rcm) {
    let (ok, out, err) = rcm.cli(&["plugin", "describe", "marker"]);
    assert!(ok, "plugin describe marker: {err}");
    let guide = std::fs::read_to_string(root().join("docs/plugins.md")).expect("docs/plugins.md");
    let head = "type marker (plugin marker, ";
    let sample = guide
        .split("```\n")
        .find(|block| block.starts_with(head))
        .expect("docs/plugins.md has a `plugin describe marker` sample");
    let (got, want): (Vec<&str>, Vec<&str>) = (out.lines().collect(), sample.lines().collect());
    assert!(got[0].starts_with(head), "{out}");
    assert_eq!(got[1..], want[1..], "the guide's sample against:\n{out}");
}

fn count(view: &Value, op: &str) -> u64 {
    view["call_stats"][op]["count"].as_u64().unwrap_or(0)
}

#[test]
fn the_rust_examples_watcher_reports_a_deleted_marker_and_rcm_restarts_it_without_a_poll() {
    const LIMIT: Duration = Duration::from_secs(20);
    let (plugin, _) = build_rust_example();
    let dir = scratch("rust-watch");
    let marker = dir.join("marker");
    let plugin_dir = plugin.parent().expect("the library's directory");
    let rcm = Rcm::start_with(Rcm::new_dir("t30-watch"), plugin_dir, &[], &[]);
    wait_for("every plugin probe reports", LIMIT, || {
        rcm.plugins()["complete"] == true
    });
    describe_matches_the_guide(&rcm);
    let pairs = |list: &[(&str, String)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    rcm.ok(R::GroupCreate {
        name: "g".into(),
        properties: vec![],
    });
    // Polls a minute apart: only the watcher's report can explain a restart within seconds.
    rcm.ok(R::ResourceCreate {
        name: "m".into(),
        type_name: "marker".into(),
        group: "g".into(),
        params: pairs(&[
            ("path", marker.display().to_string()),
            ("watch_ms", "20".into()),
        ]),
        properties: pairs(&[
            ("LooksAlivePollInterval", "60000".into()),
            ("IsAlivePollInterval", "60000".into()),
            ("RestartDelay", "0".into()),
        ]),
    });
    rcm.ok(R::GroupOnline { name: "g".into() });
    rcm.wait_state("m", "Online", LIMIT);
    assert!(marker.exists(), "online wrote {marker:?}");

    std::fs::remove_file(&marker).expect("delete the marker file");
    let deleted = Instant::now();
    let reported = format!(
        "IsAlive failed for resource 'm': reported by the plugin: {} is missing",
        marker.display()
    );
    wait_for("the report and the restart's new marker", LIMIT, || {
        marker.exists() && rcm.cluster_log().contains(&reported)
    });
    println!(
        "marker deleted -> reported and rewritten by the restart: {:.1} ms (watch_ms 20)",
        deleted.elapsed().as_secs_f64() * 1000.0
    );
    let view = rcm.wait_state("m", "Online", LIMIT);
    assert_eq!(
        (count(&view, "LOOKSALIVE"), count(&view, "ISALIVE")),
        (0, 0),
        "no poll ran: {view:#}"
    );
    assert_eq!(count(&view, "ONLINE"), 2, "{view:#}");
    assert_eq!(
        view["last_errors"]["ISALIVE"]["status"], "reported",
        "{view:#}"
    );

    rcm.ok(R::GroupOffline { name: "g".into() });
    rcm.wait_state("m", "Offline", LIMIT);
    assert!(!marker.exists(), "offline removed {marker:?}");
    drop(rcm);
    std::fs::remove_dir_all(&dir).expect("remove the scratch dir");
}
