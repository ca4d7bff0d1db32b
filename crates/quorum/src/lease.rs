//! The witness lease as a pure state machine, `LeaseMachine::handle(now, event) -> actions`: claim
//! the lease when it is free or has expired, renew it every period, give it up (stop hosting the
//! witness) when renewal has not succeeded by a deadline, release it on request, and never take it
//! over before the previous holder's lease plus a margin has run out. Time comes in as `Now` (a
//! monotonic and a wall clock, both in ms), effects go out as `LeaseAction`s. Not the I/O on the
//! witness (file_witness.rs, disk_witness.rs) and not the timers (driver.rs).
//!
//! Safety rests on the monotonic clocks, not the wall clocks: the holder stops hosting within
//! `lease_ms` of the start of its last successful write (monotonic), and another node takes over
//! only after it has seen that very record unchanged for `lease_ms + margin_ms` of its own monotonic
//! clock, having read it after it was written. A wall-clock step on either side changes neither.
//! The wall-clock expiry in the record is checked too (plus the margin), for readers and tools.

use keelson_raft::NodeId;

use crate::record::LeaseRecord;
use crate::timings::LeaseTimings;

/// The two clocks, in milliseconds: monotonic (any origin, never steps) and wall (Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: u64,
}

/// What the witness said when asked to claim a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The claimed record is now the lease.
    Won,
    /// Someone else got there first; their record, if it could be read.
    Lost(Option<LeaseRecord>),
}

/// What the witness said when asked to renew or release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewOutcome {
    /// Written.
    Renewed,
    /// The lease is no longer ours: this is the record found there (None: no record at all).
    Lost(Option<LeaseRecord>),
}

/// One input to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    /// Time passed (the driver ticks a few times per renewal period).
    Tick,
    /// The answer to `LeaseAction::Read`: the current record, None if there has never been one.
    Read(Result<Option<LeaseRecord>, String>),
    /// The answer to `LeaseAction::Claim`.
    Claimed(Result<ClaimOutcome, String>),
    /// The answer to `LeaseAction::Renew`.
    Renewed(Result<RenewOutcome, String>),
    /// The witness voter asked for by `StopHosting` is closed.
    HostingStopped,
    /// The witness voter asked for by `StartHosting` could not start: the lease is left to expire.
    HostingFailed(String),
    /// Give the lease up for good (node shutting down, witness removed).
    ReleaseRequested,
    /// The answer to `LeaseAction::Release`.
    Released(Result<RenewOutcome, String>),
}

/// Log levels of the machine's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warning,
    Error,
}

/// One effect for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// Read the current record; answer with `LeaseEvent::Read`.
    Read,
    /// Claim generation `record.generation` (one past `previous`); answer with `Claimed`.
    Claim {
        previous: Option<LeaseRecord>,
        record: LeaseRecord,
    },
    /// Rewrite our record with a later expiry; answer with `Renewed`.
    Renew(LeaseRecord),
    /// Start the witness voter (the lease is ours).
    StartHosting { generation: u64 },
    /// Close the witness voter now, within `LeaseTimings::stop_budget_ms`; answer with
    /// `HostingStopped`.
    StopHosting { reason: String },
    /// Write our record as released; answer with `Released`.
    Release(LeaseRecord),
    /// One cluster-log line.
    Log { level: LogLevel, line: String },
}

/// Proof that a `LeaseMachine` held the witness lease when it was made (only `LeaseMachine::held`
/// makes one); the witness voter is started only with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    generation: u64,
}

impl HeldLease {
    /// The lease generation held.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// The record (or its absence) seen by a node that does not hold it, and since when (monotonic).
/// An absent record is waited out like any other: someone may have deleted a live holder's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    record: Option<LeaseRecord>,
    since_mono: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Watching the lease, waiting for it to be free or expired.
    Observing { seen: Option<Seen>, reading: bool },
    /// A claim is with the witness.
    Claiming {
        record: LeaseRecord,
        started_mono: u64,
        release_requested: bool,
    },
    /// Ours: the witness voter runs here.
    Held {
        record: LeaseRecord,
        /// Start of the last successful write (claim or renewal).
        renewed_mono: u64,
        /// A renewal with the witness: the record and when it began.
        renewing: Option<(LeaseRecord, u64)>,
    },
    /// Waiting for the witness voter to close.
    Stopping {
        record: LeaseRecord,
        then_release: bool,
    },
    /// Waiting for the release write.
    Releasing,
    /// Given up for good.
    Done,
}

