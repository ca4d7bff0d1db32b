//! WSFC property defaults, in milliseconds, as DESIGN.md fixes them. Not their storage or parsing.

/// How often LooksAlive runs (`LooksAlivePollInterval`).
pub const DEFAULT_LOOKS_ALIVE_POLL_INTERVAL_MS: u64 = 5_000;
/// How often IsAlive runs (`IsAlivePollInterval`).
pub const DEFAULT_IS_ALIVE_POLL_INTERVAL_MS: u64 = 60_000;
/// How long Online/Offline may stay pending (`PendingTimeout`).
pub const DEFAULT_PENDING_TIMEOUT_MS: u64 = 180_000;
/// How long any single call may run before its host is declared deadlocked (`DeadlockTimeout`).
pub const DEFAULT_DEADLOCK_TIMEOUT_MS: u64 = 300_000;
/// Restarts allowed within `RestartPeriod` before the group fails over (`RestartThreshold`).
pub const DEFAULT_RESTART_THRESHOLD: u32 = 1;
/// Window in which restarts are counted (`RestartPeriod`).
pub const DEFAULT_RESTART_PERIOD_MS: u64 = 900_000;
/// Pause before a restart (`RestartDelay`).
pub const DEFAULT_RESTART_DELAY_MS: u64 = 500;
/// Pause before a failed resource is tried again (`RetryPeriodOnFailure`).
pub const DEFAULT_RETRY_PERIOD_ON_FAILURE_MS: u64 = 3_600_000;
/// Extra time the rcm-side watchdog grants a host past a call's deadline before SIGKILL.
pub const DEFAULT_WATCHDOG_GRACE_MS: u64 = 2_000;
/// How long a freshly spawned host has to say Hello.
pub const DEFAULT_HELLO_TIMEOUT_MS: u64 = 5_000;
