//! What a failover contender must do for the harness (measure.rs): a 3-node cluster with one
//! group (one resource), built on the lab's namespaces and torn down on drop; where the group runs
//! and who leads; moving it; a node death; who reports it Online; bringing a dead node back. The
//! harness does the timing, the same way for every contender. Not any contender itself
//! (pacemaker.rs, keelson.rs) or the timing (measure.rs).

use std::time::{Instant, SystemTime};

/// Where the group runs and which node leads (Pacemaker's DC, keelson's raft leader), by node
/// number 1..=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub owner: usize,
    pub leader: usize,
}

/// The detection time a contender is configured with, for "time minus detection".
#[derive(Debug, Clone)]
pub struct Detection {
    pub ms: f64,
    /// How it was obtained, e.g. "corosync token 1650 ms + consensus 1980 ms (corosync-cmapctl)".
    pub how: String,
}

/// One failover as the contender's own logs stamp it (wall clock, to the millisecond); None
/// where it does not log that step.
#[derive(Debug, Default, Clone, Copy)]
pub struct Logged {
    /// The observer logged the dead node gone (for corosync: a membership without it formed).
    pub gone: Option<SystemTime>,
    /// The new owner logged the group Online (for Pacemaker: the start's result, ok).
    pub online: Option<SystemTime>,
}

/// What a node death did.
#[derive(Debug)]
pub struct Death {
    /// Stamped immediately before the kill: the start of the sample.
    pub at: Instant,
    /// The same instant by the wall clock, to compare with the contender's logs.
    pub wall: SystemTime,
    /// What was killed, for the log (e.g. "corosync, pacemakerd, …").
    pub what: String,
}

pub trait Contender {
    /// The row label, e.g. "Pacemaker 2.1.5 + corosync 3.1.7".
    fn name(&self) -> String;
    /// The settings the rows are measured at, one line.
    fn settings(&self) -> String;
    /// What the contender calls its leader ("DC", "raft leader").
    fn leader_word(&self) -> &'static str;
    fn detection(&mut self) -> Result<Detection, String>;
    /// Where the group runs and who leads now, as a live node sees it.
    fn placement(&mut self) -> Result<Placement, String>;
    /// Moves the group to `node` (if it is not there) and returns once the cluster is quiet again
    /// with the group Online there.
    fn place(&mut self, node: usize) -> Result<(), String>;
    /// Kills every process of `node` at once (SIGKILL).
    fn kill(&mut self, node: usize) -> Result<Death, String>;
    /// The nodes on which `observer`, a live node, reports the group Online now. One call is one
    /// poll; it must not wait for anything.
    fn online_on(&mut self, observer: usize) -> Result<Vec<usize>, String>;
    /// What the contender's own logs say about this failover (see Logged), read right after the
    /// group was seen Online on `new_owner`; `since` is the kill.
    fn logged(
        &mut self,
        observer: usize,
        dead: usize,
        new_owner: usize,
        since: SystemTime,
    ) -> Result<Logged, String>;
    /// Brings a killed node back and returns once the cluster is whole and quiet again.
    fn restore(&mut self, node: usize) -> Result<(), String>;
}
