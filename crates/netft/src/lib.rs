//! keelson NetFT: the fault-tolerant cluster network's heartbeat layer. Every node sends an
//! authenticated UDP heartbeat on every route (each pair of a local and a remote interface on a
//! shared network) every SameSubnetDelay/CrossSubnetDelay; a pure detector turns what arrives, what
//! does not, and what netlink reports about local links into route, node and network states,
//! cluster.log lines and WSFC events. Not the virtual adapter (TUN), membership or raft: those
//! build on this crate.
//!
//! * `packet` — the wire format (fixed-size, versioned, HMAC-SHA256).
//! * `detector` — the pure state machine `(now, Event) -> Vec<Action>`.
//! * `settings` — SameSubnetDelay & co. with WSFC's ranges and a test-only override.
//! * `shell` / `socket` / `netlink` — the tokio shell that performs the actions.
//! * `validate` — the pure checks behind `keelson validate`.

#![forbid(unsafe_code)]

pub mod action;
pub mod detector;
pub mod netlink;
pub mod packet;
pub mod ratelimit;
pub mod replay;
pub mod route;
pub mod settings;
pub mod shell;
pub mod socket;
pub mod topology;
pub mod validate;

pub use action::{Action, EventLevel, NetftEvent, NetworkState, NodeState, RouteState};
pub use detector::{Counters, Detector, DetectorConfig, Event, RouteStatus, DEFAULT_PORT};
pub use packet::{ClusterKey, Heartbeat, PacketError};
pub use settings::{NetftSettings, SettingsError};
pub use shell::{NetftSink, NetftStatus, Shell, ShellError, StatusHandle};
pub use topology::{InterfaceSpec, NetworkSpec, NodeId, NodeSpec, RouteKey, Topology};
