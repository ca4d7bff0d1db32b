//! IPv4 duplicate address detection (RFC 5227's ARP probe): ask the link who has the address,
//! with sender 0.0.0.0 so no cache learns anything, and listen for any other host that answers or
//! announces it. Used before online (a conflict refuses it) and by IsAlive. Not IPv6 (the kernel's
//! DAD does that) and not the socket itself (keelson_sys::packet).

use crate::frames::{self, Mac};
use keelson_sys::packet::{PacketSocket, ETH_P_ARP};
use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Probes sent within one wait: one at the start, one halfway, in case the first is lost.
const PROBES: u32 = 2;

/// Probes for `address` on link `ifindex` (our MAC `mac`) and listens for `wait`: the MAC of
/// another host using the address, or None when none answered in time.
pub fn arp_conflict(
    ifindex: u32,
    mac: &Mac,
    address: Ipv4Addr,
    wait: Duration,
) -> io::Result<Option<Mac>> {
    let socket = PacketSocket::open(ifindex, ETH_P_ARP)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open an ARP socket: {e}")))?;
    let probe = frames::arp_probe(mac, address);
    let start = Instant::now();
    let mut buf = [0u8; 128];
    for n in 0..PROBES {
        socket
            .send(&probe)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot send an ARP probe: {e}")))?;
        let until = start + wait * (n + 1) / PROBES;
        if let Some(other) = listen(&socket, &mut buf, address, mac, until)? {
            return Ok(Some(other));
        }
    }
    Ok(None)
}

/// Reads ARP frames until `until`: the first that shows another host using `address`.
fn listen(
    socket: &PacketSocket,
    buf: &mut [u8],
    address: Ipv4Addr,
    mac: &Mac,
    until: Instant,
) -> io::Result<Option<Mac>> {
    // Bounded in time by `until` and in count by what the link can deliver in that time.
    while let Some(len) = socket.recv_until(buf, until)? {
        let Some(packet) = frames::parse_arp(&buf[..len]) else {
            continue;
        };
        if frames::shows_conflict(&packet, address, mac) {
            return Ok(Some(packet.sender_mac));
        }
    }
    Ok(None)
}
