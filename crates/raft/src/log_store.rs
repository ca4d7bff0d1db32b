//! openraft's log store on redb: entries, vote, committed and last purged log id. Every write is
//! one redb transaction committed with `Durability::Immediate` before it returns (so `append`'s
//! callback runs only once the entries are on disk). Not the state machine (state_machine.rs).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader,
    StorageError, Vote,
};
use redb::{Database, Durability, ReadableTable, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::{decode, encode, log_key, LOG, LOG_META};
use crate::error::{on, OrStorage};
use crate::{NodeId, TypeConfig};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The raft log in the raft file; cheap to clone (clones share the file), which is how it is its own
/// log reader.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>) -> LogStore {
        LogStore { db }
    }

    fn begin_write(
        &self,
        subject: ErrorSubject<NodeId>,
    ) -> Result<WriteTransaction, StorageError<NodeId>> {
        let mut tx = self
            .db
            .begin_write()
            .at(on(subject.clone(), ErrorVerb::Write))?;
        tx.set_durability(Durability::Immediate);
        Ok(tx)
    }

    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &str,
        subject: ErrorSubject<NodeId>,
    ) -> Result<Option<T>, StorageError<NodeId>> {
        let read = || on(subject.clone(), ErrorVerb::Read);
        let tx = self.db.begin_read().at(read())?;
        let table = tx.open_table(LOG_META).at(read())?;
        match table.get(key).at(read())? {
            Some(bytes) => decode(bytes.value(), key, subject.clone()).map(Some),
            None => Ok(None),
        }
    }

    fn write_meta<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        let write = || on(subject.clone(), ErrorVerb::Write);
        let bytes = encode(value, subject.clone())?;
        let tx = self.begin_write(subject.clone())?;
        put_meta(&tx, key, &bytes).at(write())?;
        tx.commit().at(write())
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let read = || on(ErrorSubject::Logs, ErrorVerb::Read);
        let tx = self.db.begin_read().at(read())?;
        let table = tx.open_table(LOG).at(read())?;
        let Some((key, bytes)) = table.last().at(read())? else {
            return Ok(None);
        };
        let index = u64::from_be_bytes(key.value());
        let entry: Entry<TypeConfig> = decode(
            bytes.value(),
            &format!("log {index}"),
            ErrorSubject::LogIndex(index),
        )?;
        Ok(Some(*entry.get_log_id()))
    }
}

fn put_meta(tx: &WriteTransaction, key: &str, bytes: &[u8]) -> Result<(), redb::Error> {
    let mut table = tx.open_table(LOG_META)?;
    table.insert(key, bytes)?;
    Ok(())
}

/// A range of log keys, as redb takes it.
type KeyRange = (Bound<[u8; 8]>, Bound<[u8; 8]>);

/// `range` of log indexes as a range of keys; None when it is empty.
fn key_range<RB: RangeBounds<u64>>(range: &RB) -> Option<KeyRange> {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => Bound::Included(i),
        Bound::Excluded(&i) => Bound::Excluded(i),
        Bound::Unbounded => Bound::Unbounded,
    };
    let empty = match end {
        Bound::Included(i) => start > i,
        Bound::Excluded(i) => start >= i,
        Bound::Unbounded => false,
    };
    if empty {
        return None;
    }
    Some((Bound::Included(log_key(start)), end.map(log_key)))
}

fn remove_keys<R: RangeBounds<[u8; 8]>>(
    table: &mut redb::Table<[u8; 8], &[u8]>,
    range: R,
) -> Result<(), redb::StorageError> {
    table.retain_in::<[u8; 8], _>(range, |_, _| false)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let read = || on(ErrorSubject::Logs, ErrorVerb::Read);
        let Some(keys) = key_range(&range) else {
            return Ok(Vec::new());
        };
        let tx = self.db.begin_read().at(read())?;
        let table = tx.open_table(LOG).at(read())?;
        let mut entries = Vec::new();
        for row in table.range::<[u8; 8]>(keys).at(read())? {
            let (key, bytes) = row.at(read())?;
            let index = u64::from_be_bytes(key.value());
            entries.push(decode(
                bytes.value(),
                &format!("log {index}"),
                ErrorSubject::LogIndex(index),
            )?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> =
            self.read_meta(LAST_PURGED, ErrorSubject::Logs)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write_meta(VOTE, vote, ErrorSubject::Vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_meta(VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.write_meta(COMMITTED, &committed, ErrorSubject::Store)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>(COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let write = || on(ErrorSubject::Logs, ErrorVerb::Write);
        let tx = self.begin_write(ErrorSubject::Logs)?;
        {
            let mut table = tx.open_table(LOG).at(write())?;
            for entry in entries {
                let index = entry.get_log_id().index;
                let bytes = encode(&entry, ErrorSubject::LogIndex(index))?;
                table
                    .insert(log_key(index), bytes.as_slice())
                    .at(on(ErrorSubject::LogIndex(index), ErrorVerb::Write))?;
            }
        }
        tx.commit().at(write())?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let delete = || on(ErrorSubject::Logs, ErrorVerb::Delete);
        let tx = self.begin_write(ErrorSubject::Logs)?;
        {
            let mut table = tx.open_table(LOG).at(delete())?;
            remove_keys(&mut table, log_key(log_id.index)..).at(delete())?;
        }
        tx.commit().at(delete())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let delete = || on(ErrorSubject::Logs, ErrorVerb::Delete);
        let bytes = encode(&log_id, ErrorSubject::Logs)?;
        let tx = self.begin_write(ErrorSubject::Logs)?;
        put_meta(&tx, LAST_PURGED, &bytes).at(on(ErrorSubject::Logs, ErrorVerb::Write))?;
        {
            let mut table = tx.open_table(LOG).at(delete())?;
            remove_keys(&mut table, ..=log_key(log_id.index)).at(delete())?;
        }
        tx.commit().at(delete())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ranges_become_key_ranges_and_empty_ones_none() {
        assert_eq!(
            key_range(&(3..7)),
            Some((Bound::Included(log_key(3)), Bound::Excluded(log_key(7))))
        );
        assert_eq!(
            key_range(&(3..=7)),
            Some((Bound::Included(log_key(3)), Bound::Included(log_key(7))))
        );
        assert_eq!(
            key_range(&(..)),
            Some((Bound::Included(log_key(0)), Bound::Unbounded))
        );
        assert_eq!(key_range(&(5..5)), None);
        let (start, end) = (6, 5);
        assert_eq!(key_range(&(start..=end)), None);
        assert!(
            log_key(255) < log_key(256),
            "big-endian keys sort as indexes"
        );
    }
}
