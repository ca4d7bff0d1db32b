//! openraft's state machine on redb: applies committed entries to the cluster database (groups and
//! resources tables, one durable transaction per batch, together with the last applied log id, the
//! last membership and the node id allocator) and installs snapshots. The in-memory copy is shared
//! with readers (`StateMachine::view`). Not snapshot building (snapshot.rs), not the log.

use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use keelson_store::Change;
use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, Snapshot,
    SnapshotMeta, StorageError, StoredMembership,
};
use redb::{Database, Durability, ReadableTable, WriteTransaction};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::applied::Applied;
use crate::cluster_state::{allocate, past_members};
use crate::db::{decode, encode, GROUPS, RESOURCES, SM_META};
use crate::error::{on, OrStorage};
use crate::snapshot::{read_current, store_current, SnapshotBuilder};
use crate::{ClusterInfo, ClusterNode, ClusterState, NodeId, Request, Response, TypeConfig};

const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";
const NEXT_NODE_ID: &str = "next_node_id";
const CLUSTER: &str = "cluster";

/// The applied cluster database, shared between the state machine and its readers.
pub type SharedState = Arc<RwLock<ClusterState>>;

/// The raft state machine over the raft file.
pub struct StateMachine {
    db: Arc<Database>,
    state: SharedState,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, ClusterNode>,
    /// Where each durable apply is told, in order (`StateMachine::follow`).
    followers: Option<mpsc::UnboundedSender<Applied>>,
}

fn read_lock(state: &SharedState) -> RwLockReadGuard<'_, ClusterState> {
    // A panic while holding the lock cannot leave the state half-changed (no code between a
    // record's removal and insertion panics), so a poisoned lock is still a consistent state.
    state
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock(state: &SharedState) -> RwLockWriteGuard<'_, ClusterState> {
    state
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StateMachine {
    /// The state machine as the raft file holds it.
    pub(crate) fn load(db: Arc<Database>) -> Result<StateMachine, StorageError<NodeId>> {
        let read = || on(ErrorSubject::StateMachine, ErrorVerb::Read);
        let tx = db.begin_read().at(read())?;
        let meta = tx.open_table(SM_META).at(read())?;
        let get = |key: &str| -> Result<Option<Vec<u8>>, StorageError<NodeId>> {
            Ok(meta.get(key).at(read())?.map(|v| v.value().to_vec()))
        };
        let applied = optional(get(APPLIED)?, APPLIED)?.flatten();
        let membership = optional(get(MEMBERSHIP)?, MEMBERSHIP)?.unwrap_or_default();
        let mut state = ClusterState::default();
        if let Some(next) = optional(get(NEXT_NODE_ID)?, NEXT_NODE_ID)? {
            state.next_node_id = next;
        }
        state.cluster = optional(get(CLUSTER)?, CLUSTER)?;
        for row in tx.open_table(GROUPS).at(read())?.iter().at(read())? {
            let (name, bytes) = row.at(read())?;
            let group = decode(bytes.value(), name.value(), ErrorSubject::StateMachine)?;
            state.groups.insert(name.value().to_string(), group);
        }
        for row in tx.open_table(RESOURCES).at(read())?.iter().at(read())? {
            let (name, bytes) = row.at(read())?;
            let resource = decode(bytes.value(), name.value(), ErrorSubject::StateMachine)?;
            state.resources.insert(name.value().to_string(), resource);
        }
        Ok(StateMachine {
            db,
            state: Arc::new(RwLock::new(state)),
            applied,
            membership,
            followers: None,
        })
    }

    /// From now on, every durable apply (each committed entry's changes, or an installed
    /// snapshot) is told on the returned channel, in log order.
    pub fn follow(&mut self) -> mpsc::UnboundedReceiver<Applied> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.followers = Some(tx);
        rx
    }

    fn tell(&mut self, applied: Applied) {
        if let Some(tx) = &self.followers {
            if tx.send(applied).is_err() {
                self.followers = None;
            }
        }
    }

    /// A handle on the applied cluster database that stays current as entries are applied.
    pub fn view(&self) -> SharedState {
        self.state.clone()
    }

    /// A copy of the applied cluster database.
    pub fn state(&self) -> ClusterState {
        read_lock(&self.state).clone()
    }

    fn begin_write(&self) -> Result<WriteTransaction, StorageError<NodeId>> {
        let mut tx = self
            .db
            .begin_write()
            .at(on(ErrorSubject::StateMachine, ErrorVerb::Write))?;
        tx.set_durability(Durability::Immediate);
        Ok(tx)
    }
}

