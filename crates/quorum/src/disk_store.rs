//! The disk witness's voter store: a redb storage backend over the block device, so the witness
//! voter's raft store (keelson-raft's tables) lives on the disk witness itself, past the lease. Layout:
//! block 0 untouched, block 1 the lease (disk_witness.rs), block 2 this store's header (`magic
//! "KLSNWST1" | logical length u64`), the database from `STORE_OFFSET` (1 MiB) to the end of the
//! device. Every read and write is O_DIRECT | O_SYNC and block-aligned (partial blocks are read,
//! patched and written back), so a write is durable when it returns and `sync_data` has nothing left
//! to do. Not the lease and not when the store may be opened (host.rs, under a held lease).

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use keelson_sys::direct_io::{open_direct_sync, DIRECT_IO_ALIGN};
use redb::StorageBackend;

use crate::disk_witness::{device_size, AlignedBuf};

/// Where the store's header block is.
pub const STORE_HEADER_OFFSET: u64 = 8192;
/// Where the database starts.
pub const STORE_OFFSET: u64 = 1 << 20;
/// The smallest device that can hold a witness voter's store.
pub const MIN_STORE_DEVICE_BYTES: u64 = 64 << 20;

const STORE_MAGIC: &[u8; 8] = b"KLSNWST1";
const ALIGN: u64 = DIRECT_IO_ALIGN as u64;

/// redb's storage on the disk witness.
pub struct BlockBackend {
    device: PathBuf,
    file: File,
    capacity: u64,
    len: Mutex<u64>,
    closed: Arc<AtomicBool>,
}

impl fmt::Debug for BlockBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockBackend({})", self.device.display())
    }
}

impl Drop for BlockBackend {
    fn drop(&mut self) {
        // The file is closed once this returns (redb drops its backend last).
        self.closed.store(true, Ordering::SeqCst);
    }
}

fn named(device: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("disk witness store on {}: {what}: {e}", device.display()),
    )
}

impl BlockBackend {
    /// The store on `device`; `closed` turns true when the backend (and so the database) is gone.
    /// A header that is neither zero nor ours is refused: the device holds something else.
    pub fn open(device: &Path, closed: Arc<AtomicBool>) -> io::Result<BlockBackend> {
        let file = open_direct_sync(device)?;
        let size = device_size(&file).map_err(|e| named(device, "size", e))?;
        if size < MIN_STORE_DEVICE_BYTES {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "it has {size} bytes; a disk witness needs at least {MIN_STORE_DEVICE_BYTES}"
                ),
            );
            return Err(named(device, "size", e));
        }
        let mut header = AlignedBuf::new(DIRECT_IO_ALIGN);
        file.read_exact_at(header.bytes(), STORE_HEADER_OFFSET)
            .map_err(|e| named(device, "read header", e))?;
        let len = parse_header(header.bytes()).map_err(|e| named(device, "header", e))?;
        Ok(BlockBackend {
            device: device.to_path_buf(),
            file,
            capacity: size - STORE_OFFSET,
            len: Mutex::new(len),
            closed,
        })
    }

    fn write_header(&self, len: u64) -> io::Result<()> {
        let mut header = AlignedBuf::new(DIRECT_IO_ALIGN);
        header.bytes()[..8].copy_from_slice(STORE_MAGIC);
        header.bytes()[8..16].copy_from_slice(&len.to_be_bytes());
        self.file
            .write_all_at(header.bytes(), STORE_HEADER_OFFSET)
            .map_err(|e| named(&self.device, "write header", e))
    }

    /// The aligned span `[start, end)` covering `offset..offset + len`.
    fn span(offset: u64, len: usize) -> (u64, u64) {
        let start = offset / ALIGN * ALIGN;
        let end = (offset + len as u64).div_ceil(ALIGN) * ALIGN;
        (start, end)
    }

    fn check_room(&self, end: u64) -> io::Result<()> {
        if end > self.capacity {
            let e = io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the store needs {end} bytes, the device has room for {}",
                    self.capacity
                ),
            );
            return Err(named(&self.device, "grow", e));
        }
        Ok(())
    }
}

fn parse_header(bytes: &[u8]) -> io::Result<u64> {
    if bytes[..16].iter().all(|b| *b == 0) {
        return Ok(0);
    }
    if &bytes[..8] != STORE_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "block 2 holds something that is not a keelson witness store",
        ));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    Ok(u64::from_be_bytes(len))
}

impl StorageBackend for BlockBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(*self.len.lock().expect("the length lock is never poisoned"))
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let (start, end) = Self::span(offset, len);
        self.check_room(end)?;
        let mut buf = AlignedBuf::new((end - start) as usize);
        self.file
            .read_exact_at(buf.bytes(), STORE_OFFSET + start)
            .map_err(|e| named(&self.device, "read", e))?;
        let from = (offset - start) as usize;
        Ok(buf.bytes()[from..from + len].to_vec())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_room(len)?;
        let mut current = self.len.lock().expect("the length lock is never poisoned");
        self.write_header(len)?;
        *current = len;
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        // O_SYNC: every write was on the device when it returned.
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let (start, end) = Self::span(offset, data.len());
        self.check_room(end)?;
        let mut buf = AlignedBuf::new((end - start) as usize);
        let from = (offset - start) as usize;
        if from != 0 || (end - start) as usize != data.len() {
            // Partial blocks at either end: keep what the device holds around the new bytes.
            self.file
                .read_exact_at(buf.bytes(), STORE_OFFSET + start)
                .map_err(|e| named(&self.device, "read for write", e))?;
        }
        buf.bytes()[from..from + data.len()].copy_from_slice(data);
        self.file
            .write_all_at(buf.bytes(), STORE_OFFSET + start)
            .map_err(|e| named(&self.device, "write", e))
    }
}
