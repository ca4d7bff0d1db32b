//! The raft file `<data-dir>/raft.redb`: its tables, opening or creating it, and encoding of the
//! records in it (JSON, so the file can be inspected). Not the raft logic (log_store.rs,
//! state_machine.rs).

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use openraft::{ErrorSubject, ErrorVerb, StorageError};
use redb::{Builder, Database, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{on, storage_err, Corrupt, OrStorage};
use crate::{LogStore, NodeId, StateMachine};

/// The file name in the data directory.
pub const RAFT_FILE: &str = "raft.redb";

/// Log entries by index, as big-endian bytes (so byte order is index order).
pub(crate) const LOG: TableDefinition<[u8; 8], &[u8]> = TableDefinition::new("raft_log");
/// The log store's pointers: `vote`, `committed`, `last_purged`.
pub(crate) const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_meta");
/// The state machine's groups by name.
pub(crate) const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_groups");
/// The state machine's resources by name.
pub(crate) const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_resources");
/// The state machine's pointers: `applied`, `membership`, `next_node_id`.
pub(crate) const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");
/// The current snapshot: `meta`, `data`, `seq` (how many snapshots this node has built).
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_snapshot");

/// Opens `<dir>/raft.redb`, creating it (mode 0640) with its tables if it does not exist, and
/// loads the state machine from it.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), StorageError<NodeId>> {
    let db = Arc::new(open_file(&dir.join(RAFT_FILE))?);
    create_tables(&db)?;
    let state_machine = StateMachine::load(db.clone())?;
    Ok((LogStore::new(db), state_machine))
}

/// As `open`, on a database the caller opened itself (e.g. on a redb storage backend over a block
/// device, for the disk witness's voter).
pub fn open_database(db: Database) -> Result<(LogStore, StateMachine), StorageError<NodeId>> {
    let db = Arc::new(db);
    create_tables(&db)?;
    let state_machine = StateMachine::load(db.clone())?;
    Ok((LogStore::new(db), state_machine))
}

fn open_file(path: &Path) -> Result<Database, StorageError<NodeId>> {
    let io = on(ErrorSubject::Store, ErrorVerb::Read);
    if path.exists() {
        return Builder::new().open(path).at(io);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
        .at(on(ErrorSubject::Store, ErrorVerb::Write))?;
    Builder::new()
        .create_file(file)
        .at(on(ErrorSubject::Store, ErrorVerb::Write))
}

fn create_tables(db: &Database) -> Result<(), StorageError<NodeId>> {
    let write = || on(ErrorSubject::Store, ErrorVerb::Write);
    let tx = db.begin_write().at(write())?;
    tx.open_table(LOG).at(write())?;
    tx.open_table(LOG_META).at(write())?;
    tx.open_table(GROUPS).at(write())?;
    tx.open_table(RESOURCES).at(write())?;
    tx.open_table(SM_META).at(write())?;
    tx.open_table(SNAPSHOT).at(write())?;
    tx.commit().at(write())
}

/// The key of log entry `index`.
pub(crate) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// A record as stored.
pub(crate) fn encode<T: Serialize>(
    value: &T,
    subject: ErrorSubject<NodeId>,
) -> Result<Vec<u8>, StorageError<NodeId>> {
    serde_json::to_vec(value).map_err(|e| storage_err(subject, ErrorVerb::Write, e))
}

/// A stored record read back; `key` names it in the error if it does not decode.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    key: &str,
    subject: ErrorSubject<NodeId>,
) -> Result<T, StorageError<NodeId>> {
    serde_json::from_slice(bytes).map_err(|e| {
        storage_err(
            subject,
            ErrorVerb::Read,
            Corrupt {
                key: key.to_string(),
                message: e.to_string(),
            },
        )
    })
}
