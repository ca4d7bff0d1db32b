//! The generic-app resource type (plugins/generic-app) under a real keelson-rcm, as root: `plugin
//! test` passes and refuses the bad parameters; `resource create` refuses them naming the
//! parameter; a TCP echo service (the plugin's generic-app-echo helper) runs with a TCP health
//! probe: its kill -9 is reported by the watcher and restarted with the polls a minute away, a
//! port that stops answering fails IsAlive and the process is replaced, offline of an app that
//! ignores SIGTERM SIGKILLs it after StopTimeout; and online is idempotent: a client keeps one TCP
//! connection working while the resource's host is SIGKILLed and replaced and while rcm itself
//! restarts, the app keeping its pid and its log file growing. Not the detached launch's own
//! details (crates/sys unit tests) nor the plugin's (its unit tests).

mod common;

use common::rcm::{wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use keelson_sys::detached::cgroup::Cgroup;
use keelson_sys::Signal;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

/// Whether the test can run: it needs root (cgroups, users); in CI a missing prerequisite fails.
fn as_root() -> bool {
    if keelson_sys::process::geteuid() == 0 {
        return true;
    }
    assert!(!common::in_ci(), "t34 needs root in CI (CI=true)");
    eprintln!("skipped: t34 needs root");
    false
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A TCP port nobody listens on right now (the kernel's pick).
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    probe.local_addr().expect("probe address").port()
}

/// The echo helper's command line for `port`.
fn echo_command(port: u16) -> String {
    format!("{} {port}", common::artefact("generic-app-echo").display())
}

/// A node service whose apps never outlive the test: on drop the service is stopped (its hosts
/// end, apps keep running as they would), then every app a pid file names is killed with its
/// process group and cgroup, then the data directory is removed.
struct Node {
    rcm: Option<Rcm>,
}

impl Node {
    fn start(tag: &str) -> Node {
        Node {
            rcm: Some(Rcm::start(tag)),
        }
    }

    fn rcm(&self) -> &Rcm {
        self.rcm.as_ref().expect("rcm runs")
    }

    /// Stops rcm (`node stop`: hosts end, desired state persisted) and starts it again on the
    /// same data directory.
    fn restart(&mut self) {
        let dir = self.rcm.take().expect("rcm runs").keep_dir();
        self.rcm = Some(Rcm::start_in(dir));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let Some(rcm) = self.rcm.take() else { return };
        let dir = rcm.keep_dir();
        let failures: Vec<String> = resource_dirs(&dir)
            .iter()
            .filter_map(|state| kill_leftover(state).err())
            .collect();
        if std::thread::panicking() {
            // The test failed already: say what could not be cleaned up, keep the directory.
            for failure in failures {
                eprintln!("t34 clean-up: {failure}");
            }
            return;
        }
        assert!(failures.is_empty(), "t34 clean-up: {failures:?}");
        std::fs::remove_dir_all(&dir).expect("remove the data directory");
    }
}

/// Every resource state directory under a data directory.
fn resource_dirs(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("resources"))
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The pid file's (pid, start time, cgroup).
fn pid_record(state: &Path) -> Option<(u32, u64, Option<PathBuf>)> {
    let text = std::fs::read_to_string(state.join("pid")).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
    };
    Some((
        field("pid ")?.parse().ok()?,
        field("start_time ")?.parse().ok()?,
        field("cgroup ").map(PathBuf::from),
    ))
}

fn app_pid(state: &Path) -> Option<u32> {
    pid_record(state).map(|(pid, _, _)| pid)
}

/// Kills what a pid file names, if it is still that process, and what is left in its cgroup.
fn kill_leftover(state: &Path) -> Result<(), String> {
    let Some((pid, start_time, cgroup)) = pid_record(state) else {
        return Ok(());
    };
    if keelson_sys::detached::is_same_process(pid, start_time) {
        keelson_sys::process::kill_group(pid, Signal::SIGKILL)
            .map_err(|e| format!("kill leftover app {pid}: {e}"))?;
    }
    if let Some(dir) = cgroup {
        let shown = dir.display().to_string();
        let cgroup = Cgroup::at(dir);
        let failed = |e: std::io::Error| format!("leftover cgroup {shown}: {e}");
        cgroup.kill_all().map_err(failed)?;
        if !cgroup.wait_empty(LIMIT).map_err(failed)? {
            return Err(format!("leftover cgroup {shown} did not empty"));
        }
        cgroup.remove().map_err(failed)?;
    }
    Ok(())
}

/// The state directory of the resource whose app log says it started `command`.
fn state_dir_of(rcm: &Rcm, command: &str) -> PathBuf {
    let wanted = format!("keelson: starting {command}\n");
    let mut found = None;
    wait_for("the resource's state directory", LIMIT, || {
        found = resource_dirs(&rcm.dir).into_iter().find(|d| {
            std::fs::read_to_string(d.join("app.log")).is_ok_and(|t| t.contains(&wanted))
        });
        found.is_some()
    });
    found.expect("found")
}

fn log_len(state: &Path) -> u64 {
    std::fs::metadata(state.join("app.log")).map_or(0, |m| m.len())
}

fn ppid(pid: u32) -> u32 {
    let fields = keelson_sys::process::stat_fields(&format!("/proc/{pid}/stat")).expect("stat");
    fields[1].parse().expect("ppid")
}

/// One client connection to the echo service.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the echo service");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        Client {
            writer: stream.try_clone().expect("clone the stream"),
            reader: BufReader::new(stream),
        }
    }

    /// Sends `line` and reads it back.
    fn round_trip(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.writer, "{line}").map_err(|e| format!("send: {e}"))?;
        let mut back = String::new();
        self.reader
            .read_line(&mut back)
            .map_err(|e| format!("receive: {e}"))?;
        match back.trim_end() == line {
            true => Ok(()),
            false => Err(format!("sent {line:?}, got {back:?}")),
        }
    }
}

