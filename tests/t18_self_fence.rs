//! Self-fencing hosts, end to end with a real rcm and real hosts: every host holds a lease from its
//! rcm (here 300 ms, renewed every 100 ms, TERMINATE budget 200 ms). When the rcm is frozen
//! (SIGSTOP), its host calls TERMINATE on every resource by itself (a plugin-made message proves the
//! plugin's TERMINATE ran; a TERMINATE that hangs is abandoned at its budget) and exits; the time
//! from SIGSTOP to the fence and to the exit is measured and printed. After SIGCONT the rcm says the
//! host fenced itself, blames nobody (no separate monitor, no event 1230) and brings the group back
//! Online in a new host through its normal restart policy. A busy rcm does not fence: with its core
//! thread stopped (ptrace, the rest of the process running) the host keeps its lease; with only the
//! renewer thread stopped, it fences, which shows that the renewer is what keeps it.

mod common;

use common::rcm::Rcm;
use common::wait_until;
use keelson_host::{DeathCause, Host, HostConfig, HostLease, LeaseRenewer, OpenSpec};
use keelson_proto::ControlRequest as R;
use keelson_types::{Op, ResourceId};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const LEASE_MS: u64 = 300;
const BUDGET_MS: u64 = 200;

fn s(v: &str) -> String {
    v.to_string()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (s(k), s(v))
}

/// An rcm with the small lease and one Online group "g": `proof` (chaos, TERMINATE fails with a
/// message only the plugin writes), `stuck` (chaos, TERMINATE hangs) and `plain` (dummy). Returns
/// the node and the pid of the one host all three share.
fn node_with_group(tag: &str) -> (Rcm, u32) {
    let dir = Rcm::new_dir(tag);
    let lease = LEASE_MS.to_string();
    let budget = BUDGET_MS.to_string();
    let rcm = Rcm::start_in_with_args(
        dir,
        &["--host-lease", &lease, "--host-fence-budget", &budget],
    );
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    let chaos = |name: &str, fault: &str| R::ResourceCreate {
        name: s(name),
        type_name: s("chaos"),
        group: s("g"),
        params: vec![pair("entry", "terminate"), pair("fault", fault)],
        properties: vec![pair("RestartDelay", "20")],
    };
    rcm.ok(chaos("proof", "error"));
    rcm.ok(chaos("stuck", "hang"));
    rcm.ok(R::ResourceCreate {
        name: s("plain"),
        type_name: s("dummy"),
        group: s("g"),
        params: vec![],
        properties: vec![pair("RestartDelay", "20")],
    });
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_group("g", "Online", LIMIT);
    let pid = host_pid(&rcm, "proof");
    for name in ["stuck", "plain"] {
        assert_eq!(host_pid(&rcm, name), pid, "one default host");
    }
    (rcm, pid)
}

fn host_pid(rcm: &Rcm, name: &str) -> u32 {
    rcm.resource(name)["host_pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("'{name}' has no host: {}", rcm.resource(name))) as u32
}

/// The command names of the threads of `pid` (empty once it is gone or a zombie).
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect()
}

