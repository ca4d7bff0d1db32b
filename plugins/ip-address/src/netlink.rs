//! The ip-address type's netlink requests, in the calling thread's network namespace: look up a
//! link (index, name, MAC, up, carrier), dump addresses, add one address, delete one address. Each
//! request opens its own rtnetlink connection and runs on a small current-thread tokio runtime the
//! resource owns, bounded by a deadline; every error names what it was doing. Not the watcher
//! (watcher.rs) and not any decision about which address is ours.

use crate::frames::Mac;
use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

/// How long one netlink request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A link as netlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<Mac>,
    /// IFF_UP and IFF_LOWER_UP: administratively up and with carrier.
    pub carrier: bool,
}

/// One address of one link.
#[derive(Debug, Clone)]
pub struct AddressEntry {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub tentative: bool,
    pub dad_failed: bool,
    message: AddressMessage,
}

/// The resource's netlink side: a runtime to run requests on.
pub struct Netlink {
    runtime: tokio::runtime::Runtime,
}

impl Netlink {
    pub fn new() -> io::Result<Netlink> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start a tokio runtime: {e}")))?;
        Ok(Netlink { runtime })
    }

    /// Runs `request` with a fresh connection's handle, within REQUEST_TIMEOUT.
    fn run<T, F, Fut>(&self, what: &str, request: F) -> io::Result<T>
    where
        F: FnOnce(rtnetlink::Handle) -> Fut,
        Fut: Future<Output = io::Result<T>>,
    {
        self.runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open an rtnetlink socket: {e}"))
            })?;
            let task = tokio::spawn(connection);
            let done = tokio::time::timeout(REQUEST_TIMEOUT, request(handle)).await;
            task.abort();
            done.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("netlink: {what} took over {REQUEST_TIMEOUT:?}"),
                )
            })?
        })
    }

    /// Every link.
    pub fn links(&self) -> io::Result<Vec<Link>> {
        self.run("listing links", |handle| async move {
            let mut links = handle.link().get().execute();
            let mut all = Vec::new();
            while let Some(link) = links.try_next().await.map_err(failed("list links"))? {
                all.push(link_of(&link));
            }
            Ok(all)
        })
    }

    /// The link called `name`, or None.
    pub fn link_named(&self, name: &str) -> io::Result<Option<Link>> {
        Ok(self.links()?.into_iter().find(|l| l.name == name))
    }

    /// The link with index `index`, or None.
    pub fn link_at(&self, index: u32) -> io::Result<Option<Link>> {
        Ok(self.links()?.into_iter().find(|l| l.index == index))
    }

    /// Every address of every link.
    pub fn addresses(&self) -> io::Result<Vec<AddressEntry>> {
        self.run("listing addresses", |handle| async move {
            let mut stream = handle.address().get().execute();
            let mut all = Vec::new();
            while let Some(message) = stream.try_next().await.map_err(failed("list addresses"))? {
                all.extend(address_of(message));
            }
            Ok(all)
        })
    }

    /// Adds `addr/prefix` to link `index` (refused by the kernel if it is there already). IPv6
    /// addresses go through the kernel's duplicate address detection.
    pub fn add(&self, index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        let what = format!("add {addr}/{prefix}");
        self.run(&what, |handle| async move {
            handle
                .address()
                .add(index, addr, prefix)
                .execute()
                .await
                .map_err(failed(&format!("add {addr}/{prefix}")))
        })
    }

    /// Deletes exactly this address; an address already gone is no error.
    pub fn delete(&self, entry: &AddressEntry) -> io::Result<()> {
        let what = format!("delete {}/{}", entry.addr, entry.prefix);
        let message = entry.message.clone();
        self.run(&what.clone(), |handle| async move {
            match handle.address().del(message).execute().await {
                Ok(()) => Ok(()),
                Err(e) => match failed(&what)(e) {
                    gone if gone.kind() == io::ErrorKind::AddrNotAvailable => Ok(()),
                    other => Err(other),
                },
            }
        })
    }
}

/// A netlink refusal as an io::Error of the kernel's kind (AlreadyExists, AddrNotAvailable, ...),
/// saying what was refused.
fn failed(what: &str) -> impl Fn(rtnetlink::Error) -> io::Error + '_ {
    move |e| match &e {
        rtnetlink::Error::NetlinkError(message) => {
            let os = message.to_io();
            io::Error::new(os.kind(), format!("netlink: cannot {what}: {os}"))
        }
        _ => io::Error::other(format!("netlink: cannot {what}: {e}")),
    }
}

fn link_of(link: &LinkMessage) -> Link {
    let mut name = String::new();
    let mut mac = None;
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Address(bytes) => mac = <Mac>::try_from(bytes.as_slice()).ok(),
            _ => {}
        }
    }
    let flags = link.header.flags;
    Link {
        index: link.header.index,
        name,
        mac,
        carrier: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
    }
}

/// The address a message is about (its local address, else its address) with its flags.
pub fn address_of(message: AddressMessage) -> Option<AddressEntry> {
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()));
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    Some(AddressEntry {
        index: message.header.index,
        addr: local.or(address)?,
        prefix: message.header.prefix_len,
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
        message,
    })
}
