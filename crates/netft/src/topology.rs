//! The cluster's network topology as this node sees it: nodes, their interfaces, the networks those
//! interfaces attach to, and the routes derived from them (every pair of a local and a remote
//! interface on the same network, same-subnet or across routed subnets). Checked once when built.
//! Not state: which routes are up is detector.rs.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use thiserror::Error;

/// A cluster node's id (never reused after the node is evicted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One cluster network: a name and its route priority (lower is preferred, WSFC's `Priority`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    pub priority: u32,
}

/// One interface of a node on a cluster network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// The adapter's name (for a local interface, the Linux device name netlink reports).
    pub adapter: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// The name of the cluster network it attaches to.
    pub network: String,
}

/// One node and its interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub id: NodeId,
    pub name: String,
    pub interfaces: Vec<InterfaceSpec>,
}

/// A route: this node's interface address and a remote interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    pub local: IpAddr,
    pub remote: IpAddr,
}

/// Everything fixed about one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub key: RouteKey,
    pub node: NodeId,
    pub network: String,
    pub priority: u32,
    /// Both ends in one subnet (SameSubnet timing) or across routed subnets (CrossSubnet timing).
    pub same_subnet: bool,
    pub local_adapter: String,
    pub remote_adapter: String,
}

/// A topology that cannot be used; each names the thing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopologyError {
    #[error("node id {0} appears twice")]
    DuplicateNode(NodeId),
    #[error("the local node {0} is not among the nodes")]
    LocalNodeMissing(NodeId),
    #[error("address {0} belongs to two interfaces")]
    DuplicateAddress(IpAddr),
    #[error("interface {adapter} ({addr}) of node '{node}' is on network '{network}', which is not defined")]
    UnknownNetwork {
        node: String,
        adapter: String,
        addr: IpAddr,
        network: String,
    },
    #[error(
        "interface {adapter} of node '{node}' has prefix length {prefix_len}, too long for {addr}"
    )]
    BadPrefix {
        node: String,
        adapter: String,
        addr: IpAddr,
        prefix_len: u8,
    },
    #[error("network '{0}' is defined twice")]
    DuplicateNetwork(String),
}

/// The checked topology.
#[derive(Debug, Clone)]
pub struct Topology {
    pub local: NodeId,
    pub nodes: Vec<NodeSpec>,
    pub networks: Vec<NetworkSpec>,
}

impl Topology {
    /// Checks ids, addresses, prefixes and network names.
    pub fn new(
        local: NodeId,
        nodes: Vec<NodeSpec>,
        networks: Vec<NetworkSpec>,
    ) -> Result<Self, TopologyError> {
        let mut names = BTreeSet::new();
        for net in &networks {
            if !names.insert(net.name.clone()) {
                return Err(TopologyError::DuplicateNetwork(net.name.clone()));
            }
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for node in &nodes {
            if !ids.insert(node.id) {
                return Err(TopologyError::DuplicateNode(node.id));
            }
            for iface in &node.interfaces {
                check_interface(node, iface, &names)?;
                if !addrs.insert(iface.addr) {
                    return Err(TopologyError::DuplicateAddress(iface.addr));
                }
            }
        }
        if !ids.contains(&local) {
            return Err(TopologyError::LocalNodeMissing(local));
        }
        Ok(Topology {
            local,
            nodes,
            networks,
        })
    }

    /// The local node's spec.
    pub fn local_node(&self) -> &NodeSpec {
        self.node(self.local).expect("checked in new")
    }

    /// A node's spec by id.
    pub fn node(&self, id: NodeId) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Every route: each local interface paired with each remote interface on the same network.
    pub fn routes(&self) -> Vec<RouteSpec> {
        let mut routes = Vec::new();
        for local in &self.local_node().interfaces {
            for node in self.nodes.iter().filter(|n| n.id != self.local) {
                for remote in node
                    .interfaces
                    .iter()
                    .filter(|i| i.network == local.network)
                {
                    routes.push(RouteSpec {
                        key: RouteKey {
                            local: local.addr,
                            remote: remote.addr,
                        },
                        node: node.id,
                        network: local.network.clone(),
                        priority: self.priority(&local.network),
                        same_subnet: same_subnet(local, remote),
                        local_adapter: local.adapter.clone(),
                        remote_adapter: remote.adapter.clone(),
                    });
                }
            }
        }
        routes
    }

    fn priority(&self, network: &str) -> u32 {
        self.networks
            .iter()
            .find(|n| n.name == network)
            .map(|n| n.priority)
            .expect("checked in new")
    }
}

fn check_interface(
    node: &NodeSpec,
    iface: &InterfaceSpec,
    networks: &BTreeSet<String>,
) -> Result<(), TopologyError> {
    let max = if iface.addr.is_ipv4() { 32 } else { 128 };
    if iface.prefix_len > max {
        return Err(TopologyError::BadPrefix {
            node: node.name.clone(),
            adapter: iface.adapter.clone(),
            addr: iface.addr,
            prefix_len: iface.prefix_len,
        });
    }
    if !networks.contains(&iface.network) {
        return Err(TopologyError::UnknownNetwork {
            node: node.name.clone(),
            adapter: iface.adapter.clone(),
            addr: iface.addr,
            network: iface.network.clone(),
        });
    }
    Ok(())
}

/// Whether `remote` lies in `local`'s subnet.
fn same_subnet(local: &InterfaceSpec, remote: &InterfaceSpec) -> bool {
    local.addr.is_ipv4() == remote.addr.is_ipv4()
        && network_address(local.addr, local.prefix_len)
            == network_address(remote.addr, local.prefix_len)
}

/// `addr` with its host bits (past `prefix_len`) cleared: the subnet it lies in.
pub fn network_address(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        // A 32-bit value stays one when bits are cleared.
        IpAddr::V4(v4) => IpAddr::V4((masked(u32::from(v4).into(), prefix_len, 32) as u32).into()),
        IpAddr::V6(v6) => IpAddr::V6(masked(u128::from(v6), prefix_len, 128).into()),
    }
}

