//! The stricter `keelson plugin test`, run as a user runs it (the built CLI, its JSON report and
//! exit status): each rule, broken by one mode of plugins/conformance-bad, fails the step that
//! broke it and names the rule; a hang past PendingTimeout kills the host and skips the rest; and
//! the workspace's good plugins (dummy, c-example, journal, demo-service) pass with the parameters
//! they need. Not the load step (t08) nor the host's own deadlines (t11).

mod common;

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every step of one type's run, in order, when nothing dies.
const STEPS: [&str; 31] = [
    "validate",
    "expect_invalid",
    "open",
    "online",
    "online_idempotent",
    "looks_alive",
    "is_alive",
    "offline",
    "offline_idempotent",
    "looks_alive_offline",
    "is_alive_offline",
    "online_again",
    "terminate",
    "close",
    "reopen",
    "reopen_online",
    "reopen_offline",
    "reopen_close",
    "pair_open_a",
    "pair_open_b",
    "pair_online_a",
    "pair_online_b",
    "pair_looks_alive_a",
    "pair_looks_alive_b",
    "pair_is_alive_a",
    "pair_is_alive_b",
    "pair_offline_a",
    "pair_offline_b",
    "pair_close_a",
    "pair_close_b",
    "deadline",
];

/// What one run printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `keelson plugin test ARGS…` to its end (at most 60 s, then it is killed and the test fails).
fn plugin_test(args: &[String]) -> Run {
    let mut child = Command::new(common::artefact("keelson"))
        .args(["plugin", "test"])
        .args(args)
        .env("KEELSON_RHS", common::artefact("keelson-rhs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keelson");
    let start = Instant::now();
    let ended = common::wait_until(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        child.kill().expect("kill a plugin test that never ended");
    }
    let out = child.wait_with_output().expect("wait for keelson");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    };
    assert!(ended, "plugin test never ended: {}", run.stdout);
    run
}

/// Runs with `--json` and returns the exit status and the report.
fn run_json(plugin: &str, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec![common::plugin(plugin), "--json".to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let run = plugin_test(&all);
    let report = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} / {}", run.stdout, run.stderr));
    (run.code, report)
}

/// The steps of the report's only type.
fn steps(report: &Value) -> &Vec<Value> {
    let types = report["types"].as_array().expect("types");
    assert_eq!(types.len(), 1, "{report:#}");
    types[0]["steps"].as_array().expect("steps")
}

fn names_with(report: &Value, result: &str) -> BTreeSet<String> {
    steps(report)
        .iter()
        .filter(|s| s["result"] == result)
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect()
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    steps(report)
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {report:#}"))
}

/// The full step list with `cases` expect_invalid steps.
fn expected_steps(cases: usize) -> Vec<&'static str> {
    let mut list = vec!["validate"];
    list.extend(std::iter::repeat_n("expect_invalid", cases));
    list.extend(STEPS[2..31].iter().copied());
    list
}

