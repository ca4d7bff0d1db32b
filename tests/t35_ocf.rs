//! The ocf resource type end to end (issue 12 item 5), as root with a real rcm: `keelson plugin
//! test` passes with ocf:heartbeat:Dummy; `resource create` is refused naming an unknown parameter
//! and a missing required one (IPaddr2's `ip`); a Dummy goes online and offline, and a state file
//! deleted from outside fails its monitor (not running) and the node restarts it; a test agent
//! whose monitor hangs is killed at its deadline and the error says so; online is idempotent: the
//! resource's host is SIGKILLed and replaced and the agent's start is not run again; IPaddr2, run
//! by an rcm in a network namespace of the test's own, adds its address on a veth, passes its
//! monitors and removes only that address on offline. Not the agents themselves.

mod common;

use common::lab::root_or_skip;
use common::rcm::{wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn s(v: &str) -> String {
    v.to_string()
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keelson-t35-{tag}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("empty the scratch dir");
    }
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn dummy_installed() -> bool {
    let there = Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists();
    assert!(
        there || !common::in_ci(),
        "resource-agents is not installed (scripts/test installs it in CI)"
    );
    if !there {
        eprintln!("skipped: resource-agents is not installed");
    }
    there
}

/// An OCF root of the test's own with agent `test:counter`: start counts itself in
/// `$OCF_RESKEY_dir/starts` and touches `$OCF_RESKEY_dir/on`; monitor sleeps while
/// `$OCF_RESKEY_dir/hang` exists, then says whether `on` exists.
fn counter_root(dir: &Path) -> PathBuf {
    let root = dir.join("ocf");
    let agents = root.join("resource.d/test");
    std::fs::create_dir_all(&agents).expect("agent dir");
    let body = r#"#!/bin/sh
D="$OCF_RESKEY_dir"
case "$1" in
meta-data) cat <<X
<?xml version="1.0"?>
<resource-agent name="counter"><parameters>
<parameter name="dir" required="1"><content type="string"/></parameter>
</parameters><actions><action name="start" timeout="5s"/><action name="stop" timeout="5s"/>
<action name="monitor" timeout="5s"/></actions></resource-agent>
X
 exit 0;;
start) echo x >> "$D/starts"; touch "$D/on"; exit 0;;
stop) rm -f "$D/on"; exit 0;;
monitor) while [ -f "$D/hang" ]; do sleep 1; done; [ -f "$D/on" ] && exit 0; exit 7;;
validate-all) [ -d "$D" ] && exit 0; echo "no directory $D" >&2; exit 6;;
*) exit 3;;
esac
"#;
    let path = agents.join("counter");
    std::fs::write(&path, body).expect("write the agent");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    root
}

fn create(rcm: &Rcm, name: &str, params: &[(&str, &str)], props: &[(&str, &str)]) {
    let pairs = |l: &[(&str, &str)]| l.iter().map(|(k, v)| (s(k), s(v))).collect();
    rcm.ok(R::ResourceCreate {
        name: s(name),
        type_name: s("ocf"),
        group: s("g"),
        params: pairs(params),
        properties: pairs(props),
    });
}

fn refusal(rcm: &Rcm, params: &[(&str, &str)]) -> String {
    rcm.refused(R::ResourceCreate {
        name: s("bad"),
        type_name: s("ocf"),
        group: s("g"),
        params: params.iter().map(|(k, v)| (s(k), s(v))).collect(),
        properties: vec![],
    })
}

fn group(rcm: &Rcm) {
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
}

fn starts(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("starts")).map_or(0, |t| t.lines().count())
}

