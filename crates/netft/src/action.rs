//! What the detector asks its shell to do — send a datagram, write a cluster.log line, raise a
//! numbered event, announce a route's or node's new state — and the WSFC wording of the events and
//! the seed's wording of the log lines. Not how any of it is carried out (shell.rs and the rcm).

use crate::topology::{NodeId, RouteKey};
use keelson_types::LogLevel;
use std::net::{IpAddr, SocketAddr};

/// A route's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteState {
    /// Added, no heartbeat yet, not yet given up on.
    Unknown,
    Up,
    Down,
}

/// A peer node's state as this node's routes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Unknown,
    /// At least one route to it is Up.
    Up,
    /// Every route to it is Down.
    Down,
}

/// A cluster network's state as this node's routes on it see it (WSFC's CLUSTER_NETWORK_STATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkState {
    Unknown,
    /// Every route on it is Up.
    Up,
    /// Some routes on it are Up, some are not.
    Partitioned,
    /// No route on it is Up.
    Down,
}

/// A numbered event's level (as in the Windows event log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLevel {
    Critical,
    Error,
    Warning,
    Information,
}

/// One numbered cluster event with WSFC's id and wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetftEvent {
    pub id: u32,
    pub level: EventLevel,
    pub message: String,
    pub node: Option<String>,
    pub network: Option<String>,
    /// The interface as WSFC names it: `NODE - ADAPTER`.
    pub interface: Option<String>,
}

/// One thing the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `datagram` from the socket bound to `local` to `remote`.
    Send {
        local: IpAddr,
        remote: SocketAddr,
        datagram: Vec<u8>,
    },
    /// Write one cluster.log line.
    Log {
        level: LogLevel,
        component: &'static str,
        message: String,
    },
    /// Record one numbered event.
    Event(NetftEvent),
    /// A route changed state.
    RouteState { route: RouteKey, state: RouteState },
    /// A peer node changed state.
    NodeState { node: NodeId, state: NodeState },
    /// A peer restarted: its heartbeats now carry this higher incarnation.
    NodeIncarnation { node: NodeId, incarnation: u64 },
    /// Whether a peer hears this node changed (its heartbeats say so; false once it is Down here).
    PeerHearsUs { node: NodeId, hears: bool },
    /// A peer came into or went out of contact under the contact lease (`ContactLease`); only
    /// with a lease configured, and "out" only after it was in.
    PeerContact { node: NodeId, in_contact: bool },
}

/// `ADDR:~PORT~`, the seed's way of writing an endpoint.
pub fn endpoint(addr: IpAddr, port: u16) -> String {
    format!("{addr}:~{port}~")
}

/// `ADDR:00PORT` with the port's bytes in network order read as a number, as NETFTAPI writes it
/// (3343 appears as 003853).
pub fn netftapi_endpoint(addr: IpAddr, port: u16) -> String {
    format!("{addr}:{:06}", port.swap_bytes())
}

/// WSFC's name for an interface: `NODE - ADAPTER`.
pub fn interface_name(node: &str, adapter: &str) -> String {
    format!("{node} - {adapter}")
}

const CHECK_NETWORK: &str = "Run the Validate a Configuration wizard to check your network configuration. If the condition persists, check for hardware or software errors related to the network adapter. Also check for failures in any other network components to which the node is connected such as hubs, switches, or bridges.";

fn event(id: u32, level: EventLevel, message: String) -> NetftEvent {
    NetftEvent {
        id,
        level,
        message,
        node: None,
        network: None,
        interface: None,
    }
}

fn interface_event(
    id: u32,
    level: EventLevel,
    text: String,
    iface: &str,
    node: &str,
    net: &str,
) -> NetftEvent {
    NetftEvent {
        node: Some(node.into()),
        network: Some(net.into()),
        interface: Some(iface.into()),
        ..event(id, level, text)
    }
}

