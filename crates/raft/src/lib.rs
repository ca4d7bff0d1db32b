//! The replicated cluster database's storage: openraft 0.9 (storage-v2) log store and state machine
//! on redb, in `<data-dir>/raft.redb`. The state machine applies the engine's `RecordChange` batches
//! to groups and resources and owns the node id allocator. Not the network transport, not the wiring
//! into keelson-rcm, not validation of the changes (the engine validates before proposing).
#![forbid(unsafe_code)]
// openraft's storage traits return its `StorageError` (224 bytes): the helpers here return it too.
#![allow(clippy::result_large_err)]

mod admin;
mod channel;
mod client;
mod cluster_state;
mod counters;
mod db;
mod error;
mod handshake;
mod key;
mod log_store;
mod network;
mod server;
mod snapshot;
mod state_machine;
mod timing;
mod types;
pub mod wire;

pub use channel::{Channel, MAX_PAYLOAD};
pub use client::{ClientError, ClusterClient, Reservation};
pub use cluster_state::ClusterState;
pub use counters::TransportCounters;
pub use db::{open, RAFT_FILE};
pub use handshake::{accept, connect, AcceptError, ConnectError};
pub use key::{ClusterKey, KeyTooShort, MIN_KEY_LEN};
pub use log_store::LogStore;
pub use network::{Network, PeerConnection};
pub use server::{serve, Server, ServerConfig};
pub use snapshot::SnapshotBuilder;
pub use state_machine::{SharedState, StateMachine};
pub use timing::{raft_timing, RaftTiming, SNAPSHOT_CHUNK};
pub use types::{ClusterNode, NodeId, Request, Response, TypeConfig};

pub use openraft;
