//! The quorum view, `keelson cluster quorum`: the model in WSFC's words, the votes as this node
//! counts them, and the witness with its lease. Not the cluster's other views (cluster.rs).

use serde::{Deserialize, Serialize};

/// `keelson cluster quorum`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quorum {
    pub cluster: String,
    /// The witness's lease as this node last read it (None without a witness or before a read).
    pub lease: Option<WitnessLease>,
    /// `Node Majority`, `Node and File Share Majority (file-share witness PATH)` or `Node and Disk
    /// Majority (disk witness DEV)`.
    pub model: String,
    /// Votes needed for quorum (a strict majority of `votes_total`).
    pub needed: u64,
    /// True when this node is in a quorum and accepts administrator changes.
    pub quorum_ok: bool,
    /// The count in one line, e.g. `in quorum: 2 of 3 votes (n2 unreachable)`.
    pub verdict: String,
    /// The voting nodes' names, then `witness` if the witness votes.
    pub voters: Vec<String>,
    /// Votes this node counts on (its own included).
    pub votes: u64,
    pub votes_total: u64,
    /// The node running the witness voter (empty: none now, or no witness).
    pub witness_host: String,
    /// The witness voter's raft node id (0: no witness).
    pub witness_id: u64,
}

/// One reading of the witness lease.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WitnessLease {
    /// Milliseconds until the written expiry (negative: past it); None while this node holds it
    /// (it renews before then).
    pub expires_in_ms: Option<i64>,
    pub generation: u64,
    /// The node holding (or that last held) the lease.
    pub holder: String,
    /// The holder gave it up: any node may take it at once.
    pub released: bool,
}
