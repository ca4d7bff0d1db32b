//! End-to-end isolation of plugin faults in real keelson-rhs processes: deadlocks found within the
//! deadline while a neighbour keeps answering, crashes blamed on the right resource and call, panics
//! contained, bad plugins refused, the watchdog, and no zombies or leaked fds over many host lives.

mod common;

use keelson_host::{CallError, DeathCause, Host, HostError, HostEvent, HostEvents, OpenSpec};
use keelson_types::{Op, ResourceId};
use std::time::{Duration, Instant};

fn chaos(id: u64, name: &str, params: &str) -> OpenSpec {
    OpenSpec::new(ResourceId(id), name, &common::plugin("chaos"), "chaos").params(params)
}

fn dummy(id: u64, name: &str) -> OpenSpec {
    OpenSpec::new(ResourceId(id), name, &common::plugin("dummy"), "dummy")
}

async fn spawn() -> (Host, HostEvents) {
    Host::spawn(&common::host_config())
        .await
        .expect("host spawns")
}

/// Every log line the host sent before it died.
async fn log_lines(events: &mut HostEvents) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .ok()
        .flatten()
    {
        match event {
            HostEvent::Log { message, .. } => lines.push(message),
            HostEvent::Died(_) => break,
            _ => {}
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_looks_alive_is_found_within_its_deadline_while_a_neighbour_keeps_answering() {
    let (host, mut events) = spawn().await;
    let deadline = Duration::from_millis(200);
    let hung = host
        .open(
            chaos(
                1,
                "Cluster Name",
                r#"{"entry":"looks_alive","fault":"hang"}"#,
            )
            .deadlock_timeout(deadline),
        )
        .await
        .unwrap();
    let healthy = host.open(dummy(2, "Healthy Disk")).await.unwrap();

    let start = Instant::now();
    let hang = tokio::spawn(async move { (hung.call(Op::LooksAlive).await, start.elapsed()) });
    let mut answered_during_hang = 0;
    while !hang.is_finished() && start.elapsed() < Duration::from_secs(10) {
        match healthy.call(Op::LooksAlive).await {
            Ok(done) if done.status == 0 && !hang.is_finished() => answered_during_hang += 1,
            _ => break,
        }
    }
    let (result, detected_after) = hang.await.unwrap();
    println!(
        "deadlock detected after {} ms; neighbour answered {answered_during_hang} checks meanwhile",
        detected_after.as_millis()
    );

    let Err(CallError::HostDied(died)) = result else {
        panic!("expected a host death, got {result:?}")
    };
    assert_eq!(died.pid, host.pid());
    match &died.cause {
        DeathCause::Deadlock {
            resource,
            name,
            op,
            by_watchdog,
            elapsed,
        } => {
            assert_eq!(
                (*resource, name.as_str(), *op, *by_watchdog),
                (ResourceId(1), "Cluster Name", Op::LooksAlive, false)
            );
            assert!(*elapsed >= deadline, "declared after only {elapsed:?}");
        }
        other => panic!("expected Deadlock, got {other:?}"),
    }
    assert!(
        detected_after <= deadline + Duration::from_millis(50),
        "detected after {detected_after:?}"
    );
    assert!(
        answered_during_hang >= 1,
        "the healthy resource must answer while its neighbour hangs"
    );

    let lines = log_lines(&mut events).await;
    assert!(
        lines.contains(
            &"RhsCall::DeadlockMonitor: Call LOOKSALIVE timed out for resource 'Cluster Name'."
                .to_string()
        ),
        "{lines:?}"
    );
    assert!(lines.contains(&"Resource Cluster Name handling deadlock. Cleaning current operation and terminating RHS process.".to_string()), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segfault_is_blamed_on_the_resource_and_call_that_ran() {
    let (host, _events) = spawn().await;
    let _innocent = host.open(dummy(1, "innocent")).await.unwrap();
    let bad = host
        .open(chaos(
            2,
            "segv-res",
            r#"{"entry":"is_alive","fault":"segv"}"#,
        ))
        .await
        .unwrap();
    let Err(CallError::HostDied(died)) = bad.call(Op::IsAlive).await else {
        panic!("host must die")
    };
    assert_eq!(
        died.cause,
        DeathCause::Crash {
            resource: Some(ResourceId(2)),
            name: Some("segv-res".into()),
            op: Some(Op::IsAlive),
            signal: 11
        }
    );
    assert!(
        died.to_string()
            .contains("SIGSEGV in ISALIVE of resource 'segv-res'"),
        "{died}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_some_calls_is_blamed_on_the_right_call() {
    let (host, _events) = spawn().await;
    let bad = host
        .open(chaos(
            7,
            "abort-res",
            r#"{"entry":"online","fault":"abort","after":"1"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(
        bad.call(Op::Online).await.unwrap().status,
        0,
        "first online is healthy"
    );
    assert_eq!(bad.call(Op::LooksAlive).await.unwrap().status, 0);
    let Err(CallError::HostDied(died)) = bad.call(Op::Online).await else {
        panic!("host must die")
    };
    assert_eq!(
        died.cause,
        DeathCause::Crash {
            resource: Some(ResourceId(7)),
            name: Some("abort-res".into()),
            op: Some(Op::Online),
            signal: 6
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_an_error_and_the_host_lives_on() {
    let (host, _events) = spawn().await;
    let bad = host
        .open(chaos(
            1,
            "panicky",
            r#"{"entry":"looks_alive","fault":"panic"}"#,
        ))
        .await
        .unwrap();
    let done = bad.call(Op::LooksAlive).await.unwrap();
    assert_eq!(done.status, keelson_abi::KEELSON_PANIC);
    assert!(
        done.message.contains("chaos: injected panic"),
        "{}",
        done.message
    );
    // The same resource and a new one both still work: the host did not die.
    assert_eq!(bad.call(Op::IsAlive).await.unwrap().status, 0);
    let other = host.open(dummy(2, "after-panic")).await.unwrap();
    assert_eq!(other.call(Op::LooksAlive).await.unwrap().status, 0);
    assert!(host.death().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_exit_is_reported_with_its_status() {
    let (host, _events) = spawn().await;
    let bad = host
        .open(chaos(
            1,
            "quitter",
            r#"{"entry":"offline","fault":"exit","exit_code":"3"}"#,
        ))
        .await
        .unwrap();
    let Err(CallError::HostDied(died)) = bad.call(Op::Offline).await else {
        panic!("host must die")
    };
    assert_eq!(died.cause, DeathCause::Exit { status: 3 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abi_mismatch_missing_symbol_and_missing_file_are_clear_errors() {
    let (host, _events) = spawn().await;
    let bad_abi = common::plugin("bad-abi");
    let err = host.load_plugin(&bad_abi).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!("plugin {bad_abi}: ABI version 7, host speaks 1")
    );

    let nosym = keelson_plugin_c_example::NO_SYMBOL_LIBRARY;
    let err = host.load_plugin(nosym).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!("plugin {nosym}: missing symbol keelson_plugin_v1 (not a keelson plugin)")
    );

    let err = host
        .load_plugin("/nonexistent/libnothing.so")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("plugin /nonexistent/libnothing.so: cannot load:"),
        "{err}"
    );

    // Open against a bad plugin fails the open, not the host.
    let err = host
        .open(OpenSpec::new(ResourceId(1), "x", &bad_abi, "dummy"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ABI version 7"), "{err}");
    let err = host
        .open(OpenSpec::new(
            ResourceId(2),
            "y",
            &common::plugin("dummy"),
            "nope",
        ))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("has no resource type 'nope' (it has: dummy)"),
        "{err}"
    );

    // The host is still fine and loads a good plugin.
    let info = host.load_plugin(&common::plugin("dummy")).await.unwrap();
    assert_eq!(
        info.types
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["dummy"]
    );
    assert!(host.death().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcm_watchdog_kills_a_host_that_stops_answering() {
    let mut config = common::host_config();
    config.watchdog_grace = Duration::from_millis(100);
    let (host, _events) = Host::spawn(&config).await.unwrap();
    let res = host.open(dummy(1, "frozen")).await.unwrap();
    // A stopped process answers nothing, not even its own deadlock monitor.
    keelson_sys::process::kill(host.pid(), keelson_sys::Signal::SIGSTOP).unwrap();
    // kill() returns before every thread has stopped; wait until they all have.
    let pid = host.pid();
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            let states = common::thread_states(pid);
            !states.is_empty() && states.iter().all(|s| *s == 'T' || *s == 't')
        }),
        "host {pid} did not stop: {:?}",
        common::thread_states(pid)
    );
    let start = Instant::now();
    let result = res
        .call_with_deadline(Op::LooksAlive, Duration::from_millis(100))
        .await;
    let Err(CallError::HostDied(died)) = result else {
        panic!("watchdog must kill the host, got {result:?}")
    };
    assert!(start.elapsed() >= Duration::from_millis(200));
    match died.cause {
        DeathCause::Deadlock {
            resource,
            op,
            by_watchdog,
            ..
        } => {
            assert_eq!(
                (resource, op, by_watchdog),
                (ResourceId(1), Op::LooksAlive, true)
            )
        }
        other => panic!("expected a watchdog deadlock, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_says_hello_is_killed_and_reaped() {
    // `yes` runs until killed and never writes a Hello frame (no script file: writing an executable
    // while other tests fork would race into ETXTBSY).
    let silent = std::path::PathBuf::from("/usr/bin/yes");
    let mut config = keelson_host::HostConfig::with_rhs(silent);
    config.hello_timeout = Duration::from_millis(200);
    let err = Host::spawn(&config).await.unwrap_err();
    assert!(matches!(err, HostError::HelloTimeout(200)), "{err}");
    // Other tests fork concurrently, so look for our `yes` only, and give the reaper a moment.
    assert!(
        common::wait_until(Duration::from_secs(5), || common::zombie_children_named(
            "yes"
        )
        .is_empty()),
        "the silent host was left a zombie"
    );

    let missing = keelson_host::HostConfig::with_rhs("/nonexistent/keelson-rhs".into());
    let err = Host::spawn(&missing).await.unwrap_err().to_string();
    assert!(
        err.starts_with("cannot start /nonexistent/keelson-rhs:"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_spawn_kill_cycles_leave_no_zombie_and_no_fd() {
    // Warm up once so lazily created runtime fds (signal pipe, epoll) are in the baseline.
    let (host, _e) = spawn().await;
    host.kill();
    host.died().await;
    let fds_before = keelson_sys::process::open_fd_count().unwrap();
    for i in 0..100 {
        let (host, events) = spawn().await;
        if i % 2 == 0 {
            let res = host.open(dummy(1, "cycle")).await.unwrap();
            assert_eq!(res.call(Op::LooksAlive).await.unwrap().status, 0);
        }
        host.kill();
        let died = host.died().await;
        assert_eq!(died.cause, DeathCause::Killed { signal: 9 });
        drop(events);
    }
    let me = std::process::id();
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            keelson_sys::process::zombie_children(me)
                .unwrap()
                .is_empty()
        }),
        "zombies left: {:?}",
        keelson_sys::process::zombie_children(me)
    );
    let fds_after = keelson_sys::process::open_fd_count().unwrap();
    assert!(
        common::wait_until(
            Duration::from_secs(5),
            || keelson_sys::process::open_fd_count().unwrap() <= fds_before
        ),
        "fds before {fds_before}, after {fds_after}"
    );
}
