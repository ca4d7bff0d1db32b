//! Plain types shared by every keelson crate: resource ids, plugin entry points (`Op`), log levels,
//! signal names and the WSFC property defaults. No I/O, no clock, no policy: just vocabulary.
#![forbid(unsafe_code)]

mod callstats;
mod defaults;
mod health;
mod logtime;
mod op;
mod properties;
mod reason;
mod records;
mod schema;
mod secret;
mod signal;
mod status;
mod text;

pub use callstats::{CallStats, CallTimings};
pub use defaults::*;
pub use health::{HealthPlan, HealthSchedule, HealthVerdict};
pub use logtime::{
    format_iso_time, format_log_line, format_log_time, parse_iso_time, parse_log_line_time,
};
pub use op::{Op, UnknownOp};
pub use properties::*;
pub use reason::{io_reason, io_reason_keep_case};
pub use records::{
    GroupMove, GroupPlacement, GroupRecord, OwnerState, RecordChange, ResourceRecord,
};
pub use schema::{ParamKind, ParamSpec, SchemaError, TypeDefaults, TypeSchema};
pub use secret::is_secret_param;
pub use signal::signal_name;
pub use status::StatusKind;
pub use text::{check_name, check_param_key, escape_for_log, is_invisible};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies one open resource inside one host. Chosen by the caller of `Open`; unique per host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceId(pub u64);

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One host process slot (an rhs), numbered from 1 in the order the engine asks for them.
/// A slot is never reused: a host that died is replaced by a slot with a fresh id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostId(pub u64);

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host#{}", self.0)
    }
}

/// Severity of a cluster-log line, spelled as in the WSFC cluster log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    Err,
    Warn,
    Info,
    Dbg,
}

impl LogLevel {
    /// The level as written in a cluster-log line: `ERR`, `WARN`, `INFO`, `DBG`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Err => "ERR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Dbg => "DBG",
        }
    }

    /// Maps the C ABI's numeric level (0 = ERR … 3 = DBG); anything larger is DBG.
    pub fn from_abi(level: u32) -> LogLevel {
        match level {
            0 => LogLevel::Err,
            1 => LogLevel::Warn,
            2 => LogLevel::Info,
            _ => LogLevel::Dbg,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin file offers, as reported by a host that loaded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The plugin's own name from its descriptor (e.g. `dummy`).
    pub name: String,
    /// The file it was loaded from.
    pub path: String,
    /// The resource types it implements, in descriptor order.
    pub types: Vec<ResourceTypeInfo>,
}

/// One resource type of a plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTypeInfo {
    pub name: String,
    /// Whether the type implements the optional `validate` entry point.
    pub has_validate: bool,
    /// Its declared parameters and own defaults (empty and undeclared for a plugin without them).
    pub schema: TypeSchema,
}