/// Creates group `group` with one generic-app resource `name` and brings it online.
fn create_app(rcm: &Rcm, group: &str, name: &str, params: &[(&str, &str)], props: &[(&str, &str)]) {
    rcm.ok(R::GroupCreate {
        name: group.into(),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: name.into(),
        type_name: "generic-app".into(),
        group: group.into(),
        params: pairs(params),
        properties: pairs(props),
    });
    rcm.ok(R::GroupOnline { name: group.into() });
    rcm.wait_state(name, "Online", LIMIT);
}

#[test]
fn plugin_test_passes_and_refuses_the_bad_parameters() {
    if !as_root() {
        return;
    }
    // A sleep nobody else runs, so the test can tell whether plugin test left one behind.
    let marker = format!("sleep {}", 900_000 + std::process::id() % 90_000);
    let cmd = format!("CommandLine={marker}");
    let mut argv = vec![
        common::plugin("generic-app"),
        "--param".into(),
        cmd,
        "--param".into(),
        "StartWindow=50".into(),
        // The pair's second resource runs as another user.
        "--second-param".into(),
        "User=nobody".into(),
    ];
    for bad in [
        "CommandLine=",
        "StopTimeout=-1",
        "User=no-such-user-keelson",
        "HealthTcpPort=70000",
        "Environment=NOT A PAIR",
    ] {
        argv.extend(["--expect-invalid".to_string(), bad.to_string()]);
    }
    argv.push("--json".into());
    let child = Command::new(common::artefact("keelson"))
        .args(["plugin", "test"])
        .args(&argv)
        .env("KEELSON_RHS", common::artefact("keelson-rhs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keelson plugin test");
    let waiter = std::thread::spawn(move || child.wait_with_output());
    assert!(
        common::wait_until(Duration::from_secs(60), || waiter.is_finished()),
        "plugin test did not finish within 60 s"
    );
    let out = waiter.join().expect("waiter").expect("plugin test output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "plugin test --json: {e}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    let steps = report["types"][0]["steps"].as_array().expect("steps");
    assert!(steps.iter().all(|s| s["result"] == "pass"), "{report:#}");
    let refused = steps
        .iter()
        .filter(|s| s["step"] == "expect_invalid")
        .count();
    assert_eq!(refused, 5, "{report:#}");
    // Offline and terminate stopped every process it started.
    let leftovers: Vec<u32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == marker)
        })
        .collect();
    assert!(leftovers.is_empty(), "left running: {leftovers:?}");
}

#[test]
fn resource_create_refuses_bad_parameters_naming_each() {
    if !as_root() {
        return;
    }
    let node = Node::start("t34-bad");
    let rcm = node.rcm();
    rcm.ok(R::GroupCreate {
        name: "g".into(),
        properties: vec![],
    });
    for (key, value) in [
        ("CommandLine", ""),
        ("CommandLine", "sh -c 'unterminated"),
        ("StopTimeout", "-1"),
        ("User", "no-such-user-keelson"),
        ("HealthTcpPort", "70000"),
        ("HealthTcpPort", "0"),
    ] {
        let mut params = vec![("CommandLine", "sleep 1")];
        params.retain(|(k, _)| *k != key);
        params.push((key, value));
        let message = rcm.refused(R::ResourceCreate {
            name: "app".into(),
            type_name: "generic-app".into(),
            group: "g".into(),
            params: pairs(&params),
            properties: vec![],
        });
        assert!(
            message.contains(key) && message.contains("nothing was changed"),
            "{key}={value:?}: {message}"
        );
        assert_eq!(message.lines().count(), 1, "{message}");
        eprintln!("{key}={value:?}: {message}");
    }
    let list = rcm.ok(R::ResourceList);
    assert!(
        !list.to_string().contains("\"app\""),
        "a refused create left a resource: {list:#}"
    );
}