fn optional<T: DeserializeOwned>(
    bytes: Option<Vec<u8>>,
    key: &str,
) -> Result<Option<T>, StorageError<NodeId>> {
    bytes
        .map(|b| decode(&b, key, ErrorSubject::StateMachine))
        .transpose()
}

/// Writes the records `changes` touch, in `tx`.
/// Writes one entry's record changes, and notes them for the in-memory copy and the followers.
fn record_batch(
    tx: &WriteTransaction,
    batch: Vec<Change>,
    log_id: LogId<NodeId>,
    changes: &mut Vec<Change>,
    batches: &mut Vec<Applied>,
) -> Result<(), StorageError<NodeId>> {
    write_changes(tx, &batch, log_id)?;
    changes.extend(batch.iter().cloned());
    batches.push(Applied::Changes {
        index: log_id.index,
        changes: batch,
    });
    Ok(())
}

fn write_changes(
    tx: &WriteTransaction,
    changes: &[Change],
    log_id: LogId<NodeId>,
) -> Result<(), StorageError<NodeId>> {
    let write = || on(ErrorSubject::Apply(log_id), ErrorVerb::Write);
    let mut resources = tx.open_table(RESOURCES).at(write())?;
    let mut groups = tx.open_table(GROUPS).at(write())?;
    let subject = || ErrorSubject::Apply(log_id);
    for change in changes {
        match change {
            Change::PutResource(r) => {
                let bytes = encode(r, subject())?;
                resources
                    .insert(r.name.as_str(), bytes.as_slice())
                    .map(drop)
            }
            Change::DeleteResource(name) => resources.remove(name.as_str()).map(drop),
            Change::PutGroup(g) => {
                let bytes = encode(g, subject())?;
                groups.insert(g.name.as_str(), bytes.as_slice()).map(drop)
            }
            Change::DeleteGroup(name) => groups.remove(name.as_str()).map(drop),
        }
        .at(write())?;
    }
    Ok(())
}

/// Writes the state machine's pointers in `tx`.
pub(crate) fn write_pointers(
    tx: &WriteTransaction,
    applied: &Option<LogId<NodeId>>,
    membership: &StoredMembership<NodeId, ClusterNode>,
    next_node_id: NodeId,
) -> Result<(), StorageError<NodeId>> {
    let write = || on(ErrorSubject::StateMachine, ErrorVerb::Write);
    let mut meta = tx.open_table(SM_META).at(write())?;
    for (key, bytes) in [
        (APPLIED, encode(applied, ErrorSubject::StateMachine)?),
        (MEMBERSHIP, encode(membership, ErrorSubject::StateMachine)?),
        (
            NEXT_NODE_ID,
            encode(&next_node_id, ErrorSubject::StateMachine)?,
        ),
    ] {
        meta.insert(key, bytes.as_slice()).at(write())?;
    }
    Ok(())
}

/// Writes the cluster's name and node list in `tx`.
fn write_cluster(tx: &WriteTransaction, info: &ClusterInfo) -> Result<(), StorageError<NodeId>> {
    let write = || on(ErrorSubject::StateMachine, ErrorVerb::Write);
    let mut meta = tx.open_table(SM_META).at(write())?;
    let bytes = encode(info, ErrorSubject::StateMachine)?;
    meta.insert(CLUSTER, bytes.as_slice()).at(write())?;
    Ok(())
}

