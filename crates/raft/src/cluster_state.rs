//! The cluster database as the raft state machine holds it: groups and resources by name, and the
//! node id allocator. Pure data and its rules; not its storage (state_machine.rs).

use std::collections::BTreeMap;

use keelson_store::{Change, GroupRecord, ResourceRecord, Snapshot};
use serde::{Deserialize, Serialize};

use crate::NodeId;

/// One interface of a node on a cluster network, as the node reported it when it created or joined
/// the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceRecord {
    pub adapter: String,
    /// The kernel's interface index on that node.
    pub index: u32,
    /// `aa:bb:cc:dd:ee:ff`, or empty.
    pub mac: String,
    pub addr: std::net::IpAddr,
    pub prefix_len: u8,
}

/// One node the cluster was created with (or that joined), by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub name: String,
    /// Its addresses on the cluster networks, as the administrator gave them.
    pub addrs: Vec<String>,
    /// Its raft node id, once it is a member (None: listed, not joined yet).
    pub id: Option<NodeId>,
    /// Its interfaces on those addresses, once it reported them (at create or join).
    #[serde(default)]
    pub interfaces: Vec<InterfaceRecord>,
    /// Where its cluster database listens (`ADDR:PORT`), once it is a member.
    #[serde(default)]
    pub raft_addr: String,
    /// Paused by the administrator (`keelson node pause`): no group is placed on it.
    #[serde(default)]
    pub paused: bool,
}

/// The UDP port of the heartbeat network unless the cluster was created with another.
pub const DEFAULT_NETFT_PORT: u16 = 3343;

fn default_netft_port() -> u16 {
    DEFAULT_NETFT_PORT
}

/// The subnet of the NetFT virtual adapter's addresses (node id N has the subnet's address + N)
/// unless the cluster was created with another: link-local (WSFC's NetFT used 169.254/16 too),
/// one /24 so that no other 169.254 address (such as a cloud's 169.254.169.254) is routed into it.
pub const DEFAULT_VIRTUAL_SUBNET: &str = "169.254.1.0/24";

fn default_virtual_subnet() -> String {
    DEFAULT_VIRTUAL_SUBNET.to_string()
}

/// The cluster itself: its name, its nodes, its heartbeat port and its cluster-wide properties.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub name: String,
    pub nodes: BTreeMap<String, NodeEntry>,
    #[serde(default = "default_netft_port")]
    pub netft_port: u16,
    /// `ADDR/PREFIX` of the virtual adapter's subnet (`keelson cluster create --virtual-subnet`).
    #[serde(default = "default_virtual_subnet")]
    pub virtual_subnet: String,
    /// Cluster-wide properties set with `keelson cluster set` (e.g. `SameSubnetDelay` -> `2000`),
    /// checked by the proposing node; one not here has its default.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The witness vote, if the cluster has one (`keelson cluster quorum --witness PATH`).
    #[serde(default)]
    pub witness: Option<WitnessConfig>,
}

/// What kind of witness a cluster votes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WitnessKind {
    /// A directory every node reaches (the lease is a file in it, the voter's store `raft.redb`).
    FileShare,
    /// A small block device every node sees.
    Disk,
}

/// The cluster's witness: where it is and the raft id of its voter (allocated like a node's,
/// never given out again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessConfig {
    pub kind: WitnessKind,
    /// The directory or device, as given (absolute).
    pub path: String,
    /// The witness voter's raft node id.
    pub id: NodeId,
}

impl ClusterInfo {
    /// Sets each of `properties`, keeping the others (a committed `SetClusterProperties`).
    pub fn set_properties(&mut self, properties: &BTreeMap<String, String>) {
        self.properties
            .extend(properties.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Everything the committed log has built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Set by the entry that created the cluster.
    #[serde(default)]
    pub cluster: Option<ClusterInfo>,
    pub groups: BTreeMap<String, GroupRecord>,
    pub resources: BTreeMap<String, ResourceRecord>,
    /// The smallest node id never given out nor seen in a membership: ids below it are spent, even
    /// those of removed nodes, so the allocator only counts up.
    pub next_node_id: NodeId,
}

impl Default for ClusterState {
    fn default() -> ClusterState {
        ClusterState {
            cluster: None,
            groups: BTreeMap::new(),
            resources: BTreeMap::new(),
            next_node_id: 1,
        }
    }
}

impl ClusterState {
    /// Applies one change (a put replaces the whole record).
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::PutResource(r) => {
                self.resources.insert(r.name.clone(), r.clone());
            }
            Change::DeleteResource(name) => {
                self.resources.remove(name);
            }
            Change::PutGroup(g) => {
                self.groups.insert(g.name.clone(), g.clone());
            }
            Change::DeleteGroup(name) => {
                self.groups.remove(name);
            }
        }
    }

    /// The records in crates/store's shape (sorted by name), as the engine restores from.
    pub fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            groups: self.groups.values().cloned().collect(),
            resources: self.resources.values().cloned().collect(),
        }
    }
}

/// The allocator after handing out one id: (the id, the next one).
pub(crate) fn allocate(next: NodeId) -> (NodeId, NodeId) {
    (next, next + 1)
}

/// The allocator after seeing `members` in a membership: past every one of them.
pub(crate) fn past_members(next: NodeId, members: impl Iterator<Item = NodeId>) -> NodeId {
    members.map(|id| id + 1).fold(next, NodeId::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_only_counts_up_past_every_member_ever_seen() {
        let next = past_members(1, [1, 2, 3].into_iter());
        assert_eq!(next, 4);
        let (id, next) = allocate(next);
        assert_eq!((id, next), (4, 5));
        // A membership without node 2 (removed) or with lower ids does not move it back.
        assert_eq!(past_members(next, [1, 3].into_iter()), 5);
        assert_eq!(past_members(next, [9].into_iter()), 10);
    }

    #[test]
    fn properties_default_to_none_and_a_set_keeps_the_others() {
        let old: ClusterInfo = serde_json::from_str(r#"{"name":"prod","nodes":{}}"#).unwrap();
        assert!(
            old.properties.is_empty(),
            "a cluster recorded before properties"
        );
        assert_eq!(old.netft_port, DEFAULT_NETFT_PORT);
        let mut info = old;
        let set = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        info.set_properties(&set(&[
            ("SameSubnetDelay", "2000"),
            ("CrossSubnetDelay", "300"),
        ]));
        info.set_properties(&set(&[("SameSubnetDelay", "1500")]));
        assert_eq!(
            info.properties,
            set(&[("CrossSubnetDelay", "300"), ("SameSubnetDelay", "1500")])
        );
    }

    #[test]
    fn changes_put_and_delete_whole_records_by_name() {
        let mut state = ClusterState::default();
        let group = GroupRecord {
            name: "web".into(),
            ..Default::default()
        };
        let resource = ResourceRecord {
            name: "ip".into(),
            group: "web".into(),
            ..Default::default()
        };
        state.apply(&Change::PutGroup(group.clone()));
        state.apply(&Change::PutResource(resource.clone()));
        let replaced = ResourceRecord {
            want_online: true,
            ..resource.clone()
        };
        state.apply(&Change::PutResource(replaced.clone()));
        assert_eq!(
            state.to_snapshot(),
            Snapshot {
                groups: vec![group],
                resources: vec![replaced]
            }
        );
        state.apply(&Change::DeleteResource("ip".into()));
        state.apply(&Change::DeleteGroup("web".into()));
        assert_eq!(state.to_snapshot(), Snapshot::default());
    }
}
