//! The `ip-address` resource type: a floating IPv4 or IPv6 address on one interface of the node
//! that owns its group. Online checks that no other host uses the address (an ARP probe for IPv4,
//! the kernel's DAD for IPv6), adds it over netlink and announces it (gratuitous ARP / unsolicited
//! neighbour advertisement, GratuitousCount times) so neighbours' caches move at once; an address
//! already there with our prefix is adopted and re-announced, never removed and re-added.
//! LooksAlive: the address is on the interface; IsAlive: also carrier, and no other host answers
//! for it. A netlink watcher reports a deleted address or a lost carrier at once. Offline removes
//! exactly that address and nothing else (routes and the node's own addresses stay). Not routing,
//! not DNS (the network-name type), and no `ip` commands: netlink and AF_PACKET only.
#![forbid(unsafe_code)]

mod announcer;
mod config;
mod frames;
mod netlink;
mod ownership;
mod probe;
mod sysctl;
mod watcher;

use announcer::{Announcement, Announcer};
use config::{Config, Placement};
use frames::{format_mac, Mac};
use keelson_plugin::{export_plugin, Error, Host, Param, Params, Resource, TypeDefaults};
use netlink::{AddressEntry, Link, Netlink};
use ownership::Ownership;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use watcher::{Watched, Watcher};

/// Every parameter of the type: `keelson plugin describe ip-address` prints this table.
const PARAMS: &[Param] = &[
    Param::address("Address")
        .required()
        .describe("the IPv4 or IPv6 address the resource brings online"),
    Param::integer("PrefixLength")
        .min(1)
        .max(128)
        .describe("its prefix length (default: the Network's, else 24 for IPv4 and 64 for IPv6)"),
    Param::string("Interface")
        .describe("the interface to put it on (give this or Network)"),
    Param::string("Network")
        .describe("a CIDR network: the address goes on the one interface with an address in it (give this or Interface)"),
    Param::boolean("Ipv6")
        .describe("if given, must say whether Address is IPv6 (a check, not a choice)"),
    Param::integer("GratuitousCount")
        .min(1)
        .max(100)
        .default("5")
        .describe("how many gratuitous ARP / unsolicited NA rounds online sends (the first before it returns)"),
    Param::integer("GratuitousIntervalMs")
        .min(0)
        .max(10_000)
        .default("200")
        .describe("the time between two rounds"),
    Param::integer("DadTimeoutMs")
        .min(0)
        .max(60_000)
        .default("1000")
        .describe("how long online waits for a duplicate's answer to ARP probes (IPv4; 0: no probe) or, added to the kernel's own DAD time, for IPv6 DAD"),
];

/// IsAlive's conflict probe waits at most this long (or DadTimeoutMs, if shorter).
const ISALIVE_PROBE_WAIT: Duration = Duration::from_millis(200);
/// How often online looks at an IPv6 address while the kernel's DAD runs.
const DAD_POLL: Duration = Duration::from_millis(20);

/// Where our address stands on this node.
enum Presence {
    Absent,
    Present(AddressEntry),
    OtherPrefix(u8),
    Elsewhere(u32),
}

/// One ip-address resource.
pub struct IpAddress {
    config: Config,
    host: Host,
    netlink: Netlink,
    /// The link online put the address on (until offline).
    placed: Option<Link>,
    watcher: Option<Watcher>,
    announcer: Option<Announcer>,
    /// Whether the address present is the one this resource added (its state directory's marker).
    ownership: Ownership,
}

fn os(e: io::Error) -> Error {
    Error::new(e.to_string())
}

