//! Separate monitors with a real keelson-rcm: a resource that deadlocks in LOOKSALIVE gets its host
//! killed, the WSFC log lines and events 1146/1230, SeparateMonitor=true persisted, a host of its own,
//! while the innocent resources of the dead host come back Online in a fresh default host within
//! 200 ms of the death (measured from the cluster log's own timestamps). Also crash attribution.

mod common;

use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::time::Duration;

fn s(v: &str) -> String {
    v.to_string()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (s(k), s(v))
}

/// Milliseconds of the day of a cluster-log line (`PID.TID::YYYY/MM/DD-HH:MM:SS.mmm ...`).
fn line_ms(line: &str) -> u64 {
    let time = &line[line.find("::").unwrap() + 13..][..12];
    let h: u64 = time[0..2].parse().unwrap();
    let m: u64 = time[3..5].parse().unwrap();
    let sec: u64 = time[6..8].parse().unwrap();
    let ms: u64 = time[9..12].parse().unwrap();
    ((h * 60 + m) * 60 + sec) * 1000 + ms
}

fn find_line<'a>(log: &'a str, needle: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?}:\n{log}"))
}

fn pid_of(v: &Value) -> u64 {
    v["host_pid"].as_u64().unwrap_or(0)
}

#[test]
fn deadlock_moves_the_offender_to_its_own_monitor_and_innocents_return_at_once() {
    let rcm = Rcm::start("sepmon");
    let arm = rcm.dir.join("arm-hang");
    std::fs::write(&arm, b"").unwrap();
    rcm.ok(R::GroupCreate {
        name: s("files"),
        properties: vec![],
    });
    let innocents = ["ip", "name", "disk"];
    for n in innocents {
        rcm.ok(R::ResourceCreate {
            name: s(n),
            type_name: s("dummy"),
            group: s("files"),
            params: vec![],
            properties: vec![],
        });
    }
    rcm.ok(R::ResourceCreate {
        name: s("share"),
        type_name: s("chaos"),
        group: s("files"),
        params: vec![
            pair("entry", "looks_alive"),
            pair("fault", "hang"),
            pair("armed_by", &arm.display().to_string()),
        ],
        properties: vec![
            pair("LooksAlivePollInterval", "50"),
            pair("DeadlockTimeout", "200"),
        ],
    });
    rcm.ok(R::GroupOnline { name: s("files") });
    rcm.wait_group("files", "Online", Duration::from_secs(10));
    let old_pid = pid_of(&rcm.resource("ip"));
    assert_eq!(
        pid_of(&rcm.resource("share")),
        old_pid,
        "everyone starts in the default host"
    );

    // The hang fires at the first LOOKSALIVE (50 ms after online) and is found 200 ms later.
    let limit = Duration::from_secs(10);
    assert!(
        common::wait_until(limit, || rcm.cluster_log().contains("handling deadlock")),
        "{}",
        rcm.cluster_log()
    );
    std::fs::remove_file(&arm).unwrap(); // the offender is healthy in its next host
    let share = rcm.wait_resource("share", limit, "separately monitored and Online", |v| {
        v["properties"]["SeparateMonitor"] == true
            && v["state"] == "Online"
            && pid_of(v) != old_pid
            && pid_of(v) != 0
    });
    let mut new_pids = Vec::new();
    for n in innocents {
        let v = rcm.wait_resource(n, limit, "Online in a new host", |v| {
            v["state"] == "Online" && pid_of(v) != old_pid
        });
        new_pids.push(pid_of(&v));
    }
    assert!(
        new_pids.iter().all(|p| *p == new_pids[0]),
        "innocents share one fresh default host: {new_pids:?}"
    );
    assert_ne!(
        pid_of(&share),
        new_pids[0],
        "the offender has a host of its own"
    );
    assert_eq!(share["properties"]["MonitorProcessId"], pid_of(&share));
    rcm.wait_group("files", "Online", limit);
    assert!(
        !keelson_sys::process::is_alive(old_pid as u32),
        "the deadlocked host is gone"
    );

    let log = rcm.cluster_log();
    let rhs_prefix = format!("{old_pid:08x}.");
    let timed_out = find_line(
        &log,
        "ERR [RHS] RhsCall::DeadlockMonitor: Call LOOKSALIVE timed out for resource 'share'.",
    );
    assert!(
        timed_out.starts_with(&rhs_prefix),
        "rhs lines carry the rhs pid: {timed_out}"
    );
    let death = find_line(&log, "ERR [RHS] Resource share handling deadlock. Cleaning current operation and terminating RHS process.");
    assert!(death.starts_with(&rhs_prefix));
    find_line(
        &log,
        "INFO [RCM] HandleMonitorReply: FAILURENOTIFICATION for 'share', gen(0) result 4.",
    );
    find_line(&log, "WARN [RCM] Resource 'share' (resource type 'chaos', plugin 'chaos') has crashed or deadlocked; marking it to run in a separate monitor.");

    let back = innocents
        .iter()
        .map(|n| {
            let needle = format!("Resource '{n}' state OnlinePending -> Online");
            log.lines()
                .rfind(|l| l.contains(&needle))
                .map(line_ms)
                .unwrap()
        })
        .max()
        .unwrap();
    let recovery = back.saturating_sub(line_ms(death));
    println!("innocent resources back Online {recovery} ms after their host's deadlock death");
    assert!(recovery <= 200, "innocents took {recovery} ms:\n{log}");

    let events = rcm.events();
    let ids: Vec<u64> = events.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert!(ids.contains(&1146), "{events:?}");
    let e1230 = events.iter().find(|e| e["id"] == 1230).expect("event 1230");
    assert_eq!(e1230["resource"], "share");
    assert!(
        e1230["message"].as_str().unwrap().contains("'share'"),
        "{e1230}"
    );

    // SeparateMonitor survives a restart of the node service, and the resource keeps its own host.
    let dir = rcm.keep_dir();
    let rcm = Rcm::start_in(dir);
    rcm.wait_group("files", "Online", limit);
    let share = rcm.resource("share");
    assert_eq!(share["properties"]["SeparateMonitor"], true);
    assert_ne!(pid_of(&share), pid_of(&rcm.resource("ip")));
}

#[test]
fn a_crash_is_blamed_on_its_resource_and_call() {
    let rcm = Rcm::start("crash");
    let arm = rcm.dir.join("arm-segv");
    std::fs::write(&arm, b"").unwrap();
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("good"),
        type_name: s("dummy"),
        group: s("g"),
        params: vec![],
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("crasher"),
        type_name: s("chaos"),
        group: s("g"),
        params: vec![
            pair("entry", "is_alive"),
            pair("fault", "segv"),
            pair("armed_by", &arm.display().to_string()),
        ],
        properties: vec![pair("IsAlivePollInterval", "100")],
    });
    rcm.ok(R::GroupOnline { name: s("g") });
    let limit = Duration::from_secs(10);
    assert!(common::wait_until(limit, || rcm
        .cluster_log()
        .contains("FAILURENOTIFICATION for 'crasher'")));
    std::fs::remove_file(&arm).unwrap();
    rcm.wait_resource("crasher", limit, "separate", |v| {
        v["properties"]["SeparateMonitor"] == true
    });
    let log = rcm.cluster_log();
    find_line(
        &log,
        "crashed with SIGSEGV in ISALIVE of resource 'crasher'",
    );
    find_line(
        &log,
        "Resource 'crasher' (resource type 'chaos', plugin 'chaos') has crashed or deadlocked",
    );
    rcm.wait_state("good", "Online", limit);
}
