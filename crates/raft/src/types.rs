//! The raft type configuration: node ids, what a node is, what a proposal and its answer are. Not
//! storage (log_store.rs, state_machine.rs).

use keelson_types::RecordChange;
use openraft::LogId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Cursor;

/// A node's id in the cluster: allocated by the state machine (`Request::AllocateNodeId`), which
/// only counts up, so the id of a removed node is never given to another one.
pub type NodeId = u64;

/// A cluster member as raft knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// The node's name (the administrator's, e.g. the host name).
    pub name: String,
    /// Where its raft endpoint listens on the cluster-internal network (`ADDR:PORT`).
    pub addr: String,
}

/// The membership address of a voter with no endpoint of its own (the witness voter): the node
/// hosting it answers for its id, and the caller's routing (`@HOST=ADDR:PORT`) finds that node.
pub const HOSTED_ADDR: &str = "0.0.0.0:0";

impl ClusterNode {
    /// Whether this member is a hosted voter (see `HOSTED_ADDR`), not a node of its own.
    pub fn is_hosted(&self) -> bool {
        self.addr == HOSTED_ADDR
    }
}

impl fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

/// One proposal to the cluster database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// One administrator request: the engine's changes, applied together or not at all.
    Changes(Vec<RecordChange>),
    /// Reserve the next node id for a node about to join.
    AllocateNodeId,
    /// Set the cluster's name and node list (the entry `keelson cluster create` commits first).
    SetCluster(crate::ClusterInfo),
    /// Add or replace one node's entry (a joining node fills in its id, interfaces and endpoint).
    PutNode(crate::NodeEntry),
    /// Remove an evicted node's entry, by name (its id is never given out again).
    RemoveNode(String),
    /// Set these cluster-wide properties (validated by the proposing node), keeping the others.
    SetClusterProperties(std::collections::BTreeMap<String, String>),
    /// Set (or, None, remove) the cluster's witness.
    SetWitness(Option<crate::WitnessConfig>),
    /// A group's owner reports the group's state (kept in its record's placement, replacing an
    /// older report; ignored unless `state.node` owns the group).
    ReportGroupState {
        group: String,
        state: keelson_types::OwnerState,
    },
    /// Pause (or resume) node `name`, with the moves a drain decided, applied together.
    SetNodePaused {
        name: String,
        paused: bool,
        changes: Vec<RecordChange>,
    },
}

/// What applying a proposal did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The log entry that carried it (None only for a response openraft builds itself).
    pub log_id: Option<LogId<NodeId>>,
    /// The id reserved by `Request::AllocateNodeId`.
    pub allocated: Option<NodeId>,
}

openraft::declare_raft_types!(
    /// keelson's raft types.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = ClusterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
