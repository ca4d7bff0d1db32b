//! The limits `keelson plugin test` holds each call to: DeadlockTimeout for most calls,
//! PendingTimeout for ONLINE and OFFLINE (as rcm does), and the cheapness budget of LOOKSALIVE.
//! Not enforcing them: the host kills itself past a call's deadline; the budget is checked by the
//! conformance run (conformance.rs).

use keelson_types::Op;
use std::time::Duration;

/// A named limit, as a failure names it: "PendingTimeout 180000 ms".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub name: &'static str,
    pub duration: Duration,
}

impl Limit {
    pub fn ms(&self) -> u64 {
        self.duration.as_millis() as u64
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ms", self.name, self.ms())
    }
}

/// Every limit of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub deadlock: Duration,
    pub pending: Duration,
    pub looks_alive_budget: Duration,
}

impl Limits {
    /// The deadline `op` is called with: PendingTimeout for ONLINE and OFFLINE, DeadlockTimeout
    /// for every other call.
    pub fn deadline(&self, op: Op) -> Limit {
        match op {
            Op::Online | Op::Offline => Limit {
                name: "PendingTimeout",
                duration: self.pending,
            },
            _ => Limit {
                name: "DeadlockTimeout",
                duration: self.deadlock,
            },
        }
    }

    /// The cheapness budget of every LOOKSALIVE, timed inside the plugin.
    pub fn budget(&self) -> Limit {
        Limit {
            name: "the looks_alive budget",
            duration: self.looks_alive_budget,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_and_offline_get_pending_timeout_the_rest_deadlock_timeout() {
        let limits = Limits {
            deadlock: Duration::from_millis(300),
            pending: Duration::from_millis(900),
            looks_alive_budget: Duration::from_millis(50),
        };
        assert_eq!(
            limits.deadline(Op::Online).to_string(),
            "PendingTimeout 900 ms"
        );
        assert_eq!(limits.deadline(Op::Offline).ms(), 900);
        for op in [
            Op::Open,
            Op::Validate,
            Op::LooksAlive,
            Op::IsAlive,
            Op::Terminate,
            Op::Close,
        ] {
            assert_eq!(limits.deadline(op).to_string(), "DeadlockTimeout 300 ms");
        }
        assert_eq!(limits.budget().to_string(), "the looks_alive budget 50 ms");
    }
}
