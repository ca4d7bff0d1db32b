//! The replicated cluster database's storage: openraft 0.9 (storage-v2) log store and state machine
//! on redb, in `<data-dir>/raft.redb`. The state machine applies the engine's `RecordChange` batches
//! to groups and resources and owns the node id allocator. Not the network transport, not the wiring
//! into keelson-rcm, not validation of the changes (the engine validates before proposing).
#![forbid(unsafe_code)]
// openraft's storage traits return its `StorageError` (224 bytes): the helpers here return it too.
#![allow(clippy::result_large_err)]

mod cluster_state;
mod db;
mod error;
mod log_store;
mod snapshot;
mod state_machine;
mod types;

pub use cluster_state::ClusterState;
pub use db::{open, open_database, RAFT_FILE};
pub use log_store::LogStore;
pub use snapshot::SnapshotBuilder;
pub use state_machine::{SharedState, StateMachine};
pub use types::{ClusterNode, NodeId, Request, Response, TypeConfig};

pub use openraft;
