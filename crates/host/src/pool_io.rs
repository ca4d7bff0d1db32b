//! The plain types that go in and out of the host pool: an open waiting for its host, a request
//! waiting for an open, what the pool's tasks report back, and what the pool tells its owner. Not
//! the pool's bookkeeping (pool.rs).

use crate::death::HostDied;
use crate::error::{CallError, HostError};
use crate::event::HostEvent;
use crate::host::Host;
use crate::resource::ResourceHandle;
use keelson_proto::CallDone;
use keelson_types::{HealthPlan, HostId, Op, ResourceId, StatusKind};
use std::collections::BTreeMap;

/// An Open numbered by the pool, waiting for its host or for its plugin's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOpen {
    pub resource: ResourceId,
    pub name: String,
    pub type_name: String,
    pub params: BTreeMap<String, String>,
    /// Which Open of the resource this is: only the latest one counts.
    pub seq: u64,
    /// Deadline of the OPEN call, as the engine decided it.
    pub deadline_ms: u64,
}

/// A request that waits for a resource's open in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Queued {
    /// A call of `op` with its deadline (ms).
    Call(Op, u64),
    /// A health plan for its host to poll by (None: stop).
    Poll(Option<HealthPlan>),
}

/// What the pool's tasks send back; the owner hands each to `Pool::on_report`, in order.
pub enum PoolReport {
    HostStarted {
        host: HostId,
        result: Result<Host, HostError>,
    },
    HostEvent {
        host: HostId,
        event: HostEvent,
    },
    Opened {
        resource: ResourceId,
        seq: u64,
        /// That Open's deadline, for closing an instance nobody wants any more.
        deadline_ms: u64,
        host: HostId,
        result: Result<ResourceHandle, HostError>,
    },
    CallDone {
        resource: ResourceId,
        op: Op,
        result: Result<CallDone, CallError>,
    },
}

/// What the pool tells its owner, which decides what it means (the engine's events).
#[derive(Debug)]
pub enum PoolOutcome {
    /// A host is up.
    HostStarted { host: HostId, pid: u32 },
    /// A host could not start, or died while it was wanted (a retired host's death is not told).
    HostLost {
        host: HostId,
        /// The resource whose call took it down, and that call.
        offender: Option<(ResourceId, Op)>,
        /// The plugin whose code faulted, when a crash is blamed on a plugin rather than a call.
        offending_plugin: Option<String>,
        cause: String,
        /// The death report, when the host had started.
        died: Option<HostDied>,
    },
    /// This open's host is up: resolve its plugin and hand it back with `Pool::start_open`.
    OpenReady { host: HostId, open: PendingOpen },
    /// A call (OPEN included) finished. `ok` is `status.is_ok()`.
    CallDone {
        resource: ResourceId,
        op: Op,
        ok: bool,
        /// What kind of result: the plugin's status code, or why the call got none.
        status: StatusKind,
        message: String,
    },
    /// A health check the host ran by itself failed.
    HealthFailed {
        resource: ResourceId,
        op: Op,
        status: StatusKind,
        message: String,
    },
    /// The plugin of the resource's current instance reported by itself that it failed.
    FailureReported {
        resource: ResourceId,
        message: String,
    },
    /// A line a host wrote (log, stderr, refusal), for the owner to redact and log.
    HostLine(HostEvent),
}
