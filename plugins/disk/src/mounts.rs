//! What is mounted where, from /proc/self/mountinfo (the host's mount namespace, which is the
//! node's): the topmost mount on a path, with its device number and filesystem type. Not mounting
//! (keelson_sys::blockdev).

use std::path::Path;

/// One line of mountinfo, the fields the disk type needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub major: u32,
    pub minor: u32,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

/// The topmost mount on `mount_point` in `mountinfo`, if any.
pub fn mount_on(mountinfo: &str, mount_point: &Path) -> Option<MountEntry> {
    let wanted = mount_point.to_string_lossy();
    mountinfo
        .lines()
        .rev()
        .filter_map(parse_line)
        .find(|m| m.mount_point == wanted)
}

/// The topmost mount on `mount_point` in this process's mount namespace.
pub fn current_mount_on(mount_point: &Path) -> Result<Option<MountEntry>, String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    Ok(mount_on(&text, mount_point))
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let (major, minor) = fields.get(2)?.split_once(':')?;
    let mut tail = right.split(' ');
    Some(MountEntry {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        mount_point: unescape(fields.get(4)?),
        fstype: tail.next()?.to_string(),
        source: unescape(tail.next()?),
    })
}

fn unescape(field: &str) -> String {
    keelson_sys::detached::cgroup::unescape_octal(field)
}

/// (major, minor) of a device number as Linux encodes it.
pub fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
98 22 7:3 / /mnt/data rw,relatime - ext4 /dev/loop3 rw
99 22 0:50 / /mnt/my\\040disk rw - tmpfs tmpfs rw
100 98 7:4 / /mnt/data rw - xfs /dev/loop4 rw
";

    #[test]
    fn the_topmost_mount_on_a_path_wins() {
        let m = mount_on(SAMPLE, Path::new("/mnt/data")).unwrap();
        assert_eq!((m.major, m.minor, m.fstype.as_str()), (7, 4, "xfs"));
        assert_eq!(m.source, "/dev/loop4");
        assert!(mount_on(SAMPLE, Path::new("/mnt")).is_none());
    }

    #[test]
    fn escaped_spaces_are_read_back() {
        let m = mount_on(SAMPLE, Path::new("/mnt/my disk")).unwrap();
        assert_eq!(m.fstype, "tmpfs");
    }

    #[test]
    fn device_numbers_split_as_the_kernel_encodes_them() {
        assert_eq!(split_dev(0x0703), (7, 3));
        assert_eq!(split_dev(0x0011_0305), (259, 0x105));
    }
}
