//! Errors of hosting operations, one enum per kind of operation. Not death causes (death.rs).

use crate::death::HostDied;
use keelson_types::StatusKind;

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
    /// The plugin's open returned a non-zero status.
    #[error("resource '{name}': open failed (status {status}): {message}")]
    OpenFailed {
        name: String,
        status: i32,
        message: String,
    },
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

impl HostError {
    /// The kind of failure this is for an open: the plugin's status, a dead host, or an error.
    pub fn status_kind(&self) -> StatusKind {
        match self {
            HostError::OpenFailed { status, .. } => StatusKind::from_code_or_error(*status),
            HostError::Died(_) | HostError::LoadHung { .. } => StatusKind::HostDied,
            _ => StatusKind::Error,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_open_keeps_the_plugins_status_and_its_old_message() {
        let e = HostError::OpenFailed {
            name: "web".into(),
            status: 4,
            message: "port=0".into(),
        };
        assert_eq!(e.status_kind(), StatusKind::Misconfigured);
        assert_eq!(
            e.to_string(),
            "resource 'web': open failed (status 4): port=0"
        );
        let unknown = HostError::OpenFailed {
            name: "web".into(),
            status: 99,
            message: String::new(),
        };
        assert_eq!(unknown.status_kind(), StatusKind::Error);
        assert_eq!(
            HostError::Plugin("no such type".into()).status_kind(),
            StatusKind::Error
        );
    }
}
