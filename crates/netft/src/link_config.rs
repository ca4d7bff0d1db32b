//! Configuring the virtual adapter's interface over rtnetlink, in the calling thread's network
//! namespace: read a link's index and MTU by name, set an MTU and bring a link up, add an address.
//! Every error names the link. Not watching links (netlink.rs) and not deciding the values
//! (adapter.rs).

use futures::TryStreamExt;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::LinkUnspec;
use std::io;
use std::net::IpAddr;

/// A link as netlink reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub mtu: u32,
}

/// One rtnetlink request connection.
pub struct LinkConfig {
    handle: rtnetlink::Handle,
}

impl LinkConfig {
    /// Opens a connection (its I/O runs on a task of the current tokio runtime).
    pub fn open() -> io::Result<LinkConfig> {
        let (connection, handle, _) = rtnetlink::new_connection()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open rtnetlink socket: {e}")))?;
        tokio::spawn(connection);
        Ok(LinkConfig { handle })
    }

    /// The link called `name`.
    pub async fn link(&self, name: &str) -> io::Result<LinkInfo> {
        let mut links = self.handle.link().get().match_name(name).execute();
        let link = links
            .try_next()
            .await
            .map_err(|e| failed(name, "look up", e))?
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("link {name} does not exist"),
                )
            })?;
        let mtu = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(mtu) => Some(*mtu),
                _ => None,
            })
            .ok_or_else(|| io::Error::other(format!("netlink reports no MTU for link {name}")))?;
        Ok(LinkInfo {
            index: link.header.index,
            mtu,
        })
    }

    /// Sets the link's MTU and brings it up.
    pub async fn set_mtu_and_up(&self, name: &str, index: u32, mtu: u32) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index).mtu(mtu).up().build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| failed(name, &format!("set MTU {mtu} and up"), e))
    }

    /// Adds `addr/prefix_len` to the link (replacing the same address if it is already there).
    pub async fn add_address(
        &self,
        name: &str,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> io::Result<()> {
        self.handle
            .address()
            .add(index, addr, prefix_len)
            .replace()
            .execute()
            .await
            .map_err(|e| failed(name, &format!("add address {addr}/{prefix_len}"), e))
    }
}

fn failed(name: &str, what: &str, e: rtnetlink::Error) -> io::Error {
    let kind = match &e {
        rtnetlink::Error::NetlinkError(message) => message.to_io().kind(),
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("link {name}: cannot {what}: {e}"))
}
