//! Announcing an address so that neighbours' caches move to us at once: gratuitous ARP (a request
//! and a reply, as send_arp sends them) for IPv4, an unsolicited neighbour advertisement for IPv6,
//! sent GratuitousCount times GratuitousIntervalMs apart: the first round before online returns,
//! the rest from a thread of its own that offline and close stop. Not duplicate detection
//! (probe.rs).

use crate::frames::{self, Mac};
use keelson_plugin::Host;
use keelson_sys::packet::{PacketSocket, ETH_P_ARP, ETH_P_IPV6};
use std::io;
use std::net::IpAddr;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// The frames of one announcement round and the socket they go out on.
pub struct Announcement {
    socket: PacketSocket,
    frames: Vec<Vec<u8>>,
}

impl Announcement {
    /// The announcement of `address` at `mac` on link `ifindex`.
    pub fn new(ifindex: u32, mac: &Mac, address: IpAddr) -> io::Result<Announcement> {
        let (ethertype, frames) = match address {
            IpAddr::V4(v4) => (ETH_P_ARP, frames::gratuitous_arp(mac, v4).to_vec()),
            IpAddr::V6(v6) => (ETH_P_IPV6, vec![frames::unsolicited_na(mac, v6)]),
        };
        let socket = PacketSocket::sender(ifindex, ethertype)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open a packet socket: {e}")))?;
        Ok(Announcement { socket, frames })
    }

    /// Sends one round.
    pub fn send(&self) -> io::Result<()> {
        for frame in &self.frames {
            self.socket.send(frame).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot send an announcement: {e}"))
            })?;
        }
        Ok(())
    }
}

/// The thread sending the remaining rounds. Stopped and joined when dropped.
pub struct Announcer {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Announcer {
    /// Sends `rounds` more rounds of `announcement`, `every` apart (the first after `every`),
    /// logging a failed send as a warning and stopping there.
    pub fn start(
        announcement: Announcement,
        rounds: u32,
        every: Duration,
        host: Host,
    ) -> io::Result<Announcer> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ip-announce".into())
            .spawn(move || {
                for _ in 0..rounds {
                    if !matches!(stopped.recv_timeout(every), Err(RecvTimeoutError::Timeout)) {
                        return;
                    }
                    if let Err(e) = announcement.send() {
                        host.warn(&e.to_string());
                        return;
                    }
                }
            })?;
        Ok(Announcer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        // A send fails only when the thread has already ended; the join is what matters.
        let _already_ended = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _no_panic_to_report = thread.join();
        }
    }
}
