//! The cluster views: `keelson cluster status` (name, leader, term, quorum), `keelson node
//! list` (each node with its state, id and addresses) and `keelson cluster get` (the cluster-wide
//! properties). Not the single node's `status` (status.rs).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `keelson cluster status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterStatus {
    /// The last log index this node has applied.
    pub applied_index: u64,
    /// The leader's node name (empty while there is none).
    pub leader: String,
    pub name: String,
    /// This node's name and raft id.
    pub node: String,
    pub node_id: u64,
    /// e.g. "node majority: 1 of 1 votes".
    pub quorum: String,
    /// True when this node is in a quorum and accepts administrator changes.
    pub quorum_ok: bool,
    pub term: u64,
    /// The voters' names, sorted.
    pub voters: Vec<String>,
    /// "none" until a witness is configured.
    pub witness: String,
    /// Raft's timing in force on this node, from the cluster's NetFT settings.
    pub raft_heartbeat_ms: u64,
    pub raft_election_min_ms: u64,
    pub raft_election_max_ms: u64,
}

/// One node of `keelson node list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    pub addrs: Vec<String>,
    /// Its raft id (0: listed at create, not joined yet).
    pub id: u64,
    pub leader: bool,
    pub name: String,
    /// Paused by the administrator (`keelson node pause`): no group is placed on it.
    pub paused: bool,
    /// Up, Down, OneWay (heard, but it does not hear this node), Unknown, Joining (listed, not a
    /// member yet) or Paused (Up and paused).
    pub state: String,
}

/// `keelson node list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeList {
    pub cluster: String,
    pub nodes: Vec<Node>,
}

/// One route of `keelson network list`: a local and a remote interface on one cluster network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Route {
    /// Since the last heartbeat heard on it (None: never).
    pub last_heartbeat_age_ms: Option<u64>,
    pub local: String,
    /// Heartbeats missed so far.
    pub lost: u64,
    pub network: String,
    /// The remote node's name.
    pub node: String,
    pub priority: u32,
    pub received: u64,
    pub remote: String,
    /// Up, Down or Unknown.
    pub state: String,
}

/// `keelson network list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkList {
    pub cluster: String,
    pub routes: Vec<Route>,
    /// The virtual adapter, while it runs.
    pub virtual_adapter: Option<VirtualAdapter>,
}

/// The NetFT virtual adapter (`keelson0`) of `keelson network list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VirtualAdapter {
    pub name: String,
    /// `ADDR/PREFIX`.
    pub address: String,
    pub mtu: u32,
    /// Each peer and the route its packets take now.
    pub paths: Vec<AdapterPath>,
    /// Frames sent and packets delivered.
    pub sent: u64,
    pub delivered: u64,
    /// Packets for a peer with no route Up.
    pub no_route: u64,
    /// Frames refused on arrival (forged, replayed, malformed, wrong sender, spoofed, not ours).
    pub refused: u64,
}

/// One peer's path through the virtual adapter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdapterPath {
    pub node: String,
    /// `LOCAL -> REMOTE`, or empty when no route to it is Up.
    pub route: String,
    pub priority: u32,
}

/// One finding of `keelson validate`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Finding {
    /// `NODE - ADAPTER`, empty when the finding is about a pair of nodes.
    pub interface: String,
    pub message: String,
    pub node: String,
    /// ERROR or WARNING.
    pub severity: String,
}

/// `keelson validate`: errors first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Validation {
    pub errors: usize,
    pub findings: Vec<Finding>,
    pub warnings: usize,
}

/// One cluster-wide property of `keelson cluster get`: its value, its default and the values
/// `keelson cluster set` accepts now (`min..=max`), or the text of a text property.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterProperty {
    pub default: u32,
    pub max: u32,
    pub min: u32,
    pub value: u32,
    /// The value of a text property (FenceAgent, FenceAgentOptions); the numbers are 0 then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `keelson cluster get [NAME...]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterProperties {
    pub cluster: String,
    /// By property name (PascalCase), sorted.
    pub properties: BTreeMap<String, ClusterProperty>,
}
