//! The one client of the control protocol on `<data-dir>/rcm.sock`, used by the `keelson` CLI, the
//! system tests and the benchmarks: one connection per request, one
//! [`ControlEnvelope`](keelson_proto::ControlEnvelope) out, then one reply (or a stream of lines)
//! back within a deadline, with views parsed into the structs of [`keelson_proto::view`] and every
//! failure one [`ClientError`]. Not printing anything, not deciding what a command means, and not
//! the server side (rcm/src/api.rs). Tests that send malformed frames on purpose do not use it.

#![forbid(unsafe_code)]

mod client;
mod error;

pub use client::{Client, Connection, DEFAULT_REPLY_TIMEOUT};
pub use error::ClientError;
