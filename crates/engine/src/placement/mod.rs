//! The cluster leader's placement core: who owns each group, and when a group moves. Pure and
//! synchronous like the rest of the engine: [`Placer::handle`]`(now, PlacementEvent)` returns the
//! commands to carry out (group records to commit through raft, cluster events, log lines). Not
//! the node side of a hand-off (handoff.rs: each node's engine obeys the committed records) and not
//! the raft, heartbeats or leases themselves (the shell reports them as events).
//!
//! # The rules
//!
//! * Owner choice: the first of the group's PreferredOwners that is Up and not paused, else the Up,
//!   unpaused node owning the fewest groups (ties by name).
//! * A Down node's groups (and the hand-offs it was releasing) move only once its quorum lease has
//!   expired ([`PlacementEvent::LeaseExpired`]): until then it may still run them.
//! * A failure report from the owner (a resource past RestartThreshold with RestartAndFailover)
//!   fails the group over to the next node that has not failed it within FailoverPeriod; that
//!   node's engine gives the resource its own restarts (one by default, as post \[13\] of the
//!   cluster posts says). More than FailoverThreshold failovers (default nodes-1) within
//!   FailoverPeriod, and the group stays Failed where it is (event 1254); failed on every node, it
//!   stays Failed too. Node losses do not count as failovers. RestartAction=Restart never reports,
//!   so it never moves a group.
//! * `move G [--to N]`, `pause N [--drain]` (drain moves all its groups off at once), `resume N`.
//! * AutoFailbackType=Allow: a group that failed over (node lost, failure, drain) moves back to a
//!   more preferred owner once that one is Up and unpaused, and only inside
//!   FailbackWindowStart..FailbackWindowEnd (local hours, end excluded, may wrap midnight; equal
//!   hours mean that one hour) when both are set. Prevent (the default) never moves it back.
//! * Every move is committed as the group's new record: owner, `releasing_from` (the previous owner
//!   while it may still run the group: the new owner starts only once it is cleared), the last
//!   move (from, to, reason, when) and a new placement epoch; event 1641 says it.
//!
//! `now` here is wall-clock milliseconds (the failover history is replicated and must mean the
//! same on the next leader).

mod choose;
mod event;
mod placer;
mod rules;
mod window;

pub use choose::choose_owner;
pub use event::{MoveReason, PlacementError, PlacementEvent};
pub use placer::Placer;
pub use window::failback_allowed;
