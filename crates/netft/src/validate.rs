//! The pure checks behind `keelson validate`: from what every node reports about its cluster
//! interfaces (adapter name, MAC address, interface id, addresses, network) and what its failure
//! detector reports about its routes, the findings WSFC's validation gives for the network: a
//! warning for two nodes with fewer than two networks between them, an error for a MAC address or
//! an interface id used on two nodes, and an error for an interface that another node on its
//! network cannot reach. Every finding names the node and the interface. Not how the reports are
//! gathered or printed (the rcm and the CLI do that), and nothing here does I/O.

use crate::action::{interface_name, RouteState};
use crate::detector::RouteStatus;
use crate::topology::{NodeId, RouteKey};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

/// One cluster interface as its node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedInterface {
    /// The adapter's name on its node (`eth0`).
    pub adapter: String,
    /// The hardware address, if the interface has one (a TUN device does not).
    pub mac: Option<[u8; 6]>,
    /// The interface's id, unique across the cluster (WSFC's interface GUID).
    pub interface_id: String,
    pub addresses: Vec<IpAddr>,
    /// The cluster network it attaches to.
    pub network: String,
}

/// One node and its cluster interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    pub id: NodeId,
    pub name: String,
    pub interfaces: Vec<ReportedInterface>,
}

/// One route's state as the detector of `observer` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteReport {
    pub observer: NodeId,
    pub route: RouteKey,
    pub state: RouteState,
}

impl RouteReport {
    /// A report from one line of a node's `Shell::status()` routes.
    pub fn from_status(observer: NodeId, status: &RouteStatus) -> Self {
        RouteReport {
            observer,
            route: status.key,
            state: status.state,
        }
    }
}

/// How bad a finding is: a warning is a best practice not followed, an error a configuration that
/// does not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
        })
    }
}

/// One thing `keelson validate` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The node's name.
    pub node: String,
    /// The interface as WSFC names it (`NODE - ADAPTER`); `None` only for two nodes that share no
    /// network at all, where there is no interface to name (the message names both nodes).
    pub interface: Option<String>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} node '{}'", self.severity, self.node)?;
        if let Some(interface) = &self.interface {
            write!(f, " interface '{interface}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every finding for the cluster, errors first, then by node and interface.
pub fn validate(nodes: &[NodeReport], routes: &[RouteReport]) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(network_count_warnings(nodes));
    findings.extend(duplicates(nodes, "MAC address", |i| i.mac.map(format_mac)));
    findings.extend(duplicates(nodes, "interface id", |i| {
        Some(i.interface_id.clone())
    }));
    findings.extend(unreachable_interfaces(nodes, routes));
    findings.sort_by(|a, b| {
        (a.severity, &a.node, &a.interface).cmp(&(b.severity, &b.node, &b.interface))
    });
    findings
}

/// Whether any finding is an error (`keelson validate` then exits non-zero).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// `02:00:5e:10:00:01`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

fn networks_of(node: &NodeReport) -> BTreeSet<&str> {
    node.interfaces.iter().map(|i| i.network.as_str()).collect()
}

/// One warning per pair of nodes with fewer than two networks in common, on the first node of the
/// pair, naming its interface on the one shared network.
fn network_count_warnings(nodes: &[NodeReport]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            let (nets_a, nets_b) = (networks_of(a), networks_of(b));
            let shared: Vec<&str> = nets_a.intersection(&nets_b).copied().collect();
            if shared.len() >= 2 {
                continue;
            }
            let (interface, message) = match shared.first() {
                Some(network) => {
                    let adapter = a.interfaces.iter().find(|i| i.network == *network);
                    (
                        adapter.map(|i| interface_name(&a.name, &i.adapter)),
                        format!("nodes '{}' and '{}' share only one cluster network ('{network}'); at least two networks between any two nodes are recommended, so that losing one leaves them a route", a.name, b.name),
                    )
                }
                None => (
                    None,
                    format!("nodes '{}' and '{}' share no cluster network; at least two networks between any two nodes are recommended", a.name, b.name),
                ),
            };
            findings.push(Finding {
                severity: Severity::Warning,
                node: a.name.clone(),
                interface,
                message,
            });
        }
    }
    findings
}

