//! The file-share witness: a directory every node reaches (NFS, SMB, a shared local directory in
//! tests) holding one signed lease record per generation, `lease.<generation>` (20 digits), and the
//! witness voter's raft store `raft.redb`. A claim of generation g is `link(2)` of a fully written,
//! fsynced temporary file to `lease.<g>`, which fails if that name exists, so of two nodes racing
//! for a generation exactly one gets it. A renewal or a release rewrites the holder's own
//! `lease.<g>` by write-temp + fsync + rename + fsync of the directory. Not the decisions of when to
//! claim or renew (lease.rs) and not the witness voter (host.rs).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use keelson_raft::NodeId;

use crate::lease::{ClaimOutcome, RenewOutcome};
use crate::record::{LeaseRecord, WitnessKey, RECORD_LEN};
use crate::store::{LeaseStore, WitnessError};

const LEASE_PREFIX: &str = "lease.";
const TEMP_PREFIX: &str = ".lease-tmp.";

/// A file-share witness, as one node uses it.
#[derive(Debug)]
pub struct FileWitness {
    dir: PathBuf,
    key: WitnessKey,
    me: NodeId,
    name: String,
    temp_seq: u64,
}

impl FileWitness {
    /// The witness in `dir`, which must be an existing directory, used by node `me`.
    pub fn open(dir: &Path, key: WitnessKey, me: NodeId) -> Result<FileWitness, WitnessError> {
        let name = format!("file-share witness {}", dir.display());
        let meta = fs::metadata(dir).map_err(|e| WitnessError::io(&name, "stat", dir, e))?;
        if !meta.is_dir() {
            return Err(WitnessError::invalid(&name, "it is not a directory"));
        }
        Ok(FileWitness {
            dir: dir.to_path_buf(),
            key,
            me,
            name,
            temp_seq: 0,
        })
    }

    /// The directory (the witness voter's store lives in it too).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lease_path(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("{LEASE_PREFIX}{generation:020}"))
    }

    /// Every generation that has a lease file, ascending.
    fn generations(&self) -> Result<Vec<u64>, WitnessError> {
        let io = |e| WitnessError::io(&self.name, "list", &self.dir, e);
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(LEASE_PREFIX)) else {
                continue;
            };
            if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let generation = digits.parse().map_err(|_| {
                let message =
                    format!("lease file {LEASE_PREFIX}{digits} names no valid generation");
                WitnessError::invalid(&self.name, message)
            })?;
            found.push(generation);
        }
        found.sort_unstable();
        Ok(found)
    }

    fn read_generation(&self, generation: u64) -> Result<LeaseRecord, WitnessError> {
        let path = self.lease_path(generation);
        let mut bytes = Vec::with_capacity(RECORD_LEN);
        File::open(&path)
            .and_then(|f| f.take(RECORD_LEN as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| WitnessError::io(&self.name, "read", &path, e))?;
        let record = LeaseRecord::decode(&bytes, &self.key)
            .map_err(|e| WitnessError::record(&self.name, &path, e))?;
        if record.generation != generation {
            let message = format!(
                "lease record {} says generation {}, not {generation}",
                path.display(),
                record.generation
            );
            return Err(WitnessError::invalid(&self.name, message));
        }
        Ok(record)
    }

    /// A fresh, fsynced temporary file holding `record`.
    fn write_temp(&mut self, record: &LeaseRecord) -> Result<PathBuf, WitnessError> {
        self.temp_seq += 1;
        let path = self.dir.join(format!(
            "{TEMP_PREFIX}{}.{}.{}.{}",
            self.me,
            record.generation,
            std::process::id(),
            self.temp_seq
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(&record.encode(&self.key))?;
                f.sync_all()
            });
        match written {
            Ok(()) => Ok(path),
            Err(e) => Err(self.discarding(&path, WitnessError::io(&self.name, "write", &path, e))),
        }
    }

    /// `error`, after removing the temporary file `temp`; a failed removal is added to the error.
    fn discarding(&self, temp: &Path, error: WitnessError) -> WitnessError {
        match fs::remove_file(temp) {
            Ok(()) => error,
            Err(e) if e.kind() == io::ErrorKind::NotFound => error,
            Err(e) => WitnessError::invalid(
                &self.name,
                format!(
                    "{error}; and the temporary file {} could not be removed: {e}",
                    temp.display()
                ),
            ),
        }
    }

    fn sync_dir(&self) -> Result<(), WitnessError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WitnessError::io(&self.name, "fsync", &self.dir, e))
    }

    /// Removes the lease files of generations before the current one; returns how many.
    pub fn remove_superseded(&self) -> Result<usize, WitnessError> {
        let generations = self.generations()?;
        let Some((_, older)) = generations.split_last() else {
            return Ok(0);
        };
        for generation in older {
            let path = self.lease_path(*generation);
            fs::remove_file(&path).map_err(|e| WitnessError::io(&self.name, "remove", &path, e))?;
        }
        self.sync_dir()?;
        Ok(older.len())
    }

    fn link_claim(&mut self, record: &LeaseRecord) -> Result<bool, WitnessError> {
        let temp = self.write_temp(record)?;
        let target = self.lease_path(record.generation);
        let linked = match fs::hard_link(&temp, &target) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => {
                let error = WitnessError::io(&self.name, "link", &target, e);
                return Err(self.discarding(&temp, error));
            }
        };
        fs::remove_file(&temp).map_err(|e| WitnessError::io(&self.name, "remove", &temp, e))?;
        self.sync_dir()?;
        Ok(linked)
    }
}

impl LeaseStore for FileWitness {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn read(&mut self) -> Result<Option<LeaseRecord>, WitnessError> {
        match self.generations()?.last() {
            Some(&generation) => self.read_generation(generation).map(Some),
            None => Ok(None),
        }
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
        let current = self.read()?;
        if current.as_ref() != previous {
            return Ok(ClaimOutcome::Lost(current));
        }
        if !self.link_claim(record)? {
            return Ok(ClaimOutcome::Lost(self.read()?));
        }
        // A node that read an older generation may have linked a name that was already cleaned up;
        // the highest generation is the lease, so check that it is ours.
        match self.read()? {
            Some(top) if top == *record => Ok(ClaimOutcome::Won),
            other => Ok(ClaimOutcome::Lost(other)),
        }
    }

    fn renew(&mut self, record: &LeaseRecord) -> Result<RenewOutcome, WitnessError> {
        match self.read()? {
            Some(c) if c.holder == record.holder && c.generation == record.generation => {}
            other => return Ok(RenewOutcome::Lost(other)),
        }
        let temp = self.write_temp(record)?;
        let target = self.lease_path(record.generation);
        if let Err(e) = fs::rename(&temp, &target) {
            let error = WitnessError::io(&self.name, "rename", &target, e);
            return Err(self.discarding(&temp, error));
        }
        self.sync_dir()?;
        Ok(RenewOutcome::Renewed)
    }
}
