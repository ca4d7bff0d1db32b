//! How a call into a plugin ended, as one word the engine's policy and the views read: the ABI's
//! status codes (ok, error, panic, invalid, misconfigured, not installed, not running) and the
//! failures nobody's status code says (a timeout, a dead host, the plugin's own failure report).
//! Not the numbers' C definitions (crates/abi, include/keelson_plugin.h: rhs checks they agree).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a call's result. The first seven are the ABI's `KEELSON_*` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusKind {
    /// `KEELSON_OK` (0).
    Ok,
    /// `KEELSON_ERROR` (1): a generic failure; the restart policy applies. Unknown codes become this.
    Error,
    /// `KEELSON_PANIC` (2): the Rust SDK caught a panic.
    Panic,
    /// `KEELSON_INVALID` (3): parameters were rejected (open/validate).
    Invalid,
    /// `KEELSON_MISCONFIGURED` (4): the configuration is wrong; never restarted (OCF ERR_CONFIGURED).
    Misconfigured,
    /// `KEELSON_NOT_INSTALLED` (5): this node cannot run it; not retried here.
    NotInstalled,
    /// `KEELSON_NOT_RUNNING` (6): a health check found it cleanly down.
    NotRunning,
    /// The call did not finish within PendingTimeout.
    Timeout,
    /// The host died under the call (crash or deadlock).
    HostDied,
    /// The plugin reported the failure by itself (`report_failure`).
    Reported,
}

impl StatusKind {
    /// The kind of an ABI status code; `None` for a code the ABI does not define.
    pub fn from_code(code: i32) -> Option<StatusKind> {
        Some(match code {
            0 => StatusKind::Ok,
            1 => StatusKind::Error,
            2 => StatusKind::Panic,
            3 => StatusKind::Invalid,
            4 => StatusKind::Misconfigured,
            5 => StatusKind::NotInstalled,
            6 => StatusKind::NotRunning,
            _ => return None,
        })
    }

    /// The kind of an ABI status code, an unknown one counting as a generic error.
    pub fn from_code_or_error(code: i32) -> StatusKind {
        StatusKind::from_code(code).unwrap_or(StatusKind::Error)
    }

    /// Ok or a failure, for the callers that only care about that.
    pub fn from_ok(ok: bool) -> StatusKind {
        if ok {
            StatusKind::Ok
        } else {
            StatusKind::Error
        }
    }

    pub fn is_ok(self) -> bool {
        self == StatusKind::Ok
    }

    /// The word the views and the log use: `ok`, `error`, `misconfigured`, `not_installed`, …
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Ok => "ok",
            StatusKind::Error => "error",
            StatusKind::Panic => "panic",
            StatusKind::Invalid => "invalid",
            StatusKind::Misconfigured => "misconfigured",
            StatusKind::NotInstalled => "not_installed",
            StatusKind::NotRunning => "not_running",
            StatusKind::Timeout => "timeout",
            StatusKind::HostDied => "host_died",
            StatusKind::Reported => "reported",
        }
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds_and_unknown_ones_to_none() {
        let kinds: Vec<Option<StatusKind>> = (0..8).map(StatusKind::from_code).collect();
        assert_eq!(
            kinds,
            [
                Some(StatusKind::Ok),
                Some(StatusKind::Error),
                Some(StatusKind::Panic),
                Some(StatusKind::Invalid),
                Some(StatusKind::Misconfigured),
                Some(StatusKind::NotInstalled),
                Some(StatusKind::NotRunning),
                None,
            ]
        );
        assert_eq!(StatusKind::from_code_or_error(-3), StatusKind::Error);
        assert_eq!(StatusKind::NotInstalled.to_string(), "not_installed");
        assert!(StatusKind::from_ok(true).is_ok() && !StatusKind::from_ok(false).is_ok());
    }
}