/// One error per interface whose `key` (MAC address or interface id) another node also uses.
fn duplicates(
    nodes: &[NodeReport],
    what: &str,
    key: impl Fn(&ReportedInterface) -> Option<String>,
) -> Vec<Finding> {
    let mut users: BTreeMap<String, Vec<(&NodeReport, &ReportedInterface)>> = BTreeMap::new();
    for node in nodes {
        for iface in &node.interfaces {
            if let Some(k) = key(iface) {
                users.entry(k).or_default().push((node, iface));
            }
        }
    }
    let mut findings = Vec::new();
    for (value, holders) in users {
        let node_ids: BTreeSet<NodeId> = holders.iter().map(|(n, _)| n.id).collect();
        if node_ids.len() < 2 {
            continue;
        }
        for (node, iface) in &holders {
            let others: Vec<String> = holders
                .iter()
                .filter(|(n, _)| n.id != node.id)
                .map(|(n, i)| format!("'{}'", interface_name(&n.name, &i.adapter)))
                .collect();
            findings.push(Finding {
                severity: Severity::Error,
                node: node.name.clone(),
                interface: Some(interface_name(&node.name, &iface.adapter)),
                message: format!(
                    "{what} {value} is also used by {} on another node; it must be unique across the cluster",
                    others.join(", ")
                ),
            });
        }
    }
    findings
}

/// What one observer's detector says about its routes to one remote interface.
fn observed_state(
    observer: &NodeReport,
    target: &ReportedInterface,
    routes: &[RouteReport],
) -> Option<RouteState> {
    let locals: BTreeSet<IpAddr> = observer
        .interfaces
        .iter()
        .filter(|i| i.network == target.network)
        .flat_map(|i| i.addresses.iter().copied())
        .collect();
    let states: Vec<RouteState> = routes
        .iter()
        .filter(|r| r.observer == observer.id)
        .filter(|r| locals.contains(&r.route.local) && target.addresses.contains(&r.route.remote))
        .map(|r| r.state)
        .collect();
    if states.contains(&RouteState::Up) {
        Some(RouteState::Up)
    } else if states.contains(&RouteState::Down) {
        Some(RouteState::Down)
    } else {
        states.first().copied()
    }
}

