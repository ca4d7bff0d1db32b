//! The replicated cluster database: openraft 0.9 (storage-v2) log store and state machine on redb,
//! in `<data-dir>/raft.redb`, and its network transport over authenticated TCP. The state machine
//! applies the engine's `RecordChange` batches to groups and resources and owns the node id
//! allocator. Not the wiring into keelson-rcm, not validation of the changes (the engine validates
//! before proposing).
//!
//! # Storage
//! `open(dir)` gives the `LogStore` and `StateMachine` for `Raft::new`; `StateMachine::view()` a
//! handle on the applied `ClusterState` that stays current.
//!
//! # Transport
//! * `raft_timing(&NetftSettings) -> RaftTiming`, then `timing.config(cluster_name)` gives
//!   openraft's `Config`: heartbeat and election timeouts chosen so that losing one network path
//!   (NetFT reroutes within `(threshold + 1) × delay`) never triggers an election (the argument is
//!   on `raft_timing`).
//! * `ClusterKey::new(bytes)` from the cluster key file (at least 16 bytes; the same file NetFT
//!   reads; raft derives its own key from it).
//! * `Network::new(id, key, cluster_name, &timing)` is the `RaftNetworkFactory` for `Raft::new`;
//!   `.with_routing(routing)` (and `ClusterClient::with_routing`) reach peers where a shared
//!   `Routing` table says (their NetFT virtual addresses) instead of their membership address.
//! * `serve(listener, raft, key, ServerConfig::new(cluster_name)) -> Server` answers peers on the
//!   listener (raft's RPCs, and the administrative ones below); `Server::counters()` says what it
//!   refused and dropped (`TransportCounters`); dropping the `Server` stops it.
//! * `ClusterClient::new(key, cluster_name, timeout)` makes the administrative calls:
//!   `write(&raft, request)` (proposed locally if this node leads, else forwarded to the leader;
//!   `Ok` means committed on a majority and applied on the leader), `read_barrier(&raft)` (after
//!   it, a read of this node's state machine is linearizable), `join(seed_addr, node)` → a
//!   `Reservation` (a fresh id; start `Raft` with it and `serve`, then) `admit(&reservation)` →
//!   the membership with the node as a voter, and `evict(member_addr, id)` (the id is never given
//!   out again, and cannot be admitted again).
//!
//! Every connection opens with a mutual HMAC-SHA256 challenge-response over fresh nonces, the
//! protocol version and the cluster name (handshake.rs); every frame after it carries an HMAC over
//! (direction, sequence number, payload) under a per-connection key (channel.rs). Frames are
//! length-prefixed, at most 16 MiB (1 KiB before the handshake), postcard-encoded (wire.rs).
#![forbid(unsafe_code)]
// openraft's storage traits return its `StorageError` (224 bytes): the helpers here return it too.
#![allow(clippy::result_large_err)]

mod admin;
mod applied;
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
mod routing;
mod server;
mod snapshot;
mod state_machine;
mod timing;
mod types;
pub mod wire;

pub use applied::Applied;
pub use channel::{Channel, MAX_PAYLOAD};
pub use client::{ClientError, ClusterClient, Reservation};
pub use cluster_state::{
    ClusterInfo, ClusterState, InterfaceRecord, NodeEntry, WitnessConfig, WitnessKind,
    DEFAULT_NETFT_PORT, DEFAULT_VIRTUAL_SUBNET,
};
pub use counters::TransportCounters;
pub use db::{open, open_database, RAFT_FILE};
pub use handshake::{accept, accept_for, connect, connect_to, AcceptError, ConnectError};
pub use key::{ClusterKey, KeyTooShort, MIN_KEY_LEN};
pub use log_store::LogStore;
pub use network::{Network, PeerConnection};
pub use routing::{Route, Routing};
pub use server::{serve, Admission, HostedRafts, Server, ServerConfig};
pub use snapshot::SnapshotBuilder;
pub use state_machine::{SharedState, StateMachine};
pub use timing::{raft_timing, RaftTiming, SNAPSHOT_CHUNK};
pub use types::{ClusterNode, NodeId, Request, Response, TypeConfig, HOSTED_ADDR};

pub use openraft;
