//! Snapshots of the cluster database: building one (the whole `ClusterState` as JSON with openraft's
//! meta), and keeping the current one in the raft file. Not installing one (state_machine.rs).

use std::io::Cursor;
use std::sync::Arc;

use openraft::{
    ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StoredMembership,
};
use redb::{Database, Durability, ReadableTable, WriteTransaction};

use crate::db::{decode, encode, SNAPSHOT};
use crate::error::{on, OrStorage};
use crate::{ClusterNode, ClusterState, NodeId, TypeConfig};

const META: &str = "meta";
const DATA: &str = "data";
const SEQ: &str = "seq";

/// A copy of the state machine taken when openraft asked for a snapshot.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    state: ClusterState,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, ClusterNode>,
}

impl SnapshotBuilder {
    pub(crate) fn new(
        db: Arc<Database>,
        state: ClusterState,
        applied: Option<LogId<NodeId>>,
        membership: StoredMembership<NodeId, ClusterNode>,
    ) -> SnapshotBuilder {
        SnapshotBuilder {
            db,
            state,
            applied,
            membership,
        }
    }
}

/// How many snapshots this node has built, as stored.
fn built_so_far(tx: &WriteTransaction) -> Result<u64, StorageError<NodeId>> {
    let subject = || ErrorSubject::Snapshot(None);
    let table = tx.open_table(SNAPSHOT).at(on(subject(), ErrorVerb::Read))?;
    let seq = table.get(SEQ).at(on(subject(), ErrorVerb::Read))?;
    match seq {
        Some(bytes) => decode(bytes.value(), SEQ, subject()),
        None => Ok(0),
    }
}

/// Makes `meta` and `data` the current snapshot, in `tx`.
pub(crate) fn store_current(
    tx: &WriteTransaction,
    meta: &SnapshotMeta<NodeId, ClusterNode>,
    data: &[u8],
) -> Result<(), StorageError<NodeId>> {
    let subject = || ErrorSubject::Snapshot(Some(meta.signature()));
    let write = || on(subject(), ErrorVerb::Write);
    let meta_bytes = encode(meta, subject())?;
    let mut table = tx.open_table(SNAPSHOT).at(write())?;
    table.insert(META, meta_bytes.as_slice()).at(write())?;
    table.insert(DATA, data).at(write())?;
    Ok(())
}

/// The current snapshot, if there is one.
pub(crate) fn read_current(
    db: &Database,
) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
    let read = || on(ErrorSubject::Snapshot(None), ErrorVerb::Read);
    let tx = db.begin_read().at(read())?;
    let table = tx.open_table(SNAPSHOT).at(read())?;
    let (Some(meta), Some(data)) = (table.get(META).at(read())?, table.get(DATA).at(read())?)
    else {
        return Ok(None);
    };
    let meta: SnapshotMeta<NodeId, ClusterNode> =
        decode(meta.value(), META, ErrorSubject::Snapshot(None))?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data.value().to_vec())),
    }))
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let write = || on(ErrorSubject::Snapshot(None), ErrorVerb::Write);
        let data = encode(&self.state, ErrorSubject::Snapshot(None))?;
        let mut tx = self.db.begin_write().at(write())?;
        tx.set_durability(Durability::Immediate);
        let seq = built_so_far(&tx)? + 1;
        let snapshot_id = match self.applied {
            Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        store_current(&tx, &meta, &data)?;
        {
            let seq_bytes = encode(&seq, ErrorSubject::Snapshot(None))?;
            let mut table = tx.open_table(SNAPSHOT).at(write())?;
            table.insert(SEQ, seq_bytes.as_slice()).at(write())?;
        }
        tx.commit().at(write())?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
