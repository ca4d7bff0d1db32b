//! Block-device primitives for the disk resource type: mount(2) and umount2(2) of a filesystem,
//! and the Linux block persistent-reservation ioctls (linux/pr.h: IOC_PR_REGISTER, IOC_PR_RESERVE,
//! IOC_PR_RELEASE, IOC_PR_PREEMPT). Not arbitration policy, option parsing or device I/O: the
//! caller decides when to reserve and mount, and passes flags it has parsed itself.

use nix::mount::{MntFlags, MsFlags};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Generic mount flags a caller may ask for (a subset of MS_*; the rest of an option string goes
/// to the filesystem as its data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub read_only: bool,
    pub no_suid: bool,
    pub no_dev: bool,
    pub no_exec: bool,
    pub synchronous: bool,
    pub no_atime: bool,
    pub relatime: bool,
    pub dirsync: bool,
}

impl MountFlags {
    fn ms(self) -> MsFlags {
        let pairs = [
            (self.read_only, MsFlags::MS_RDONLY),
            (self.no_suid, MsFlags::MS_NOSUID),
            (self.no_dev, MsFlags::MS_NODEV),
            (self.no_exec, MsFlags::MS_NOEXEC),
            (self.synchronous, MsFlags::MS_SYNCHRONOUS),
            (self.no_atime, MsFlags::MS_NOATIME),
            (self.relatime, MsFlags::MS_RELATIME),
            (self.dirsync, MsFlags::MS_DIRSYNC),
        ];
        pairs
            .iter()
            .filter(|(on, _)| *on)
            .fold(MsFlags::empty(), |acc, (_, f)| acc | *f)
    }
}

/// Mounts `source` (a block device) on `target` as `fstype` with `flags` and filesystem `data`
/// (e.g. "errors=remount-ro"; empty for none). The error names source and target.
pub fn mount(
    source: &Path,
    target: &Path,
    fstype: &str,
    flags: MountFlags,
    data: &str,
) -> io::Result<()> {
    let data = (!data.is_empty()).then_some(data);
    nix::mount::mount(Some(source), target, Some(fstype), flags.ms(), data).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "mount {} on {} (type {fstype}): {e}",
                source.display(),
                target.display()
            ),
        )
    })
}

/// Unmounts `target`; fails with EBUSY while something still uses it. The error names it.
pub fn unmount(target: &Path) -> io::Result<()> {
    umount_with(target, MntFlags::empty())
}

/// Detaches `target` at once (MNT_DETACH, a lazy unmount): it leaves the namespace now and the
/// filesystem is released when its last user goes. Does not wait for I/O.
pub fn detach(target: &Path) -> io::Result<()> {
    umount_with(target, MntFlags::MNT_DETACH)
}

fn umount_with(target: &Path, flags: MntFlags) -> io::Result<()> {
    nix::mount::umount2(target, flags).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("unmount {}: {e}", target.display()),
        )
    })
}

/// What a device answered to a persistent-reservation request.
#[derive(Debug, PartialEq, Eq)]
pub enum PrOutcome {
    /// The request was carried out.
    Done,
    /// The device has no persistent reservations (ENOTTY, EOPNOTSUPP, EINVAL: a loop device).
    Unsupported,
    /// The device refused: another initiator holds the reservation (a SCSI reservation conflict,
    /// returned by the kernel as a positive SCSI status or as EBUSY).
    Conflict,
}

/// PR_WRITE_EXCLUSIVE of linux/pr.h: only the holder writes, anyone reads.
pub const PR_WRITE_EXCLUSIVE: u32 = 1;

#[repr(C)]
struct PrRegistration {
    old_key: u64,
    new_key: u64,
    flags: u32,
    pad: u32,
}

#[repr(C)]
struct PrReservation {
    key: u64,
    kind: u32,
    flags: u32,
}

#[repr(C)]
struct PrPreempt {
    old_key: u64,
    new_key: u64,
    kind: u32,
    flags: u32,
}

/// _IOW('p', nr, size) on the generic Linux ioctl encoding (x86, arm, riscv).
const fn pr_ioctl(nr: u64, size: usize) -> u64 {
    (1 << 30) | ((size as u64) << 16) | ((b'p' as u64) << 8) | nr
}

