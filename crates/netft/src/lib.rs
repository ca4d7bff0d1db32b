//! keelson NetFT: the fault-tolerant cluster network's heartbeat layer. Every node sends an
//! authenticated UDP heartbeat on every route (each pair of a local and a remote interface on a
//! shared network) every SameSubnetDelay/CrossSubnetDelay; a pure detector turns what arrives, what
//! does not, and what netlink reports about local links into route, node and network states,
//! cluster.log lines and WSFC events. On top of it, the virtual adapter: a TUN interface
//! (`keelson0`) whose packets between nodes' virtual addresses are framed, authenticated and carried
//! over the best live route by Priority, so a TCP connection between virtual addresses survives the
//! loss of the route it was using. Not membership or raft: those build on this crate.
//!
//! * `packet` — the heartbeat wire format (fixed-size, versioned, HMAC-SHA256).
//! * `detector` — the pure state machine `(now, Event) -> Vec<Action>`.
//! * `settings` — SameSubnetDelay & co. with WSFC's ranges and a test-only override.
//! * `shell` / `socket` / `netlink` — the tokio shell that performs the actions.
//! * `frame` — the virtual adapter's wire format (an IP packet, versioned, HMAC-SHA256), on the
//!   heartbeat sockets and port, told apart by its kind byte.
//! * `path` — the pure route chooser: each peer's best Up route by Priority.
//! * `tunnel` / `ip_header` — the pure per-packet core: route, frame, replay window, sender and
//!   inner-address checks, counters.
//! * `adapter` / `data_plane` / `link_config` — the tokio shell: the TUN device, its netlink
//!   configuration (address, MTU, up), and the share of the heartbeat shell it runs on.
//! * `validate` — the pure checks behind `keelson validate`.

#![forbid(unsafe_code)]

pub mod action;
pub mod adapter;
pub mod contact;
pub mod data_plane;
pub mod detector;
pub mod frame;
pub mod interfaces;
pub mod ip_header;
pub mod link_config;
pub mod netlink;
pub mod packet;
pub mod path;
pub mod ratelimit;
pub mod replay;
pub mod route;
pub mod settings;
pub mod shell;
pub mod socket;
pub mod topology;
pub mod tunnel;
pub mod validate;

pub use action::{Action, EventLevel, NetftEvent, NetworkState, NodeState, RouteState};
pub use adapter::{Adapter, AdapterConfig, AdapterError, AdapterHandle, AdapterLog, AdapterStatus};
pub use contact::ContactLease;
pub use data_plane::DataPlane;
pub use detector::{Counters, Detector, DetectorConfig, Event, RouteStatus, DEFAULT_PORT};
pub use frame::{Frame, FrameError, FrameHeader};
pub use packet::{ClusterKey, Heartbeat, PacketError};
pub use path::{Candidate, PathTable};
pub use settings::{NetftSettings, SettingsError};
pub use shell::{NetftSink, NetftStatus, Shell, ShellError, StatusHandle};
pub use topology::{InterfaceSpec, NetworkSpec, NodeId, NodeSpec, RouteKey, Topology};
pub use tunnel::TunnelCounters;
