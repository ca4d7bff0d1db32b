//! What a witness must do for the lease machine (read, claim a generation, renew, release) as one
//! trait, and its error type, which names the witness, the operation and the cause. Not any one
//! witness (file_witness.rs, disk_witness.rs) and not the decisions (lease.rs).

use std::io;
use std::path::PathBuf;

use crate::lease::{ClaimOutcome, RenewOutcome};
use crate::record::{LeaseRecord, RecordError};

/// A witness the lease lives on. Every call is blocking I/O (run it off the async threads).
pub trait LeaseStore: Send {
    /// `file-share witness /mnt/w` or `disk witness /dev/sdx`.
    fn describe(&self) -> String;
    /// The current record; None if no lease was ever written.
    fn read(&mut self) -> Result<Option<LeaseRecord>, WitnessError>;
    /// Makes `record` (generation `previous + 1`, or 1) the lease, unless another node claimed that
    /// generation first or `previous` is no longer the current record.
    fn claim(
        &mut self,
        previous: Option<&LeaseRecord>,
        record: &LeaseRecord,
    ) -> Result<ClaimOutcome, WitnessError>;
    /// Rewrites our record (same holder and generation, new expiry or the released flag), unless it is
    /// no longer the current one.
    fn renew(&mut self, record: &LeaseRecord) -> Result<RenewOutcome, WitnessError>;
}

/// A boxed witness is a witness (so one driver type serves both kinds).
impl<T: LeaseStore + ?Sized> LeaseStore for Box<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn read(&mut self) -> Result<Option<LeaseRecord>, WitnessError> {
        (**self).read()
    }
    fn claim(
        &mut self,
        previous: Option<&LeaseRecord>,
        record: &LeaseRecord,
    ) -> Result<ClaimOutcome, WitnessError> {
        (**self).claim(previous, record)
    }
    fn renew(&mut self, record: &LeaseRecord) -> Result<RenewOutcome, WitnessError> {
        (**self).renew(record)
    }
}

/// A witness operation that failed; the lease state it leaves is reported, never guessed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("{witness}: {op} {path}: {source}")]
    Io {
        witness: String,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{witness}: lease record {path} is refused: {source}")]
    Record {
        witness: String,
        path: PathBuf,
        source: RecordError,
    },
    #[error("{witness}: {message}")]
    Invalid { witness: String, message: String },
}

impl WitnessError {
    /// An I/O error on `path` while doing `op`.
    pub fn io(
        witness: &str,
        op: &'static str,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        WitnessError::Io {
            witness: witness.to_string(),
            op,
            path: path.into(),
            source,
        }
    }

    /// A record that did not verify.
    pub fn record(witness: &str, path: impl Into<PathBuf>, source: RecordError) -> Self {
        WitnessError::Record {
            witness: witness.to_string(),
            path: path.into(),
            source,
        }
    }

    /// A witness that is not usable as configured.
    pub fn invalid(witness: &str, message: impl Into<String>) -> Self {
        WitnessError::Invalid {
            witness: witness.to_string(),
            message: message.into(),
        }
    }
}
