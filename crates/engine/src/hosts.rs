//! Host placement: which host slot each open resource lives in, the current default host, and separate
//! monitors. Pure bookkeeping that returns the StartHost/StopHost commands it implies. Not the processes.

use crate::command::Command;
use crate::ids::HostId;
use keelson_types::ResourceId;
use std::collections::{BTreeMap, BTreeSet};

/// One host slot.
#[derive(Clone, Debug, Default)]
pub(crate) struct Host {
    /// The resource it is a separate monitor for; `None` for a default host.
    pub dedicated_to: Option<ResourceId>,
    pub members: BTreeSet<ResourceId>,
    /// Its process id, once the shell reported `HostStarted`.
    pub pid: Option<u32>,
}

/// Every live host slot.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostTable {
    hosts: BTreeMap<HostId, Host>,
    default: Option<HostId>,
    next: u64,
}

impl HostTable {
    pub fn get(&self, id: HostId) -> Option<&Host> {
        self.hosts.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&HostId, &Host)> {
        self.hosts.iter()
    }

    /// Whether `host` is where a resource with this `separate` setting belongs.
    pub fn fits(&self, host: HostId, resource: ResourceId, separate: bool) -> bool {
        match self.hosts.get(&host) {
            Some(h) if separate => h.dedicated_to == Some(resource),
            Some(_) => self.default == Some(host),
            None => false,
        }
    }

    /// Adds `resource` to the slot it belongs in (a new separate monitor, or the default host),
    /// starting that slot first if needed.
    pub fn place(
        &mut self,
        resource: ResourceId,
        separate: bool,
        out: &mut Vec<Command>,
    ) -> HostId {
        let host = match (separate, self.default) {
            (false, Some(h)) => h,
            (false, None) => {
                let h = self.start(None, out);
                self.default = Some(h);
                h
            }
            (true, _) => self.start(Some(resource), out),
        };
        self.hosts
            .get_mut(&host)
            .map(|h| h.members.insert(resource));
        host
    }

    fn start(&mut self, dedicated_to: Option<ResourceId>, out: &mut Vec<Command>) -> HostId {
        self.next += 1;
        let host = HostId(self.next);
        self.hosts.insert(
            host,
            Host {
                dedicated_to,
                ..Host::default()
            },
        );
        out.push(Command::StartHost { host, dedicated_to });
        host
    }

    /// Removes `resource` from `host`; stops the slot if it is now empty and not the default host.
    pub fn remove_member(&mut self, host: HostId, resource: ResourceId, out: &mut Vec<Command>) {
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        h.members.remove(&resource);
        if h.members.is_empty() && self.default != Some(host) {
            self.hosts.remove(&host);
            out.push(Command::StopHost { host });
        }
    }

    /// Forgets a host that died, returning it. The next default placement starts a fresh default host.
    pub fn remove_dead(&mut self, host: HostId) -> Option<Host> {
        if self.default == Some(host) {
            self.default = None;
        }
        self.hosts.remove(&host)
    }

    /// Records the process id of a started host; false if the slot is unknown.
    pub fn set_pid(&mut self, host: HostId, pid: u32) -> bool {
        self.hosts
            .get_mut(&host)
            .map(|h| h.pid = Some(pid))
            .is_some()
    }
}
