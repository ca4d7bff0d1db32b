//! The NetFT virtual adapter (`keelson0`) as rcm plans it from the cluster database: the virtual
//! subnet (`keelson cluster create --virtual-subnet`), each member's virtual address (the subnet's
//! address + its node id, so an address is never reused, as ids are not), the adapter's peers, and
//! where raft then reaches each peer (its virtual address, on its recorded raft port). Pure; not
//! the adapter (crates/netft) nor starting it (heartbeat.rs).

use keelson_netft::adapter::{AdapterConfig, DEFAULT_NAME};
use keelson_raft::{ClusterInfo, NodeId};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The routing layer raft's connections take their virtual addresses from.
pub const ROUTING_LAYER: &str = "virtual-adapter";

/// A virtual subnet: its network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualSubnet {
    network: IpAddr,
    prefix_len: u8,
}

/// What the virtual adapter is to be on this node.
#[derive(Debug, Clone)]
pub struct AdapterPlan {
    pub config: AdapterConfig,
    /// Peer name -> its raft endpoint on its virtual address.
    pub raft_routes: BTreeMap<String, String>,
}

impl VirtualSubnet {
    /// `ADDR/PREFIX`: an IPv4 prefix of 8..=29 or an IPv6 prefix of 64..=125, given by its network
    /// address (no host bits set).
    pub fn parse(text: &str) -> Result<VirtualSubnet, String> {
        let bad = |why: &str| format!("virtual subnet '{text}': {why}");
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| bad("expected ADDR/PREFIX, e.g. 169.254.1.0/24"))?;
        let network: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let prefix_len: u8 = prefix.parse().map_err(|_| bad("not a prefix length"))?;
        let (low, high) = if network.is_ipv4() {
            (8, 29)
        } else {
            (64, 125)
        };
        if !(low..=high).contains(&prefix_len) {
            return Err(bad(&format!(
                "the prefix length must be {low}..={high} (room for the nodes' addresses)"
            )));
        }
        let subnet = VirtualSubnet {
            network,
            prefix_len,
        };
        if keelson_netft::topology::network_address(network, prefix_len) != network {
            return Err(bad("host bits are set; give the subnet's network address"));
        }
        Ok(subnet)
    }

    /// True when `ip` lies in this subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.network.is_ipv4()
            && keelson_netft::topology::network_address(ip, self.prefix_len) == self.network
    }

    /// Node `id`'s address: the network address + `id` (never the network or broadcast address).
    pub fn address_of(&self, id: NodeId) -> Result<IpAddr, String> {
        let bits = if self.network.is_ipv4() { 32 } else { 128 };
        let hosts = (1u128 << (bits - u32::from(self.prefix_len))) - 2;
        if id == 0 || u128::from(id) > hosts {
            return Err(format!(
                "node id {id} has no address in the virtual subnet {self} ({hosts} addresses)"
            ));
        }
        Ok(match self.network {
            IpAddr::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n) + id as u32)),
            IpAddr::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n) + u128::from(id))),
        })
    }
}

impl std::fmt::Display for VirtualSubnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// The adapter of node `me`: its address, and every other member that reported its interfaces as a
/// peer. None when `me` is not such a member yet.
pub fn plan(info: &ClusterInfo, me: &str) -> Result<Option<AdapterPlan>, String> {
    let subnet = VirtualSubnet::parse(&info.virtual_subnet)?;
    let Some(local) = info.nodes.get(me).and_then(|n| n.id) else {
        return Ok(None);
    };
    let mut peers = BTreeMap::new();
    let mut raft_routes = BTreeMap::new();
    for node in info.nodes.values() {
        let Some(id) = node
            .id
            .filter(|_| node.name != me && !node.interfaces.is_empty())
        else {
            continue;
        };
        let addr = subnet.address_of(id)?;
        peers.insert(addr, super::heartbeat::netft_id(id));
        if let Ok(endpoint) = node.raft_addr.parse::<SocketAddr>() {
            let route = SocketAddr::new(addr, endpoint.port()).to_string();
            raft_routes.insert(node.name.clone(), route);
        }
    }
    Ok(Some(AdapterPlan {
        config: AdapterConfig {
            tun_name: DEFAULT_NAME.to_string(),
            local_address: subnet.address_of(local)?,
            prefix_len: subnet.prefix_len,
            peers,
        },
        raft_routes,
    }))
}

