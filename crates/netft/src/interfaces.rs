//! This node's network interfaces as the cluster sees them: each address with its adapter's name,
//! index, MAC address, prefix length and whether the link has carrier, read over rtnetlink (never
//! by running `ip`). A node reports these when it creates or joins a cluster, so every node can
//! derive the routes to it and `keelson validate` can check them. Not a watcher (netlink.rs).

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

/// How long listing links and addresses may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// One address of one local interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalInterface {
    pub adapter: String,
    /// The kernel's interface index (WSFC's interface id).
    pub index: u32,
    /// `aa:bb:cc:dd:ee:ff`, empty for links without one (loopback, TUN).
    pub mac: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Up and with carrier.
    pub carrier: bool,
}

/// Every address of every local interface, in interface index then address order. Must run inside a
/// tokio runtime; the netlink socket belongs to the calling thread's network namespace.
pub async fn local_interfaces() -> io::Result<Vec<LocalInterface>> {
    tokio::time::timeout(LIST_TIMEOUT, list())
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("listing interfaces over rtnetlink took over {LIST_TIMEOUT:?}"),
            )
        })?
}

async fn list() -> io::Result<Vec<LocalInterface>> {
    let (connection, handle, _) = rtnetlink::new_connection()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open rtnetlink socket: {e}")))?;
    let task = tokio::spawn(connection);
    let mut links = BTreeMap::new();
    let mut stream = handle.link().get().execute();
    while let Some(link) = stream.try_next().await.map_err(failed("links"))? {
        links.insert(link.header.index, link_facts(&link));
    }
    let mut out = Vec::new();
    let mut stream = handle.address().get().execute();
    while let Some(address) = stream.try_next().await.map_err(failed("addresses"))? {
        let Some((adapter, mac, carrier)) = links.get(&address.header.index) else {
            continue;
        };
        if let Some(addr) = address_of(&address) {
            out.push(LocalInterface {
                adapter: adapter.clone(),
                index: address.header.index,
                mac: mac.clone(),
                addr,
                prefix_len: address.header.prefix_len,
                carrier: *carrier,
            });
        }
    }
    task.abort();
    out.sort_by_key(|i| (i.index, i.addr));
    Ok(out)
}

fn failed(what: &'static str) -> impl Fn(rtnetlink::Error) -> io::Error {
    move |e| io::Error::other(format!("listing {what} over rtnetlink failed: {e}"))
}

/// (name, MAC, carrier) of a link.
fn link_facts(link: &LinkMessage) -> (String, String, bool) {
    let mut name = String::new();
    let mut mac = String::new();
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = n.clone(),
            // Loopback reports all zeros: no MAC address to speak of.
            LinkAttribute::Address(bytes) if bytes.iter().any(|b| *b != 0) => {
                if let Ok(six) = <[u8; 6]>::try_from(bytes.as_slice()) {
                    mac = crate::validate::format_mac(six);
                }
            }
            _ => {}
        }
    }
    let flags = link.header.flags;
    let carrier = flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp);
    (name, mac, carrier)
}

/// The address a netlink address message is about: its local address (the peer's on a
/// point-to-point link is `Address`), else `Address`.
pub(crate) fn address_of(address: &AddressMessage) -> Option<IpAddr> {
    let local = address.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(addr) => Some(*addr),
        _ => None,
    });
    local.or_else(|| {
        address.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(addr) => Some(*addr),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_is_listed_with_its_address_and_no_mac() {
        let all = local_interfaces().await.unwrap();
        let lo = all
            .iter()
            .find(|i| i.addr == IpAddr::from([127, 0, 0, 1]))
            .unwrap_or_else(|| panic!("no 127.0.0.1 among {all:?}"));
        assert_eq!(lo.adapter, "lo");
        assert_eq!(lo.prefix_len, 8);
        assert_eq!(lo.mac, "");
        assert!(lo.index >= 1);
    }

    #[test]
    fn macs_are_lower_case_colon_separated() {
        assert_eq!(
            crate::validate::format_mac([0x02, 0xAB, 0, 1, 2, 0xff]),
            "02:ab:00:01:02:ff"
        );
    }
}
