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