#[test]
fn a_tcp_service_is_restarted_on_its_exit_report_replaced_when_its_port_dies_and_killed_after_stop_timeout(
) {
    if !as_root() {
        return;
    }
    let node = Node::start("t34-echo");
    let rcm = node.rcm();
    let port = free_port();
    let command = echo_command(port);
    let port_text = port.to_string();
    // Polls a minute apart: only the watcher's report can explain a restart within seconds.
    create_app(
        rcm,
        "g",
        "echo",
        &[
            ("CommandLine", &command),
            ("HealthTcpPort", &port_text),
            ("StartWindow", "100"),
            ("StopTimeout", "5000"),
        ],
        &[
            ("LooksAlivePollInterval", "60000"),
            ("IsAlivePollInterval", "60000"),
            ("RestartThreshold", "10"),
        ],
    );
    let state = state_dir_of(rcm, &command);
    let first = app_pid(&state).expect("a pid file");
    // Outside the host's tree: neither the host nor rcm is its parent.
    let host_pid = rcm.resource("echo")["host_pid"].as_u64().expect("host_pid") as u32;
    assert!(
        ![host_pid, rcm.pid()].contains(&ppid(first)),
        "parent {}",
        ppid(first)
    );
    Client::connect(port).round_trip("hello").expect("echo");
    // As root, with cgroup v2 mounted here, the app is in a cgroup of its own, which it records.
    if let Some(mount) = Cgroup::v2_mount().expect("mountinfo") {
        let recorded = pid_record(&state)
            .and_then(|(_, _, c)| c)
            .expect("a cgroup in the pid file");
        let inside = Cgroup::of_process(first)
            .expect("its cgroup")
            .expect("a v2 cgroup");
        assert_eq!(mount.join(inside), recorded);
        assert!(
            recorded.starts_with(mount.join("keelson.slice")),
            "{recorded:?}"
        );
    }

    keelson_sys::process::kill(first, Signal::SIGKILL).expect("kill -9 the app");
    let took = wait_for("a restarted app", Duration::from_secs(10), || {
        app_pid(&state).is_some_and(|p| p != first) && rcm.resource("echo")["state"] == "Online"
    });
    let log = rcm.cluster_log();
    assert!(
        log.contains(&format!("process {first} exited with signal 9 (SIGKILL)")),
        "{log}"
    );
    assert!(
        !keelson_sys::process::zombie_children(rcm.pid())
            .expect("rcm's children")
            .contains(&first),
        "the app became rcm's zombie"
    );
    eprintln!("restart after kill -9, with polls 60 s away: {took:?}");
    let second = app_pid(&state).expect("the new pid");
    Client::connect(port)
        .round_trip("again")
        .expect("echo after the restart");

    // The port stops answering (the process lives): IsAlive fails and the process is replaced.
    rcm.ok(R::ResourceSet {
        name: "echo".into(),
        properties: pairs(&[("IsAlivePollInterval", "200")]),
        params: vec![],
        unset_params: vec![],
    });
    Client::connect(port)
        .round_trip("CLOSE")
        .expect("close the listener");
    wait_for("the unhealthy app replaced", LIMIT, || {
        app_pid(&state).is_some_and(|p| p != second) && rcm.resource("echo")["state"] == "Online"
    });
    assert!(!keelson_sys::process::is_alive(second));
    let log = rcm.cluster_log();
    assert!(
        log.contains(&format!(
            "HealthTcpPort {port}: 127.0.0.1:{port} did not accept"
        )),
        "{log}"
    );
    Client::connect(port)
        .round_trip("replaced")
        .expect("echo after the replacement");
    let output = std::fs::read_to_string(state.join("app.log")).expect("app.log");
    assert!(
        output.contains(&format!("listening on 127.0.0.1:{port}")),
        "{output}"
    );
    assert!(
        output.contains("listener closed\n") && output.contains("tick "),
        "{output}"
    );

    // An app that ignores SIGTERM is SIGKILLed after its StopTimeout.
    let stubborn = "sh -c 'trap \"\" TERM; echo ready; while :; do sleep 1; done'";
    create_app(
        rcm,
        "s",
        "stubborn",
        &[
            ("CommandLine", stubborn),
            ("StopTimeout", "400"),
            ("StartWindow", "100"),
        ],
        &[],
    );
    let stubborn_pid = app_pid(&state_dir_of(rcm, stubborn)).expect("its pid");
    let started = Instant::now();
    rcm.ok(R::GroupOffline { name: "s".into() });
    rcm.wait_state("stubborn", "Offline", LIMIT);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "offline took {took:?}");
    assert!(!keelson_sys::process::is_alive(stubborn_pid));
    let log = rcm.cluster_log();
    assert!(
        log.contains(&format!(
            "process {stubborn_pid} did not exit within StopTimeout (400 ms) of SIGTERM: SIGKILL"
        )),
        "{log}"
    );
    // The echo service honours SIGTERM: offline ends without a SIGKILL, its pid file removed.
    let last = app_pid(&state).expect("its pid");
    rcm.ok(R::GroupOffline { name: "g".into() });
    rcm.wait_state("echo", "Offline", LIMIT);
    assert!(!keelson_sys::process::is_alive(last));
    assert!(!rcm
        .cluster_log()
        .contains(&format!("process {last} did not exit")));
    assert_eq!(app_pid(&state), None);
}

