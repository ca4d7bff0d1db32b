//! A TUN device: `/dev/net/tun` opened non-blocking and close-on-exec, attached to a named layer-3
//! interface with TUNSETIFF (IFF_TUN | IFF_NO_PI, so every read and write is exactly one IP packet
//! with no extra header). The interface lives as long as the open file: dropping the `TunDevice`
//! removes it. Not its configuration (address, MTU, up: the caller does that over netlink) and not
//! what the packets mean.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// The clone device every TUN interface is made from.
pub const CLONE_DEVICE: &str = "/dev/net/tun";
/// The longest interface name Linux accepts (IFNAMSIZ - 1 bytes).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// `struct ifreq` as TUNSETIFF reads it: the name, the flags, and the rest of the union unused.
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; IFREQ_REST],
}

const IFREQ_REST: usize =
    std::mem::size_of::<libc::ifreq>() - libc::IFNAMSIZ - std::mem::size_of::<libc::c_short>();

const _: () = assert!(std::mem::size_of::<IfReqFlags>() == std::mem::size_of::<libc::ifreq>());

/// An open TUN interface.
#[derive(Debug)]
pub struct TunDevice {
    file: File,
    name: String,
}

impl TunDevice {
    /// Creates (or attaches to) the TUN interface `name` in the calling thread's network namespace.
    /// Needs CAP_NET_ADMIN. The file is non-blocking: reads with no packet waiting fail with
    /// `WouldBlock`. Errors name the interface.
    pub fn open(name: &str) -> io::Result<TunDevice> {
        check_name(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(CLONE_DEVICE)
            .map_err(|e| named(name, &format!("open {CLONE_DEVICE}"), e))?;
        let mut request = IfReqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
            _rest: [0; IFREQ_REST],
        };
        for (slot, byte) in request.name.iter_mut().zip(name.bytes()) {
            *slot = byte as libc::c_char;
        }
        // SAFETY: `file` is an open /dev/net/tun descriptor and `request` is a live, writable,
        // correctly sized `struct ifreq` (checked at compile time) for the duration of the call;
        // TUNSETIFF reads the name and flags and writes back the name, nothing beyond it.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                libc::TUNSETIFF,
                &mut request as *mut IfReqFlags,
            )
        };
        if rc < 0 {
            return Err(named(name, "TUNSETIFF", io::Error::last_os_error()));
        }
        let name = name_from(&request.name);
        Ok(TunDevice { file, name })
    }

    /// The interface's name as the kernel knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one IP packet into `buf` (a packet longer than `buf` is cut short by the kernel, so
    /// give room for the MTU). `WouldBlock` when none is waiting.
    pub fn read_packet(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one IP packet; the kernel takes it as received on the interface.
    pub fn write_packet(&self, packet: &[u8]) -> io::Result<usize> {
        (&self.file).write(packet)
    }

    /// Registers the device with the current tokio runtime's reactor, for waiting on readiness.
    /// Must be called inside a tokio runtime.
    #[cfg(feature = "tokio")]
    pub fn into_async(self) -> io::Result<tokio::io::unix::AsyncFd<TunDevice>> {
        let name = self.name.clone();
        // SAFETY: `as_raw_fd` returns the descriptor of the private `file`, which is open from
        // `open` until this `TunDevice` is dropped and is never replaced or closed by anything
        // else; the AsyncFd owns the device, so the descriptor stays the same and open for the
        // AsyncFd's whole life.
        unsafe { tokio::io::unix::AsyncFd::register(self) }
            .map_err(|e| named(&name, "register with the tokio reactor", e.into()))
    }
}

impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for TunDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// 1..=15 bytes of printable ASCII other than '/', ':' and whitespace (what `dev_valid_name` and
/// the tools accept), refused with a line naming it.
fn check_name(name: &str) -> io::Result<()> {
    let bad = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TUN interface name {name:?} {why}"),
        ))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad(&format!("is longer than {MAX_NAME_LEN} bytes"));
    }
    if name == "." || name == ".." {
        return bad("is not a usable name");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
    {
        return bad("may only contain printable ASCII other than '/', ':' and spaces");
    }
    Ok(())
}

fn name_from(raw: &[libc::c_char; libc::IFNAMSIZ]) -> String {
    raw.iter()
        .take_while(|&&c| c != 0)
        .map(|&c| char::from(c as u8))
        .collect()
}

fn named(name: &str, what: &str, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("TUN interface {name}: {what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_naming_them() {
        for (name, why) in [
            ("", "is empty"),
            ("a-name-that-is-too-long", "longer than 15"),
            ("..", "not a usable name"),
            ("kee/son", "printable ASCII"),
            ("kee son", "printable ASCII"),
            ("keel\u{e9}", "printable ASCII"),
        ] {
            let err = TunDevice::open(name).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
            assert!(err.to_string().contains(why), "{name:?}: {err}");
            assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        }
    }

    fn in_ci() -> bool {
        std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
    }

    /// In a private network namespace of a thread of its own (gone with the thread), so the test
    /// never adds an interface to the machine's namespace.
    #[test]
    fn opens_a_named_non_blocking_tun_that_goes_away_with_the_file() {
        if crate::process::geteuid() != 0 {
            assert!(
                !in_ci(),
                "this test needs root for a TUN device, and CI=true makes that a failure"
            );
            eprintln!("skipping: needs root for a TUN device");
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET)");
            let tun = TunDevice::open("ktun0").expect("open ktun0");
            assert_eq!(tun.name(), "ktun0");
            let index = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
            assert!(index.contains("ktun0:"), "{index}");
            let mut buf = [0u8; 64];
            let err = tun.read_packet(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "non-blocking: {err}");
            drop(tun);
            let index = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
            assert!(!index.contains("ktun0:"), "removed with its file: {index}");
        })
        .join()
        .expect("the namespace thread panicked");
    }
}
