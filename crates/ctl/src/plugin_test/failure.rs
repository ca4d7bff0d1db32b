//! Says why a load, an open or a call failed, in the words a plugin author needs: a hang names the
//! entry point and the deadline it outlived, a crash the signal and the call. Not deciding what
//! counts as a failure (conformance.rs).

use super::limits::Limits;
use keelson_host::{CallError, DeathCause, HostDied, HostError};
use keelson_types::{signal_name, Op};
use std::time::Duration;

/// Says why the library could not be loaded.
pub fn load_failure(e: &HostError, limits: &Limits) -> String {
    match e {
        HostError::LoadHung { limit_ms, pid, .. } => format!(
            "hung: the library did not finish loading within DeadlockTimeout {limit_ms} ms (a \
             library initialiser never returned); host {pid} was killed"
        ),
        HostError::Died(died) => format!(
            "the host died while loading the library: {}",
            death_message(died, limits)
        ),
        other => other.to_string(),
    }
}

pub fn open_failure(e: &HostError, limits: &Limits) -> String {
    match e {
        HostError::Died(died) => death_message(died, limits),
        other => other.to_string(),
    }
}

pub fn call_failure(e: &CallError, limits: &Limits) -> String {
    match e {
        CallError::HostDied(died) => death_message(died, limits),
        other => other.to_string(),
    }
}

/// Says what happened to the host; a hang names the deadline of the call that hung.
pub fn death_message(died: &HostDied, limits: &Limits) -> String {
    match &died.cause {
        DeathCause::Deadlock {
            op, by_watchdog, ..
        } => format!(
            "hung: {} did not return within {}; host {} was ended by {}",
            op.upper(),
            limits.deadline(*op),
            died.pid,
            if *by_watchdog {
                "the watchdog"
            } else {
                "its deadlock monitor"
            }
        ),
        DeathCause::Crash { op, signal, .. } => format!(
            "crashed: {} ({}) in {}; host {} died",
            signal_name(*signal),
            signal,
            op.map(Op::upper).unwrap_or("a plugin thread"),
            died.pid
        ),
        DeathCause::PluginCrash { .. } => {
            format!("crashed on a thread of the plugin's own: {died}")
        }
        DeathCause::Fenced { .. } => died.to_string(),
        DeathCause::Exit { status } => {
            format!("plugin ended the host process: exit status {status}")
        }
        DeathCause::Killed { signal } => {
            format!("host {} was killed by {}", died.pid, signal_name(*signal))
        }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
