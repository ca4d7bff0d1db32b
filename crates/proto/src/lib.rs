//! The rcm<->rhs wire protocol: plain message enums (one variant per protocol step) and the single
//! frame codec every process uses. Not transport: sockets, fd passing and timeouts belong to rhs and
//! crates/host.
//!
//! The control protocol between the `keelson` CLI and rcm is in [`ControlEnvelope`]; the views it
//! carries are the structs of [`view`]. Its client is crates/client.
//!
//! Channels between rcm (host side) and one rhs process:
//! * control socket (bidirectional): [`HostRequest`] down, [`HostReply`] up; starts with [`Hello`]
//!   both ways.
//! * one socket per open resource, passed with its `Open` request: [`ResourceRequest`] down,
//!   [`ResourceReply`] up; strictly one call at a time, so no request ids are needed.
//! * alarm pipe (rhs -> host only): [`HostAlarm`] frames written by the deadlock monitor and the
//!   async-signal-safe crash handler, each a single `write` below `PIPE_BUF`, so never interleaved.
//! * lease socket (rcm -> rhs only, a datagram socket, only when the host was started with
//!   `--lease-fd`): [`LeaseMessage`] datagrams, each one whole frame ([`decode_frame`]); the host
//!   fences itself (terminates its resources and exits with [`EXIT_FENCED`]) when they stop.
#![forbid(unsafe_code)]

mod codec;
mod control;
mod messages;
pub mod view;

pub use codec::{
    decode, decode_frame, encode, encode_into, read_frame, write_frame, FrameBuf, ProtoError,
    MAX_FRAME_LEN,
};
#[cfg(feature = "tokio")]
pub use codec::{read_frame_admitted, read_frame_async, read_frame_buffered, write_frame_async};
pub use control::*;
pub use messages::*;

/// Version of this protocol; both sides send it in [`Hello`] and refuse a mismatch. 2: crash alarms
/// carry the faulting addresses and plugin, and hosts report `PluginMapped`. 3: hosts take a lease
/// from rcm ([`LeaseMessage`]) and fence themselves when it runs out ([`HostAlarm::Fenced`]); a host
/// of version 2 knows neither, so it is refused at Hello like any other mismatch. 4: an Open names
/// the resource's state directory and the node ([`OpenResource::state_dir`], `node_name`).
pub const PROTOCOL_VERSION: u32 = 4;

/// A host's exit status after it fenced itself (its lease from rcm ran out). 86 is the deadlock
/// monitor's, 2 a protocol failure.
pub const EXIT_FENCED: i32 = 87;