impl IpAddress {
    /// The link the address belongs on, as it is now.
    fn resolve_link(&self) -> Result<Link, Error> {
        match &self.config.placement {
            Placement::Interface(name) => {
                self.netlink.link_named(name).map_err(os)?.ok_or_else(|| {
                    Error::not_installed(format!(
                        "Interface={name}: no such interface on this node"
                    ))
                })
            }
            Placement::Network(network) => {
                let mut indexes: Vec<u32> = self
                    .netlink
                    .addresses()
                    .map_err(os)?
                    .into_iter()
                    .filter(|a| network.contains(a.addr))
                    .map(|a| a.index)
                    .collect();
                indexes.sort_unstable();
                indexes.dedup();
                let index = match indexes[..] {
                    [] => {
                        return Err(Error::not_installed(format!(
                            "Network={network}: no interface on this node has an address in it"
                        )))
                    }
                    [one] => one,
                    _ => {
                        return Err(Error::misconfigured(format!(
                            "Network={network}: interfaces {indexes:?} (by index) all have addresses in it; set Interface instead"
                        )))
                    }
                };
                self.netlink.link_at(index).map_err(os)?.ok_or_else(|| {
                    Error::new(format!("Network={network}: interface {index} vanished"))
                })
            }
        }
    }

    fn mac(link: &Link) -> Result<Mac, Error> {
        link.mac.filter(|m| *m != [0; 6]).ok_or_else(|| {
            Error::not_installed(format!(
                "interface {} has no Ethernet address: cannot announce an address on it",
                link.name
            ))
        })
    }

    fn presence(&self, link: &Link) -> Result<Presence, Error> {
        let entries = self.netlink.addresses().map_err(os)?;
        let mut found = Presence::Absent;
        for entry in entries
            .into_iter()
            .filter(|e| e.addr == self.config.address)
        {
            if entry.index != link.index {
                found = Presence::Elsewhere(entry.index);
            } else if entry.prefix != self.config.prefix {
                found = Presence::OtherPrefix(entry.prefix);
            } else {
                return Ok(Presence::Present(entry));
            }
        }
        Ok(found)
    }

    fn shown(&self) -> String {
        format!("{}/{}", self.config.address, self.config.prefix)
    }

