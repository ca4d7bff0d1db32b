//! Failover when the node lost is raft's leader as well as the group's owner (issue 10): the
//! survivors elect a new leader soon after the heartbeat network takes the old one Down (the
//! smallest-id survivor stands once every survivor's leader lease is over), and the new leader
//! moves the group as soon as the lost node's quorum lease, timed from when it saw it go, has run
//! out. The time from kill -9 to Online elsewhere is printed, beside the detection and takeover
//! waits; the journal shows no overlap. Root only (namespaces): fails in CI without it.

mod common;

use common::lab::{root_or_skip, Lab};
use common::rcm::{wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(40);

/// The name of the node `n` says leads raft, once one does.
fn leader(n: &Rcm) -> Option<String> {
    let list = n.ok(R::NodeList);
    list["nodes"]
        .as_array()?
        .iter()
        .find(|x| x["leader"] == true)
        .and_then(|x| x["name"].as_str().map(str::to_string))
}

#[test]
fn killing_the_leader_that_owns_the_group_moves_it_after_a_prompt_election() {
    if !root_or_skip("t25") {
        return;
    }
    let lab = Lab::create("lf", 3);
    let nodes = lab.boot_cluster("t25", 200, LIMIT);
    kill_the_leader_that_owns_web(nodes, "Delay 200 ms, Threshold 5: detection about 1000 ms");
    drop(lab);
}

/// Under a contact lease (Threshold 10 at Delay 200, host lease 900 ms, fence budget 300 ms:
/// rcm/src/cluster/takeover.rs) the survivors elect a leader as soon as they take the old one
/// Down, and it moves the group at once: nothing waits after detection.
#[test]
fn under_a_contact_lease_killing_the_leader_that_owns_the_group_moves_it_right_after_detection() {
    if !root_or_skip("t25 contact lease") {
        return;
    }
    let lab = Lab::create("lfc", 3);
    let nodes = lab.boot_cluster_with(
        "t25c",
        200,
        LIMIT,
        &[
            ("SameSubnetThreshold", "10"),
            ("CrossSubnetThreshold", "10"),
        ],
        &["--host-lease", "900", "--host-fence-budget", "300"],
    );
    for n in &nodes {
        assert!(
            n.cluster_log()
                .contains("has its groups started elsewhere after 0 ms more"),
            "no contact-lease timing on {}:\n{}",
            n.dir.display(),
            n.cluster_log()
        );
    }
    kill_the_leader_that_owns_web(nodes, "Delay 200 ms, Threshold 10: detection about 2100 ms");
    drop(lab);
}

/// Puts `web` on raft's leader, kills it (kill -9) and waits until a survivor runs it; prints
/// when a new leader was known and when web was Online, and checks the journal.
fn kill_the_leader_that_owns_web(mut nodes: Vec<Rcm>, timing: &str) {
    let mut lead = None;
    wait_for("a leader", LIMIT, || {
        lead = leader(&nodes[0]);
        lead.is_some()
    });
    let lead = lead.unwrap();
    let li: usize = lead[1..].parse::<usize>().unwrap() - 1;
    let other = (li + 1) % 3;
    // The group is created and brought online on the leader.
    let owner = &nodes[li];
    let journal = nodes[other].dir.join("journal");
    owner.journal_group("web", &journal);
    wait_for("web Online on the leader", LIMIT, || {
        nodes[other].group_json("web")["owner_state"] == "Online"
            && nodes[other].group_json("web")["owner_node"] == lead.as_str()
    });

    nodes[li].kill9();
    let killed = Instant::now();
    let survivor = &nodes[other];
    let mut new_owner = String::new();
    let mut elected = None;
    wait_for("web Online on a survivor", LIMIT, || {
        if elected.is_none() && leader(survivor).is_some_and(|l| l != lead) {
            elected = Some(killed.elapsed());
        }
        let g = survivor.group_json("web");
        new_owner = g["owner_node"].as_str().unwrap_or_default().to_string();
        new_owner != lead && g["owner_state"] == "Online"
    });
    let took = killed.elapsed();
    let new_leader = leader(survivor).unwrap_or_default();
    println!(
        "leader and owner {lead} killed: new leader {new_leader} known {} ms later, web Online on {new_owner} {} ms later ({timing})",
        elected.unwrap_or(took).as_millis(),
        took.as_millis()
    );
    assert_ne!(new_leader, lead, "a new leader was elected");
    let log = survivor.cluster_log();
    let stood = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != li)
        .any(|(_, n)| n.cluster_log().contains("Standing for election"));
    assert!(stood, "a survivor stood for election: {log}");
    // The journal: never Online on two nodes.
    let text = std::fs::read_to_string(&journal).expect("the journal");
    let lines = keelson_plugin_journal::check::parse(&text).expect("a well-formed journal");
    let intervals = keelson_plugin_journal::check::intervals(&lines, 20_000_000);
    let overlaps = keelson_plugin_journal::check::overlaps(&intervals);
    assert!(
        overlaps.is_empty(),
        "web Online on two nodes at once: {overlaps:?}"
    );
    drop(nodes);
}
