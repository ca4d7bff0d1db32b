//! Errors of hosting operations, one enum per kind of operation. Not death causes (death.rs).

use crate::death::HostDied;

/// Spawning a host or talking to it on its control socket failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error("host did not say Hello within {0} ms")]
    HelloTimeout(u64),
    #[error("host speaks protocol version {found}, this side speaks {expected}")]
    Version { found: u32, expected: u32 },
    #[error("host protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    Plugin(String),
    /// The host did not answer a LoadPlugin within its limit (a library initialiser that never
    /// returned) and was SIGKILLed.
    #[error(
        "plugin {path}: hung at load: not loaded within {limit_ms} ms (a library initialiser never \
         returned); host {pid} was killed"
    )]
    LoadHung {
        path: String,
        limit_ms: u64,
        pid: u32,
    },
    #[error("{0}")]
    Died(HostDied),
    #[error("resource id 0 is reserved")]
    ReservedId,
}

/// A call into a resource failed before the plugin could answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    HostDied(HostDied),
    #[error("host protocol error: {0}")]
    Protocol(String),
    #[error("resource is closed")]
    Closed,
}