/// The thread id of `pid`'s thread named `name`.
fn thread_named(pid: u32, name: &str) -> u32 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process runs");
    tasks
        .filter_map(|t| t.ok())
        .find(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .and_then(|t| t.file_name().to_str().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no thread '{name}' in {pid}: {:?}", thread_names(pid)))
}

fn fencing(pid: u32) -> bool {
    thread_names(pid).iter().any(|n| n.starts_with("fence-"))
}

/// One thread's scheduler state letter ('t': stopped by its tracer).
fn thread_state(pid: u32, tid: u32) -> char {
    keelson_sys::process::stat_fields(&format!("/proc/{pid}/task/{tid}/stat"))
        .ok()
        .and_then(|f| f.first().and_then(|s| s.chars().next()))
        .unwrap_or('?')
}

/// Polls every 1 ms until `cond` holds, at most `limit`; the time it took.
fn time_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn event_ids(rcm: &Rcm) -> Vec<u64> {
    rcm.events()
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect()
}

/// Waits until the cluster log has a line with every one of `needles`; that line.
fn log_line(rcm: &Rcm, needles: &[&str]) -> String {
    let has = |l: &str| needles.iter().all(|n| l.contains(n));
    let found = wait_until(LIMIT, || rcm.cluster_log().lines().any(has));
    let log = rcm.cluster_log();
    assert!(found, "no log line with {needles:?}:\n{log}");
    log.lines()
        .find(|l| has(l))
        .expect("just found")
        .to_string()
}

#[test]
fn a_frozen_rcm_s_host_terminates_its_resources_and_exits() {
    let (rcm, host) = node_with_group("fence-sigstop");
    let rcm_pid = rcm.pid();
    // Alive and idle for five leases: renewals keep the host.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_millis(5 * LEASE_MS) {
        assert!(keelson_sys::process::is_alive(host) && !fencing(host));
        std::thread::sleep(Duration::from_millis(10));
    }

    keelson_sys::process::kill(rcm_pid, keelson_sys::Signal::SIGSTOP).expect("SIGSTOP rcm");
    let stopped = Instant::now();
    let fence_at = time_until(LIMIT, || fencing(host));
    let exit_at =
        time_until(LIMIT, || !keelson_sys::process::is_alive(host)).map(|_| stopped.elapsed());
    keelson_sys::process::kill(rcm_pid, keelson_sys::Signal::SIGCONT).expect("SIGCONT rcm");
    let fence_at = fence_at.expect("the host began to fence while rcm was stopped");
    let exit_at = exit_at.expect("the host exited while rcm was stopped");
    println!(
        "SIGSTOP of rcm -> host fence began: {} ms; -> host exited (every TERMINATE returned or \
         abandoned at its {BUDGET_MS} ms budget): {} ms (lease {LEASE_MS} ms, renewed every {} ms)",
        fence_at.as_millis(),
        exit_at.as_millis(),
        LEASE_MS / 3
    );
    // The last grant came about a renewal interval (plus the renewer's lateness on a loaded
    // machine) at most before the stop: the lease ends 200-300 ms after the stop, and the hung
    // TERMINATE holds the exit to the budget after that. The bounds below leave 100 ms for load.
    let lease = Duration::from_millis(LEASE_MS);
    let budget = Duration::from_millis(BUDGET_MS);
    assert!(
        fence_at >= lease / 3,
        "fenced before the lease could have run out: {fence_at:?}"
    );
    assert!(
        fence_at < lease + Duration::from_millis(700),
        "fenced too late: {fence_at:?}"
    );
    assert!(
        exit_at >= lease / 3 + budget,
        "exited before the hung TERMINATE's budget: {exit_at:?}"
    );
    assert!(
        exit_at < lease + budget + Duration::from_millis(1_000),
        "exited too late: {exit_at:?}"
    );

    // What the host said (it reaches the cluster log once rcm runs again).
    let line = log_line(
        &rcm,
        &["[RHS]", "Lease from rcm expired", "terminating 3 resources"],
    );
    let late_ms: u64 = line
        .split("expired ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no delay in {line}"));
    println!("the host noticed its lease's end {late_ms} ms after it");
    assert!(late_ms < LEASE_MS, "{line}");
    log_line(
        &rcm,
        &[
            "TERMINATE of resource 'proof' failed",
            "chaos: injected failure in terminate",
        ],
    );
    log_line(&rcm, &["Fence: resource 'plain' terminated in"]);
    log_line(
        &rcm,
        &["TERMINATE of resource 'stuck' did not return within 200 ms"],
    );
    log_line(&rcm, &["Fenced: 1 of 3 resources terminated"]);
    // What rcm made of it: a fence, not a crash; nobody blamed.
    let line = log_line(
        &rcm,
        &["[RCM]", &format!("Resource host {host} fenced itself")],
    );
    assert!(line.contains("Nobody is blamed"), "{line}");
    log_line(&rcm, &["[RCM]", "this process was frozen or starved"]);

    // Back Online in a new host through the normal restart policy.
    rcm.wait_group("g", "Online", LIMIT);
    let log = rcm.cluster_log();
    for name in ["proof", "stuck", "plain"] {
        let view = rcm.wait_state(name, "Online", LIMIT);
        assert_ne!(view["host_pid"].as_u64(), Some(host as u64), "{name}");
        assert_eq!(view["properties"]["SeparateMonitor"], false, "{name}");
        assert!(
            !log.contains(&format!("FAILURENOTIFICATION for '{name}'")),
            "{name} was blamed:\n{log}"
        );
    }
    assert!(!event_ids(&rcm).contains(&1230), "{:?}", rcm.events());
    assert!(
        !log.contains("resource host failure"),
        "counted as a failure:\n{log}"
    );
}

/// Stops (ptrace) one thread of a child process while its other threads run, until dropped.
struct FrozenThread {
    tid: i32,
}

impl FrozenThread {
    /// Seizes thread `tid` and interrupts it; returns once it is stopped.
    fn freeze(tid: u32) -> std::io::Result<FrozenThread> {
        let tid = tid as i32;
        // SAFETY: PTRACE_SEIZE and PTRACE_INTERRUPT take a thread id and no memory arguments.
        let seized = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) };
        if seized != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let frozen = FrozenThread { tid };
        // SAFETY: as above.
        if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0usize, 0usize) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut status = 0;
        // SAFETY: waits for the stop of a thread this thread traces; `status` is writable.
        if unsafe { libc::waitpid(tid, &mut status, libc::__WALL) } != tid {
            return Err(std::io::Error::last_os_error());
        }
        Ok(frozen)
    }
}

impl Drop for FrozenThread {
    fn drop(&mut self) {
        // SAFETY: detaching a stopped tracee resumes it; no memory arguments.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, self.tid, 0usize, 0usize) };
    }
}

