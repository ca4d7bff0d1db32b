//! How a host's death is classified, as a pure function of what was gathered when it ended: its wait
//! status, the alarms it wrote just before dying, and the record rcm's watchdog left before killing
//! it. Kept apart from the I/O (supervisor.rs gathers, shared.rs calls this) so that the rules are
//! unit-tested and can change on their own.

use crate::blame::PluginSlots;
use crate::death::DeathCause;
use keelson_proto::HostAlarm;
use keelson_types::ResourceId;
use std::time::Duration;

/// How the process ended, from its wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// It could not be reaped.
    Unknown,
}

impl Exit {
    pub fn from_status(status: Option<std::process::ExitStatus>) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        match status {
            Some(s) => match (s.signal(), s.code()) {
                (Some(signal), _) => Exit::Signal(signal),
                (None, Some(code)) => Exit::Code(code),
                (None, None) => Exit::Unknown,
            },
            None => Exit::Unknown,
        }
    }
}

/// The cause of death: the first alarm the host wrote (a dying host writes at most one that
/// matters), else the watchdog's record (it killed a host that stopped answering), else the plain
/// wait status. `name_of` gives a resource's name.
/// A crash is the call's that was running on the faulting thread, else (a thread of the plugin's
/// own) the plugin's whose code faulted (blame.rs, with `plugins` and `symbolise`).
pub fn classify(
    exit: Exit,
    alarms: Vec<HostAlarm>,
    watchdog: Option<DeathCause>,
    name_of: impl Fn(ResourceId) -> Option<String>,
    plugins: &PluginSlots,
    symbolise: impl Fn(&str, u64) -> Option<String>,
) -> DeathCause {
    match alarms.into_iter().next() {
        Some(HostAlarm::DeadlockDetected {
            resource,
            op,
            elapsed_ns,
        }) => DeathCause::Deadlock {
            resource,
            name: name_of(resource).unwrap_or_default(),
            op,
            elapsed: Duration::from_nanos(elapsed_ns),
            by_watchdog: false,
        },
        Some(HostAlarm::Fenced {
            seq,
            late_ms,
            resources,
            terminated,
        }) => DeathCause::Fenced {
            seq,
            late_ms,
            resources,
            terminated,
        },
        Some(crashed @ HostAlarm::Crashed { .. }) => {
            crate::blame::crash_cause(&crashed, &name_of, plugins, symbolise)
                .expect("a Crashed alarm is a crash")
        }
        None => watchdog.unwrap_or(match exit {
            Exit::Signal(signal) => DeathCause::Killed { signal },
            Exit::Code(status) => DeathCause::Exit { status },
            Exit::Unknown => DeathCause::Exit { status: -1 },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_types::Op;

    fn names(r: ResourceId) -> Option<String> {
        (r == ResourceId(7)).then(|| "web".to_string())
    }

    fn watchdog() -> Option<DeathCause> {
        Some(DeathCause::Deadlock {
            resource: ResourceId(7),
            name: "web".into(),
            op: Op::Online,
            elapsed: Duration::from_millis(2_300),
            by_watchdog: true,
        })
    }

    #[test]
    fn a_deadlock_alarm_names_the_resource_and_call_and_beats_the_watchdog() {
        let alarm = HostAlarm::DeadlockDetected {
            resource: ResourceId(7),
            op: Op::Close,
            elapsed_ns: 301_000_000,
        };
        let cause = classify(
            Exit::Code(86),
            vec![alarm],
            watchdog(),
            names,
            &PluginSlots::default(),
            |_, _| None,
        );
        assert_eq!(
            cause,
            DeathCause::Deadlock {
                resource: ResourceId(7),
                name: "web".into(),
                op: Op::Close,
                elapsed: Duration::from_millis(301),
                by_watchdog: false,
            }
        );
    }

    #[test]
    fn a_crash_alarm_blames_the_call_on_its_thread_or_nobody() {
        let crash = |resource| HostAlarm::Crashed {
            resource,
            op: resource.map(|_| Op::IsAlive),
            signal: 11,
            pc: 0,
            fault_addr: 0x10,
            in_plugin: None,
        };
        let cause = classify(
            Exit::Signal(11),
            vec![crash(Some(ResourceId(7)))],
            None,
            names,
            &PluginSlots::default(),
            |_, _| None,
        );
        assert_eq!(cause.offender(), Some((ResourceId(7), Some(Op::IsAlive))));
        assert!(
            matches!(cause, DeathCause::Crash { name: Some(ref n), signal: 11, .. } if n == "web")
        );
        let cause = classify(
            Exit::Signal(11),
            vec![crash(None)],
            None,
            names,
            &PluginSlots::default(),
            |_, _| None,
        );
        assert_eq!(cause.offender(), None);
        assert!(matches!(cause, DeathCause::Crash { name: None, .. }));
    }

    #[test]
    fn the_first_alarm_counts() {
        let first = HostAlarm::Crashed {
            resource: Some(ResourceId(1)),
            op: Some(Op::Online),
            signal: 6,
            pc: 0,
            fault_addr: 0,
            in_plugin: None,
        };
        let second = HostAlarm::DeadlockDetected {
            resource: ResourceId(7),
            op: Op::Close,
            elapsed_ns: 1,
        };
        let cause = classify(
            Exit::Signal(6),
            vec![first, second],
            None,
            names,
            &PluginSlots::default(),
            |_, _| None,
        );
        assert_eq!(cause.offender(), Some((ResourceId(1), Some(Op::Online))));
    }

    #[test]
    fn a_fenced_alarm_is_a_fence_that_blames_nobody() {
        let fenced = HostAlarm::Fenced {
            seq: 12,
            late_ms: 1,
            resources: 3,
            terminated: 2,
        };
        let cause = classify(
            Exit::Code(keelson_proto::EXIT_FENCED),
            vec![fenced],
            None,
            names,
            &PluginSlots::default(),
            |_, _| None,
        );
        assert_eq!(
            cause,
            DeathCause::Fenced {
                seq: 12,
                late_ms: 1,
                resources: 3,
                terminated: 2
            }
        );
        assert_eq!(cause.offender(), None);
        assert_eq!(cause.offending_plugin(), None);
    }

    #[test]
    fn without_alarms_the_watchdog_then_the_wait_status_decide() {
        assert_eq!(
            classify(
                Exit::Signal(9),
                vec![],
                watchdog(),
                names,
                &PluginSlots::default(),
                |_, _| None
            ),
            watchdog().unwrap()
        );
        assert_eq!(
            classify(
                Exit::Signal(9),
                vec![],
                None,
                names,
                &PluginSlots::default(),
                |_, _| None
            ),
            DeathCause::Killed { signal: 9 }
        );
        assert_eq!(
            classify(
                Exit::Code(3),
                vec![],
                None,
                names,
                &PluginSlots::default(),
                |_, _| None
            ),
            DeathCause::Exit { status: 3 }
        );
        assert_eq!(
            classify(
                Exit::Unknown,
                vec![],
                None,
                names,
                &PluginSlots::default(),
                |_, _| None
            ),
            DeathCause::Exit { status: -1 }
        );
    }
}
