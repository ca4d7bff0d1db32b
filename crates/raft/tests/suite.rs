//! openraft's own storage conformance suite (`Suite::test_all`) against the redb store, each store
//! in a fresh temporary directory removed when the test is done with it.

use keelson_raft::openraft::testing::{StoreBuilder, Suite};
use keelson_raft::openraft::StorageError;
use keelson_raft::{LogStore, NodeId, StateMachine, TypeConfig};

struct RedbBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for RedbBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (log, sm) = keelson_raft::open(dir.path())?;
        Ok((dir, log, sm))
    }
}

#[test]
fn the_redb_store_passes_openrafts_storage_suite() {
    if let Err(e) = Suite::test_all(RedbBuilder) {
        panic!("openraft's storage suite failed on the redb store: {e}");
    }
}