    /// Adds the address after checking nobody else has it; for IPv6, waits out the kernel's DAD.
    fn add(&self, link: &Link, mac: &Mac) -> Result<(), Error> {
        let address = self.config.address;
        if let IpAddr::V4(v4) = address {
            if !self.config.dad_timeout.is_zero() {
                let conflict = probe::arp_conflict(link.index, mac, v4, self.config.dad_timeout)
                    .map_err(|e| Error::new(format!("{}: {e}", link.name)))?;
                if let Some(other) = conflict {
                    return Err(Error::new(format!(
                        "address {address} is already in use by {} (it answered an ARP probe on {}); nothing was changed",
                        format_mac(&other),
                        link.name
                    )));
                }
            }
            sysctl::promote_secondaries(&link.name).map_err(os)?;
        }
        // Claimed before it is added: a host that dies in between leaves a claim the next one
        // adopts, never an address nobody owns.
        self.ownership.claim().map_err(os)?;
        match self.netlink.add(link.index, address, self.config.prefix) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::new(format!("{}: {e}", link.name))),
        }
        self.host
            .info(&format!("added {} to {}", self.shown(), link.name));
        if address.is_ipv6() {
            self.wait_ipv6_dad(link)?;
        }
        Ok(())
    }

    /// Waits until the kernel's DAD has finished for our IPv6 address; a failed or unfinished DAD
    /// removes the address again.
    fn wait_ipv6_dad(&self, link: &Link) -> Result<(), Error> {
        let kernel = sysctl::ipv6_dad_time(&link.name).map_err(os)?;
        let deadline = Instant::now() + kernel + self.config.dad_timeout;
        loop {
            let entry = match self.presence(link)? {
                Presence::Present(entry) => entry,
                _ => {
                    return Err(Error::new(format!(
                        "address {} vanished from {} during duplicate address detection",
                        self.shown(),
                        link.name
                    )))
                }
            };
            if entry.dad_failed {
                self.netlink.delete(&entry).map_err(os)?;
                return Err(Error::new(format!(
                    "address {} is already in use on {}: IPv6 duplicate address detection failed (the address was removed)",
                    self.config.address, link.name
                )));
            }
            if !entry.tentative {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.netlink.delete(&entry).map_err(os)?;
                return Err(Error::new(format!(
                    "address {} on {} was still tentative after {:?} of duplicate address detection (the address was removed)",
                    self.config.address,
                    link.name,
                    kernel + self.config.dad_timeout
                )));
            }
            std::thread::sleep(DAD_POLL);
        }
    }

    /// Sends the first announcement round now and leaves the rest to the announcer thread.
    fn announce(&mut self, link: &Link, mac: &Mac) -> Result<(), Error> {
        self.announcer = None;
        let announcement = Announcement::new(link.index, mac, self.config.address)
            .map_err(|e| Error::new(format!("{}: {e}", link.name)))?;
        announcement
            .send()
            .map_err(|e| Error::new(format!("{}: {e}", link.name)))?;
        let rounds = self.config.gratuitous_count.saturating_sub(1);
        if rounds > 0 {
            let announcer = Announcer::start(
                announcement,
                rounds,
                self.config.gratuitous_interval,
                self.host,
            )
            .map_err(|e| Error::new(format!("cannot start the announcer thread: {e}")))?;
            self.announcer = Some(announcer);
        }
        Ok(())
    }

    /// Starts the netlink watcher unless one is running.
    fn watch(&mut self, link: &Link) -> Result<(), Error> {
        if self.watcher.as_ref().is_some_and(Watcher::running) {
            return Ok(());
        }
        self.watcher = None; // joins a watcher that ended after its report
        let watched = Watched {
            index: link.index,
            link: link.name.clone(),
            addr: self.config.address,
            prefix: self.config.prefix,
        };
        let watcher = Watcher::start(watched, self.host)
            .map_err(|e| Error::new(format!("cannot start the netlink watcher: {e}")))?;
        self.watcher = Some(watcher);
        Ok(())
    }

    /// The address is on its link with our prefix (and, for IPv6, past DAD): the entry, and the link.
    fn check_present(&self) -> Result<(Link, AddressEntry), Error> {
        let link = self.resolve_link()?;
        match self.presence(&link)? {
            Presence::Present(entry) if entry.dad_failed => Err(Error::new(format!(
                "address {} on {} failed duplicate address detection",
                self.config.address, link.name
            ))),
            Presence::Present(entry) => Ok((link, entry)),
            _ => Err(Error::not_running(format!(
                "address {} is not on {}",
                self.shown(),
                link.name
            ))),
        }
    }
}

impl Resource for IpAddress {
    const TYPE_NAME: &'static std::ffi::CStr = c"ip-address";
    const PARAMS: Option<&'static [Param]> = Some(PARAMS);
    /// LooksAlive is one netlink dump (well under a millisecond), so it may run every 2 s; IsAlive
    /// sends an ARP probe and waits up to 200 ms, every 30 s. Online takes DadTimeoutMs (IPv6:
    /// plus the kernel's DAD, about 2 s) and one announcement round: 20 s is plenty.
    const DEFAULTS: TypeDefaults = TypeDefaults {
        looks_alive_poll_interval_ms: Some(2_000),
        is_alive_poll_interval_ms: Some(30_000),
        pending_timeout_ms: Some(20_000),
        deadlock_timeout_ms: None,
    };

