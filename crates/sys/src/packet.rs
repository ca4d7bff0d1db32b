//! A raw link-layer (AF_PACKET, SOCK_RAW) socket bound to one interface and one EtherType: send
//! whole Ethernet frames and receive them with a deadline. A socket bound to one EtherType sees
//! only frames arriving at the interface, never frames this host sends. For ARP probes, gratuitous ARP and unsolicited neighbour advertisements.
//! Not what the frames mean (the caller builds and parses them) and not interface lookup.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86DD;

/// An AF_PACKET socket bound to an interface, seeing only frames of its EtherType.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    ethertype: u16,
}

impl PacketSocket {
    /// Opens a raw packet socket (close-on-exec) for `ethertype` bound to interface `ifindex`, in
    /// the calling thread's network namespace: it receives every arriving frame of that EtherType
    /// and sends frames. Needs CAP_NET_RAW.
    pub fn open(ifindex: u32, ethertype: u16) -> io::Result<PacketSocket> {
        PacketSocket::open_as(ifindex, ethertype, ethertype)
    }

    /// As `open`, but a socket that only sends frames of `ethertype` and receives nothing (so no
    /// traffic queues up on it).
    pub fn sender(ifindex: u32, ethertype: u16) -> io::Result<PacketSocket> {
        PacketSocket::open_as(ifindex, ethertype, 0)
    }

    fn open_as(ifindex: u32, ethertype: u16, listen: u16) -> io::Result<PacketSocket> {
        let ifindex = i32::try_from(ifindex)
            .map_err(|_| io::Error::other(format!("interface index {ifindex} out of range")))?;
        let protocol = libc::c_int::from(listen.to_be());
        // SAFETY: plain socket(2) call with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor this function owns and nothing else refers to.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let socket = PacketSocket {
            fd,
            ifindex,
            ethertype,
        };
        let mut address = socket.link_address(&[0; 6]);
        address.sll_protocol = listen.to_be();
        // SAFETY: `address` is a live, initialised sockaddr_ll and the length passed is its size;
        // bind only reads it.
        let rc = unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                (&address as *const libc::sockaddr_ll).cast(),
                sockaddr_ll_len(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    fn link_address(&self, mac: &[u8; 6]) -> libc::sockaddr_ll {
        let mut addr = [0u8; 8];
        addr[..6].copy_from_slice(mac);
        libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as libc::c_ushort,
            sll_protocol: self.ethertype.to_be(),
            sll_ifindex: self.ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr: addr,
        }
    }

    /// Sends one whole Ethernet frame (destination MAC in its first six bytes) out of the
    /// interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut destination = [0u8; 6];
        let head = frame
            .get(..6)
            .ok_or_else(|| io::Error::other("frame shorter than an Ethernet header"))?;
        destination.copy_from_slice(head);
        let address = self.link_address(&destination);
        // SAFETY: `frame` is a live buffer of `frame.len()` bytes and `address` a live sockaddr_ll
        // of the given size; sendto only reads both.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&address as *const libc::sockaddr_ll).cast(),
                sockaddr_ll_len(),
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        if sent as usize != frame.len() {
            return Err(io::Error::other(format!(
                "sent {sent} of {} bytes of a frame",
                frame.len()
            )));
        }
        Ok(())
    }

    /// Waits until a frame arrives or `deadline` passes: the frame (in `buf`), or None at the
    /// deadline: the frame's length (a longer frame is cut to `buf`). An interrupted wait is
    /// retried.
    pub fn recv_until(&self, buf: &mut [u8], deadline: Instant) -> io::Result<Option<usize>> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if !self.wait_readable(left.as_millis().clamp(1, i32::MAX as u128) as i32)? {
                continue;
            }
            return self.recv_now(buf).map(Some);
        }
    }

    fn wait_readable(&self, timeout_ms: libc::c_int) -> io::Result<bool> {
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, count 1; poll writes only its revents.
        let rc = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(false),
                _ => Err(e),
            };
        }
        Ok(rc > 0)
    }

    fn recv_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a live writable buffer of `buf.len()` bytes; recv writes within it.
        // DONTWAIT: poll said readable, and another reader must not make this block.
        let got = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(got as usize)
    }
}

fn sockaddr_ll_len() -> libc::socklen_t {
    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_frame_sent_on_loopback_arrives_once_and_a_quiet_socket_times_out() {
        // Loopback is interface 1 in every network namespace; raw sockets need CAP_NET_RAW.
        let socket = match PacketSocket::open(1, 0x88B5) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                assert!(!ci, "AF_PACKET needs CAP_NET_RAW and CI runs as root: {e}");
                eprintln!("skipped: AF_PACKET needs CAP_NET_RAW ({e})");
                return;
            }
            Err(e) => panic!("open a packet socket on lo: {e}"),
        };
        let mut buf = [0u8; 16];
        let quiet = socket
            .recv_until(&mut buf, Instant::now() + Duration::from_millis(20))
            .unwrap();
        assert_eq!(quiet, None);
        let listener = PacketSocket::open(1, 0x88B5).unwrap();
        let mut frame = vec![0u8; 60];
        frame[12..14].copy_from_slice(&0x88B5u16.to_be_bytes());
        frame[14..18].copy_from_slice(b"kpkt");
        frame[18..22].copy_from_slice(&std::process::id().to_be_bytes());
        socket.send(&frame).unwrap();
        // Loopback brings the frame back in once, to every socket of its EtherType; none sees
        // it leave.
        assert_eq!(tagged(&socket), 1);
        assert_eq!(tagged(&listener), 1);
    }

    /// How many test frames the socket receives within 300 ms.
    fn tagged(socket: &PacketSocket) -> usize {
        let mut buf = [0u8; 128];
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut seen = 0;
        while let Some(len) = socket.recv_until(&mut buf, deadline).unwrap() {
            if len >= 22
                && buf[14..18] == *b"kpkt"
                && buf[18..22] == std::process::id().to_be_bytes()
            {
                seen += 1;
            }
        }
        seen
    }
}