#[test]
fn plugin_test_passes_with_the_dummy_agent() {
    if !root_or_skip("t35 plugin test") || !dummy_installed() {
        return;
    }
    let dir = scratch("ptest");
    let state = |n: &str| format!("state={}/{n}", dir.display());
    let mut child = Command::new(common::artefact("keelson"))
        .args([
            "plugin",
            "test",
            &common::plugin("ocf"),
            "--param",
            "Agent=heartbeat:Dummy",
        ])
        .args(["--param", &state("a"), "--second-param", &state("b")])
        .args([
            "--expect-invalid",
            "colour=red",
            "--expect-invalid",
            "Agent=heartbeat:NoSuchAgent",
        ])
        .args([
            "--looks-alive-budget",
            "3000",
            "--deadlock-timeout",
            "15000",
            "--json",
        ])
        .env("KEELSON_RHS", common::artefact("keelson-rhs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keelson plugin test");
    let ended = common::wait_until(Duration::from_secs(90), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        child.kill().expect("kill a plugin test that never ended");
    }
    let out = child.wait_with_output().expect("wait for keelson");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(ended, "plugin test did not end: {text}");
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(report["passed"], true, "{report:#}");
    assert!(out.status.success(), "{report:#}");
    std::fs::remove_dir_all(&dir).expect("remove the scratch dir");
}

#[test]
fn create_is_refused_naming_the_parameter_and_the_agent() {
    if !root_or_skip("t35 refusals") || !dummy_installed() {
        return;
    }
    let rcm = Rcm::start("t35-refuse");
    group(&rcm);
    let unknown = refusal(&rcm, &[("Agent", "heartbeat:Dummy"), ("colour", "red")]);
    assert!(
        unknown.contains("ocf heartbeat:Dummy: unknown parameter 'colour'"),
        "{unknown}"
    );
    let missing = refusal(&rcm, &[("Agent", "heartbeat:IPaddr2")]);
    assert!(
        missing.contains("ocf heartbeat:IPaddr2: missing required parameter 'ip'"),
        "{missing}"
    );
    let not_int = refusal(
        &rcm,
        &[
            ("Agent", "heartbeat:IPaddr2"),
            ("ip", "192.0.2.9"),
            ("arp_count", "x"),
        ],
    );
    assert!(not_int.contains("'arp_count'"), "{not_int}");
    let nowhere = refusal(&rcm, &[("Agent", "heartbeat:NoSuchAgent")]);
    assert!(
        nowhere.contains("/usr/lib/ocf/resource.d/heartbeat/NoSuchAgent"),
        "{nowhere}"
    );
    let resources = rcm.ok(R::ResourceList);
    assert!(!resources.to_string().contains("\"bad\""), "{resources}");
}

#[test]
fn a_dummy_goes_online_and_offline_and_is_restarted_when_its_state_goes() {
    if !root_or_skip("t35 dummy") || !dummy_installed() {
        return;
    }
    let dir = scratch("dummy");
    let state = dir.join("dummy.state");
    let rcm = Rcm::start("t35-dummy");
    group(&rcm);
    let fast = [
        ("LooksAlivePollInterval", "200"),
        ("IsAlivePollInterval", "1000"),
    ];
    create(
        &rcm,
        "d",
        &[
            ("Agent", "ocf:heartbeat:Dummy"),
            ("state", &state.display().to_string()),
        ],
        &fast,
    );
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("d", "Online", LIMIT);
    assert!(state.exists(), "Dummy's start made no state file");
    std::fs::remove_file(&state).expect("delete the Dummy's state file");
    wait_for("the monitor's failure to be logged", LIMIT, || {
        rcm.cluster_log()
            .contains("monitor exited 7 (OCF_NOT_RUNNING)")
    });
    wait_for("the restart to bring the state file back", LIMIT, || {
        state.exists()
    });
    rcm.wait_state("d", "Online", LIMIT);
    rcm.ok(R::GroupOffline { name: s("g") });
    rcm.wait_state("d", "Offline", LIMIT);
    assert!(!state.exists(), "Dummy's stop left its state file");
    drop(rcm);
    std::fs::remove_dir_all(&dir).expect("remove the scratch dir");
}

#[test]
fn a_hanging_monitor_is_killed_at_its_deadline() {
    if !root_or_skip("t35 hang") {
        return;
    }
    let dir = scratch("hang");
    let root = counter_root(&dir);
    let rcm = Rcm::start("t35-hang");
    group(&rcm);
    let params = [
        ("Agent", "test:counter"),
        ("OcfRoot", &root.display().to_string()),
        ("dir", &dir.display().to_string()),
        ("MonitorTimeout", "500"),
    ];
    let props = [
        ("LooksAlivePollInterval", "200"),
        ("IsAlivePollInterval", "60000"),
    ];
    create(&rcm, "c", &params, &props);
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("c", "Online", LIMIT);
    std::fs::write(dir.join("hang"), "").expect("make the monitor hang");
    let said = "test:counter: monitor did not finish within its deadline of 500 ms; its process group was killed";
    wait_for("the hung monitor to be killed and reported", LIMIT, || {
        rcm.cluster_log().contains(said)
    });
    std::fs::remove_file(dir.join("hang")).expect("let the monitor answer again");
    rcm.wait_state("c", "Online", LIMIT);
    drop(rcm);
    std::fs::remove_dir_all(&dir).expect("remove the scratch dir");
}

#[test]
fn online_after_a_host_death_does_not_start_the_agent_again() {
    if !root_or_skip("t35 idempotent") {
        return;
    }
    let dir = scratch("idem");
    let root = counter_root(&dir);
    let rcm = Rcm::start("t35-idem");
    group(&rcm);
    let params = [
        ("Agent", "test:counter"),
        ("OcfRoot", &root.display().to_string()),
        ("dir", &dir.display().to_string()),
    ];
    create(&rcm, "c", &params, &[("LooksAlivePollInterval", "200")]);
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("c", "Online", LIMIT);
    assert_eq!(starts(&dir), 1);
    let host = rcm.resource("c")["host_pid"].as_u64().expect("host_pid") as u32;
    keelson_sys::process::kill(host, keelson_sys::Signal::SIGKILL).expect("kill the host");
    wait_for("a new host with the resource Online", LIMIT, || {
        let view = rcm.resource("c");
        view["state"] == "Online" && view["host_pid"].as_u64().is_some_and(|p| p as u32 != host)
    });
    wait_for("the new host's online to be logged", LIMIT, || {
        rcm.cluster_log()
            .contains("test:counter: already running (monitor exited 0); start not run")
    });
    assert!(
        dir.join("on").exists(),
        "the resource went down during the re-hosting"
    );
    assert_eq!(
        starts(&dir),
        1,
        "start ran again on a resource that was running"
    );
    drop(rcm);
    std::fs::remove_dir_all(&dir).expect("remove the scratch dir");
}

/// A network namespace of the test's own with a veth pair v0 (192.0.2.1/24) – v1, removed on drop.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("kt35{}", std::process::id());
        common::lab::ip(&["netns", "add", &name]);
        let ns = Netns(name);
        let n = ns.0.as_str();
        common::lab::ip(&[
            "-n", n, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ]);
        common::lab::ip(&["-n", n, "addr", "add", "192.0.2.1/24", "dev", "v0"]);
        for link in ["lo", "v0", "v1"] {
            common::lab::ip(&["-n", n, "link", "set", link, "up"]);
        }
        ns
    }

    fn addresses(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0, "-4", "addr", "show", "dev", "v0"])
            .output()
            .expect("ip addr show");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Removing the namespace removes its veths; a failure here is reported, not hidden.
        let out = Command::new("ip").args(["netns", "del", &self.0]).output();
        if !out.is_ok_and(|o| o.status.success()) {
            eprintln!("could not remove network namespace {}", self.0);
        }
    }
}

