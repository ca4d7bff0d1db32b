//! Smoke test of a real keelson-rcm: a group of dummy resources comes online in a shared host, and
//! the status view shows it. Not policy or failure handling (t04 onwards).

mod common;

use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use std::time::Duration;

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn a_group_of_dummies_comes_online_in_one_shared_host() {
    let rcm = Rcm::start("smoke");
    rcm.ok(R::GroupCreate {
        name: s("web"),
        properties: vec![],
    });
    for name in ["ip", "disk", "app"] {
        rcm.ok(R::ResourceCreate {
            name: s(name),
            type_name: s("dummy"),
            group: s("web"),
            params: vec![],
            properties: vec![],
        });
    }
    rcm.ok(R::GroupOnline { name: s("web") });
    rcm.wait_group("web", "Online", Duration::from_secs(10));
    let pids: Vec<u64> = ["ip", "disk", "app"]
        .iter()
        .map(|n| rcm.resource(n)["host_pid"].as_u64().unwrap())
        .collect();
    assert!(
        pids.iter().all(|p| *p == pids[0]),
        "one default host: {pids:?}"
    );
    let ip = rcm.resource("ip");
    assert_eq!(ip["properties"]["MonitorProcessId"], pids[0]);
    assert_eq!(ip["properties"]["SeparateMonitor"], false);
    assert_eq!(ip["properties"]["DeadlockTimeout"], 300000);
    let status = rcm.ok(R::Status);
    assert_eq!(status["groups"][0]["state"], "Online");
    assert_eq!(status["hosts"].as_array().unwrap().len(), 1);
}

/// Every resource is told its node and gets a state directory of its own, `<data-dir>/resources/<id>`,
/// made (0700) before open, kept across a host death, removed with the resource.
#[test]
fn each_resource_gets_a_private_state_directory_that_outlives_its_host() {
    use std::os::unix::fs::PermissionsExt;
    let rcm =
        common::rcm::Rcm::start_in_with_args(Rcm::new_dir("statedir"), &["--node-name", "n7"]);
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("keeper"),
        type_name: s("dummy"),
        group: s("g"),
        params: vec![],
        properties: vec![],
    });
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_group("g", "Online", Duration::from_secs(10));
    let id = rcm.resource("keeper")["id"].as_u64().expect("resource id");
    let dir = rcm.dir.join("resources").join(id.to_string());
    assert_eq!(
        rcm.resource("keeper")["state_dir"],
        dir.to_string_lossy().as_ref()
    );
    let mode = std::fs::metadata(&dir)
        .expect("state dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "{}", dir.display());
    let line = format!(
        "dummy resource opened on node n7, state directory {}",
        dir.display()
    );
    assert!(rcm.cluster_log().contains(&line), "{}", rcm.cluster_log());
    std::fs::write(dir.join("mine"), "kept").unwrap();
    let pid = rcm.resource("keeper")["host_pid"].as_u64().unwrap();
    // The host is killed from outside, as a crash would.
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    common::rcm::wait_for("keeper back in a new host", Duration::from_secs(20), || {
        let r = rcm.resource("keeper");
        r["state"] == "Online" && r["host_pid"].as_u64().is_some_and(|p| p != pid)
    });
    assert_eq!(std::fs::read_to_string(dir.join("mine")).unwrap(), "kept");
    rcm.ok(R::GroupOffline { name: s("g") });
    rcm.wait_group("g", "Offline", Duration::from_secs(10));
    rcm.ok(R::ResourceDelete { name: s("keeper") });
    assert!(!dir.exists(), "{} outlived its resource", dir.display());
}
