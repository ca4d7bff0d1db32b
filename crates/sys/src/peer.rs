//! Who is on the other end of a Unix socket, beyond SO_PEERCRED: the peer's supplementary groups as
//! the kernel recorded them at connect time (SO_PEERGROUPS), so a membership check cannot race with
//! the peer exiting and its pid being reused. Not the decision who may connect (rcm's api.rs).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// `SO_PEERGROUPS` (Linux 4.13+). Its value is 59 on every architecture keelson builds for (x86_64,
/// aarch64, arm, riscv, powerpc, mips); only sparc (61) and parisc differ.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_PEERGROUPS: libc::c_int = 59;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PEERGROUPS: libc::c_int = 61;

/// Supplementary groups are at most NGROUPS_MAX (65536) entries.
const MAX_GROUPS: usize = 65536;

/// The supplementary group ids of the process that connected `socket`, as they were when it
/// called `connect` (the primary gid comes from SO_PEERCRED). Grows its buffer while the kernel says
/// ERANGE, up to NGROUPS_MAX.
pub fn peer_groups(socket: impl AsFd) -> io::Result<Vec<u32>> {
    let fd = socket.as_fd().as_raw_fd();
    let mut capacity = 64usize;
    loop {
        let mut groups = vec![0 as libc::gid_t; capacity];
        let mut len = (capacity * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is a live buffer of exactly `len` bytes; the kernel writes at most `len`
        // bytes into it and stores the size it needed (or wrote) back into `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(needed.min(capacity));
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) || capacity >= MAX_GROUPS {
            return Err(err);
        }
        capacity = needed.clamp(capacity * 2, MAX_GROUPS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socketpair_peer_has_this_process_groups() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ours: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        let mut theirs = peer_groups(&a).unwrap();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(theirs, ours);
    }

    #[test]
    fn a_socket_that_is_not_connected_is_an_error() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(peer_groups(&file).is_err());
    }
}
