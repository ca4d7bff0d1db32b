//! A host process died (crash, deadlock, killed, failed to start): blame the offender by name (log
//! lines, events 1230 and 1146) — the resource whose call it was, or every resource in that host of
//! the plugin whose own thread crashed — mark each SeparateMonitor persistently, re-open each in a
//! host of its own and every innocent in a fresh default host, bring back what was Online, and run
//! the restart policy on the offenders. Not the detection (crates/host) nor the policy itself
//! (failure.rs).

use crate::command::EventLevel;
use crate::engine::Engine;
use crate::ids::HostId;
use crate::state::ResourceState;
use crate::timer::TimerKind;
use keelson_types::{LogLevel, Op, ResourceId, StatusKind};

const HOST_STOPPED: &str = "The cluster resource host subsystem (RHS) stopped unexpectedly. An attempt will be made \
     to restart it. This is usually due to a problem in a resource DLL. Please determine which resource DLL is \
     causing the issue and report the problem to the resource vendor.";

impl Engine {
    pub(crate) fn host_died(
        &mut self,
        host: HostId,
        offender: Option<(ResourceId, Op)>,
        offending_plugin: Option<&str>,
        cause: &str,
    ) {
        let Some(dead) = self.hosts.remove_dead(host) else {
            return;
        }; // unknown or already handled
        let members: Vec<ResourceId> = dead.members.iter().copied().collect();
        let pid = dead
            .pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into());
        self.log(
            LogLevel::Warn,
            format!("Host {host} (pid {pid}) stopped unexpectedly: {cause}"),
        );
        let offenders = self.offenders(&members, offender, offending_plugin);
        for o in &offenders {
            self.blame(*o);
        }
        self.raise(
            1146,
            EventLevel::Critical,
            HOST_STOPPED.to_string(),
            None,
            None,
        );
        for m in &members {
            self.detach(*m);
        }
        if offenders.is_empty() {
            self.fail_all_unattributed(&members, cause);
        }
        if let Some((r, op)) = offender.filter(|(r, _)| offenders.contains(r)) {
            self.note_error(r, op, StatusKind::HostDied, cause);
        }
        for o in &offenders {
            self.fail_with(*o, &format!("its host died: {cause}"), StatusKind::HostDied);
        }
        for m in members.iter().filter(|m| !offenders.contains(m)) {
            if self.res(*m).state != ResourceState::Failed {
                self.set_state(*m, ResourceState::Offline); // reconciliation brings it back if wanted
            }
        }
        for m in members {
            if self.res(m).host.is_none() {
                self.open(m);
            }
        }
    }

    /// Who is to blame among the dead host's `members`: the resource whose call crashed or
    /// deadlocked, else every member implemented by the plugin whose own thread crashed, else nobody.
    fn offenders(
        &mut self,
        members: &[ResourceId],
        offender: Option<(ResourceId, Op)>,
        offending_plugin: Option<&str>,
    ) -> Vec<ResourceId> {
        if let Some((r, _)) = offender.filter(|(r, _)| members.contains(r)) {
            return vec![r];
        }
        let Some(plugin) = offending_plugin else {
            return Vec::new();
        };
        let blamed: Vec<ResourceId> = members
            .iter()
            .copied()
            .filter(|m| self.res(*m).plugin == plugin)
            .collect();
        let names: Vec<String> = blamed
            .iter()
            .map(|m| format!("'{}'", self.res(*m).name))
            .collect();
        let whom = if names.is_empty() {
            "none of its resources was in that host; nobody is blamed".to_string()
        } else {
            format!("blaming each of its resources there: {}", names.join(", "))
        };
        self.log(
            LogLevel::Warn,
            format!("Plugin '{plugin}' crashed on a thread of its own; {whom}."),
        );
        blamed
    }

    /// The FAILURENOTIFICATION lines, event 1230, and SeparateMonitor=true (persisted).
    fn blame(&mut self, id: ResourceId) {
        let r = self.res(id);
        let (name, gen, t, p) = (r.name.clone(), r.gen, r.type_name.clone(), r.plugin.clone());
        self.log(
            LogLevel::Info,
            format!("HandleMonitorReply: FAILURENOTIFICATION for '{name}', gen({gen}) result 4."),
        );
        self.log(
            LogLevel::Warn,
            format!(
                "Resource '{name}' (resource type '{t}', plugin '{p}') has crashed or deadlocked; marking it to \
                 run in a separate monitor."
            ),
        );
        let msg = format!(
            "Cluster resource '{name}' (resource type '{t}', plugin '{p}') either crashed or deadlocked. The \
             Resource Hosting Subsystem (RHS) process will now attempt to terminate, and the resource will be \
             marked to run in a separate monitor."
        );
        let group = self.group_name_of(id);
        self.raise(1230, EventLevel::Error, msg, Some(name), Some(group));
        if !self.res(id).props.separate_monitor {
            self.res_mut(id).props.separate_monitor = true;
            self.mark_dirty(id);
        }
    }

    /// The resource is no longer open anywhere: its calls and pending timer died with the host.
    fn detach(&mut self, id: ResourceId) {
        let r = self.res_mut(id);
        r.host = None;
        r.outstanding.clear();
        self.cancel(TimerKind::PendingTimeout(id));
    }

    /// Nobody was blamed: every member that was (coming) Online failed.
    fn fail_all_unattributed(&mut self, members: &[ResourceId], cause: &str) {
        for m in members {
            if matches!(
                self.res(*m).state,
                ResourceState::Online | ResourceState::OnlinePending
            ) {
                self.fail(*m, &format!("its host died: {cause}"));
            }
        }
    }
}