/// Refuses a virtual subnet that would hold one of the cluster's own addresses.
pub fn check_against(subnet: &VirtualSubnet, info: &ClusterInfo) -> Result<(), String> {
    for node in info.nodes.values() {
        for addr in &node.addrs {
            if addr.parse().is_ok_and(|ip| subnet.contains(ip)) {
                return Err(format!(
                    "virtual subnet {subnet} holds node '{}''s cluster address {addr}: choose \
                     another with --virtual-subnet",
                    node.name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_raft::{InterfaceRecord, NodeEntry};

    fn member(name: &str, id: Option<u64>, addr: &str) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            addrs: vec![addr.into()],
            id,
            interfaces: id
                .map(|_| InterfaceRecord {
                    adapter: "eth1".into(),
                    index: 2,
                    mac: String::new(),
                    addr: addr.parse().unwrap(),
                    prefix_len: 24,
                })
                .into_iter()
                .collect(),
            raft_addr: id.map(|_| format!("{addr}:3344")).unwrap_or_default(),
            paused: false,
        }
    }

    fn info(subnet: &str) -> ClusterInfo {
        let nodes = [
            member("n1", Some(1), "192.0.2.1"),
            member("n2", Some(4), "192.0.2.2"),
            member("n3", None, "192.0.2.3"),
        ];
        ClusterInfo {
            name: "lab".into(),
            nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            netft_port: 3343,
            virtual_subnet: subnet.into(),
            properties: Default::default(),
            witness: None,
        }
    }

    #[test]
    fn each_member_has_the_subnet_address_plus_its_id_and_raft_goes_there() {
        let p = plan(&info("203.0.113.0/24"), "n1").unwrap().unwrap();
        assert_eq!(p.config.local_address.to_string(), "203.0.113.1");
        assert_eq!(p.config.prefix_len, 24);
        let peers: Vec<String> = p.config.peers.keys().map(|a| a.to_string()).collect();
        assert_eq!(peers, ["203.0.113.4"], "n3 has not joined: no peer");
        assert_eq!(p.raft_routes["n2"], "203.0.113.4:3344");
        assert!(plan(&info("203.0.113.0/24"), "n3").unwrap().is_none());
        let v6 = plan(&info("2001:db8:1::/64"), "n2").unwrap().unwrap();
        assert_eq!(v6.config.local_address.to_string(), "2001:db8:1::4");
        assert_eq!(v6.raft_routes["n1"], "[2001:db8:1::1]:3344");
    }

    #[test]
    fn bad_subnets_and_ids_out_of_range_are_refused_by_name() {
        for (text, why) in [
            ("203.0.113.0", "expected ADDR/PREFIX"),
            ("nope/24", "not an IP address"),
            ("203.0.113.0/x", "not a prefix length"),
            ("203.0.113.0/31", "8..=29"),
            ("203.0.113.1/24", "host bits are set"),
            ("2001:db8::/48", "64..=125"),
        ] {
            let e = VirtualSubnet::parse(text).unwrap_err();
            assert!(e.contains(text) && e.contains(why), "{e} (wanted {why})");
        }
        let small = VirtualSubnet::parse("203.0.113.0/29").unwrap();
        assert_eq!(small.address_of(6).unwrap().to_string(), "203.0.113.6");
        assert!(small.address_of(7).unwrap_err().contains("node id 7"));
        assert!(small.address_of(0).is_err());
        let clash = VirtualSubnet::parse("192.0.2.0/25").unwrap();
        assert!(check_against(&clash, &info("192.0.2.0/25"))
            .unwrap_err()
            .contains("192.0.2.1"));
    }
}