    fn validate(params: &Params) -> Result<(), Error> {
        Config::parse(params)?;
        Ok(())
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        let config = Config::parse(params)?;
        let netlink = Netlink::new().map_err(os)?;
        Ok(IpAddress {
            config,
            host,
            netlink,
            placed: None,
            watcher: None,
            announcer: None,
            ownership: Ownership::new(host.state_dir()),
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        let link = self.resolve_link()?;
        let mac = IpAddress::mac(&link)?;
        match self.presence(&link)? {
            Presence::Present(entry) if entry.dad_failed => {
                return Err(Error::new(format!(
                    "address {} on {} failed duplicate address detection; remove it first",
                    self.config.address, link.name
                )))
            }
            // There, but not added by this resource: the node's own address or somebody else's,
            // which is neither adopted nor (at offline) removed.
            Presence::Present(_) if !self.ownership.is_ours().map_err(os)? => {
                return Err(Error::misconfigured(format!(
                    "address {} is already on {} and this resource did not add it (the node's own \
                     address, or another resource's); nothing was changed",
                    self.config.address, link.name
                )))
            }
            // Already online (a second online, or a new host after the old one died): adopt it
            // (after the kernel's DAD, if a host that died mid-online left it tentative).
            Presence::Present(entry) if entry.tentative => self.wait_ipv6_dad(&link)?,
            Presence::Present(_) => {}
            Presence::OtherPrefix(prefix) => {
                return Err(Error::new(format!(
                    "address {} is already on {} with prefix /{prefix}, not /{}; nothing was changed",
                    self.config.address, link.name, self.config.prefix
                )))
            }
            Presence::Elsewhere(index) => {
                return Err(Error::new(format!(
                    "address {} is already on another interface (index {index}), not {}; nothing was changed",
                    self.config.address, link.name
                )))
            }
            Presence::Absent => self.add(&link, &mac)?,
        }
        self.placed = Some(link.clone());
        self.watch(&link)?;
        self.announce(&link, &mac)?;
        // The watcher is subscribed: a deletion from now on is reported; one before it is seen here.
        self.check_present()?;
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        // Stopped first: removing the address is no failure, and no announcement may follow it.
        self.watcher = None;
        self.announcer = None;
        let link = match self.placed.take() {
            Some(link) => link,
            None => match self.resolve_link() {
                Ok(link) => link,
                // No interface (or no address in the Network): nothing of ours can be there.
                Err(e) if e.kind() == keelson_plugin::ErrorKind::NotInstalled => return Ok(()),
                Err(e) => return Err(e),
            },
        };
        match self.presence(&link)? {
            Presence::Present(entry) if self.ownership.is_ours().map_err(os)? => {
                self.netlink
                    .delete(&entry)
                    .map_err(|e| Error::new(format!("{}: {e}", link.name)))?;
                self.host
                    .info(&format!("removed {} from {}", self.shown(), link.name));
            }
            Presence::Present(_) => self.host.info(&format!(
                "{} on {} was not added by this resource: left in place",
                self.shown(),
                link.name
            )),
            _ => {}
        }
        self.ownership.release().map_err(os)?;
        Ok(())
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        let link = match &self.placed {
            Some(link) => link.clone(),
            None => self.resolve_link()?,
        };
        match self.presence(&link)? {
            Presence::Present(_) => Ok(()),
            _ => Err(Error::not_running(format!(
                "address {} is not on {}",
                self.shown(),
                link.name
            ))),
        }
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        let (link, entry) = self.check_present()?;
        if entry.tentative {
            return Err(Error::new(format!(
                "address {} on {} is still tentative (duplicate address detection)",
                self.config.address, link.name
            )));
        }
        if !link.carrier {
            return Err(Error::new(format!(
                "{} has no carrier (link down)",
                link.name
            )));
        }
        let wait = self.config.dad_timeout.min(ISALIVE_PROBE_WAIT);
        if let (IpAddr::V4(v4), false) = (self.config.address, wait.is_zero()) {
            let mac = IpAddress::mac(&link)?;
            let conflict = probe::arp_conflict(link.index, &mac, v4, wait)
                .map_err(|e| Error::new(format!("{}: {e}", link.name)))?;
            if let Some(other) = conflict {
                return Err(Error::new(format!(
                    "address {v4} is also in use by {} (it answered an ARP probe on {})",
                    format_mac(&other),
                    link.name
                )));
            }
        }
        Ok(())
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.offline()
    }
}

export_plugin!(name: c"ip-address", types: [IpAddress]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_is_one_the_host_accepts() {
        keelson_plugin::schema::<IpAddress>()
            .check_declaration()
            .expect("PARAMS and DEFAULTS");
    }
}
