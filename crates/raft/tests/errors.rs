//! Storage failures are openraft `StorageError`s naming what was being read or written, never
//! panics: a file that is not a redb database, a directory that does not exist, a damaged record.

use keelson_raft::openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use keelson_raft::openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, StorageError,
};
use keelson_raft::{NodeId, TypeConfig, RAFT_FILE};

/// The I/O error's text: `when VERB SUBJECT: cause`.
fn described(err: StorageError<NodeId>) -> String {
    err.into_io()
        .expect("an I/O error, not a defensive check")
        .to_string()
}

#[test]
fn a_foreign_file_is_a_store_read_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(RAFT_FILE),
        b"definitely not a redb file, just text that is long enough to be looked at",
    )
    .unwrap();
    let err = keelson_raft::open(dir.path()).err().expect("must fail");
    let text = described(err);
    assert!(text.starts_with("when Read Store: "), "{text}");
}

#[test]
fn a_missing_directory_is_a_store_write_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = keelson_raft::open(&dir.path().join("absent"))
        .err()
        .expect("must fail");
    let text = described(err);
    assert!(text.starts_with("when Write Store: "), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
    assert!(!dir.path().join("absent").exists(), "nothing was created");
}

#[tokio::test]
async fn a_damaged_log_record_is_a_read_error_naming_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = keelson_raft::open(dir.path()).unwrap();
    let entry: Entry<TypeConfig> = Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
        payload: EntryPayload::Blank,
    };
    log.blocking_append([entry]).await.unwrap();
    drop(log);
    {
        let db = redb::Database::open(dir.path().join(RAFT_FILE)).unwrap();
        let table: redb::TableDefinition<[u8; 8], &[u8]> = redb::TableDefinition::new("raft_log");
        let tx = db.begin_write().unwrap();
        tx.open_table(table)
            .unwrap()
            .insert(1u64.to_be_bytes(), b"{not json".as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let (mut log, _) = keelson_raft::open(dir.path()).unwrap();
    let err = log.try_get_log_entries(0..10).await.expect_err("must fail");
    let text = described(err);
    assert!(text.starts_with("when Read LogIndex(1): "), "{text}");
    assert!(
        text.contains("raft store record 'log 1' is corrupt"),
        "{text}"
    );
    let err = log.get_log_state().await.expect_err("must fail");
    assert!(described(err).starts_with("when Read LogIndex(1): "));
}
