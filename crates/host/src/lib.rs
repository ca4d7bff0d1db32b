//! rcm's side of hosting plugins: spawn `keelson-rhs` processes, hand them resources, call entry
//! points with deadlines, keep per-call timing, SIGKILL a host that stops answering, and report every
//! host death with its cause. Plugin code never runs in this process. Not policy: what to do after a
//! death (separate monitors, restarts) is the engine's business.
//!
//! ```ignore
//! let (host, mut events) = Host::spawn(&HostConfig::from_env()).await?;
//! let res = host.open(OpenSpec::new(ResourceId(1), "web", plugin_path, "dummy")).await?;
//! let done = res.call(Op::LooksAlive).await?;
//! ```
#![forbid(unsafe_code)]

mod blame;
mod classify;
mod config;
mod death;
mod error;
mod event;
mod host;
mod lane;
mod lease;
mod link;
mod pool;
mod pool_io;
mod renewer;
mod resource;
mod resource_dirs;
mod sequence;
mod shared;
mod spawn;
mod spec;
mod supervisor;
mod symbols;

pub use config::HostConfig;
pub use death::{DeathCause, HostDied};
pub use error::{CallError, HostError};
pub use event::{HostEvent, HostEvents};
pub use host::Host;
pub use keelson_types::{CallStats, CallTimings};
pub use lease::{HostLease, DEFAULT_FENCE_BUDGET_MS, DEFAULT_HOST_LEASE_MS, MIN_HOST_LEASE_MS};
pub use pool::Pool;
pub use pool_io::{PendingOpen, PoolOutcome, PoolReport, Queued};
pub use renewer::LeaseRenewer;
pub use resource::{ResourceHandle, SharedTimings};
pub use resource_dirs::ResourceDirs;
pub use sequence::{OpenFate, Sequencer};
pub use spec::OpenSpec;
