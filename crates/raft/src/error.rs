//! redb and encoding failures as openraft `StorageError`s, naming what was being read or written.
//! Not the decision what to do about them (openraft stops the node on a storage error).

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

use crate::NodeId;

/// A storage error about `subject` while doing `verb`, keeping the cause's text.
pub fn storage_err<E>(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: E) -> StorageError<NodeId>
where
    E: std::error::Error + 'static,
{
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

/// What was being done when an error happened: names the `StorageError` it becomes.
#[derive(Clone, Debug)]
pub struct At {
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
}

/// `At` the given subject and verb.
pub fn on(subject: ErrorSubject<NodeId>, verb: ErrorVerb) -> At {
    At { subject, verb }
}

/// Turns any error result into a `StorageError` naming what was being done.
pub trait OrStorage<T> {
    fn at(self, at: At) -> Result<T, StorageError<NodeId>>;
}

impl<T, E: std::error::Error + 'static> OrStorage<T> for Result<T, E> {
    fn at(self, at: At) -> Result<T, StorageError<NodeId>> {
        self.map_err(|e| storage_err(at.subject, at.verb, e))
    }
}

/// A stored record that does not decode: the file was damaged or written by another version.
#[derive(Debug, thiserror::Error)]
#[error("raft store record '{key}' is corrupt: {message}")]
pub struct Corrupt {
    pub key: String,
    pub message: String,
}