fn network_event(id: u32, level: EventLevel, text: String, net: &str) -> NetftEvent {
    NetftEvent {
        network: Some(net.into()),
        ..event(id, level, text)
    }
}

/// Event 1125: an interface is reachable again.
pub fn event_1125(iface: &str, node: &str, net: &str) -> NetftEvent {
    let text = format!("Cluster network interface '{iface}' for cluster node '{node}' on network '{net}' is operational (up). The node can communicate with all other available failover cluster nodes on the network.");
    interface_event(1125, EventLevel::Information, text, iface, node, net)
}

/// Event 1126: an interface is unreachable by at least one other node.
pub fn event_1126(iface: &str, node: &str, net: &str) -> NetftEvent {
    let text = format!("Cluster network interface '{iface}' for cluster node '{node}' on network '{net}' is unreachable by at least one other cluster node attached to the network. The failover cluster was not able to determine the location of the failure. {CHECK_NETWORK}");
    interface_event(1126, EventLevel::Warning, text, iface, node, net)
}

/// Event 1127: an interface failed.
pub fn event_1127(iface: &str, node: &str, net: &str) -> NetftEvent {
    let text = format!("Cluster network interface '{iface}' for cluster node '{node}' on network '{net}' failed. {CHECK_NETWORK}");
    interface_event(1127, EventLevel::Error, text, iface, node, net)
}

/// Event 1128: a network is up again.
pub fn event_1128(net: &str) -> NetftEvent {
    let text = format!("Cluster network '{net}' is operational (up). All available failover cluster nodes attached to the network can communicate using it.");
    network_event(1128, EventLevel::Information, text, net)
}

/// Event 1129: a network is partitioned.
pub fn event_1129(net: &str) -> NetftEvent {
    let text = format!("Cluster network '{net}' is partitioned. Some attached failover cluster nodes cannot communicate with each other over the network. The failover cluster was not able to determine the location of the failure. {CHECK_NETWORK}");
    network_event(1129, EventLevel::Warning, text, net)
}

/// Event 1130: a network is down.
pub fn event_1130(net: &str) -> NetftEvent {
    let text = format!("Cluster network '{net}' is down. None of the available nodes can communicate using this network. {CHECK_NETWORK}");
    network_event(1130, EventLevel::Error, text, net)
}

/// Event 1135: a node was removed from the active membership.
pub fn event_1135(node: &str) -> NetftEvent {
    let text = format!("Cluster node '{node}' was removed from the active failover cluster membership. The Cluster service on this node may have stopped. This could also be due to the node having lost communication with other active nodes in the failover cluster. Run the Validate a Configuration wizard to check your network configuration. If the condition persists, check for hardware or software errors related to the network adapters on this node. Also check for failures in any other network components to which the node is connected such as hubs, switches, or bridges.");
    NetftEvent {
        node: Some(node.into()),
        ..event(1135, EventLevel::Critical, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_written_as_in_the_seed_log() {
        let a: IpAddr = "172.16.0.181".parse().unwrap();
        assert_eq!(endpoint(a, 3343), "172.16.0.181:~3343~");
        assert_eq!(netftapi_endpoint(a, 3343), "172.16.0.181:003853");
    }

    #[test]
    fn events_carry_wsfc_ids_and_wording() {
        let e = event_1126("B - eth1", "B", "net2");
        assert_eq!(e.id, 1126);
        assert!(e.message.starts_with("Cluster network interface 'B - eth1' for cluster node 'B' on network 'net2' is unreachable by at least one other cluster node attached to the network."));
        assert_eq!(event_1130("net2").level, EventLevel::Error);
        assert!(event_1129("net2")
            .message
            .starts_with("Cluster network 'net2' is partitioned."));
        assert!(event_1135("B").message.starts_with(
            "Cluster node 'B' was removed from the active failover cluster membership."
        ));
        assert!(event_1127("A - eth0", "A", "net1")
            .message
            .contains("on network 'net1' failed."));
    }
}
