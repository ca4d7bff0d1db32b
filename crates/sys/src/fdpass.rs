//! Sending and receiving file descriptors (SCM_RIGHTS) alongside bytes on a Unix stream socket. Not
//! framing: callers pair each received fd with the frame that announced it.

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Sends `bytes` with `fd` attached to their first byte. Returns how many bytes were sent; the caller
/// sends any rest with plain writes. Non-blocking sockets may return `WouldBlock` (nothing sent).
pub fn send_with_fd(sock: impl AsFd, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<usize> {
    let sock = sock.as_fd().as_raw_fd();
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(bytes)];
    loop {
        match sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives bytes into `buf` and any file descriptors sent with them (close-on-exec). `Ok((0, _))`
/// is end of stream.
pub fn recv_with_fds(sock: impl AsFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let sock = sock.as_fd().as_raw_fd();
    let mut space = nix::cmsg_space!([RawFd; 8]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(msg) => break msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    // nix reports a truncated control buffer as ENOBUFS; the usual cause is that this process is at
    // its open-file limit, so the kernel could not install a passed descriptor.
    let cmsgs = msg.cmsgs().map_err(|_| {
        io::Error::other("a passed file descriptor was dropped (open-file limit reached?)")
    })?;
    for cmsg in cmsgs {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for fd in raw {
                // SAFETY: the kernel just installed `fd` in our table for us; nobody else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "control message truncated",
        ));
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn an_fd_crosses_a_socket_and_still_works() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut x, y) = UnixStream::pair().unwrap();
        assert_eq!(send_with_fd(&a, b"hello", y.as_fd()).unwrap(), 5);
        drop(y);
        let mut buf = [0u8; 16];
        let (n, mut fds) = recv_with_fds(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        let mut y2 = UnixStream::from(fds.pop().unwrap());
        y2.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        x.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    }
}