/// Replaces every record with `state`'s, in `tx`.
fn replace_records(
    tx: &WriteTransaction,
    state: &ClusterState,
) -> Result<(), StorageError<NodeId>> {
    if let Some(info) = &state.cluster {
        write_cluster(tx, info)?;
    }
    let write = || on(ErrorSubject::StateMachine, ErrorVerb::Write);
    let mut groups = tx.open_table(GROUPS).at(write())?;
    groups.retain(|_, _| false).at(write())?;
    for (name, group) in &state.groups {
        let bytes = encode(group, ErrorSubject::StateMachine)?;
        groups.insert(name.as_str(), bytes.as_slice()).at(write())?;
    }
    let mut resources = tx.open_table(RESOURCES).at(write())?;
    resources.retain(|_, _| false).at(write())?;
    for (name, resource) in &state.resources {
        let bytes = encode(resource, ErrorSubject::StateMachine)?;
        resources
            .insert(name.as_str(), bytes.as_slice())
            .at(write())?;
    }
    Ok(())
}

/// The groups one apply has put (Some) or deleted (None) so far, by name.
type Pending = std::collections::BTreeMap<String, Option<keelson_store::GroupRecord>>;

/// Edits of the applied state that several kinds of entry share.
impl StateMachine {
    /// The cluster entry as this batch left it so far (`pending`, else the applied one), changed
    /// by `edit` and written.
    fn edit_cluster(
        &self,
        tx: &WriteTransaction,
        pending: Option<ClusterInfo>,
        edit: impl FnOnce(&mut ClusterInfo),
    ) -> Result<ClusterInfo, StorageError<NodeId>> {
        let mut info = pending
            .or_else(|| read_lock(&self.state).cluster.clone())
            .unwrap_or_default();
        edit(&mut info);
        write_cluster(tx, &info)?;
        Ok(info)
    }

    /// Group `name` as this apply left it so far (`pending`), else as applied before.
    fn held_group(&self, name: &str, pending: &Pending) -> Option<keelson_store::GroupRecord> {
        match pending.get(name) {
            Some(held) => held.clone(),
            None => read_lock(&self.state).groups.get(name).cloned(),
        }
    }

    /// `batch` with every group's newest owner report kept (only `ReportGroupState` writes it, so
    /// a record built on an older copy, the leader placement core's, does not take it back); the
    /// groups it puts or deletes noted in `pending`.
    fn keeping_reports(&self, batch: Vec<Change>, pending: &mut Pending) -> Vec<Change> {
        let epoch = |s: &Option<keelson_types::OwnerState>| s.as_ref().map(|s| s.epoch);
        batch
            .into_iter()
            .map(|change| match change {
                Change::PutGroup(mut g) => {
                    let held = self
                        .held_group(&g.name, pending)
                        .and_then(|h| h.placement.owner_state);
                    if held.is_some() && epoch(&held) >= epoch(&g.placement.owner_state) {
                        g.placement.owner_state = held;
                    }
                    pending.insert(g.name.clone(), Some(g.clone()));
                    Change::PutGroup(g)
                }
                Change::DeleteGroup(name) => {
                    pending.insert(name.clone(), None);
                    Change::DeleteGroup(name)
                }
                other => other,
            })
            .collect()
    }

