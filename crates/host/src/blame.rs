//! Whose fault a crash alarm is: the call running on the faulting thread when there was one, else
//! the loaded plugin whose code holds the faulting instruction (the host reports each plugin's code
//! slot as it loads it), else nobody. A pure decision over what the host reported, with unit tests.
//! Not reading the alarm pipe or reaping the process (host.rs), nor what the engine then does.

use crate::death::DeathCause;
use keelson_proto::{HostAlarm, PluginMapping};
use keelson_types::ResourceId;
use std::collections::HashMap;

/// The plugins a host has loaded, by the code slot its crash handler names them with.
#[derive(Clone, Debug, Default)]
pub(crate) struct PluginSlots {
    by_slot: HashMap<u32, PluginMapping>,
}

impl PluginSlots {
    /// Records a `PluginMapped` report; a slot reported twice keeps its latest mapping.
    pub(crate) fn record(&mut self, mapping: PluginMapping) {
        self.by_slot.insert(mapping.slot, mapping);
    }

    pub(crate) fn get(&self, slot: u32) -> Option<&PluginMapping> {
        self.by_slot.get(&slot)
    }
}

/// The death cause a `Crashed` alarm stands for; None for any other alarm. `name_of` names a
/// resource of this host, `symbolise` names the function at an ELF address of a plugin file.
pub(crate) fn crash_cause(
    alarm: &HostAlarm,
    name_of: impl Fn(ResourceId) -> Option<String>,
    plugins: &PluginSlots,
    symbolise: impl Fn(&str, u64) -> Option<String>,
) -> Option<DeathCause> {
    let HostAlarm::Crashed {
        resource,
        op,
        signal,
        pc,
        fault_addr,
        in_plugin,
    } = *alarm
    else {
        return None;
    };
    // A call thread's crash is that call's, whoever's code it was in.
    let plugin = in_plugin.and_then(|code| Some((plugins.get(code.slot)?, code.offset)));
    Some(match (resource, plugin) {
        (None, Some((mapping, offset))) => DeathCause::PluginCrash {
            plugin: mapping.name.clone(),
            path: mapping.path.clone(),
            signal,
            pc,
            offset,
            fault_addr,
            symbol: symbolise(&mapping.path, offset),
        },
        _ => DeathCause::Crash {
            resource,
            name: resource.and_then(name_of),
            op,
            signal,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_proto::PluginCode;
    use keelson_types::Op;

    fn slots() -> PluginSlots {
        let mut slots = PluginSlots::default();
        slots.record(PluginMapping {
            slot: 2,
            name: "chaos".into(),
            path: "/p/libkeelson_plugin_chaos.so".into(),
            base: 0x7f00_0000_0000,
        });
        slots
    }

    fn crashed(resource: Option<u64>, in_plugin: Option<PluginCode>) -> HostAlarm {
        HostAlarm::Crashed {
            resource: resource.map(ResourceId),
            op: resource.map(|_| Op::IsAlive),
            signal: 11,
            pc: 0x7f00_0001_2345,
            fault_addr: 0x10,
            in_plugin,
        }
    }

    fn names(r: ResourceId) -> Option<String> {
        (r == ResourceId(7)).then(|| "web".to_string())
    }

    fn symbols(path: &str, offset: u64) -> Option<String> {
        (path.ends_with("chaos.so") && offset == 0x1_2345).then(|| "chaos::crash_later".into())
    }

    const IN_CHAOS: Option<PluginCode> = Some(PluginCode {
        slot: 2,
        offset: 0x1_2345,
    });

    #[test]
    fn a_crash_off_any_call_in_plugin_code_blames_that_plugin() {
        let cause = crash_cause(&crashed(None, IN_CHAOS), names, &slots(), symbols);
        assert_eq!(
            cause,
            Some(DeathCause::PluginCrash {
                plugin: "chaos".into(),
                path: "/p/libkeelson_plugin_chaos.so".into(),
                signal: 11,
                pc: 0x7f00_0001_2345,
                offset: 0x1_2345,
                fault_addr: 0x10,
                symbol: Some("chaos::crash_later".into()),
            })
        );
        assert_eq!(cause.unwrap().offending_plugin(), Some("chaos"));
    }

    #[test]
    fn a_call_threads_crash_stays_the_calls_even_in_plugin_code() {
        let cause = crash_cause(&crashed(Some(7), IN_CHAOS), names, &slots(), symbols).unwrap();
        assert_eq!(
            cause,
            DeathCause::Crash {
                resource: Some(ResourceId(7)),
                name: Some("web".into()),
                op: Some(Op::IsAlive),
                signal: 11,
            }
        );
        assert_eq!(cause.offending_plugin(), None);
    }

    #[test]
    fn outside_any_plugin_or_in_an_unreported_slot_nobody_is_blamed() {
        let unblamed = DeathCause::Crash {
            resource: None,
            name: None,
            op: None,
            signal: 11,
        };
        for in_plugin in [None, Some(PluginCode { slot: 9, offset: 0 })] {
            let cause = crash_cause(&crashed(None, in_plugin), names, &slots(), symbols);
            assert_eq!(cause.as_ref(), Some(&unblamed), "{in_plugin:?}");
            assert_eq!(unblamed.offender(), None);
        }
    }

    #[test]
    fn other_alarms_are_not_crashes() {
        let deadlock = HostAlarm::DeadlockDetected {
            resource: ResourceId(7),
            op: Op::LooksAlive,
            elapsed_ns: 1,
        };
        assert_eq!(crash_cause(&deadlock, names, &slots(), symbols), None);
    }

    #[test]
    fn the_report_says_which_plugin_and_where() {
        let died = crate::HostDied {
            pid: 42,
            cause: crash_cause(&crashed(None, IN_CHAOS), names, &slots(), symbols).unwrap(),
        };
        assert_eq!(
            died.to_string(),
            "host 42 crashed with SIGSEGV in plugin 'chaos''s code on a thread of its own, at 0x7f0000012345 \
             (libkeelson_plugin_chaos.so+0x12345, in chaos::crash_later) accessing 0x10"
        );
    }
}
