//! `keelson cluster …` and `keelson node list`: create a cluster from this node (its configuration
//! becomes the cluster's), show the cluster (name, leader, term, quorum) and its nodes, show and set
//! the cluster-wide properties. Each maps to one control request. Not raft (the node service runs
//! it) nor the properties' ranges (the node service checks them).

use crate::client::Client;
use crate::output::{confirm, show};
use crate::render::table;
use anyhow::{bail, Result};
use clap::Subcommand;
use keelson_proto::view::{
    ClusterProperties, ClusterStatus, NetworkList, NodeList, Quorum, Validation,
};
use keelson_proto::ControlRequest as R;

/// `keelson cluster` subcommands.
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Make this node, with its configuration, the first member of a new cluster of the listed
    /// nodes (the node service must be running; the others join with `keelson node join`).
    Create {
        /// Name of the new cluster.
        name: String,
        /// A node and its addresses on the cluster networks, repeatable; one must be this node
        /// (by its node name).
        #[arg(long = "node", value_name = "NAME=ADDR[,ADDR...]", required = true)]
        nodes: Vec<String>,
        /// The subnet of the nodes' virtual adapter (keelson0) addresses: node id N gets the
        /// subnet's address + N. Must not hold any cluster address.
        #[arg(long, value_name = "ADDR/PREFIX", default_value = "169.254.1.0/24")]
        virtual_subnet: String,
    },
    /// Show the cluster: name, leader, term, quorum and witness.
    Status {
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// Show cluster-wide properties with their values, defaults and accepted ranges.
    ///
    /// SameSubnetDelay, SameSubnetThreshold, CrossSubnetDelay, CrossSubnetThreshold (the heartbeat
    /// network's timing, delays in ms) and TestOnlyLowerLimits; all of them, or those named.
    Get {
        /// Properties to show (default: all).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// Set cluster-wide properties (all or none), committed on a majority of the nodes.
    ///
    /// e.g. `keelson cluster set SameSubnetDelay=2000 SameSubnetThreshold=10` (delays in ms). A
    /// value out of range is refused with the range. TestOnlyLowerLimits=1 allows values below
    /// WSFC's ranges, for tests only: never in production.
    Set {
        /// Properties to set.
        #[arg(value_name = "Prop=Value", required = true)]
        properties: Vec<String>,
    },
    /// Show the quorum (model, votes, witness and its lease), or set the witness vote.
    ///
    /// `--witness DIR` adds a file-share witness (a directory every node reaches), `--witness DEV`
    /// a disk witness (a small block device every node sees), `--witness none` removes it.
    Quorum {
        /// The witness to vote with: a directory, a block device, or `none`.
        #[arg(long, value_name = "PATH|none")]
        witness: Option<String>,
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `keelson cluster` command.
pub async fn run(client: &Client, command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Create {
            name,
            nodes,
            virtual_subnet,
        } => {
            let nodes = nodes
                .iter()
                .map(|n| parse_node(n))
                .collect::<Result<Vec<_>>>()?;
            let virtual_subnet = Some(virtual_subnet);
            confirm(
                client,
                R::ClusterCreate {
                    name,
                    nodes,
                    virtual_subnet,
                },
            )
            .await
        }
        ClusterCommand::Status { json } => show(client, R::ClusterStatus, json, status).await,
        ClusterCommand::Get { names, json } => {
            show(client, R::ClusterGet { names }, json, properties).await
        }
        ClusterCommand::Set { properties } => {
            let properties = crate::assign::properties(&properties)?;
            confirm(client, R::ClusterSet { properties }).await
        }
        ClusterCommand::Quorum {
            witness: None,
            json,
        } => show(client, R::ClusterQuorum { witness: None }, json, quorum).await,
        ClusterCommand::Quorum {
            witness: Some(path),
            ..
        } => {
            let witness = if path == "none" {
                path
            } else {
                // The node service checks the path: make it absolute as this shell means it.
                std::path::absolute(&path)
                    .map_err(|e| anyhow::anyhow!("--witness {path}: {e}"))?
                    .to_string_lossy()
                    .into_owned()
            };
            confirm(
                client,
                R::ClusterQuorum {
                    witness: Some(witness),
                },
            )
            .await
        }
    }
}

fn quorum(v: &Quorum) -> String {
    let ok = if v.quorum_ok {
        "yes"
    } else {
        "NO: administrator changes are refused"
    };
    let mut text = format!(
        "cluster {}\nmodel   {}\nvotes   {} ({ok})\nvoters  {}\n",
        v.cluster,
        v.model,
        v.verdict,
        v.voters.join(", ")
    );
    if v.witness_id != 0 {
        let host = if v.witness_host.is_empty() {
            "not hosted now (no live lease)"
        } else {
            &v.witness_host
        };
        text.push_str(&format!(
            "witness node {}, hosted by {host}\n",
            v.witness_id
        ));
    }
    if let Some(lease) = &v.lease {
        let expiry = match (lease.released, lease.expires_in_ms) {
            (true, _) => "released".to_string(),
            (false, None) => "held here, renewed while this node runs".to_string(),
            (false, Some(ms)) if ms >= 0 => format!("expires in {ms} ms unless renewed"),
            (false, Some(ms)) => format!("expired {} ms ago", -ms),
        };
        text.push_str(&format!(
            "lease   {}, generation {}, {expiry}\n",
            lease.holder, lease.generation
        ));
    }
    text
}

/// `keelson network` subcommands.
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// List every route (a local and a remote interface on one cluster network) with its state,
    /// Priority, last heartbeat age and losses.
    List {
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `keelson network` command.
pub async fn network(client: &Client, command: NetworkCommand) -> Result<()> {
    match command {
        NetworkCommand::List { json } => show(client, R::NetworkList, json, routes).await,
    }
}

fn routes(v: &NetworkList) -> String {
    let rows: Vec<Vec<String>> = v
        .routes
        .iter()
        .map(|r| {
            let age = r
                .last_heartbeat_age_ms
                .map_or("never".to_string(), |ms| format!("{ms} ms"));
            vec![
                r.network.clone(),
                r.node.clone(),
                format!("{} -> {}", r.local, r.remote),
                r.state.clone(),
                r.priority.to_string(),
                age,
                r.lost.to_string(),
            ]
        })
        .collect();
    let adapter = v.virtual_adapter.as_ref().map_or(
        "virtual adapter: not running\n".to_string(),
        |a| {
            let paths: Vec<String> = a
                .paths
                .iter()
                .map(|p| match p.route.as_str() {
                    "" => format!("  {}: no route Up", p.node),
                    route => format!("  {}: {route} (Priority {})", p.node, p.priority),
                })
                .collect();
            format!(
                "virtual adapter {} {} MTU {}: {} sent, {} delivered, {} without a route, {} refused\n{}\n",
                a.name,
                a.address,
                a.mtu,
                a.sent,
                a.delivered,
                a.no_route,
                a.refused,
                paths.join("\n")
            )
        },
    );
    format!(
        "cluster {}\n{adapter}{}",
        v.cluster,
        table(
            &[
                "NETWORK",
                "NODE",
                "ROUTE",
                "STATE",
                "PRIORITY",
                "LAST HEARD",
                "LOST"
            ],
            &rows
        )
    )
}

/// `keelson validate [--json]`: the findings, then an error (exit 1) if any of them is one.
pub async fn validate(client: &Client, json: bool) -> Result<()> {
    let raw = client.json_text(R::Validate).await?;
    let view: Validation =
        serde_json::from_str(&raw).map_err(keelson_client::ClientError::of_view)?;
    if json {
        crate::output::emit_line(&crate::render::pretty_json(&raw))?;
    } else {
        crate::output::emit(&findings(&view))?;
    }
    if view.errors > 0 {
        bail!("validation found {} error(s)", view.errors);
    }
    Ok(())
}

fn findings(v: &Validation) -> String {
    if v.findings.is_empty() {
        return "no findings: every node reaches every other on at least two networks\n".into();
    }
    let rows: Vec<Vec<String>> = v
        .findings
        .iter()
        .map(|f| {
            vec![
                f.severity.clone(),
                f.node.clone(),
                f.interface.clone(),
                f.message.clone(),
            ]
        })
        .collect();
    table(&["SEVERITY", "NODE", "INTERFACE", "FINDING"], &rows)
}

/// `keelson node list [--json]`.
pub async fn node_list(client: &Client, json: bool) -> Result<()> {
    show(client, R::NodeList, json, nodes).await
}

/// `keelson node join`: the key file's path is made absolute, since the node service reads it.
pub async fn node_join(
    client: &Client,
    cluster: String,
    key: &std::path::Path,
    name: Option<String>,
) -> Result<()> {
    let key_file = std::path::absolute(key)
        .map_err(|e| anyhow::anyhow!("--key {}: {e}", key.display()))?
        .to_string_lossy()
        .into_owned();
    confirm(
        client,
        R::NodeJoin {
            cluster,
            key_file,
            name,
        },
    )
    .await
}

/// `NAME=ADDR[,ADDR...]`, checked for shape here (the node service checks the rest).
fn parse_node(text: &str) -> Result<(String, Vec<String>)> {
    let Some((name, addrs)) = text.split_once('=') else {
        bail!("--node {text:?}: expected NAME=ADDR[,ADDR...]");
    };
    let addrs: Vec<String> = addrs.split(',').map(|a| a.trim().to_string()).collect();
    if name.trim().is_empty() || addrs.iter().any(String::is_empty) {
        bail!("--node {text:?}: expected NAME=ADDR[,ADDR...] with a name and no empty address");
    }
    Ok((name.trim().to_string(), addrs))
}

fn status(v: &ClusterStatus) -> String {
    let quorum = if v.quorum_ok {
        "yes"
    } else {
        "NO: administrator changes are refused"
    };
    let leader = if v.leader.is_empty() {
        "(none)"
    } else {
        &v.leader
    };
    format!(
        "cluster {}\nnode    {} (id {})\nleader  {leader}\nterm    {}\napplied {}\nquorum  {} ({quorum})\nvoters  {}\nwitness {}\nraft    heartbeat {} ms, election timeout {}..{} ms\n",
        v.name,
        v.node,
        v.node_id,
        v.term,
        v.applied_index,
        v.quorum,
        v.voters.join(", "),
        v.witness,
        v.raft_heartbeat_ms,
        v.raft_election_min_ms,
        v.raft_election_max_ms
    )
}

fn properties(v: &ClusterProperties) -> String {
    let rows: Vec<Vec<String>> = v
        .properties
        .iter()
        .map(|(name, p)| {
            if let Some(text) = &p.text {
                let shown = if text.is_empty() { "(none)" } else { text };
                return vec![name.clone(), shown.into(), "(none)".into(), "text".into()];
            }
            let unit = if name.ends_with("Delay") || name.ends_with("Timeout") {
                " ms"
            } else {
                ""
            };
            vec![
                name.clone(),
                p.value.to_string(),
                p.default.to_string(),
                format!("{}..{}{unit}", p.min, p.max),
            ]
        })
        .collect();
    format!(
        "cluster {}\n{}",
        v.cluster,
        table(&["PROPERTY", "VALUE", "DEFAULT", "RANGE"], &rows)
    )
}

fn nodes(v: &NodeList) -> String {
    let rows: Vec<Vec<String>> = v
        .nodes
        .iter()
        .map(|n| {
            let id = if n.id == 0 {
                "-".to_string()
            } else {
                n.id.to_string()
            };
            let leader = if n.leader { "*" } else { "" };
            vec![
                format!("{}{leader}", n.name),
                n.state.clone(),
                id,
                n.addrs.join(","),
            ]
        })
        .collect();
    format!(
        "cluster {}\n{}",
        v.cluster,
        table(&["NODE", "STATE", "ID", "ADDRESSES"], &rows)
    )
}

/// `node pause NAME [--drain]`: with a drain, waits until every group it owned is in its state
/// again on its new owner.
pub async fn node_pause(client: &Client, name: String, drain: bool, timeout: u64) -> Result<()> {
    let mut before = Vec::new();
    if drain {
        let groups: Vec<keelson_proto::view::GroupSummary> = client.view(R::GroupList).await?;
        for g in groups.iter().filter(|g| g.owner_node == name) {
            before.push(crate::move_wait::Before::fetch(client, &g.name).await?);
        }
    }
    confirm(
        client,
        R::NodePause {
            name: name.clone(),
            drain,
        },
    )
    .await?;
    if before.is_empty() {
        return Ok(());
    }
    let timeout = std::time::Duration::from_millis(timeout);
    let (views, took) = crate::move_wait::settle(client, &before, timeout).await?;
    for g in &views {
        crate::output::emit_line(&format!(
            "group '{}' is {} on node '{}'",
            g.name, g.owner_state, g.owner_node
        ))?;
    }
    crate::output::emit_line(&format!(
        "node '{name}' drained: {} moved in {} ms",
        match views.len() {
            1 => "1 group".to_string(),
            n => format!("{n} groups"),
        },
        took.as_millis()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_specs_parse_or_name_what_is_wrong() {
        assert_eq!(
            parse_node("n1=192.0.2.1,198.51.100.1").unwrap(),
            (
                "n1".to_string(),
                vec!["192.0.2.1".to_string(), "198.51.100.1".to_string()]
            )
        );
        for bad in ["n1", "=192.0.2.1", "n1=", "n1=192.0.2.1,"] {
            let e = parse_node(bad).unwrap_err().to_string();
            assert!(e.contains("NAME=ADDR"), "{bad}: {e}");
        }
    }

    #[test]
    fn properties_show_value_default_and_range_with_units() {
        let p = |value, default, min, max| keelson_proto::view::ClusterProperty {
            default,
            max,
            min,
            value,
            text: None,
        };
        let v = ClusterProperties {
            cluster: "prod".into(),
            properties: [
                ("SameSubnetDelay".to_string(), p(2000, 1000, 250, 2000)),
                ("SameSubnetThreshold".to_string(), p(5, 5, 3, 10)),
                ("FenceTimeout".to_string(), p(5000, 60000, 500, 600000)),
                (
                    "FenceAgent".to_string(),
                    keelson_proto::view::ClusterProperty {
                        text: Some("/usr/sbin/fence_apc -v".into()),
                        ..Default::default()
                    },
                ),
                (
                    "FenceAgentOptions".to_string(),
                    keelson_proto::view::ClusterProperty {
                        text: Some(String::new()),
                        ..Default::default()
                    },
                ),
            ]
            .into(),
        };
        let text = properties(&v);
        assert!(text.starts_with("cluster prod\n"), "{text}");
        let row = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(
            row("SameSubnetDelay"),
            ["SameSubnetDelay", "2000", "1000", "250..2000", "ms"]
        );
        assert_eq!(
            row("SameSubnetThreshold "),
            ["SameSubnetThreshold", "5", "5", "3..10"]
        );
        assert_eq!(
            row("FenceTimeout"),
            ["FenceTimeout", "5000", "60000", "500..600000", "ms"]
        );
        assert_eq!(
            row("FenceAgent "),
            ["FenceAgent", "/usr/sbin/fence_apc", "-v", "(none)", "text"]
        );
        assert_eq!(
            row("FenceAgentOptions"),
            ["FenceAgentOptions", "(none)", "(none)", "text"]
        );
    }

    #[test]
    fn the_leader_is_marked_and_unjoined_nodes_have_no_id() {
        let v = NodeList {
            cluster: "prod".into(),
            nodes: vec![
                keelson_proto::view::Node {
                    addrs: vec!["192.0.2.1".into()],
                    id: 1,
                    leader: true,
                    name: "n1".into(),
                    paused: false,
                    state: "Up".into(),
                },
                keelson_proto::view::Node {
                    addrs: vec!["192.0.2.2".into()],
                    id: 0,
                    leader: false,
                    name: "n2".into(),
                    paused: false,
                    state: "Joining".into(),
                },
            ],
        };
        let text = nodes(&v);
        assert!(text.contains("n1*"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("n2") && l.contains("Joining") && l.contains(" - ")),
            "{text}"
        );
    }
}
