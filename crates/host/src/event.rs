//! What a host reports to rcm besides call answers: log lines, progress, stderr, refusals, failed
//! health checks and their statistics, plugins' own failure reports, and finally its death. Not how
//! they are read (supervisor.rs).

use crate::death::HostDied;
use keelson_types::{LogLevel, Op, ResourceId, StatusKind};
use tokio::sync::mpsc;

/// What a host reports besides call results.
#[derive(Clone, Debug)]
pub enum HostEvent {
    /// A log line from the host or one of its plugins; `tid` is the host thread that wrote it.
    Log {
        pid: u32,
        tid: u32,
        level: LogLevel,
        resource: Option<ResourceId>,
        message: String,
    },
    /// Progress of a long online/offline.
    Progress {
        pid: u32,
        resource: ResourceId,
        progress: u32,
    },
    /// A line the host process (or plugin code in it) wrote to its stderr.
    Stderr { pid: u32, line: String },
    /// The host refused a request.
    Refused { pid: u32, message: String },
    /// A health check the host ran by itself failed (it runs IsAlive at once after a LooksAlive).
    HealthFailed {
        pid: u32,
        resource: ResourceId,
        op: Op,
        /// The check's status (NotRunning: cleanly down; an unknown code is already Error).
        status: StatusKind,
        message: String,
    },
    /// The plugin reported by itself that the resource failed (`report_failure`).
    FailureReported {
        pid: u32,
        resource: ResourceId,
        message: String,
    },
    /// Summaries of the health checks the host ran by itself, each since that resource's open.
    CallStats {
        pid: u32,
        stats: Vec<keelson_proto::ResourceCallStats>,
    },
    /// The host is gone; sent once, last.
    Died(HostDied),
}

/// The receiving end of a host's events.
pub type HostEvents = mpsc::UnboundedReceiver<HostEvent>;
