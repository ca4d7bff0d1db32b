//! Why the cluster database could not be opened, read or written, worded for an administrator: each
//! message names the file and, where there is one, what to do. Not the database itself (lib.rs).

use crate::SCHEMA_VERSION;
pub use keelson_types::io_reason;

/// What went wrong with the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cluster database {path}: {message}")]
    Open { path: String, message: String },
    #[error("cluster database: {0}")]
    Db(String),
    #[error("cluster database record '{key}' is corrupt: {message}")]
    Corrupt { key: String, message: String },
    #[error("cluster database schema version {found}, this rcm reads {SCHEMA_VERSION}")]
    Schema { found: u32 },
    /// The file is missing or empty although this data directory has held a database.
    #[error(
        "cluster database {path} is {what}, but this data directory held one (database id {id} in \
         {marker}): refusing to start with an empty configuration; restore the file from a backup, \
         or run `keelson-rcm --data-dir DIR --repair` to start afresh from what can be recovered"
    )]
    Vanished {
        path: String,
        what: &'static str,
        id: String,
        marker: String,
    },
    /// A write could not be made durable; the change was not saved.
    #[error("cannot save the cluster database: {0}")]
    Write(String),
    /// The database could not be reopened after an error; changes are refused until it can be.
    #[error("the cluster database {path} is unavailable ({reason}); changes are refused until it can be reopened")]
    Unavailable { path: String, reason: String },
}

/// A short, lower-case reason for an error from redb or the file system: the I/O error underneath if
/// there is one (`no space left on device`), else the error's own text.
pub fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io_reason(io);
        }
        if let Some(storage) = redb_storage(c) {
            if let redb::StorageError::Io(io) = storage {
                return io_reason(io);
            }
            return storage.to_string();
        }
        cause = c.source();
    }
    e.to_string()
}

/// The storage error inside any of redb's error types (they do not expose it as `source`).
fn redb_storage<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a redb::StorageError> {
    if let Some(s) = e.downcast_ref::<redb::StorageError>() {
        return Some(s);
    }
    if let Some(redb::CommitError::Storage(s)) = e.downcast_ref() {
        return Some(s);
    }
    if let Some(redb::TransactionError::Storage(s)) = e.downcast_ref() {
        return Some(s);
    }
    if let Some(redb::TableError::Storage(s)) = e.downcast_ref() {
        return Some(s);
    }
    if let Some(redb::DatabaseError::Storage(s)) = e.downcast_ref() {
        return Some(s);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_plain_lower_case_reasons() {
        let nested = redb::StorageError::Io(std::io::Error::from_raw_os_error(28));
        assert_eq!(reason(&nested), "no space left on device");
    }
}
