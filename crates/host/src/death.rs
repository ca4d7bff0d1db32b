//! How a host died, as reported to rcm: which resource and call caused it, or the plain exit status.
//! Not the detection itself (host.rs gathers the alarm, the wait status and the watchdog's record).

use keelson_types::{signal_name, Op, ResourceId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The report of one host's death.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDied {
    pub pid: u32,
    pub cause: DeathCause,
}

/// Why it died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeathCause {
    /// A call outlived its deadline: found by the host's deadlock monitor, or (`by_watchdog`) by
    /// rcm's watchdog when the host itself stopped answering.
    Deadlock {
        resource: ResourceId,
        name: String,
        op: Op,
        elapsed: Duration,
        by_watchdog: bool,
    },
    /// Plugin code raised a fatal signal while running `op` on `resource` (None: a thread that was
    /// not running a call).
    Crash {
        resource: Option<ResourceId>,
        name: Option<String>,
        op: Option<Op>,
        signal: i32,
    },
    /// Plugin code raised a fatal signal on a thread that was not running a call (a thread the
    /// plugin made itself): blamed on the plugin whose code holds the faulting instruction `pc`,
    /// `offset` bytes past its load address (the ELF address in `path`, named `symbol` when the
    /// file's symbol table says). `fault_addr` is the memory it touched (SIGSEGV/SIGBUS, else 0).
    PluginCrash {
        plugin: String,
        path: String,
        signal: i32,
        pc: u64,
        offset: u64,
        fault_addr: u64,
        symbol: Option<String>,
    },
    /// The host fenced itself: its lease from rcm (grant `seq`) was not renewed in time, so it
    /// terminated its resources (`terminated` of `resources` within their budget; it noticed
    /// `late_ms` after the lease ended) and exited. Nobody is to blame: rcm did not run.
    Fenced {
        seq: u64,
        late_ms: u64,
        resources: u32,
        terminated: u32,
    },
    /// The host exited by itself.
    Exit { status: i32 },
    /// The host was killed by a signal it did not report (SIGKILL from `Host::kill` or outside).
    Killed { signal: i32 },
}

impl DeathCause {
    /// The resource to blame, if any.
    pub fn offender(&self) -> Option<(ResourceId, Option<Op>)> {
        match self {
            DeathCause::Deadlock { resource, op, .. } => Some((*resource, Some(*op))),
            DeathCause::Crash {
                resource: Some(r),
                op,
                ..
            } => Some((*r, *op)),
            _ => None,
        }
    }

    /// The plugin to blame as a whole (its code crashed on a thread of its own), if any.
    pub fn offending_plugin(&self) -> Option<&str> {
        match self {
            DeathCause::PluginCrash { plugin, .. } => Some(plugin),
            _ => None,
        }
    }
}

impl fmt::Display for HostDied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pid = self.pid;
        match &self.cause {
            DeathCause::Deadlock {
                name,
                op,
                elapsed,
                by_watchdog,
                ..
            } => write!(
                f,
                "host {pid} deadlocked: call {} of resource '{name}' ran {} ms past no answer ({})",
                op.upper(),
                elapsed.as_millis(),
                if *by_watchdog {
                    "killed by rcm's watchdog"
                } else {
                    "found by the host's deadlock monitor"
                }
            ),
            DeathCause::Crash {
                name, op, signal, ..
            } => write!(
                f,
                "host {pid} crashed with {} in {} of resource {}",
                signal_name(*signal),
                op.map(Op::upper).unwrap_or("a non-call thread"),
                name.as_deref()
                    .map(|n| format!("'{n}'"))
                    .unwrap_or_else(|| "(unknown)".into())
            ),
            DeathCause::PluginCrash {
                plugin,
                path,
                signal,
                pc,
                offset,
                fault_addr,
                symbol,
            } => {
                let file = path.rsplit('/').next().unwrap_or(path);
                write!(
                    f,
                    "host {pid} crashed with {} in plugin '{plugin}''s code on a thread of its own, at \
                     {pc:#x} ({file}+{offset:#x}{})",
                    signal_name(*signal),
                    symbol
                        .as_deref()
                        .map(|s| format!(", in {s}"))
                        .unwrap_or_default()
                )?;
                if *fault_addr != 0 {
                    write!(f, " accessing {fault_addr:#x}")?;
                }
                Ok(())
            }
            DeathCause::Fenced {
                seq,
                late_ms,
                resources,
                terminated,
            } => write!(
                f,
                "host {pid} fenced itself: its lease from rcm ran out (grant {seq} not renewed; \
                 noticed {late_ms} ms after its end) and it terminated {terminated} of {resources} \
                 resources before exiting; not a resource failure"
            ),
            DeathCause::Exit { status } => write!(f, "host {pid} exited with status {status}"),
            DeathCause::Killed { signal } => {
                write!(f, "host {pid} was killed by {}", signal_name(*signal))
            }
        }
    }
}
