//! A single node becomes a one-node cluster in place, with nothing lost: `keelson cluster create`
//! on a running rcm with groups and resources writes cluster.key (0600), node.json and raft.redb;
//! its configuration is the cluster database's; later changes are committed through raft before
//! they are acknowledged; a restart comes back from raft.redb with everything; bad requests are
//! refused with nothing changed. Not multi-node (t15).

mod common;

use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const NODE: &str = "n1";
const LIMIT: Duration = Duration::from_secs(20);

fn start_in(dir: PathBuf) -> Rcm {
    // Any free port for the cluster database: tests run side by side on loopback.
    Rcm::start_in_with_args(dir, &["--node-name", NODE, "--raft-port", "0"])
}

/// keelson-rcm on `dir` must exit non-zero within 20 s; what it printed.
fn start_fails_in(dir: &Path) -> String {
    let mut child = Command::new(common::artefact("keelson-rcm"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--plugin-dir")
        .arg(common::target_dir())
        .env("KEELSON_RHS", common::artefact("keelson-rhs"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keelson-rcm starts");
    let exited = common::wait_until(LIMIT, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("reaped");
    assert!(
        exited && !out.status.success(),
        "keelson-rcm should have refused to start"
    );
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

fn create(nodes: &[(&str, &[&str])]) -> R {
    R::ClusterCreate {
        name: "prod".into(),
        nodes: nodes
            .iter()
            .map(|(n, a)| (n.to_string(), a.iter().map(|s| s.to_string()).collect()))
            .collect(),
        virtual_subnet: None,
    }
}

#[test]
fn a_single_node_becomes_a_one_node_cluster_in_place_with_nothing_lost() {
    let rcm = start_in(Rcm::new_dir("t14"));
    rcm.ok(R::GroupCreate {
        name: "web".into(),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: "disk".into(),
        type_name: "dummy".into(),
        group: "web".into(),
        params: vec![("online_delay_ms".into(), "1".into())],
        properties: vec![("RestartThreshold".into(), "2".into())],
    });
    rcm.ok(R::GroupOnline { name: "web".into() });
    rcm.wait_state("disk", "Online", LIMIT);

    // Not in a cluster yet: the cluster views say how to make one.
    let e = rcm.refused(R::ClusterStatus);
    assert!(e.contains("not in a cluster"), "{e}");
    // Refusals change nothing: no key, no identity, no raft file.
    let node = NODE.to_string();
    for (bad, why) in [
        (
            create(&[("someone-else", &["192.0.2.1"])]),
            "not among the nodes listed",
        ),
        (
            create(&[(node.as_str(), &["not-an-address"])]),
            "not an IP address",
        ),
        (create(&[]), "at least one node"),
    ] {
        let e = rcm.refused(bad);
        assert!(e.contains(why), "{e} (wanted {why})");
        for file in ["cluster.key", "node.json", "raft.redb"] {
            assert!(
                !rcm.dir.join(file).exists(),
                "{file} left behind by a refusal"
            );
        }
    }

    let done = rcm.ok(create(&[
        (node.as_str(), &["127.0.0.1"]),
        ("n2", &["127.0.0.2"]),
    ]));
    assert!(
        done.as_str().unwrap().contains("cluster 'prod' created"),
        "{done}"
    );
    let key_mode = std::fs::metadata(rcm.dir.join("cluster.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "cluster.key mode {key_mode:o}");
    assert!(rcm.dir.join("node.json").exists());
    assert!(rcm.dir.join("raft.redb").exists());
    // Creating it again is refused.
    assert!(rcm
        .refused(create(&[(node.as_str(), &["192.0.2.1"])]))
        .contains("already in cluster 'prod'"));

    let status = rcm.ok(R::ClusterStatus);
    assert_eq!(status["name"], "prod");
    assert_eq!(status["leader"], node.as_str());
    assert_eq!(status["quorum_ok"], true);
    assert_eq!(status["quorum"], "node majority: 1 of 1 votes");
    let applied_at_create = status["applied_index"].as_u64().unwrap();
    let nodes = rcm.ok(R::NodeList);
    let states: Vec<(String, String)> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(states.contains(&(node.clone(), "Up".into())), "{states:?}");
    assert!(
        states.contains(&("n2".into(), "Joining".into())),
        "{states:?}"
    );

    // The resource kept running through the upgrade, and a change now goes through raft.
    assert_eq!(rcm.resource("disk")["state"], "Online");
    rcm.ok(R::ResourceSet {
        name: "disk".into(),
        properties: vec![("RestartThreshold".into(), "5".into())],
        params: vec![],
        unset_params: vec![],
    });
    rcm.ok(R::GroupCreate {
        name: "db".into(),
        properties: vec![],
    });
    let after = rcm.ok(R::ClusterStatus)["applied_index"].as_u64().unwrap();
    assert_eq!(
        after,
        applied_at_create + 2,
        "each change is one committed entry"
    );
    // A refused change commits nothing.
    assert!(rcm
        .refused(R::GroupDelete {
            name: "nope".into()
        })
        .contains("nope"));
    assert_eq!(
        rcm.ok(R::ClusterStatus)["applied_index"].as_u64().unwrap(),
        after
    );

    // Restart: everything comes back from the cluster database.
    let dir = rcm.keep_dir();
    let rcm = start_in(dir.clone());
    rcm.wait_state("disk", "Online", LIMIT);
    let disk = rcm.ok(R::ResourceGet {
        name: "disk".into(),
    });
    assert_eq!(disk["properties"]["RestartThreshold"], 5, "{disk}");
    assert_eq!(rcm.ok(R::GroupGet { name: "db".into() })["name"], "db");
    assert_eq!(rcm.ok(R::ClusterStatus)["name"], "prod");
    drop(rcm);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cluster_node_without_its_key_or_database_refuses_to_start() {
    let rcm = start_in(Rcm::new_dir("t14-refuse"));
    rcm.ok(create(&[(NODE, &["127.0.0.1"])]));
    let dir = rcm.keep_dir();
    let key = dir.join("cluster.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = start_fails_in(&dir);
    assert!(e.contains("must be readable by its owner only"), "{e}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(dir.join("raft.redb"), dir.join("raft.redb.moved")).unwrap();
    let e = start_fails_in(&dir);
    assert!(e.contains("raft.redb is missing"), "{e}");
    // Put back, it starts, and it is still the same cluster.
    std::fs::rename(dir.join("raft.redb.moved"), dir.join("raft.redb")).unwrap();
    let rcm = start_in(dir.clone());
    assert_eq!(rcm.ok(R::ClusterStatus)["name"], "prod");
    drop(rcm);
    let _ = std::fs::remove_dir_all(&dir);
}
