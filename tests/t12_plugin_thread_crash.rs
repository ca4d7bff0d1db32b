//! A crash on a thread the plugin made itself (no call running on it) is blamed on the plugin whose
//! code faulted: the host's report names the plugin, the faulting address, its offset in the .so and
//! the function; with a real keelson-rcm, every resource of that plugin in the dead host moves to a
//! separate monitor of its own (event 1230 and SeparateMonitor=true each, persisted) while the
//! other plugin's resource comes back Online in a fresh default host.

mod common;

use common::rcm::Rcm;
use keelson_host::{DeathCause, Host, OpenSpec};
use keelson_proto::ControlRequest as R;
use keelson_types::{Op, ResourceId};
use serde_json::Value;
use std::time::Duration;

fn s(v: &str) -> String {
    v.to_string()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (s(k), s(v))
}

fn pid_of(v: &Value) -> u64 {
    v["host_pid"].as_u64().unwrap_or(0)
}

fn find_line<'a>(log: &'a str, needle: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no log line with {needle:?}:\n{log}"))
}

/// The hex number right after `marker` in `line`.
fn hex_after(line: &str, marker: &str) -> u64 {
    let at = line
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {line}"));
    let digits: String = line[at + marker.len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("no hex after {marker:?} in {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_blames_the_plugin_whose_own_thread_crashed() {
    let (host, _events) = Host::spawn(&common::host_config())
        .await
        .expect("host spawns");
    let path = common::plugin("chaos");
    let crasher = host
        .open(
            OpenSpec::new(ResourceId(1), "crasher", &path, "chaos")
                .params(r#"{"entry":"online","fault":"segv_thread","thread_delay_ms":"50"}"#),
        )
        .await
        .unwrap();
    let healthy = host
        .open(OpenSpec::new(
            ResourceId(2),
            "healthy",
            &common::plugin("dummy"),
            "dummy",
        ))
        .await
        .unwrap();
    let online = crasher.call(Op::Online).await.unwrap();
    assert_eq!(
        online.status, 0,
        "the call itself succeeds: {}",
        online.message
    );
    let died = tokio::time::timeout(Duration::from_secs(10), host.died())
        .await
        .expect("the plugin's thread kills its host");
    let DeathCause::PluginCrash {
        plugin,
        path: reported_path,
        signal,
        pc,
        offset,
        fault_addr,
        symbol,
    } = &died.cause
    else {
        panic!("expected a crash blamed on a plugin, got {died:?}")
    };
    assert_eq!(plugin, "chaos");
    assert_eq!(reported_path, &path);
    assert_eq!((*signal, *fault_addr), (11, 0x10));
    assert!(
        *pc > *offset && *offset > 0,
        "pc {pc:#x}, offset {offset:#x}"
    );
    assert_eq!(
        symbol.as_deref(),
        Some("keelson_plugin_chaos::fault::segv_here"),
        "the faulting function, from the .so's symbol table"
    );
    assert_eq!(died.cause.offender(), None, "no call to blame");
    assert_eq!(died.cause.offending_plugin(), Some("chaos"));
    let text = died.to_string();
    assert!(
        text.contains("crashed with SIGSEGV in plugin 'chaos''s code on a thread of its own")
            && text.contains(&format!("(libkeelson_plugin_chaos.so+{offset:#x}, in keelson_plugin_chaos::fault::segv_here) accessing 0x10")),
        "{text}"
    );
    assert!(
        healthy.call(Op::LooksAlive).await.is_err(),
        "its neighbour died with it"
    );
}

#[test]
fn a_plugin_thread_crash_moves_each_of_that_plugins_resources_to_its_own_monitor() {
    let rcm = Rcm::start("plugin-thread-crash");
    let arm = rcm.dir.join("arm-segv-thread");
    std::fs::write(&arm, b"").unwrap();
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("disk"),
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
            pair("entry", "online"),
            pair("fault", "segv_thread"),
            pair("thread_delay_ms", "300"),
            pair("armed_by", &arm.display().to_string()),
        ],
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("bystander"),
        type_name: s("chaos"),
        group: s("g"),
        params: vec![],
        properties: vec![],
    });
    rcm.ok(R::GroupOnline { name: s("g") });
    let limit = Duration::from_secs(10);
    let old_pid = pid_of(&rcm.wait_state("disk", "Online", limit));
    for name in ["crasher", "bystander"] {
        assert_eq!(
            pid_of(&rcm.resource(name)),
            old_pid,
            "{name} starts in the default host"
        );
    }

    assert!(
        common::wait_until(limit, || rcm
            .cluster_log()
            .contains("FAILURENOTIFICATION for 'crasher'")),
        "{}",
        rcm.cluster_log()
    );
    std::fs::remove_file(&arm).unwrap(); // healthy in its next host

    let mut own_pids = Vec::new();
    for name in ["crasher", "bystander"] {
        let v = rcm.wait_resource(name, limit, "separately monitored and Online", |v| {
            v["properties"]["SeparateMonitor"] == true
                && v["state"] == "Online"
                && pid_of(v) != old_pid
                && pid_of(v) != 0
        });
        assert_eq!(v["properties"]["MonitorProcessId"], pid_of(&v));
        own_pids.push(pid_of(&v));
    }
    let disk = rcm.wait_resource("disk", limit, "Online in a fresh host", |v| {
        v["state"] == "Online" && pid_of(v) != old_pid && pid_of(v) != 0
    });
    assert_eq!(
        disk["properties"]["SeparateMonitor"], false,
        "the other plugin is innocent"
    );
    assert!(
        own_pids[0] != own_pids[1] && !own_pids.contains(&pid_of(&disk)),
        "a monitor of its own each: {own_pids:?}, disk in {}",
        pid_of(&disk)
    );
    assert!(
        !keelson_sys::process::is_alive(old_pid as u32),
        "the crashed host is gone"
    );

    // The log says which plugin's code faulted, where, and whom that blames.
    let log = rcm.cluster_log();
    let failure = find_line(
        &log,
        &format!("resource host failure: host {old_pid} crashed with SIGSEGV in plugin 'chaos''s code on a thread of its own, at 0x"),
    );
    assert!(
        failure.contains(", in keelson_plugin_chaos::fault::segv_here) accessing 0x10"),
        "{failure}"
    );
    let pc = hex_after(failure, "on a thread of its own, at 0x");
    let offset = hex_after(failure, "(libkeelson_plugin_chaos.so+0x");
    let loaded = log
        .lines()
        .find(|l| {
            l.starts_with(&format!("{old_pid:08x}.")) && l.contains("Loaded plugin 'chaos' from ")
        })
        .unwrap_or_else(|| panic!("the crashed host logged its load of chaos:\n{log}"));
    let base = hex_after(loaded, "load address 0x");
    println!("{loaded}\n{failure}");
    assert_eq!(
        pc - base,
        offset,
        "offset within the .so: {loaded}\n{failure}"
    );
    find_line(
        &log,
        "WARN [RCM] Plugin 'chaos' crashed on a thread of its own; blaming each of its resources there: 'crasher', 'bystander'.",
    );
    for name in ["crasher", "bystander"] {
        find_line(
            &log,
            &format!(
                "INFO [RCM] HandleMonitorReply: FAILURENOTIFICATION for '{name}', gen(0) result 4."
            ),
        );
        find_line(&log, &format!("WARN [RCM] Resource '{name}' (resource type 'chaos', plugin 'chaos') has crashed or deadlocked; marking it to run in a separate monitor."));
    }
    assert!(!log.contains("FAILURENOTIFICATION for 'disk'"), "{log}");

    let events = rcm.events();
    let blamed: Vec<&str> = events
        .iter()
        .filter(|e| e["id"] == 1230)
        .filter_map(|e| e["resource"].as_str())
        .collect();
    assert_eq!(
        blamed,
        ["crasher", "bystander"],
        "one 1230 per resource of the plugin: {events:?}"
    );
    assert!(events.iter().any(|e| e["id"] == 1146), "{events:?}");
    rcm.wait_group("g", "Online", limit);

    // SeparateMonitor=true was persisted for both, and only for them.
    let dir = rcm.keep_dir();
    let rcm = Rcm::start_in(dir);
    rcm.wait_group("g", "Online", limit);
    for name in ["crasher", "bystander"] {
        assert_eq!(
            rcm.resource(name)["properties"]["SeparateMonitor"],
            true,
            "{name}"
        );
    }
    assert_eq!(rcm.resource("disk")["properties"]["SeparateMonitor"], false);
    let pids: Vec<u64> = ["crasher", "bystander", "disk"]
        .iter()
        .map(|n| pid_of(&rcm.resource(n)))
        .collect();
    assert!(
        pids[0] != pids[1] && pids[0] != pids[2] && pids[1] != pids[2],
        "{pids:?}"
    );
}
