//! One UDP socket per local cluster interface address, bound to that address and the NetFT port,
//! non-blocking under tokio: receive datagrams with the address they came from, send without ever
//! waiting. Not what the datagrams mean (detector.rs).

use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::UdpSocket;

/// Room for any datagram a peer may send: larger than a heartbeat or the largest frame, so that an
/// oversized one is seen (and refused) as oversized rather than silently cut to the right length.
pub const RECEIVE_BUFFER: usize = crate::frame::MAX_LEN + 1024;

/// A socket bound to one local interface address.
#[derive(Debug)]
pub struct HeartbeatSocket {
    pub local: IpAddr,
    socket: UdpSocket,
}

impl HeartbeatSocket {
    /// Binds `local:port`; the error names the address.
    pub async fn bind(local: IpAddr, port: u16) -> io::Result<Self> {
        let addr = SocketAddr::new(local, port);
        let socket = UdpSocket::bind(addr).await.map_err(|e| {
            io::Error::new(e.kind(), format!("cannot bind NetFT socket {addr}: {e}"))
        })?;
        Ok(HeartbeatSocket { local, socket })
    }

    /// Sends one datagram now or fails (a full send buffer is a failure, not a wait).
    pub fn send_now(&self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        let sent = self.socket.try_send_to(datagram, to)?;
        if sent != datagram.len() {
            return Err(io::Error::other(format!(
                "sent {sent} of {} bytes",
                datagram.len()
            )));
        }
        Ok(())
    }

    /// Waits for the next datagram.
    pub async fn receive(&self) -> io::Result<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; RECEIVE_BUFFER];
        let (len, from) = self.socket.recv_from(&mut buf).await?;
        // A copy of the right size, so a queued datagram does not hold the whole buffer.
        Ok((buf[..len].to_vec(), from))
    }
}