/// What the machine is doing, for `keelson cluster quorum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Not held here; the last record seen, if any.
    Observing(Option<LeaseRecord>),
    Claiming,
    /// Held here, hosting the witness; until when at the latest (monotonic ms).
    Held {
        generation: u64,
        give_up_at_mono: u64,
    },
    Stopping,
    Released,
}

/// The lease state machine of one node.
#[derive(Debug, Clone)]
pub struct LeaseMachine {
    me: NodeId,
    timings: LeaseTimings,
    phase: Phase,
}

impl LeaseMachine {
    /// A machine for node `me` that does not hold the lease.
    pub fn new(me: NodeId, timings: LeaseTimings) -> LeaseMachine {
        LeaseMachine {
            me,
            timings,
            phase: Phase::Observing {
                seen: None,
                reading: false,
            },
        }
    }

    /// The timings in use.
    pub fn timings(&self) -> LeaseTimings {
        self.timings
    }

    /// Whether this node may run the witness voter now.
    pub fn hosting(&self) -> bool {
        matches!(self.phase, Phase::Held { .. })
    }

    /// Proof that the lease is held here now, for starting the witness voter (host.rs).
    pub fn held(&self) -> Option<HeldLease> {
        match self.phase {
            Phase::Held { record, .. } => Some(HeldLease {
                generation: record.generation,
            }),
            _ => None,
        }
    }

    /// Whether the machine has released the lease for good (after `ReleaseRequested`).
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// What the machine is doing.
    pub fn status(&self) -> LeaseStatus {
        match &self.phase {
            Phase::Observing { seen, .. } => LeaseStatus::Observing(seen.and_then(|s| s.record)),
            Phase::Claiming { .. } => LeaseStatus::Claiming,
            Phase::Held {
                record,
                renewed_mono,
                ..
            } => LeaseStatus::Held {
                generation: record.generation,
                give_up_at_mono: renewed_mono + self.timings.give_up_ms,
            },
            Phase::Stopping { .. } => LeaseStatus::Stopping,
            Phase::Releasing | Phase::Done => LeaseStatus::Released,
        }
    }

    /// One event in, the actions it calls for out.
    pub fn handle(&mut self, now: Now, event: LeaseEvent) -> Vec<LeaseAction> {
        match event {
            LeaseEvent::Tick => self.tick(now),
            LeaseEvent::Read(result) => self.on_read(now, result),
            LeaseEvent::Claimed(result) => self.on_claimed(now, result),
            LeaseEvent::Renewed(result) => self.on_renewed(now, result),
            LeaseEvent::HostingStopped => self.on_hosting_stopped(),
            LeaseEvent::HostingFailed(e) => self.on_hosting_failed(e),
            LeaseEvent::ReleaseRequested => self.on_release_requested(),
            LeaseEvent::Released(result) => self.on_released(result),
        }
    }

    fn tick(&mut self, now: Now) -> Vec<LeaseAction> {
        match &mut self.phase {
            Phase::Observing { reading, .. } if !*reading => {
                *reading = true;
                vec![LeaseAction::Read]
            }
            Phase::Held { .. } => self.tick_held(now),
            _ => Vec::new(),
        }
    }

    fn tick_held(&mut self, now: Now) -> Vec<LeaseAction> {
        let Phase::Held {
            record,
            renewed_mono,
            renewing,
        } = &mut self.phase
        else {
            return Vec::new();
        };
        let since = now.mono_ms.saturating_sub(*renewed_mono);
        if since >= self.timings.give_up_ms {
            let reason = format!(
                "the witness lease (generation {}) was not renewed for {since} ms (deadline {} ms)",
                record.generation, self.timings.give_up_ms
            );
            return self.stop(reason, false);
        }
        if since < self.timings.renew_ms || renewing.is_some() {
            return Vec::new();
        }
        let next = LeaseRecord {
            expiry_ms: now.wall_ms + self.timings.lease_ms,
            ..*record
        };
        *renewing = Some((next, now.mono_ms));
        vec![LeaseAction::Renew(next)]
    }