#[test]
fn ipaddr2_adds_and_removes_its_address_in_a_namespace() {
    if !root_or_skip("t35 IPaddr2") || !dummy_installed() {
        return;
    }
    let ns = Netns::create();
    let rcm = Rcm::start_in_netns(Rcm::new_dir("t35-ip"), &ns.0, &[]);
    group(&rcm);
    let params = [
        ("Agent", "heartbeat:IPaddr2"),
        ("ip", "192.0.2.50"),
        ("cidr_netmask", "24"),
        ("nic", "v0"),
        ("arp_count", "1"),
    ];
    create(&rcm, "ip", &params, &[("LooksAlivePollInterval", "300")]);
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("ip", "Online", LIMIT);
    assert!(
        ns.addresses().contains("192.0.2.50/24"),
        "{}",
        ns.addresses()
    );
    wait_for("a passing monitor after online", LIMIT, || {
        rcm.resource("ip")["call_stats"]["LOOKSALIVE"]["count"]
            .as_u64()
            .is_some_and(|n| n >= 2)
    });
    rcm.wait_state("ip", "Online", LIMIT);
    rcm.ok(R::GroupOffline { name: s("g") });
    rcm.wait_state("ip", "Offline", LIMIT);
    let left = ns.addresses();
    assert!(!left.contains("192.0.2.50"), "{left}");
    assert!(
        left.contains("192.0.2.1/24"),
        "offline took the node's own address: {left}"
    );
    drop(rcm);
}