    /// Group `name`'s record with `report` as its owner state, or None when there is no such
    /// group, the reporter does not own it, or a newer report is held.
    fn with_report(
        &self,
        name: &str,
        report: keelson_types::OwnerState,
        pending: &mut Pending,
    ) -> Option<keelson_store::GroupRecord> {
        let mut g = self.held_group(name, pending)?;
        let newer_held = g
            .placement
            .owner_state
            .as_ref()
            .is_some_and(|s| s.node == report.node && s.epoch > report.epoch);
        if g.owner != report.node || newer_held {
            return None;
        }
        g.placement.owner_state = Some(report);
        pending.insert(name.to_string(), Some(g.clone()));
        Some(g)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, ClusterNode>), StorageError<NodeId>>
    {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let tx = self.begin_write()?;
        let mut next = read_lock(&self.state).next_node_id;
        let mut applied = self.applied;
        let mut membership = self.membership.clone();
        let mut changes = Vec::new();
        let mut pending = Pending::new();
        let mut cluster = None;
        let mut batches = Vec::new();
        let mut responses = Vec::new();
        for entry in entries {
            let log_id = *entry.get_log_id();
            let mut response = Response {
                log_id: Some(log_id),
                allocated: None,
            };
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(Request::Changes(batch)) => {
                    let batch = self.keeping_reports(batch, &mut pending);
                    record_batch(&tx, batch, log_id, &mut changes, &mut batches)?;
                }
                EntryPayload::Normal(Request::ReportGroupState { group, state }) => {
                    if let Some(record) = self.with_report(&group, state, &mut pending) {
                        let batch = vec![Change::PutGroup(record)];
                        record_batch(&tx, batch, log_id, &mut changes, &mut batches)?;
                    }
                }
                EntryPayload::Normal(Request::SetNodePaused {
                    name,
                    paused,
                    changes: batch,
                }) => {
                    cluster = Some(self.edit_cluster(&tx, cluster.take(), |info| {
                        if let Some(node) = info.nodes.get_mut(&name) {
                            node.paused = paused;
                        }
                    })?);
                    batches.push(Applied::Cluster {
                        index: log_id.index,
                    });
                    let batch = self.keeping_reports(batch, &mut pending);
                    record_batch(&tx, batch, log_id, &mut changes, &mut batches)?;
                }
                EntryPayload::Normal(Request::SetCluster(info)) => {
                    write_cluster(&tx, &info)?;
                    cluster = Some(info);
                    batches.push(Applied::Cluster {
                        index: log_id.index,
                    });
                }
                EntryPayload::Normal(Request::RemoveNode(name)) => {
                    cluster = Some(self.edit_cluster(&tx, cluster.take(), |info| {
                        info.nodes.remove(&name);
                    })?);
                    batches.push(Applied::Cluster {
                        index: log_id.index,
                    });
                }
                EntryPayload::Normal(Request::PutNode(entry)) => {
                    cluster = Some(self.edit_cluster(&tx, cluster.take(), |info| {
                        info.nodes.insert(entry.name.clone(), entry);
                    })?);
                    batches.push(Applied::Cluster {
                        index: log_id.index,
                    });
                }
                EntryPayload::Normal(Request::SetClusterProperties(properties)) => {
                    cluster = Some(self.edit_cluster(&tx, cluster.take(), |info| {
                        info.set_properties(&properties);
                    })?);
                    batches.push(Applied::Cluster {
                        index: log_id.index,
                    });
                }
                EntryPayload::Normal(Request::SetWitness(witness)) => {
                    cluster = Some(self.edit_cluster(&tx, cluster.take(), |info| {
                        info.witness = witness;
                    })?);
                    batches.push(Applied::Cluster {
                        index: log_id.index,
                    });
                }
                EntryPayload::Normal(Request::AllocateNodeId) => {
                    let (id, after) = allocate(next);
                    response.allocated = Some(id);
                    next = after;
                }
                EntryPayload::Membership(m) => {
                    next = past_members(next, m.nodes().map(|(id, _)| *id));
                    membership = StoredMembership::new(Some(log_id), m);
                }
            }
            applied = Some(log_id);
            responses.push(response);
        }
        write_pointers(&tx, &applied, &membership, next)?;
        tx.commit()
            .at(on(ErrorSubject::StateMachine, ErrorVerb::Write))?;
        // Durable: now the copy readers see catches up.
        let mut state = write_lock(&self.state);
        for change in &changes {
            state.apply(change);
        }
        state.next_node_id = next;
        if let Some(info) = cluster {
            state.cluster = Some(info);
        }
        drop(state);
        self.applied = applied;
        self.membership = membership;
        for batch in batches {
            self.tell(batch);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder::new(
            self.db.clone(),
            self.state(),
            self.applied,
            self.membership.clone(),
        )
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let subject = ErrorSubject::Snapshot(Some(meta.signature()));
        let state: ClusterState = decode(&data, &meta.snapshot_id, subject)?;
        let tx = self.begin_write()?;
        replace_records(&tx, &state)?;
        write_pointers(
            &tx,
            &meta.last_log_id,
            &meta.last_membership,
            state.next_node_id,
        )?;
        store_current(&tx, meta, &data)?;
        tx.commit().at(on(
            ErrorSubject::Snapshot(Some(meta.signature())),
            ErrorVerb::Write,
        ))?;
        *write_lock(&self.state) = state.clone();
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.tell(Applied::Snapshot {
            index: meta.last_log_id.map(|l| l.index),
            state,
        });
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        read_current(&self.db)
    }
}
