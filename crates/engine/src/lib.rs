//! keelson-engine: the pure core of the node service (rcm). It owns the resource and group state
//! machines, dependency ordering, health polling, the restart/failover policy and host placement, and
//! nothing else: no I/O, no clock, no threads, no async, no randomness. Like openraft's engine, it
//! takes `(now, Event)` and returns `Vec<Command>`; a thin async shell executes the commands and feeds
//! what happened back as events.
//!
//! # Driving it (the shell's contract)
//!
//! * Build it with [`Engine::new`] (empty) or [`Engine::restore`] (from the cluster database; run the
//!   commands it returns). Then call [`Engine::handle`]`(now_ms, event)` for every input, one at a
//!   time, and execute the returned [`Command`]s **in order**. `now` is plain milliseconds from any
//!   monotonic origin the shell picks; the engine never reads a clock.
//! * Administrator requests ([`Event::CreateResource`], [`Event::OnlineGroup`], …, by name) may be
//!   refused with an [`EngineError`]; a refused request changes nothing and returns no commands.
//! * Reports from outside (by id) are never refused; stale ones (a result nobody waits for, a timer
//!   that was replaced, a host already handled) are ignored:
//!   - [`Command::StartHost`] → spawn an rhs for that slot, then [`Event::HostStarted`] with its pid
//!     (shown as the resources' `MonitorProcessId`), or [`Event::HostDied`] if it cannot start.
//!   - [`Command::Open`] → open the resource in that host; report [`Event::CallDone`] with
//!     `op: Op::Open`. [`Command::Close`] needs no report. [`Command::StopHost`]: shut it down.
//!   - [`Command::Call`] → run the entry point with `deadline_ms`; report [`Event::CallDone`].
//!     Open and Close carry their `deadline_ms` too: every deadline is the engine's, taken from the
//!     resource's properties when the command is sent.
//!   - [`Command::Poll`] → the host polls the resource's health by the plan (None: stops), with
//!     `keelson_types::HealthSchedule`; report a failed check as [`Event::HealthFailed`].
//!   - [`Command::ScheduleTimer`] → at `at`, send [`Event::TimerFired`] with the same [`Timer`]. There
//!     is no cancel command: the engine ignores timers it no longer wants.
//!   - A host that crashes or deadlocks → [`Event::HostDied`] with the blamed `(resource, op)` if the
//!     host reported one (`Crashed`/`DeadlockDetected`), else `None`; a crash on a plugin's own
//!     thread names that plugin in `offending_plugin` instead. Calls in flight in a dead host must
//!     not be reported afterwards.
//!   - [`Command::Placement`] → forward the report to the cluster leader's placement core (as a
//!     [`placement::PlacementEvent`]); a report lost with a leader is re-sent from
//!     [`Engine::pending_releases`].
//!   - [`Command::Log`] → one cluster-log line; [`Command::RaiseEvent`] → one cluster event;
//!     [`Command::Persist`] → one change to the database (whole records, upserts);
//!     [`Command::ResourceStateChanged`] / [`Command::GroupStateChanged`] → notifications only.
//!
//! # The rules
//!
//! * Resource states: Offline, OnlinePending, Online, OfflinePending, Failed. Group states: Online,
//!   Offline, PartialOnline, Failed, Pending (see [`GroupState::derive`]).
//! * Dependencies are an AND of resources of the same group; cycles, self- and cross-group
//!   dependencies are refused. After every event a reconciliation pass starts each resource that
//!   wants to be online once all its providers are Online (independents start together) and stops
//!   each one that must go offline once nothing depending on it is up (reverse order). A resource
//!   leaving Online takes its Online dependents down at once, so a resource is never Online while a
//!   provider is not. Bringing a resource online brings its providers; taking one offline takes its
//!   dependents.
//! * Resources are opened when created (default host, or a host of their own if SeparateMonitor).
//!   Online/Offline calls carry PendingTimeout; past it the engine calls Terminate and the resource
//!   is Failed. While Online, its host runs LooksAlive every LooksAlivePollInterval and IsAlive every
//!   IsAlivePollInterval (deadline DeadlockTimeout) by the plan the engine hands it; a failed
//!   LooksAlive makes the host run IsAlive at once; a failed IsAlive makes the resource Failed
//!   (event 1069).
//! * Restart policy ([`restart::decide`]): restart after RestartDelay while fewer than
//!   RestartThreshold restarts happened within RestartPeriod; past that, RestartAndFailover fails the
//!   group (single node: group Failed, event 1205, resources taken offline, group retried after the
//!   offender's RetryPeriodOnFailure), Restart leaves the resource Failed (retried after
//!   RetryPeriodOnFailure, the group stays put), NoRestart leaves it Failed. A failure of an Offline
//!   call ends Failed without restart. An administrator's online clears failures and retries now.
//! * Host death with an offender: log `HandleMonitorReply: FAILURENOTIFICATION for 'NAME', gen(N)
//!   result 4.` and `Resource 'NAME' (resource type 'T', plugin 'P') has crashed or deadlocked;
//!   marking it to run in a separate monitor.`, raise 1230 and 1146, persist SeparateMonitor=true,
//!   re-open the offender in a host of its own and the innocents in a fresh default host, bring back
//!   the innocents that were Online, and apply the restart policy to the offender. A plugin blamed
//!   for a crash on a thread of its own makes each of its resources in that host an offender (each
//!   with those lines, its own 1230 and a host of its own); the other plugins' resources there are
//!   innocents. Without an offender every member that was (coming) Online is a failure. `gen(N)`
//!   counts re-opens.
//! * A SeparateMonitor set by hand moves the resource at its next online.
//! * Ids (resources, groups, hosts, timers) are counters: the same events give the same commands.
//!
//! # In a cluster
//!
//! * [`Engine::set_local_node`] names the node. A group runs on it only while it is the group's
//!   `owner`, no previous owner is still releasing it (`placement.releasing_from`) and the node has
//!   quorum ([`Engine::lose_quorum`] terminates everything, event 1177; [`Engine::regain_quorum`];
//!   [`Engine::restore_waiting_for_quorum`] for a node starting). A group that does not run here is
//!   taken offline dependents first, its Failed resources terminated, its resources closed, and the
//!   node that releases it reports [`PlacementReport::Released`]. A failure past the threshold
//!   with RestartAndFailover reports [`PlacementReport::GroupFailed`].
//! * [`placement`] is the leader's side: who owns what, and when a group moves.
#![forbid(unsafe_code)]

mod admin;
mod command;
mod engine;
mod error;
mod event;
mod failure;
mod graph;
mod group;
mod handoff;
mod health;
mod host_death;
mod hosts;
mod ids;
mod last_error;
mod lifecycle;
pub mod placement;
mod plan;
mod replica;
mod resource;
pub mod restart;
mod restore;
mod state;
mod timer;
mod view;

pub use command::{
    ClusterEvent, Command, EventLevel, GroupRecord, PersistChange, PlacementReport, ResourceRecord,
};
pub use engine::Engine;
pub use error::{EngineError, Refusal};
pub use event::{Event, ResourceSpec};
pub use ids::{GroupId, HostId, TimerId};
pub use last_error::LastError;
pub use state::{GroupState, ResourceState};
pub use timer::{Timer, TimerKind};
pub use view::{GroupView, HostView, ResourceView};