/// Asserts a run passed, with every step in order and warnings only where `warned` says.
fn assert_passes(code: Option<i32>, report: &Value, cases: usize, warned: &[&str]) {
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    let names: Vec<&str> = steps(report)
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected_steps(cases), "{report:#}");
    let want: BTreeSet<String> = warned.iter().map(|s| s.to_string()).collect();
    assert_eq!(names_with(report, "warn"), want, "{report:#}");
    assert!(names_with(report, "fail").is_empty(), "{report:#}");
    assert!(names_with(report, "skip").is_empty(), "{report:#}");
    for s in steps(report) {
        assert!(s["duration_ms"].as_f64().unwrap() >= 0.0, "{s}");
        if s["op"].is_string() {
            assert!(s["deadline"].as_str().unwrap().ends_with(" ms"), "{s}");
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

const OFFLINE_CHECKS: [&str; 2] = ["looks_alive_offline", "is_alive_offline"];

#[test]
fn a_plugin_that_keeps_every_rule_passes_without_excuses() {
    let (code, report) = run_json("conformance-bad", &["--expect-invalid", "colour=red"]);
    assert_passes(code, &report, 1, &[]);
    let case = step(&report, "expect_invalid");
    assert_eq!(case["case"], "colour=red");
    assert!(
        case["message"]
            .as_str()
            .unwrap()
            .contains("unknown parameter 'colour'"),
        "{case}"
    );
    assert!(step(&report, "looks_alive_offline")["message"]
        .as_str()
        .unwrap()
        .starts_with("failed, as it must"));
    let t = &report["types"][0];
    assert_eq!(t["looks_alive_budget_ms"], 50);
    assert_eq!(
        t["pending_timeout_ms"], 180000,
        "keelson's PendingTimeout default"
    );
    assert_eq!(t["deadlock_timeout_ms"], 2000);
}

#[test]
fn each_broken_rule_fails_its_step_and_names_the_rule() {
    let cases: [(&str, &[&str], &[&str], &str); 7] = [
        (
            "online_not_idempotent",
            &[],
            &["online_idempotent"],
            "online must be idempotent",
        ),
        (
            "offline_not_idempotent",
            &[],
            &["offline_idempotent"],
            "offline must be idempotent",
        ),
        (
            "alive_after_offline",
            &[],
            &OFFLINE_CHECKS,
            "health checks must fail after offline",
        ),
        (
            "slow_looks_alive",
            &["--param", "delay_ms=120"],
            &[
                "looks_alive",
                "looks_alive_offline",
                "pair_looks_alive_a",
                "pair_looks_alive_b",
            ],
            "within the looks_alive budget 50 ms",
        ),
        (
            "accept_everything",
            &[],
            &["expect_invalid"],
            "validate must refuse colour=red",
        ),
        (
            "second_open_fails",
            &[],
            &["pair_open_b"],
            "two resources of the type must work at once",
        ),
        (
            "reopen_fails",
            &[],
            &["reopen", "pair_open_a", "pair_open_b"],
            "",
        ),
    ];
    for (mode, extra, failing, rule) in cases {
        let mut args = vec!["--param".to_string(), format!("mode={mode}")];
        args.extend(["--expect-invalid".to_string(), "colour=red".to_string()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, report) = run_json("conformance-bad", &args);
        assert_eq!(code, Some(1), "{mode}: {report:#}");
        assert_eq!(report["passed"], false, "{mode}");
        let want: BTreeSet<String> = failing.iter().map(|s| s.to_string()).collect();
        assert_eq!(names_with(&report, "fail"), want, "{mode}: {report:#}");
        for name in failing {
            let s = step(&report, name);
            let got = s["rule"].as_str().unwrap_or_else(|| panic!("{mode}: {s}"));
            assert!(got.contains(rule), "{mode}: rule {got:?} lacks {rule:?}");
            assert!(!s["message"].as_str().unwrap().is_empty(), "{mode}: {s}");
        }
        if mode == "reopen_fails" {
            let s = step(&report, "reopen");
            assert_eq!(s["rule"], "a fresh open after close must work", "{s}");
        }
        if mode == "slow_looks_alive" {
            let s = step(&report, "looks_alive");
            assert!(s["duration_ms"].as_f64().unwrap() >= 120.0, "{s}");
            assert!(s["message"]
                .as_str()
                .unwrap()
                .contains("over the looks_alive budget 50 ms"));
        }
    }
}

#[test]
fn the_budget_and_the_excuse_are_flags() {
    let (code, report) = run_json(
        "conformance-bad",
        &[
            "--param",
            "mode=slow_looks_alive",
            "--param",
            "delay_ms=60",
            "--looks-alive-budget",
            "500",
        ],
    );
    assert_passes(code, &report, 0, &[]);
    let (code, report) = run_json(
        "conformance-bad",
        &[
            "--param",
            "mode=alive_after_offline",
            "--allow-alive-after-offline",
        ],
    );
    assert_passes(code, &report, 0, &OFFLINE_CHECKS);
    let warned = step(&report, "is_alive_offline");
    assert_eq!(warned["rule"], "health checks must fail after offline");
    assert!(warned["message"]
        .as_str()
        .unwrap()
        .contains("--allow-alive-after-offline"));
}

#[test]
fn online_is_held_to_pending_timeout_and_a_hang_skips_the_rest() {
    // Online sleeps 400 ms: past a 100 ms PendingTimeout it kills the host, although
    // DeadlockTimeout is 5 s; every later step is skipped.
    let (code, report) = run_json(
        "conformance-bad",
        &[
            "--param",
            "mode=hang_online",
            "--param",
            "delay_ms=400",
            "--pending-timeout",
            "100",
            "--deadlock-timeout",
            "5000",
        ],
    );
    assert_eq!(code, Some(1), "{report:#}");
    let online = step(&report, "online");
    assert_eq!(online["result"], "fail", "{online}");
    let message = online["message"].as_str().unwrap();
    assert!(
        message.starts_with("hung: ONLINE did not return within PendingTimeout 100 ms"),
        "{message}"
    );
    assert_eq!(online["deadline"], "PendingTimeout 100 ms");
    assert!(online["rule"]
        .as_str()
        .unwrap()
        .contains("PendingTimeout 100 ms"));
    let took = online["duration_ms"].as_f64().unwrap();
    assert!((100.0..2000.0).contains(&took), "online took {took} ms");
    let names: Vec<&str> = steps(&report)
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected_steps(0), "every step is still reported");
    let after: Vec<&Value> = steps(&report).iter().skip(3).collect();
    for s in after {
        assert_eq!(s["result"], "skip", "{s}");
        assert_eq!(s["message"], "host died", "{s}");
    }
    // The same online within a 1000 ms PendingTimeout passes, though DeadlockTimeout is 300 ms:
    // online and offline are not held to DeadlockTimeout.
    let (code, report) = run_json(
        "conformance-bad",
        &[
            "--param",
            "mode=hang_online",
            "--param",
            "delay_ms=400",
            "--pending-timeout",
            "1000",
            "--deadlock-timeout",
            "300",
        ],
    );
    assert_passes(code, &report, 0, &[]);
}

#[test]
fn validate_runs_first_and_must_accept_the_given_parameters() {
    let (code, report) = run_json(
        "dummy",
        &["--param", "colour=red", "--allow-alive-after-offline"],
    );
    assert_eq!(code, Some(1), "{report:#}");
    let first = &steps(&report)[0];
    assert_eq!(first["step"], "validate");
    assert_eq!(first["result"], "fail", "{first}");
    assert!(
        first["message"].as_str().unwrap().contains("'colour'"),
        "{first}"
    );
    assert_eq!(
        first["rule"],
        "validate must accept the given parameters (--param)"
    );
    // Then open refuses them too, and the rest is skipped.
    assert_eq!(step(&report, "open")["result"], "fail");
    assert_eq!(step(&report, "online")["message"], "open failed");

    // A validate that hangs (nothing is open yet) kills the host at DeadlockTimeout; every other
    // step is skipped.
    let (code, report) = run_json(
        "conformance-bad",
        &[
            "--param",
            "mode=hang_validate",
            "--param",
            "delay_ms=5000",
            "--deadlock-timeout",
            "200",
            "--expect-invalid",
            "colour=red",
        ],
    );
    assert_eq!(code, Some(1), "{report:#}");
    let first = &steps(&report)[0];
    assert_eq!(first["step"], "validate");
    let message = first["message"].as_str().unwrap();
    assert!(
        message.starts_with("hung: VALIDATE did not return within DeadlockTimeout 200 ms"),
        "{message}"
    );
    let took = first["duration_ms"].as_f64().unwrap();
    assert!((200.0..2000.0).contains(&took), "validate took {took} ms");
    assert_eq!(steps(&report).len(), expected_steps(1).len(), "{report:#}");
    for s in steps(&report).iter().skip(1) {
        assert_eq!(s["result"], "skip", "{s}");
        assert_eq!(s["message"], "host died", "{s}");
    }
}

#[test]
fn the_workspace_plugins_pass_with_the_parameters_they_need() {
    // dummy and c-example are always healthy and journal is healthy unless told otherwise: they
    // cannot tell they are offline, so their health checks after offline are warnings.
    let (code, report) = run_json(
        "dummy",
        &[
            "--expect-invalid",
            "colour=red",
            "--expect-invalid",
            "online_delay_ms=soon",
            "--allow-alive-after-offline",
        ],
    );
    assert_passes(code, &report, 2, &OFFLINE_CHECKS);
    let (code, report) = run_json("c-example", &["--allow-alive-after-offline"]);
    assert_passes(code, &report, 0, &OFFLINE_CHECKS);
    // The test plugins other tests load (chaos without a fault, hang-load not held) are always
    // healthy too.
    for plugin in ["chaos", "hang-load"] {
        let (code, report) = run_json(plugin, &["--allow-alive-after-offline"]);
        assert_passes(code, &report, 0, &OFFLINE_CHECKS);
    }

    let dir = std::env::temp_dir().join(format!("keelson-t29-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let journal = format!("journal={}", dir.join("journal").display());
    let (code, report) = run_json(
        "journal",
        &[
            "--param",
            &journal,
            "--param",
            "label=g1",
            "--expect-invalid",
            "label=no/slash",
            "--expect-invalid",
            "alive_ms=5",
            "--expect-invalid",
            "journal=relative",
            "--allow-alive-after-offline",
        ],
    );
    assert_passes(code, &report, 3, &OFFLINE_CHECKS);
    std::fs::remove_dir_all(&dir).expect("remove the journal's temp dir");

    // demo-service really stops serving at offline: no excuse. Its two resources at once need
    // ports of their own.
    let (a, b) = (
        format!("port={}", free_port()),
        format!("port={}", free_port()),
    );
    let (code, report) = run_json(
        "demo-service",
        &[
            "--param",
            &a,
            "--second-param",
            &b,
            "--expect-invalid",
            "port=0",
            "--expect-invalid",
            "port=70000",
        ],
    );
    assert_passes(code, &report, 2, &[]);
    // Without --second-param the second one cannot listen on the first one's port (so it is not
    // healthy either).
    let (code, report) = run_json("demo-service", &["--param", &a]);
    assert_eq!(code, Some(1));
    assert_eq!(
        names_with(&report, "fail"),
        ["pair_online_b", "pair_looks_alive_b", "pair_is_alive_b"]
            .map(String::from)
            .into(),
        "{report:#}"
    );
}

#[test]
fn the_text_report_names_the_rule_and_bad_flags_are_refused() {
    let run = plugin_test(&[
        common::plugin("conformance-bad"),
        "--param".into(),
        "mode=online_not_idempotent".into(),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("online_idempotent"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.starts_with("  FAIL  online_idempotent"), "{line}");
    assert!(
        line.ends_with("[rule: online must be idempotent: online of an online resource succeeds]"),
        "{line}"
    );
    assert!(
        run.stdout.contains("FAIL (30 passed, 1 failed, 0 skipped)"),
        "{}",
        run.stdout
    );
    assert!(run.took < Duration::from_secs(30));

    for (flag, value, error) in [
        (
            "--expect-invalid",
            "oops",
            "--expect-invalid 'oops': expected KEY=VALUE",
        ),
        (
            "--second-param",
            "=1",
            "--second-param '=1': the key is empty",
        ),
        ("--param", "x", "--param 'x': expected KEY=VALUE"),
    ] {
        let run = plugin_test(&[common::plugin("dummy"), flag.into(), value.into()]);
        assert_ne!(run.code, Some(0), "{flag} {value}: {}", run.stdout);
        assert!(run.stderr.contains(error), "{flag} {value}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "nothing ran: {}", run.stdout);
    }
}
