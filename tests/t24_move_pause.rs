//! Administration of a real 3-node cluster (issue 10, item 3): `group move --to N --wait` returns
//! once the group is Online on N, asked on a node that owns nothing; every node's `group get`
//! shows where the group runs and in what state (its owner's report), its last move and reason;
//! `node pause --drain` moves a node's groups off it and waits, a paused node takes no group
//! (`group move --to` it is refused naming it), `node resume` lets it take groups again; unknown
//! nodes are refused by name with nothing changed; the journal shows the group never Online on
//! two nodes at once. Root only (namespaces): fails in CI without it.

mod common;

use common::lab::{root_or_skip, Lab};
use common::rcm::{wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

/// (owner_node, owner_state) as `n` shows group "web".
fn placed(n: &Rcm) -> (String, String) {
    let g = n.group_json("web");
    let s = |k: &str| g[k].as_str().unwrap_or_default().to_string();
    (s("owner_node"), s("owner_state"))
}

fn node_row(n: &Rcm, name: &str) -> Value {
    let list = n.ok(R::NodeList);
    list["nodes"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn move_wait_pause_drain_and_resume_on_three_nodes() {
    if !root_or_skip("t24") {
        return;
    }
    let lab = Lab::create("mp", 3);
    let nodes = lab.boot_cluster("t24", 200, LIMIT);
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    let journal = n1.dir.join("journal");
    n1.journal_group("web", &journal);
    // Every node, n3 included, learns from n1's report that web is Online on n1.
    for n in [n1, n2, n3] {
        wait_for("web Online on n1, as every node sees it", LIMIT, || {
            placed(n) == ("n1".into(), "Online".into())
        });
    }
    assert_eq!(
        n3.group_json("web")["state"],
        "Offline",
        "state is this node's"
    );

    // Asked on n3: moved to n2, and the command returns only once it is Online there.
    let start = Instant::now();
    let (ok, out, err) = n3.cli(&["group", "move", "web", "--to", "n2", "--wait"]);
    assert!(ok, "move --wait failed: {out}{err}");
    println!(
        "group move --to n2 --wait returned in {} ms: {}",
        start.elapsed().as_millis(),
        out.trim()
    );
    assert!(out.contains("is Online on node 'n2'"), "{out}");
    assert_eq!(
        n2.group_json("web")["state"],
        "Online",
        "running on n2 itself"
    );
    let g = n3.group_json("web");
    assert_eq!(g["last_move"]["from"], "n1", "{g:#}");
    assert_eq!(g["last_move"]["to"], "n2", "{g:#}");
    assert_eq!(g["last_move"]["reason"], "administrator", "{g:#}");
    assert_eq!(g["releasing_from"], "", "{g:#}");
    assert_eq!(
        g["failovers_in_period"], 0,
        "an administrator's move is no failover"
    );
    assert_eq!(g["failover_threshold"], 2, "nodes-1 with three nodes");
    let (ok, text, _) = n3.cli(&["group", "get", "web"]);
    assert!(
        ok && text.contains("last move") && text.contains("administrator"),
        "{text}"
    );

    // Bad names are refused by name, and nothing changes.
    for args in [
        vec!["node", "pause", "n9"],
        vec!["node", "resume", "n9"],
        vec!["node", "pause", "n9", "--drain"],
    ] {
        let (ok, out, err) = n1.cli(&args);
        assert!(!ok && err.contains("n9"), "{args:?}: {out}{err}");
    }
    assert_eq!(placed(n1), ("n2".into(), "Online".into()));

    // Drain n2 (asked on n1): web moves off it, the command waits for it to be Online again.
    let start = Instant::now();
    let (ok, out, err) = n1.cli(&["node", "pause", "n2", "--drain"]);
    assert!(ok, "pause --drain failed: {out}{err}");
    println!(
        "node pause n2 --drain returned in {} ms: {}",
        start.elapsed().as_millis(),
        out.trim().replace('\n', "; ")
    );
    let (owner, state) = placed(n1);
    assert!(owner != "n2" && state == "Online", "{owner} {state}");
    assert!(out.contains("drained"), "{out}");
    for n in [n1, n2, n3] {
        wait_for("n2 paused everywhere", LIMIT, || {
            node_row(n, "n2")["paused"] == true
        });
    }
    assert_eq!(node_row(n1, "n2")["state"], "Paused");
    assert_eq!(n1.group_json("web")["last_move"]["reason"], "drain");
    // A paused node takes no group.
    let e = n3.refused(R::GroupMove {
        name: "web".into(),
        to: Some("n2".into()),
    });
    assert!(e.contains("n2") && e.contains("paused"), "{e}");
    let (ok, out, _) = n3.cli(&["node", "pause", "n2"]);
    assert!(ok && out.contains("already paused"), "{out}");

    // Resumed (asked on n3), it takes groups again.
    let (ok, out, err) = n3.cli(&["node", "resume", "n2"]);
    assert!(ok, "resume failed: {out}{err}");
    for n in [n1, n2, n3] {
        wait_for("n2 resumed everywhere", LIMIT, || {
            node_row(n, "n2")["paused"] == false
        });
    }
    let (ok, out, err) = n1.cli(&["group", "move", "web", "--to", "n2", "--wait"]);
    assert!(ok && out.contains("'n2'"), "{out}{err}");

    // From the journal alone: Online on n1, n2, the drain's target, n2 again; never two at once.
    let text = std::fs::read_to_string(&journal).expect("the journal");
    let lines = keelson_plugin_journal::check::parse(&text).expect("a well-formed journal");
    let intervals = keelson_plugin_journal::check::intervals(&lines, 20_000_000);
    assert!(intervals.len() >= 4, "{intervals:?}");
    let overlaps = keelson_plugin_journal::check::overlaps(&intervals);
    assert!(
        overlaps.is_empty(),
        "web Online on two nodes at once: {overlaps:?}"
    );
    drop(nodes);
    drop(lab);
}
