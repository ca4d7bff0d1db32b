//! The last error of each entry point of a resource: its message, its kind and when it happened,
//! for `resource get`. Kept in memory only (a restarted node service starts with none) and never
//! cleared: it is the *last* error, not a current one. Not the failure handling (failure.rs).

use crate::engine::Engine;
use keelson_types::{Op, ResourceId, StatusKind};
use serde::{Deserialize, Serialize};

/// One entry point's last failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// What kind of failure (the plugin's status code, a timeout, a dead host, a report…).
    pub status: StatusKind,
    pub message: String,
    /// Engine time of the failure (the shell's clock: Unix ms in rcm).
    pub at_ms: u64,
}

impl Engine {
    /// Remembers `message` as the last error of `op` on resource `id`, now.
    pub(crate) fn note_error(&mut self, id: ResourceId, op: Op, status: StatusKind, message: &str) {
        let at_ms = self.now;
        let Some(r) = self.resources.get_mut(&id) else {
            return;
        };
        r.last_errors.insert(
            op,
            LastError {
                status,
                message: message.to_string(),
                at_ms,
            },
        );
    }
}
