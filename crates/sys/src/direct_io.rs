//! Opening a block device (or file) for unbuffered, synchronous I/O (O_DIRECT | O_SYNC), so a write
//! is on the device when it returns and a read sees the device, not a page cache another host cannot
//! see. Not the I/O itself: callers use std's positioned reads and writes on the file, with buffers,
//! offsets and lengths aligned to `DIRECT_IO_ALIGN`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;

/// The alignment every buffer, offset and length must have for O_DIRECT (a 4 KiB page covers both
/// 512-byte and 4 KiB logical sectors).
pub const DIRECT_IO_ALIGN: usize = 4096;

/// Opens `path` read-write with O_DIRECT | O_SYNC. The error names the path.
pub fn open_direct_sync(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((OFlag::O_DIRECT | OFlag::O_SYNC).bits())
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("open {} with O_DIRECT|O_SYNC: {e}", path.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_an_error_naming_it() {
        let err = open_direct_sync(Path::new("/nonexistent/dev/x")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/dev/x"), "{err}");
    }
}
