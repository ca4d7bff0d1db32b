//! The device's reserved area: the last MiB of the block device, whose first 4 KiB sector holds
//! the lease record, read and written with O_DIRECT|O_SYNC so every node sees the device and not a
//! page cache; and the filesystem's size from its superblock, so a filesystem reaching into the
//! area is refused. Not the lease rules (lease.rs) and not deadlines (worker.rs): these calls block
//! as long as the device does.

use crate::record::{decode, LeaseRecord, Sector, RECORD_SIZE};
use keelson_sys::direct_io::{open_direct_sync, DIRECT_IO_ALIGN};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The size of the reserved area at the end of the device.
pub const RESERVED_BYTES: u64 = 1 << 20;

/// An open device and where its lease record lives.
#[derive(Clone, Debug)]
pub struct LeaseArea {
    pub device: PathBuf,
    file: Arc<File>,
    pub device_bytes: u64,
    record_at: u64,
}

impl LeaseArea {
    /// Opens `device` for direct synchronous I/O and finds its reserved area.
    pub fn open(device: &Path) -> Result<LeaseArea, String> {
        let mut file = open_direct_sync(device).map_err(|e| e.to_string())?;
        let device_bytes = file
            .seek(SeekFrom::End(0))
            .map_err(|e| format!("size of {}: {e}", device.display()))?;
        if device_bytes < 4 * RESERVED_BYTES {
            return Err(format!(
                "Device {} has {device_bytes} bytes: too small for a filesystem and the reserved last MiB",
                device.display()
            ));
        }
        Ok(LeaseArea {
            device: device.to_path_buf(),
            file: Arc::new(file),
            device_bytes,
            record_at: device_bytes - RESERVED_BYTES,
        })
    }

    /// The open device, for the reservation ioctls.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads the lease sector.
    pub fn read(&self) -> Result<Sector, String> {
        let mut buf = AlignedSector::new();
        self.file
            .read_exact_at(buf.bytes(), self.record_at)
            .map_err(|e| format!("read lease of {}: {e}", self.device.display()))?;
        Ok(decode(buf.bytes()))
    }

    /// Writes `record` to the lease sector; on the device when this returns (O_SYNC).
    pub fn write(&self, record: &LeaseRecord) -> Result<(), String> {
        let mut buf = AlignedSector::new();
        buf.bytes().copy_from_slice(&record.encode());
        self.file
            .write_all_at(buf.bytes(), self.record_at)
            .map_err(|e| format!("write lease of {}: {e}", self.device.display()))
    }

    /// The filesystem's size in bytes from its superblock (ext2/3/4, xfs), None for a device that
    /// holds neither (blank, or another filesystem).
    pub fn filesystem_bytes(&self) -> Result<Option<u64>, String> {
        let mut head = AlignedSector::new();
        self.file
            .read_exact_at(head.bytes(), 0)
            .map_err(|e| format!("read superblock of {}: {e}", self.device.display()))?;
        Ok(filesystem_bytes(head.bytes()))
    }
}

/// The filesystem's size from the device's first 4 KiB.
pub fn filesystem_bytes(head: &[u8]) -> Option<u64> {
    ext_bytes(head).or_else(|| xfs_bytes(head))
}

fn ext_bytes(head: &[u8]) -> Option<u64> {
    let sb = &head[1024..2048];
    if u16::from_le_bytes([sb[0x38], sb[0x39]]) != 0xEF53 {
        return None;
    }
    let le32 = |at: usize| u64::from(u32::from_le_bytes(sb[at..at + 4].try_into().expect("4")));
    let incompat = le32(0x60);
    let mut blocks = le32(0x04);
    if incompat & 0x80 != 0 {
        blocks |= le32(0x150) << 32; // INCOMPAT_64BIT: s_blocks_count_hi
    }
    let block_size = 1024u64 << le32(0x18).min(16);
    Some(blocks * block_size)
}

fn xfs_bytes(head: &[u8]) -> Option<u64> {
    if &head[0..4] != b"XFSB" {
        return None;
    }
    let block_size = u64::from(u32::from_be_bytes(head[4..8].try_into().expect("4")));
    let blocks = u64::from_be_bytes(head[8..16].try_into().expect("8"));
    Some(blocks * block_size)
}

/// Checks that a filesystem of `fs_bytes` leaves the reserved last MiB of `device_bytes` alone.
pub fn check_leaves_reserved_area(
    device: &Path,
    fs_bytes: u64,
    device_bytes: u64,
) -> Result<(), String> {
    let limit = device_bytes.saturating_sub(RESERVED_BYTES);
    if fs_bytes > limit {
        return Err(format!(
            "Device {}: its filesystem is {fs_bytes} bytes and reaches into the reserved last MiB \
             (the lease area, from byte {limit}); make it at most {limit} bytes",
            device.display()
        ));
    }
    Ok(())
}

/// One sector-sized, sector-aligned buffer (O_DIRECT needs both), without unsafe code.
struct AlignedSector {
    storage: Vec<u8>,
    at: usize,
}

impl AlignedSector {
    fn new() -> AlignedSector {
        let storage = vec![0u8; RECORD_SIZE + DIRECT_IO_ALIGN];
        let at = storage.as_ptr().align_offset(DIRECT_IO_ALIGN);
        AlignedSector { storage, at }
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.storage[self.at..self.at + RECORD_SIZE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ext4_superblock_gives_blocks_times_block_size() {
        let mut head = vec![0u8; 4096];
        head[1024 + 0x38..1024 + 0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        head[1024 + 0x04..1024 + 0x08].copy_from_slice(&1000u32.to_le_bytes());
        head[1024 + 0x18..1024 + 0x1c].copy_from_slice(&2u32.to_le_bytes()); // 4 KiB blocks
        assert_eq!(filesystem_bytes(&head), Some(4_096_000));
        assert_eq!(filesystem_bytes(&[0u8; 4096]), None);
    }

    #[test]
    fn a_filesystem_reaching_into_the_last_mib_is_refused() {
        let dev = Path::new("/dev/loop9");
        let size = 64 << 20;
        assert!(check_leaves_reserved_area(dev, size - RESERVED_BYTES, size).is_ok());
        let err = check_leaves_reserved_area(dev, size, size).unwrap_err();
        assert!(
            err.contains("/dev/loop9") && err.contains("reserved last MiB"),
            "{err}"
        );
    }

    #[test]
    fn a_record_goes_to_the_last_mib_of_a_file_and_back() {
        let path = std::env::temp_dir().join(format!("keelson-area-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        file.set_len(8 << 20).unwrap();
        drop(file);
        let area = LeaseArea::open(&path);
        let result = area.map(|area| {
            let rec = crate::record::LeaseRecord {
                state: crate::record::LeaseState::Held,
                holder: "n1".into(),
                incarnation: 1,
                generation: 1,
                renewals: 0,
                timestamp_ms: 5,
                lease_ms: 100,
            };
            assert_eq!(area.read().unwrap(), Sector::Blank);
            area.write(&rec).unwrap();
            assert_eq!(area.read().unwrap(), Sector::Record(rec));
        });
        let tail = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // tmpfs has no O_DIRECT: then there is nothing to check here (t33 runs it on a loop device).
        if let Err(e) = result {
            assert!(e.contains("O_DIRECT"), "{e}");
            return;
        }
        assert_eq!(&tail[(7 << 20)..(7 << 20) + 8], b"KLSNDLS1");
    }
}
