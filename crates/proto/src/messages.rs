//! Every message of the rcm<->rhs protocol as a plain serde type. Not their encoding (codec.rs).

use keelson_types::{CallStats, HealthPlan, LogLevel, Op, PluginInfo, ResourceId};
use serde::{Deserialize, Serialize};

/// First frame each side sends on the control socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub pid: u32,
}

/// rcm -> rhs on the control socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostRequest {
    /// The host side's half of the handshake, sent after the rhs's Hello.
    Hello(Hello),
    /// Load (dlopen) a plugin file and report its types.
    LoadPlugin { req: u64, path: String },
    /// Open a resource. The frame carries one file descriptor (SCM_RIGHTS): the resource's own
    /// socket. The rhs starts the resource's call thread, which runs OPEN and answers on that socket.
    Open(OpenResource),
    /// Close every resource and exit 0.
    Shutdown,
    /// Run the type's VALIDATE on these parameters without opening anything (`keelson plugin
    /// test`, validation before commit). Like `Open`, the frame carries the socket on which the one
    /// answer (a `CallDone` for `Op::Validate`) comes; the call runs under the deadlock monitor with
    /// `deadline_ms`, and the socket is closed after it. Appended last: existing indices stay.
    Validate(OpenResource),
}

/// Everything needed to open one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenResource {
    pub resource: ResourceId,
    /// The resource's name, as the cluster log shows it.
    pub name: String,
    /// Plugin file; loaded on first use.
    pub plugin_path: String,
    pub type_name: String,
    /// Private parameters as a JSON object.
    pub params_json: String,
    /// Deadline of the OPEN call itself (the resource's DeadlockTimeout).
    pub deadline_ms: u64,
    /// The resource's own directory on this node, made by the node before the Open (None: none).
    pub state_dir: Option<String>,
    /// This node's name (None: the node does not say).
    pub node_name: Option<String>,
}

/// rhs -> rcm on the control socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostReply {
    /// The rhs's half of the handshake, its first frame.
    Hello(Hello),
    /// Answer to `LoadPlugin`.
    PluginLoaded {
        req: u64,
        result: Result<PluginInfo, String>,
    },
    /// A cluster-log line from the rhs itself (resource = None) or from a plugin via its host
    /// callback. `tid` is the writing thread's kernel id.
    Log {
        resource: Option<ResourceId>,
        level: LogLevel,
        tid: u32,
        message: String,
    },
    /// `set_status` progress from a plugin's long online/offline.
    Progress { resource: ResourceId, progress: u32 },
    /// A request the rhs could not decode or act on; the connection stays usable.
    Refused { message: String },
    /// A plugin was loaded and its code recorded in the host's address table at `slot`: a later
    /// `HostAlarm::Crashed` names that slot when plugin code faulted. Sent before the plugin's types
    /// are offered, so it always precedes any alarm that names it.
    PluginMapped(PluginMapping),
    /// A health check the host ran by itself (see `ResourceRequest::Poll`) failed. After a failed
    /// LooksAlive the host runs IsAlive at once; after a failed IsAlive it polls no more.
    HealthFailed {
        resource: ResourceId,
        op: Op,
        status: i32,
        message: String,
    },
    /// Summaries of the health checks the host ran by itself, each counted since that resource was
    /// opened; sent periodically, only for resources with new checks.
    CallStats { stats: Vec<ResourceCallStats> },
    /// The plugin reported by itself (its host's `report_failure` callback, from any of its threads)
    /// that the resource failed: rcm treats it as a failed IsAlive at once. At most one per resource
    /// until its next health verdict (a check run, or a new plan); later ones are dropped by the host.
    /// Appended last so the encodings of the variants above do not move.
    FailureReported {
        resource: ResourceId,
        message: String,
    },
}

/// Which plugin file a slot of the host's code address table stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginMapping {
    pub slot: u32,
    /// The plugin's own name (its descriptor's `plugin_name`).
    pub name: String,
    pub path: String,
    /// Its load bias: an address in its code minus `base` is the ELF address in the file.
    pub base: u64,
}

/// One resource's summary of one entry point, as a host reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceCallStats {
    pub resource: ResourceId,
    pub op: Op,
    pub stats: CallStats,
}