/// One error per interface that some other node on its network has no Up route to, naming every
/// such node and what its detector says.
fn unreachable_interfaces(nodes: &[NodeReport], routes: &[RouteReport]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for target in nodes {
        for iface in &target.interfaces {
            let failing: Vec<String> = nodes
                .iter()
                .filter(|o| o.id != target.id && networks_of(o).contains(iface.network.as_str()))
                // Only observers whose routes were reported can say anything (a node service
                // validates from its own detector's routes).
                .filter(|o| routes.iter().any(|r| r.observer == o.id))
                .filter_map(|o| match observed_state(o, iface, routes) {
                    Some(RouteState::Up) => None,
                    Some(RouteState::Down) => Some(format!("'{}' (its routes are Down)", o.name)),
                    Some(RouteState::Unknown) => {
                        Some(format!("'{}' (no heartbeat received yet)", o.name))
                    }
                    None => Some(format!("'{}' (it reports no route to it)", o.name)),
                })
                .collect();
            if failing.is_empty() {
                continue;
            }
            let addrs: Vec<String> = iface.addresses.iter().map(IpAddr::to_string).collect();
            findings.push(Finding {
                severity: Severity::Error,
                node: target.name.clone(),
                interface: Some(interface_name(&target.name, &iface.adapter)),
                message: format!(
                    "unreachable on network '{}' ({}) from node {}",
                    iface.network,
                    addrs.join(", "),
                    failing.join(", ")
                ),
            });
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(adapter: &str, mac: u8, id: &str, addr: &str, network: &str) -> ReportedInterface {
        ReportedInterface {
            adapter: adapter.into(),
            mac: Some([2, 0, 0, 0, 0, mac]),
            interface_id: id.into(),
            addresses: vec![addr.parse().unwrap()],
            network: network.into(),
        }
    }

    /// Node `n` with eth0 on net1 (192.0.2.n) and eth1 on net2 (198.51.100.n), MACs and ids unique.
    fn node(n: u8) -> NodeReport {
        NodeReport {
            id: NodeId(n.into()),
            name: format!("N{n}"),
            interfaces: vec![
                iface(
                    "eth0",
                    n * 2,
                    &format!("if-{n}-0"),
                    &format!("192.0.2.{n}"),
                    "net1",
                ),
                iface(
                    "eth1",
                    n * 2 + 1,
                    &format!("if-{n}-1"),
                    &format!("198.51.100.{n}"),
                    "net2",
                ),
            ],
        }
    }

    /// Every route between every pair of interfaces on a shared network, as each observer sees it.
    fn all_routes(nodes: &[NodeReport], state: RouteState) -> Vec<RouteReport> {
        let mut routes = Vec::new();
        for o in nodes {
            for t in nodes.iter().filter(|t| t.id != o.id) {
                for l in &o.interfaces {
                    for r in t.interfaces.iter().filter(|r| r.network == l.network) {
                        routes.push(RouteReport {
                            observer: o.id,
                            route: RouteKey {
                                local: l.addresses[0],
                                remote: r.addresses[0],
                            },
                            state,
                        });
                    }
                }
            }
        }
        routes
    }

    #[test]
    fn a_healthy_cluster_on_two_networks_has_no_findings() {
        let nodes = vec![node(1), node(2), node(3)];
        let findings = validate(&nodes, &all_routes(&nodes, RouteState::Up));
        assert_eq!(findings, vec![]);
        assert!(!has_errors(&findings));
    }

    #[test]
    fn fewer_than_two_networks_between_two_nodes_is_a_warning_naming_node_and_interface() {
        let mut nodes = vec![node(1), node(2), node(3)];
        nodes[2].interfaces.truncate(1);
        let findings = validate(&nodes, &all_routes(&nodes, RouteState::Up));
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "WARNING node 'N1' interface 'N1 - eth0': nodes 'N1' and 'N3' share only one cluster network ('net1'); at least two networks between any two nodes are recommended, so that losing one leaves them a route",
                "WARNING node 'N2' interface 'N2 - eth0': nodes 'N2' and 'N3' share only one cluster network ('net1'); at least two networks between any two nodes are recommended, so that losing one leaves them a route",
            ]
        );
        assert!(!has_errors(&findings), "a warning is not an error");
    }

    #[test]
    fn two_nodes_with_no_network_in_common_are_named_both() {
        let mut nodes = vec![node(1), node(2)];
        nodes[0].interfaces.truncate(1);
        nodes[1].interfaces.remove(0);
        let findings = validate(&nodes, &[]);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        assert_eq!(findings[0].interface, None);
        assert!(
            findings[0]
                .message
                .contains("'N1' and 'N2' share no cluster network"),
            "{}",
            findings[0]
        );
    }

    #[test]
    fn a_mac_address_on_two_nodes_is_an_error_on_each_naming_the_other() {
        let mut nodes = vec![node(1), node(2), node(3)];
        nodes[2].interfaces[1].mac = nodes[0].interfaces[0].mac;
        let findings = validate(&nodes, &all_routes(&nodes, RouteState::Up));
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "ERROR node 'N1' interface 'N1 - eth0': MAC address 02:00:00:00:00:02 is also used by 'N3 - eth1' on another node; it must be unique across the cluster",
                "ERROR node 'N3' interface 'N3 - eth1': MAC address 02:00:00:00:00:02 is also used by 'N1 - eth0' on another node; it must be unique across the cluster",
            ]
        );
        assert!(has_errors(&findings));
    }

    #[test]
    fn the_same_mac_on_two_interfaces_of_one_node_is_not_a_duplicate_across_nodes() {
        let mut nodes = vec![node(1), node(2)];
        nodes[0].interfaces[1].mac = nodes[0].interfaces[0].mac;
        nodes[1].interfaces[0].mac = None;
        nodes[1].interfaces[1].mac = None;
        assert_eq!(validate(&nodes, &all_routes(&nodes, RouteState::Up)), []);
    }

    #[test]
    fn an_interface_id_on_two_nodes_is_an_error_on_each() {
        let mut nodes = vec![node(1), node(2)];
        nodes[1].interfaces[0].interface_id = "if-1-1".into();
        let findings = validate(&nodes, &all_routes(&nodes, RouteState::Up));
        assert_eq!(findings.len(), 2, "{findings:#?}");
        assert_eq!(findings[0].node, "N1");
        assert_eq!(findings[0].interface.as_deref(), Some("N1 - eth1"));
        assert_eq!(
            findings[0].message,
            "interface id if-1-1 is also used by 'N2 - eth0' on another node; it must be unique across the cluster"
        );
        assert_eq!(findings[1].interface.as_deref(), Some("N2 - eth0"));
        assert!(findings.iter().all(|f| f.severity == Severity::Error));
    }

    #[test]
    fn an_interface_another_node_cannot_reach_is_an_error_naming_node_interface_and_observer() {
        let nodes = vec![node(1), node(2), node(3)];
        let mut routes = all_routes(&nodes, RouteState::Up);
        // N1 sees N3's eth1 Down; N2 still reaches it.
        let n3_eth1: IpAddr = "198.51.100.3".parse().unwrap();
        for r in routes
            .iter_mut()
            .filter(|r| r.observer == NodeId(1) && r.route.remote == n3_eth1)
        {
            r.state = RouteState::Down;
        }
        let findings = validate(&nodes, &routes);
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            ["ERROR node 'N3' interface 'N3 - eth1': unreachable on network 'net2' (198.51.100.3) from node 'N1' (its routes are Down)"]
        );
    }

    #[test]
    fn unknown_and_missing_routes_count_as_unreachable_and_say_so() {
        let nodes = vec![node(1), node(2)];
        let n2_eth0: IpAddr = "192.0.2.2".parse().unwrap();
        let n1_eth1: IpAddr = "198.51.100.1".parse().unwrap();
        let routes: Vec<RouteReport> = all_routes(&nodes, RouteState::Up)
            .into_iter()
            .filter(|r| !(r.observer == NodeId(2) && r.route.remote == n1_eth1))
            .map(|mut r| {
                if r.observer == NodeId(1) && r.route.remote == n2_eth0 {
                    r.state = RouteState::Unknown;
                }
                r
            })
            .collect();
        let text: Vec<String> = validate(&nodes, &routes)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                "ERROR node 'N1' interface 'N1 - eth1': unreachable on network 'net2' (198.51.100.1) from node 'N2' (it reports no route to it)",
                "ERROR node 'N2' interface 'N2 - eth0': unreachable on network 'net1' (192.0.2.2) from node 'N1' (no heartbeat received yet)",
            ]
        );
    }

    #[test]
    fn a_node_that_reported_no_routes_says_nothing_about_reachability() {
        // One node service validates from its own detector: N1's routes only.
        let nodes = vec![node(1), node(2), node(3)];
        let mine: Vec<RouteReport> = all_routes(&nodes, RouteState::Up)
            .into_iter()
            .filter(|r| r.observer == NodeId(1))
            .collect();
        assert_eq!(validate(&nodes, &mine), vec![]);
        let cut: Vec<RouteReport> = mine
            .into_iter()
            .map(|mut r| {
                if r.route.remote == "198.51.100.3".parse::<IpAddr>().unwrap() {
                    r.state = RouteState::Down;
                }
                r
            })
            .collect();
        let text: Vec<String> = validate(&nodes, &cut)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            ["ERROR node 'N3' interface 'N3 - eth1': unreachable on network 'net2' (198.51.100.3) from node 'N1' (its routes are Down)"]
        );
    }

    #[test]
    fn one_up_route_of_several_is_enough_to_reach_an_interface() {
        let mut nodes = vec![node(1), node(2)];
        // N1 has a second interface on net1; only its route from 192.0.2.101 is Up.
        nodes[0]
            .interfaces
            .push(iface("eth2", 99, "if-1-2", "192.0.2.101", "net1"));
        let n2_eth0: IpAddr = "192.0.2.2".parse().unwrap();
        let spare: IpAddr = "192.0.2.101".parse().unwrap();
        let routes: Vec<RouteReport> = all_routes(&nodes, RouteState::Up)
            .into_iter()
            .map(|mut r| {
                if r.observer == NodeId(1) && r.route.remote == n2_eth0 && r.route.local != spare {
                    r.state = RouteState::Down;
                }
                r
            })
            .collect();
        assert_eq!(validate(&nodes, &routes), []);
    }

    #[test]
    fn a_route_report_comes_from_a_status_line() {
        let status = RouteStatus {
            key: RouteKey {
                local: "192.0.2.1".parse().unwrap(),
                remote: "192.0.2.2".parse().unwrap(),
            },
            node: NodeId(2),
            network: "net1".into(),
            priority: 1,
            state: RouteState::Down,
            last_heard_age_ms: None,
            lost: 0,
            received: 0,
        };
        let report = RouteReport::from_status(NodeId(1), &status);
        assert_eq!(report.observer, NodeId(1));
        assert_eq!(report.route, status.key);
        assert_eq!(report.state, RouteState::Down);
    }
}
