//! A thread that watches the resource's address and link over rtnetlink multicast (RTNLGRP_LINK,
//! IPV4_IFADDR, IPV6_IFADDR) and calls `Host::report_failure` the moment the address is deleted,
//! the link loses carrier or goes away, instead of waiting for the next poll. One report, then it
//! ends (the restart's online starts a new one). Stopped and joined when dropped, so it never uses
//! `host` after close. Not the health checks themselves (lib.rs).

use crate::netlink::address_of;
use futures::StreamExt;
use keelson_plugin::Host;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::MulticastGroup;
use std::io;
use std::net::IpAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long the thread may take to subscribe.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the watcher guards: this address/prefix on this link.
#[derive(Debug, Clone)]
pub struct Watched {
    pub index: u32,
    pub link: String,
    pub addr: IpAddr,
    pub prefix: u8,
}

/// The running watcher thread.
pub struct Watcher {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts the thread and returns once it is subscribed (so nothing after this call is missed).
    pub fn start(watched: Watched, host: Host) -> io::Result<Watcher> {
        let (stop, stopped) = oneshot::channel();
        let (ready, subscribed) = mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("ip-watch".into())
            .spawn(move || run(watched, host, stopped, ready))?;
        let watcher = Watcher {
            stop: Some(stop),
            thread: Some(thread),
        };
        match subscribed.recv_timeout(SUBSCRIBE_TIMEOUT) {
            Ok(Ok(())) => Ok(watcher),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the netlink watcher did not subscribe within {SUBSCRIBE_TIMEOUT:?}"),
            )),
        }
    }

    /// Whether the thread still watches (it ends after its report).
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // Fails only when the thread has already ended; the join is what matters.
            let _already_ended = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _no_panic_to_report = thread.join();
        }
    }
}

fn run(
    watched: Watched,
    host: Host,
    stopped: oneshot::Receiver<()>,
    ready: mpsc::Sender<io::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            // The receiver may have given up waiting; then nobody needs the answer.
            let _nobody_waits = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(watch(watched, host, stopped, ready));
}

async fn watch(
    watched: Watched,
    host: Host,
    mut stopped: oneshot::Receiver<()>,
    ready: mpsc::Sender<io::Result<()>>,
) {
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ];
    let (connection, _handle, mut messages) = match rtnetlink::new_multicast_connection(&groups) {
        Ok(c) => c,
        Err(e) => {
            let e = io::Error::new(e.kind(), format!("cannot subscribe to rtnetlink: {e}"));
            let _nobody_waits = ready.send(Err(e));
            return;
        }
    };
    let task = tokio::spawn(connection);
    let _nobody_waits = ready.send(Ok(()));
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            message = messages.next() => {
                let Some((message, _)) = message else {
                    host.warn("the netlink watcher's socket closed; the polls still check the address");
                    break;
                };
                if let NetlinkPayload::InnerMessage(inner) = message.payload {
                    if let Some(failure) = failure(&watched, inner) {
                        host.report_failure(&failure);
                        break;
                    }
                }
            }
        }
    }
    task.abort();
}

/// What a notification means for the watched address, if it is a failure.
fn failure(watched: &Watched, message: RouteNetlinkMessage) -> Option<String> {
    match message {
        RouteNetlinkMessage::DelAddress(address) => {
            let entry = address_of(address)?;
            (entry.index == watched.index
                && entry.addr == watched.addr
                && entry.prefix == watched.prefix)
                .then(|| {
                    format!(
                        "address {}/{} was removed from {}",
                        watched.addr, watched.prefix, watched.link
                    )
                })
        }
        RouteNetlinkMessage::NewLink(link) if link.header.index == watched.index => {
            (!carrier(&link))
                .then(|| format!("{} lost its carrier (link down)", name(watched, &link)))
        }
        RouteNetlinkMessage::DelLink(link) if link.header.index == watched.index => {
            Some(format!("{} was removed", name(watched, &link)))
        }
        _ => None,
    }
}

fn carrier(link: &LinkMessage) -> bool {
    let flags = link.header.flags;
    flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp)
}

fn name(watched: &Watched, link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_else(|| watched.link.clone())
}
