//! The disk witness: the signed lease record in one fixed 4 KiB block (`LEASE_OFFSET`) of a small
//! block device every node sees, read and written with O_DIRECT | O_SYNC so no node trusts a page
//! cache. A device has no exclusive create, so a claim is a delta lease (as sanlock's): read, check
//! the record is still the one the decision was made on, write ours, wait until every node that read
//! the old record before our write has had time to write its own (`3 × io_bound` after our read, where
//! `io_bound` bounds any node's read-to-write gap), read again: the claim is won only if our record is
//! still there. A node whose own read-to-write gap exceeded `io_bound` never counts its claim as won.
//! Not the decisions (lease.rs), and not the witness voter's store (disk_store.rs, past the lease).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keelson_raft::NodeId;
use keelson_sys::direct_io::{open_direct_sync, DIRECT_IO_ALIGN};

use crate::lease::{ClaimOutcome, RenewOutcome};
use crate::record::{LeaseRecord, WitnessKey, RECORD_LEN};
use crate::store::{LeaseStore, WitnessError};
use crate::timings::LeaseTimings;

/// Where the lease block starts on the device (block 0 is left alone: partition tables and
/// signatures live there).
pub const LEASE_OFFSET: u64 = 4096;
/// The smallest device accepted.
pub const MIN_DEVICE_BYTES: u64 = LEASE_OFFSET + DIRECT_IO_ALIGN as u64;

/// A disk witness, as one node uses it.
#[derive(Debug)]
pub struct DiskWitness {
    device: PathBuf,
    file: File,
    key: WitnessKey,
    me: NodeId,
    io_bound: Duration,
    name: String,
}

/// `len` bytes (a multiple of 4 KiB) at a 4 KiB-aligned address inside an ordinary vector (O_DIRECT
/// needs the alignment).
pub(crate) struct AlignedBuf {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub(crate) fn new(len: usize) -> AlignedBuf {
        let buf = vec![0u8; len + DIRECT_IO_ALIGN];
        let misalign = buf.as_ptr() as usize % DIRECT_IO_ALIGN;
        let start = (DIRECT_IO_ALIGN - misalign) % DIRECT_IO_ALIGN;
        AlignedBuf { buf, start, len }
    }

    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl DiskWitness {
    /// The witness on `device` for node `me`. `io_bound` (a sixth of the give-up time, so a claim
    /// takes half of it) bounds how long one node may take from reading the lease to writing its
    /// claim.
    pub fn open(
        device: &Path,
        key: WitnessKey,
        me: NodeId,
        timings: &LeaseTimings,
    ) -> Result<DiskWitness, WitnessError> {
        let name = format!("disk witness {}", device.display());
        let file =
            open_direct_sync(device).map_err(|e| WitnessError::io(&name, "open", device, e))?;
        let size = device_size(&file).map_err(|e| WitnessError::io(&name, "size", device, e))?;
        if size < MIN_DEVICE_BYTES {
            let message =
                format!("it has {size} bytes; a disk witness needs at least {MIN_DEVICE_BYTES}");
            return Err(WitnessError::invalid(&name, message));
        }
        Ok(DiskWitness {
            device: device.to_path_buf(),
            file,
            key,
            me,
            io_bound: Duration::from_millis(timings.give_up_ms / 6),
            name,
        })
    }

    fn write_record(&mut self, record: &LeaseRecord) -> Result<(), WitnessError> {
        let mut block = AlignedBuf::new(DIRECT_IO_ALIGN);
        block.bytes()[..RECORD_LEN].copy_from_slice(&record.encode(&self.key));
        self.file
            .write_all_at(block.bytes(), LEASE_OFFSET)
            .map_err(|e| WitnessError::io(&self.name, "write", &self.device, e))
    }
}

/// A block device's size (seek to its end; `metadata().len()` is 0 for devices).
pub(crate) fn device_size(file: &File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut handle = file;
    let size = handle.seek(SeekFrom::End(0))?;
    handle.seek(SeekFrom::Start(0))?;
    Ok(size)
}

impl LeaseStore for DiskWitness {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn read(&mut self) -> Result<Option<LeaseRecord>, WitnessError> {
        let mut block = AlignedBuf::new(DIRECT_IO_ALIGN);
        self.file
            .read_exact_at(block.bytes(), LEASE_OFFSET)
            .map_err(|e| WitnessError::io(&self.name, "read", &self.device, e))?;
        let bytes = &block.bytes()[..RECORD_LEN];
        if bytes.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        LeaseRecord::decode(bytes, &self.key)
            .map(Some)
            .map_err(|e| WitnessError::record(&self.name, &self.device, e))
    }

    fn claim(
        &mut self,
        previous: Option<&LeaseRecord>,
        record: &LeaseRecord,
    ) -> Result<ClaimOutcome, WitnessError> {
        let expected = previous.map_or(1, |p| p.generation + 1);
        if record.generation != expected || record.holder != self.me {
            let message = format!(
                "a claim by node {} must be for generation {expected}, not node {} generation {}",
                self.me, record.holder, record.generation
            );
            return Err(WitnessError::invalid(&self.name, message));
        }
        let read_at = Instant::now();
        let current = self.read()?;
        if current.as_ref() != previous {
            return Ok(ClaimOutcome::Lost(current));
        }
        self.write_record(record)?;
        let gap = read_at.elapsed();
        if gap > self.io_bound {
            let message = format!(
                "the claim of generation {} took {} ms from read to write (bound {} ms); it does not count",
                record.generation,
                gap.as_millis(),
                self.io_bound.as_millis()
            );
            return Err(WitnessError::invalid(&self.name, message));
        }
        // The delta lease's wait: the protocol's own delay, not a synchronisation shortcut.
        std::thread::sleep((read_at + 3 * self.io_bound).saturating_duration_since(Instant::now()));
        match self.read()? {
            Some(after) if after == *record => Ok(ClaimOutcome::Won),
            other => Ok(ClaimOutcome::Lost(other)),
        }
    }

    fn renew(&mut self, record: &LeaseRecord) -> Result<RenewOutcome, WitnessError> {
        match self.read()? {
            Some(c) if c.holder == record.holder && c.generation == record.generation => {}
            other => return Ok(RenewOutcome::Lost(other)),
        }
        self.write_record(record)?;
        Ok(RenewOutcome::Renewed)
    }
}