/// `addr` (of `bits` bits) with its bits past `prefix_len` cleared.
fn masked(addr: u128, prefix_len: u8, bits: u32) -> u128 {
    let host_bits = bits - u32::from(prefix_len).min(bits);
    if host_bits >= 128 {
        0
    } else {
        (addr >> host_bits) << host_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_addresses_clear_the_host_bits() {
        let net = |a: &str, p| network_address(a.parse().unwrap(), p);
        assert_eq!(
            net("192.0.2.77", 24),
            "192.0.2.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            net("2001:db8::5", 64),
            "2001:db8::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(net("10.1.2.3", 0), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(net("2001:db8::5", 0), "::".parse::<IpAddr>().unwrap());
    }

    fn iface(adapter: &str, addr: &str, prefix_len: u8, network: &str) -> InterfaceSpec {
        InterfaceSpec {
            adapter: adapter.into(),
            addr: addr.parse().unwrap(),
            prefix_len,
            network: network.into(),
        }
    }

    fn nets() -> Vec<NetworkSpec> {
        vec![
            NetworkSpec {
                name: "net1".into(),
                priority: 1,
            },
            NetworkSpec {
                name: "net2".into(),
                priority: 2,
            },
        ]
    }

    #[test]
    fn routes_pair_interfaces_on_the_same_network_and_know_routed_subnets() {
        let a = NodeSpec {
            id: NodeId(1),
            name: "A".into(),
            interfaces: vec![
                iface("eth0", "192.0.2.1", 24, "net1"),
                iface("eth1", "198.51.100.1", 24, "net2"),
            ],
        };
        let b = NodeSpec {
            id: NodeId(2),
            name: "B".into(),
            interfaces: vec![
                iface("eth0", "192.0.2.2", 24, "net1"),
                iface("eth1", "203.0.113.2", 24, "net2"),
            ],
        };
        let topo = Topology::new(NodeId(1), vec![a, b], nets()).unwrap();
        let routes = topo.routes();
        assert_eq!(routes.len(), 2);
        assert!(routes[0].same_subnet);
        assert_eq!(routes[0].priority, 1);
        assert!(
            !routes[1].same_subnet,
            "198.51.100.0/24 to 203.0.113.2 is routed"
        );
    }

    #[test]
    fn bad_topologies_are_refused_naming_the_thing() {
        let node = |id, addr: &str, net: &str| NodeSpec {
            id: NodeId(id),
            name: format!("N{id}"),
            interfaces: vec![iface("eth0", addr, 24, net)],
        };
        let err = |nodes| {
            Topology::new(NodeId(1), nodes, nets())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(vec![
                node(1, "192.0.2.1", "net1"),
                node(1, "192.0.2.2", "net1")
            ]),
            "node id 1 appears twice"
        );
        assert_eq!(
            err(vec![
                node(1, "192.0.2.1", "net1"),
                node(2, "192.0.2.1", "net1")
            ]),
            "address 192.0.2.1 belongs to two interfaces"
        );
        assert!(err(vec![node(1, "192.0.2.1", "net9")]).contains("network 'net9'"));
        assert_eq!(
            Topology::new(NodeId(3), vec![node(1, "192.0.2.1", "net1")], nets())
                .unwrap_err()
                .to_string(),
            "the local node 3 is not among the nodes"
        );
    }
}