    fn stop(&mut self, reason: String, then_release: bool) -> Vec<LeaseAction> {
        let Phase::Held { record, .. } = self.phase else {
            return Vec::new();
        };
        self.phase = Phase::Stopping {
            record,
            then_release,
        };
        vec![
            LeaseAction::Log {
                level: if then_release {
                    LogLevel::Info
                } else {
                    LogLevel::Warning
                },
                line: format!("Stopping the witness voter: {reason}"),
            },
            LeaseAction::StopHosting { reason },
        ]
    }

    fn on_read(
        &mut self,
        now: Now,
        result: Result<Option<LeaseRecord>, String>,
    ) -> Vec<LeaseAction> {
        let Phase::Observing { seen, reading } = &mut self.phase else {
            return Vec::new();
        };
        *reading = false;
        let current = match result {
            Ok(current) => current,
            Err(e) => {
                return vec![log(
                    LogLevel::Error,
                    format!("Cannot read the witness lease: {e}"),
                )]
            }
        };
        let claimable = match current {
            Some(record) if record.released => true,
            _ => {
                let since_mono = match seen {
                    Some(s) if s.record == current => s.since_mono,
                    _ => now.mono_ms,
                };
                *seen = Some(Seen {
                    record: current,
                    since_mono,
                });
                let expiry = current.map_or(0, |r| r.expiry_ms);
                now.mono_ms.saturating_sub(since_mono) >= self.timings.takeover_after_ms()
                    && now.wall_ms >= expiry + self.timings.margin_ms
            }
        };
        if !claimable {
            return Vec::new();
        }
        self.claim(now, current)
    }

    fn claim(&mut self, now: Now, previous: Option<LeaseRecord>) -> Vec<LeaseAction> {
        let record = LeaseRecord {
            holder: self.me,
            generation: previous.map_or(1, |p| p.generation + 1),
            expiry_ms: now.wall_ms + self.timings.lease_ms,
            released: false,
        };
        self.phase = Phase::Claiming {
            record,
            started_mono: now.mono_ms,
            release_requested: false,
        };
        vec![LeaseAction::Claim { previous, record }]
    }

    fn on_claimed(&mut self, now: Now, result: Result<ClaimOutcome, String>) -> Vec<LeaseAction> {
        let Phase::Claiming {
            record,
            started_mono,
            release_requested,
        } = self.phase
        else {
            return Vec::new();
        };
        match result {
            Ok(ClaimOutcome::Won) if release_requested => {
                self.phase = Phase::Releasing;
                vec![LeaseAction::Release(released(record))]
            }
            Ok(ClaimOutcome::Won)
                if now.mono_ms.saturating_sub(started_mono) >= self.timings.give_up_ms =>
            {
                // Won, but so late that the lease may be close to running out: leave it unused
                // and wait for it to expire like anyone else's.
                self.observe();
                vec![log(
                    LogLevel::Warning,
                    format!(
                        "Claimed the witness lease (generation {}) but the claim took {} ms; not hosting the witness on it",
                        record.generation,
                        now.mono_ms - started_mono
                    ),
                )]
            }
            Ok(ClaimOutcome::Won) => {
                self.phase = Phase::Held {
                    record,
                    renewed_mono: started_mono,
                    renewing: None,
                };
                vec![
                    log(
                        LogLevel::Info,
                        format!(
                            "Took the witness lease (generation {}); hosting the witness voter",
                            record.generation
                        ),
                    ),
                    LeaseAction::StartHosting {
                        generation: record.generation,
                    },
                ]
            }
            Ok(ClaimOutcome::Lost(by)) => {
                self.observe_done(release_requested);
                let by = by.map_or("another node".to_string(), |r| format!("node {}", r.holder));
                vec![log(
                    LogLevel::Info,
                    format!(
                        "The witness lease (generation {}) went to {by}",
                        record.generation
                    ),
                )]
            }
            Err(e) => {
                self.observe_done(release_requested);
                vec![log(
                    LogLevel::Error,
                    format!(
                        "Cannot claim the witness lease (generation {}): {e}",
                        record.generation
                    ),
                )]
            }
        }
    }