/// Freezes thread `name` of `pid`, or explains why not (a failure in CI, a skip elsewhere).
fn freeze(pid: u32, name: &str) -> Option<FrozenThread> {
    let tid = thread_named(pid, name);
    match FrozenThread::freeze(tid) {
        Ok(frozen) => {
            assert_eq!(thread_state(pid, tid), 't', "thread '{name}' is stopped");
            Some(frozen)
        }
        Err(e) if !common::in_ci() => {
            println!("skipped: cannot ptrace thread '{name}' of rcm ({e}); needs CAP_SYS_PTRACE");
            None
        }
        Err(e) => panic!("cannot ptrace thread '{name}' of rcm ({e}); needs CAP_SYS_PTRACE"),
    }
}

/// A `status` request to rcm answered within `limit`, or why not.
fn answers_within(rcm: &Rcm, limit: Duration) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = keelson_client::Client::new(rcm.dir.join("rcm.sock")).with_reply_timeout(limit);
    rt.block_on(async {
        tokio::time::timeout(limit, client.replies(R::Status))
            .await
            .map_err(|_| "no answer".to_string())?
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

#[test]
fn a_busy_rcm_keeps_its_hosts_and_only_the_renewer_stops_them() {
    let (rcm, host) = node_with_group("fence-busy");
    let rcm_pid = rcm.pid();
    // The core (the main thread, which runs the whole single-threaded runtime) blocked for ten
    // leases: no request is served, no task runs, yet the renewer thread keeps the host's lease.
    {
        let Some(_core) = freeze(rcm_pid, "keelson-rcm") else {
            return;
        };
        let blocked = Instant::now();
        assert!(
            answers_within(&rcm, Duration::from_millis(LEASE_MS)).is_err(),
            "rcm answered with its core stopped"
        );
        while blocked.elapsed() < Duration::from_millis(10 * LEASE_MS) {
            assert!(
                keelson_sys::process::is_alive(host) && !fencing(host),
                "the host fenced while rcm was only busy"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(host_pid(&rcm, "plain"), host);
    assert_eq!(rcm.group_state("g"), "Online");
    assert!(!rcm.cluster_log().contains("Lease from rcm expired"));

    // The renewer alone stopped (the core runs): the host fences, and rcm, awake, sees it at once.
    let renewer = freeze(rcm_pid, "host-lease").expect("ptrace worked a moment ago");
    let stopped = Instant::now();
    let gone = time_until(LIMIT, || !keelson_sys::process::is_alive(host));
    drop(renewer);
    let gone = gone.expect("the host fenced without renewals");
    println!(
        "renewer stopped -> host exited: {} ms (lease {LEASE_MS} ms + budget {BUDGET_MS} ms)",
        gone.as_millis()
    );
    log_line(
        &rcm,
        &["[RCM]", &format!("Resource host {host} fenced itself")],
    );
    rcm.wait_group("g", "Online", LIMIT);
    assert_ne!(host_pid(&rcm, "plain"), host);
    println!(
        "renewer stopped -> group Online again in a new host: {} ms",
        stopped.elapsed().as_millis()
    );
}

#[test]
fn a_bad_lease_is_refused_with_one_line_and_changes_nothing() {
    for (args, names) in [
        (["--host-lease", "10"], "host lease of 10 ms"),
        (["--host-fence-budget", "0"], "fence budget of 0 ms"),
        (["--host-lease", "soon"], "soon"),
    ] {
        let dir = std::env::temp_dir().join(format!("keelson-fence-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = std::process::Command::new(common::artefact("keelson-rcm"))
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .output()
            .expect("keelson-rcm runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
        assert!(!dir.exists(), "{args:?} created {}", dir.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_renewals_stop_reports_a_fence_that_blames_nobody() {
    let config = HostConfig {
        lease: Some(HostLease::new(LEASE_MS, BUDGET_MS).unwrap()),
        ..common::host_config()
    };
    let (host, _events) = Host::spawn(&config).await.expect("host spawns");
    let renewer = LeaseRenewer::start(config.lease.unwrap()).unwrap();
    renewer.add(host.pid(), host.lease_socket().expect("a leased host"));
    let res = host
        .open(OpenSpec::new(
            ResourceId(1),
            "plain",
            &common::plugin("dummy"),
            "dummy",
        ))
        .await
        .unwrap();
    assert_eq!(res.call(Op::Online).await.unwrap().status, 0);
    // Renewed for five leases: still there.
    let renewed = tokio::time::timeout(Duration::from_millis(5 * LEASE_MS), host.died()).await;
    assert!(renewed.is_err(), "fenced while renewed: {renewed:?}");
    let stopped = Instant::now();
    drop(renewer);
    let died = tokio::time::timeout(LIMIT, host.died())
        .await
        .expect("the host fences once renewals stop");
    let took = stopped.elapsed();
    let DeathCause::Fenced {
        resources,
        terminated,
        ..
    } = died.cause
    else {
        panic!("not a fence: {died}");
    };
    assert_eq!((resources, terminated), (1, 1), "{died}");
    assert_eq!(died.cause.offender(), None);
    assert!(
        took < Duration::from_millis(LEASE_MS + BUDGET_MS + 1_000),
        "{took:?}"
    );
    println!(
        "renewals stopped -> bare host fenced and reported: {} ms",
        took.as_millis()
    );
}