#[test]
fn online_is_idempotent_a_connection_survives_a_host_kill_and_an_rcm_restart() {
    if !as_root() {
        return;
    }
    let mut node = Node::start("t34-idem");
    let port = free_port();
    let command = echo_command(port);
    let port_text = port.to_string();
    // Health checks run all along: they would catch a broken app.
    create_app(
        node.rcm(),
        "g",
        "echo",
        &[
            ("CommandLine", &command),
            ("HealthTcpPort", &port_text),
            ("StartWindow", "100"),
        ],
        &[
            ("LooksAlivePollInterval", "100"),
            ("IsAlivePollInterval", "200"),
        ],
    );
    let state = state_dir_of(node.rcm(), &command);
    let pid = app_pid(&state).expect("a pid file");

    // One connection, a round trip every 10 ms, until told to stop (at most a minute).
    let mut client = Client::connect(port);
    client.round_trip("first").expect("echo");
    let stop = Arc::new(AtomicBool::new(false));
    let trips = Arc::new(AtomicU64::new(0));
    let (stopping, counted) = (stop.clone(), trips.clone());
    let traffic = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stopping.load(Ordering::SeqCst) && Instant::now() < deadline {
            let n = counted.load(Ordering::SeqCst);
            client.round_trip(&format!("trip {n}"))?;
            counted.store(n + 1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok::<u64, String>(counted.load(Ordering::SeqCst))
    });
    // The connection keeps working: `more` round trips after this point.
    let keeps_working = |what: &str, more: u64| {
        let from = trips.load(Ordering::SeqCst);
        wait_for(what, LIMIT, || {
            assert!(
                !traffic.is_finished(),
                "the client stopped after {} trips",
                trips.load(Ordering::SeqCst)
            );
            trips.load(Ordering::SeqCst) >= from + more
        });
    };
    keeps_working("round trips before the host kill", 5);

    // The resource's host dies; a new host's online adopts the app.
    let old_host = node.rcm().resource("echo")["host_pid"]
        .as_u64()
        .expect("host_pid") as u32;
    let before = log_len(&state);
    keelson_sys::process::kill(old_host, Signal::SIGKILL).expect("kill -9 the host");
    wait_for("the resource re-hosted and Online", LIMIT, || {
        let view = node.rcm().resource("echo");
        view["host_pid"]
            .as_u64()
            .is_some_and(|h| h as u32 != old_host)
            && view["state"] == "Online"
    });
    assert_eq!(app_pid(&state), Some(pid), "the app was restarted");
    assert!(keelson_sys::process::is_alive(pid));
    wait_for("the log keeps growing", LIMIT, || log_len(&state) > before);
    keeps_working("round trips after the host kill", 20);
    let log = node.rcm().cluster_log();
    assert!(
        log.contains(&format!(
            "found process {pid} (started by an earlier host) running: adopted"
        )),
        "{log}"
    );

    // rcm itself restarts (its hosts end with it): the app is adopted again.
    node.restart();
    node.rcm().wait_state("echo", "Online", LIMIT);
    assert_eq!(app_pid(&state), Some(pid), "the app was restarted");
    let before = log_len(&state);
    wait_for("the log keeps growing", LIMIT, || log_len(&state) > before);
    keeps_working("round trips after the rcm restart", 20);
    stop.store(true, Ordering::SeqCst);
    let trips = traffic
        .join()
        .expect("client thread")
        .expect("no failed round trip");
    eprintln!("{trips} round trips on one connection across a host kill and an rcm restart");
    let stats = &node.rcm().resource("echo")["call_stats"];
    eprintln!(
        "LooksAlive in the host: {}, IsAlive (TCP probe): {}",
        stats["LOOKSALIVE"], stats["ISALIVE"]
    );

    node.rcm().ok(R::GroupOffline { name: "g".into() });
    node.rcm().wait_state("echo", "Offline", LIMIT);
    assert!(!keelson_sys::process::is_alive(pid));
}
