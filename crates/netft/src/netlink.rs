//! Watches local links and addresses over rtnetlink (RTNLGRP_LINK, IPV4_IFADDR, IPV6_IFADDR) and
//! turns each change into a detector event, so a link that loses carrier is noticed at once rather
//! than after Threshold missed heartbeats. Starts with a dump of the current state. Not a
//! configuration tool: it never changes links or addresses.

use crate::detector::Event;
use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::address::AddressMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::MulticastGroup;
use std::io;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the initial dump of links and addresses may take.
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Subscribes, returns the current state of every link and address as events, and from a task of
/// its own reports every later change into `events` until it is closed. Must run inside a tokio
/// runtime; the netlink socket belongs to the calling thread's network namespace.
pub async fn watch(events: mpsc::Sender<Event>) -> io::Result<Vec<Event>> {
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ];
    let (connection, handle, messages) = rtnetlink::new_multicast_connection(&groups)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open rtnetlink socket: {e}")))?;
    tokio::spawn(connection);
    let initial = tokio::time::timeout(DUMP_TIMEOUT, dump(&handle))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("rtnetlink dump did not finish within {DUMP_TIMEOUT:?}"),
            )
        })??;
    tokio::spawn(forward(messages, events, handle));
    Ok(initial)
}

/// The current state of every link and address, as events.
async fn dump(handle: &rtnetlink::Handle) -> io::Result<Vec<Event>> {
    let mut initial = Vec::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await.map_err(dump_error("links"))? {
        initial.extend(link_event(&link, false));
    }
    let mut addresses = handle.address().get().execute();
    while let Some(address) = addresses
        .try_next()
        .await
        .map_err(dump_error("addresses"))?
    {
        initial.extend(address_event(&address, true));
    }
    Ok(initial)
}

fn dump_error(what: &'static str) -> impl Fn(rtnetlink::Error) -> io::Error {
    move |e| io::Error::other(format!("rtnetlink dump of {what} failed: {e}"))
}

/// Forwards multicast notifications until the detector side goes away. `_handle` keeps the
/// connection's request side alive for as long as the forwarding runs.
async fn forward<M>(mut messages: M, events: mpsc::Sender<Event>, _handle: rtnetlink::Handle)
where
    M: Stream<
            Item = (
                rtnetlink::packet_core::NetlinkMessage<RouteNetlinkMessage>,
                rtnetlink::sys::SocketAddr,
            ),
        > + Unpin,
{
    while let Some((message, _)) = messages.next().await {
        let NetlinkPayload::InnerMessage(inner) = message.payload else {
            continue;
        };
        let event = match inner {
            RouteNetlinkMessage::NewLink(link) => link_event(&link, false),
            RouteNetlinkMessage::DelLink(link) => link_event(&link, true),
            RouteNetlinkMessage::NewAddress(address) => address_event(&address, true),
            RouteNetlinkMessage::DelAddress(address) => address_event(&address, false),
            _ => None,
        };
        if let Some(event) = event {
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
}

/// A link's carrier: administratively up and with its lower layer up (IFF_UP and IFF_LOWER_UP).
fn link_event(link: &LinkMessage, deleted: bool) -> Option<Event> {
    let adapter = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })?;
    let flags = link.header.flags;
    let carrier = !deleted && flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp);
    Some(Event::Link { adapter, carrier })
}

fn address_event(address: &AddressMessage, present: bool) -> Option<Event> {
    let addr = crate::interfaces::address_of(address)?;
    Some(Event::Address { addr, present })
}