const IOC_PR_REGISTER: u64 = pr_ioctl(200, std::mem::size_of::<PrRegistration>());
const IOC_PR_RESERVE: u64 = pr_ioctl(201, std::mem::size_of::<PrReservation>());
const IOC_PR_RELEASE: u64 = pr_ioctl(202, std::mem::size_of::<PrReservation>());
const IOC_PR_PREEMPT: u64 = pr_ioctl(203, std::mem::size_of::<PrPreempt>());

/// Registers `key` for this initiator on `device` (IOC_PR_REGISTER, ignoring an existing key).
pub fn pr_register(device: &File, key: u64) -> io::Result<PrOutcome> {
    let mut arg = PrRegistration {
        old_key: 0,
        new_key: key,
        flags: 1, // PR_FL_IGNORE_KEY
        pad: 0,
    };
    pr_call(device, IOC_PR_REGISTER, &mut arg, "IOC_PR_REGISTER")
}

/// Takes a write-exclusive reservation with `key` (IOC_PR_RESERVE).
pub fn pr_reserve(device: &File, key: u64) -> io::Result<PrOutcome> {
    let mut arg = PrReservation {
        key,
        kind: PR_WRITE_EXCLUSIVE,
        flags: 0,
    };
    pr_call(device, IOC_PR_RESERVE, &mut arg, "IOC_PR_RESERVE")
}

/// Releases the write-exclusive reservation held with `key` (IOC_PR_RELEASE).
pub fn pr_release(device: &File, key: u64) -> io::Result<PrOutcome> {
    let mut arg = PrReservation {
        key,
        kind: PR_WRITE_EXCLUSIVE,
        flags: 0,
    };
    pr_call(device, IOC_PR_RELEASE, &mut arg, "IOC_PR_RELEASE")
}

/// Takes the reservation over from `old_key` (a holder whose lease ran out) with `key`
/// (IOC_PR_PREEMPT, write exclusive).
pub fn pr_preempt(device: &File, old_key: u64, key: u64) -> io::Result<PrOutcome> {
    let mut arg = PrPreempt {
        old_key,
        new_key: key,
        kind: PR_WRITE_EXCLUSIVE,
        flags: 0,
    };
    pr_call(device, IOC_PR_PREEMPT, &mut arg, "IOC_PR_PREEMPT")
}

fn pr_call<T>(device: &File, request: u64, arg: &mut T, name: &str) -> io::Result<PrOutcome> {
    // SAFETY: `device` is an open descriptor for the call's duration; `arg` is a live, properly
    // sized #[repr(C)] struct of the layout linux/pr.h gives this request, which the kernel only
    // reads.
    let rc = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            request as libc::Ioctl,
            arg as *mut T as *mut libc::c_void,
        )
    };
    if rc == 0 {
        return Ok(PrOutcome::Done);
    }
    if rc > 0 {
        return Ok(PrOutcome::Conflict);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS) => {
            Ok(PrOutcome::Unsupported)
        }
        Some(libc::EBUSY) => Ok(PrOutcome::Conflict),
        _ => Err(io::Error::new(err.kind(), format!("{name}: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ioctl_numbers_are_those_of_linux_pr_h() {
        // From linux/pr.h on x86_64: _IOW('p', 200, struct pr_registration) and so on.
        assert_eq!(IOC_PR_REGISTER, 0x401870c8);
        assert_eq!(IOC_PR_RESERVE, 0x401070c9);
        assert_eq!(IOC_PR_RELEASE, 0x401070ca);
        assert_eq!(IOC_PR_PREEMPT, 0x401870cb);
    }

    #[test]
    fn a_regular_file_has_no_persistent_reservations() {
        let file = tempfile_in_tmp();
        assert_eq!(pr_register(&file, 7).unwrap(), PrOutcome::Unsupported);
    }

    #[test]
    fn unmounting_what_is_not_mounted_is_an_error_naming_it() {
        let err = unmount(Path::new("/nonexistent/keelson-mnt")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/keelson-mnt"),
            "{err}"
        );
    }

    fn tempfile_in_tmp() -> File {
        let path = std::env::temp_dir().join(format!("keelson-pr-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