/// rcm -> rhs on a resource's own socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceRequest {
    /// Run one entry point. `deadline_ms` is the DeadlockTimeout for this call. `Op::Close` ends
    /// the resource: the rhs answers and closes the socket. `Op::Open` is refused (open happens once,
    /// from the control request).
    Call { op: Op, deadline_ms: u64 },
    /// Poll the resource's health on its own thread by this plan (Some, while it is Online), or
    /// stop (None). No answer: failures and statistics come up the control socket.
    Poll { plan: Option<HealthPlan> },
}

/// rhs -> rcm on a resource's own socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceReply {
    /// An entry point returned.
    CallDone(CallDone),
}

/// The result of one call into a plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallDone {
    pub op: Op,
    /// The entry point's status: 0 = ok, see the ABI's KEELSON_* codes.
    pub status: i32,
    /// The plugin's error message, or the rhs's own reason (unknown type, ABI mismatch…).
    pub message: String,
    /// Time spent inside the plugin.
    pub elapsed_ns: u64,
}

/// rhs -> rcm on the alarm pipe, written just before the rhs dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostAlarm {
    /// A call outlived its deadline; the rhs is about to exit.
    DeadlockDetected {
        resource: ResourceId,
        op: Op,
        elapsed_ns: u64,
    },
    /// Plugin code raised a fatal signal. `resource`/`op` are the call running on the faulting
    /// thread, or None when the fault hit a thread that was not running a call. `pc` is the faulting
    /// instruction, `fault_addr` the memory address it touched (SIGSEGV/SIGBUS, else 0), and
    /// `in_plugin` the loaded plugin whose code holds `pc`, if any.
    Crashed {
        resource: Option<ResourceId>,
        op: Option<Op>,
        signal: i32,
        pc: u64,
        fault_addr: u64,
        in_plugin: Option<PluginCode>,
    },
    /// The host's lease from rcm ran out (grant `seq`, noticed `late_ms` past its end): it called
    /// TERMINATE on its open resources (`terminated` of `resources` returned within their budget)
    /// and is about to exit with [`crate::EXIT_FENCED`]. Nobody is to blame.
    Fenced {
        seq: u64,
        late_ms: u64,
        resources: u32,
        terminated: u32,
    },
}

/// rcm -> rhs on the lease socket (a datagram socket, one frame per datagram), only for a host
/// started with `--lease-fd`. A host that never receives a grant holds no lease and never fences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseMessage {
    /// Keep the resources running until `granted_at_ns + valid_for_ms` (CLOCK_MONOTONIC, which rcm
    /// and its hosts share); past that, terminate every open resource, each within
    /// `min(its DeadlockTimeout, terminate_within_ms)`, and exit with [`crate::EXIT_FENCED`].
    Grant(LeaseGrant),
}

/// One lease grant. `seq` grows by one with every grant to the same host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    pub seq: u64,
    /// rcm's CLOCK_MONOTONIC reading, in ns, when it made this grant: the lease runs from then,
    /// not from when the host read it.
    pub granted_at_ns: u64,
    pub valid_for_ms: u64,
    /// The fence's budget for each resource's TERMINATE (capped by the resource's DeadlockTimeout).
    pub terminate_within_ms: u64,
}

/// An instruction address inside a loaded plugin: its slot (see [`PluginMapping`]) and the address
/// relative to the plugin's load bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginCode {
    pub slot: u32,
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first byte of a postcard-encoded enum is its variant's index.
    fn index(reply: &HostReply) -> u8 {
        postcard::to_allocvec(reply).unwrap()[0]
    }

    #[test]
    fn failure_reports_are_appended_so_no_earlier_variant_moves() {
        let stats = HostReply::CallStats { stats: vec![] };
        let failed = HostReply::HealthFailed {
            resource: ResourceId(1),
            op: Op::IsAlive,
            status: 6,
            message: String::new(),
        };
        let report = HostReply::FailureReported {
            resource: ResourceId(1),
            message: "gone".into(),
        };
        assert_eq!((index(&failed), index(&stats), index(&report)), (6, 7, 8));
    }
}