    fn observe(&mut self) {
        self.phase = Phase::Observing {
            seen: None,
            reading: false,
        };
    }

    fn observe_done(&mut self, release_requested: bool) {
        if release_requested {
            self.phase = Phase::Done;
        } else {
            self.observe();
        }
    }

    fn on_renewed(&mut self, now: Now, result: Result<RenewOutcome, String>) -> Vec<LeaseAction> {
        let Phase::Held {
            renewed_mono,
            renewing,
            record,
        } = &mut self.phase
        else {
            return Vec::new();
        };
        let Some((next, started)) = renewing.take() else {
            return Vec::new();
        };
        match result {
            Ok(RenewOutcome::Renewed) => {
                *renewed_mono = started;
                *record = next;
                // A renewal that came back past the deadline does not save the lease: the tick
                // logic would stop hosting now anyway, so check at once.
                self.tick_held(now)
                    .into_iter()
                    .filter(|a| !matches!(a, LeaseAction::Renew(_)))
                    .collect()
            }
            Ok(RenewOutcome::Lost(by)) => self.stop(lost_to(by), false),
            Err(e) => vec![log(
                LogLevel::Warning,
                format!(
                    "Cannot renew the witness lease (generation {}): {e}; giving up {} ms after the last renewal",
                    record.generation, self.timings.give_up_ms
                ),
            )],
        }
    }

    fn on_hosting_stopped(&mut self) -> Vec<LeaseAction> {
        let Phase::Stopping {
            record,
            then_release,
        } = self.phase
        else {
            return Vec::new();
        };
        if then_release {
            self.phase = Phase::Releasing;
            // The expiry is left as it was: release is a flag, and the wall clock may lie.
            return vec![LeaseAction::Release(released(record))];
        }
        self.observe();
        Vec::new()
    }

    fn on_hosting_failed(&mut self, error: String) -> Vec<LeaseAction> {
        let Phase::Held { record, .. } = self.phase else {
            return Vec::new();
        };
        // Nothing runs, so nothing to stop; no more renewals, so the lease runs out and is taken
        // over (perhaps by this node again) in the ordinary way.
        self.observe();
        vec![log(
            LogLevel::Error,
            format!(
                "Cannot host the witness voter (lease generation {}): {error}; letting the lease expire",
                record.generation
            ),
        )]
    }

    fn on_release_requested(&mut self) -> Vec<LeaseAction> {
        match &mut self.phase {
            Phase::Observing { .. } => {
                self.phase = Phase::Done;
                Vec::new()
            }
            Phase::Claiming {
                release_requested, ..
            } => {
                *release_requested = true;
                Vec::new()
            }
            Phase::Held { .. } => self.stop("the lease is being released".to_string(), true),
            Phase::Stopping { then_release, .. } => {
                *then_release = true;
                Vec::new()
            }
            Phase::Releasing | Phase::Done => Vec::new(),
        }
    }

    fn on_released(&mut self, result: Result<RenewOutcome, String>) -> Vec<LeaseAction> {
        if self.phase != Phase::Releasing {
            return Vec::new();
        }
        self.phase = Phase::Done;
        match result {
            Ok(RenewOutcome::Renewed) => {
                vec![log(LogLevel::Info, "Released the witness lease".into())]
            }
            Ok(RenewOutcome::Lost(by)) => vec![log(
                LogLevel::Warning,
                format!("Did not release the witness lease: {}", lost_to(by)),
            )],
            Err(e) => vec![log(
                LogLevel::Error,
                format!("Cannot release the witness lease: {e}; it will expire by itself"),
            )],
        }
    }
}

fn released(record: LeaseRecord) -> LeaseRecord {
    LeaseRecord {
        released: true,
        ..record
    }
}

fn lost_to(by: Option<LeaseRecord>) -> String {
    match by {
        Some(r) => format!(
            "the witness lease was taken by node {} (generation {})",
            r.holder, r.generation
        ),
        None => "the witness lease record is gone from the witness".to_string(),
    }
}

fn log(level: LogLevel, line: String) -> LeaseAction {
    LeaseAction::Log { level, line }
}
