//! keelson's quorum: who votes, whether this node is in quorum, and the optional witness vote that
//! lets two nodes survive the loss of either. Not the raft transport, not the wiring into
//! keelson-rcm, and not the NetFT failure detector (which tells this crate who is reachable).
//!
//! The pieces, and how keelson-rcm is meant to use them:
//!
//! * **Counting votes** (`votes`, pure): build a [`QuorumInput`] (the voters from raft's membership,
//!   the nodes NetFT reports Up, whether the witness voter runs here or on a reachable node) and
//!   `count()` it. Feed each [`QuorumVerdict`] to a [`QuorumGate`]: `update` returns event 1177
//!   once when quorum is lost (log it); `admit()` is checked before every administrator change and
//!   its `Err` is the one line to refuse with (`no quorum: 1 of 3 votes (node1, witness
//!   unreachable), 2 needed; administrator changes are refused`).
//! * **Configuring** (`config`): `keelson cluster quorum` shows [`QuorumConfig`]'s `Display`
//!   (`Node Majority`, `Node and File Share Majority (...)`, `Node and Disk Majority (...)`);
//!   `--witness PATH` is checked with [`WitnessSpec::from_path`] (a directory or a block device).
//! * **Timing** (`timings`): [`LeaseTimings::from_netft`], [`raft_config`] and
//!   [`witness_raft_config`] derive the lease and raft's heartbeat and election timeouts from the
//!   NetFT settings.
//! * **The witness lease** (`lease`, pure): one [`LeaseMachine`] per node (`LeaseTimings::
//!   from_netft`), driven by [`LeaseDriver`] against a [`FileWitness`] or a [`DiskWitness`] (both
//!   signed with the cluster key, [`WitnessKey`]). Make a [`SystemClock`], give the driver its
//!   `fence()` (`with_fence`), `spawn(driver.run(release_rx))`; send on `release_tx` at shutdown.
//!   The driver calls the node's [`WitnessHooks`]: `start_hosting(HeldLease)` opens the voter's
//!   store ([`open_witness_store`] for a directory, [`open_disk_witness_store`] for a device, both
//!   with the same fence) and starts [`HostedWitness::start`], then routes the witness id's RPCs to
//!   it; `stop_hosting` stops routing and calls `HostedWitness::stop(within)`. If `run` returns
//!   [`DriverError::StopFailed`], exit the process. `driver.status()` tells whether this node hosts
//!   the witness (for `QuorumInput::witness_reachable`) and what the lease is.
//! * **The witness voter** (`host`, `fence`, `disk_store`): the witness is a third raft voter (its
//!   own node id, allocated like any other) whose store lives on the witness, run in-process by the
//!   lease holder only, every write refused past the lease's give-up deadline. Its
//!   `ClusterNode::addr` is not a fixed address: the transport must send the witness id's RPCs to the
//!   node the lease names as holder (`LeaseStore::read`).
#![forbid(unsafe_code)]

pub mod config;
pub mod disk_store;
pub mod disk_witness;
pub mod driver;
pub mod fence;
pub mod file_witness;
pub mod gate;
pub mod host;
pub mod lease;
#[cfg(test)]
mod lease_tests;
pub mod record;
pub mod store;
pub mod timings;
pub mod votes;

pub use config::{QuorumConfig, WitnessPathError, WitnessSpec};
pub use disk_witness::DiskWitness;
pub use driver::{Clock, DriverError, LeaseDriver, SystemClock, WitnessHooks};
pub use fence::{FenceClosed, FencedLog, FencedStateMachine, LeaseFence};
pub use file_witness::FileWitness;
pub use gate::{event_1177, QuorumEvent, QuorumGate, EVENT_QUORUM_LOST};
pub use host::{
    open_disk_witness_store, open_witness_store, witness_store_path, HostError, HostedWitness,
    WitnessStore,
};
pub use lease::{
    ClaimOutcome, HeldLease, LeaseAction, LeaseEvent, LeaseMachine, LeaseStatus, LogLevel, Now,
    RenewOutcome,
};
pub use record::{LeaseRecord, RecordError, WitnessKey};
pub use store::{LeaseStore, WitnessError};
pub use timings::{raft_config, witness_raft_config, LeaseTimings, TimingsError};
pub use votes::{NodeVoter, QuorumInput, QuorumVerdict, WITNESS_NAME};
