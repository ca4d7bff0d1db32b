//! The lease fence: the witness voter's storage refuses every write once the lease's give-up
//! deadline has passed on this node's monotonic clock, so a holder that was frozen (SIGSTOP, a
//! stalled VM) and wakes up after another node took the witness over cannot write the witness
//! store, even before its lease driver has run and stopped the voter. Reads pass. Wraps
//! keelson-raft's log store, state machine and snapshot builder; not the lease logic (lease.rs).

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use keelson_raft::openraft::storage::{
    LogFlushed, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine, Snapshot,
};
use keelson_raft::openraft::{
    AnyError, Entry, ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogReader,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use keelson_raft::{
    ClusterNode, LogStore, NodeId, Response, SnapshotBuilder, StateMachine, TypeConfig,
};

/// A write refused by the fence.
#[derive(Debug, thiserror::Error)]
#[error("the witness lease is no longer held here (deadline passed {late_ms} ms ago): refusing to write the witness store")]
pub struct FenceClosed {
    pub late_ms: u64,
}

/// The give-up deadline, shared by the lease driver (which moves it) and the witness voter's
/// storage (which checks it). Milliseconds since `origin` on the monotonic clock; 0 means closed.
#[derive(Debug, Clone)]
pub struct LeaseFence {
    inner: Arc<FenceInner>,
}

#[derive(Debug)]
struct FenceInner {
    origin: Instant,
    deadline_ms: AtomicU64,
}

impl LeaseFence {
    /// A closed fence counting from `origin` (the lease clock's origin, see `SystemClock::fence`).
    pub fn new(origin: Instant) -> LeaseFence {
        LeaseFence {
            inner: Arc::new(FenceInner {
                origin,
                deadline_ms: AtomicU64::new(0),
            }),
        }
    }

    /// Writes are allowed until `mono_ms` (on the lease clock).
    pub fn open_until(&self, mono_ms: u64) {
        self.inner.deadline_ms.store(mono_ms, Ordering::SeqCst);
    }

    /// No more writes.
    pub fn close(&self) {
        self.inner.deadline_ms.store(0, Ordering::SeqCst);
    }

    /// Ok while the deadline is ahead.
    pub fn check(&self) -> Result<(), FenceClosed> {
        let now = self.inner.origin.elapsed().as_millis() as u64;
        let deadline = self.inner.deadline_ms.load(Ordering::SeqCst);
        if now < deadline {
            Ok(())
        } else {
            Err(FenceClosed {
                late_ms: now.saturating_sub(deadline),
            })
        }
    }

    // openraft's storage traits return its `StorageError` (224 bytes); so does this helper.
    #[allow(clippy::result_large_err)]
    fn guard(&self, subject: ErrorSubject<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.check()
            .map_err(|e| StorageIOError::new(subject, ErrorVerb::Write, AnyError::new(&e)).into())
    }
}

/// The witness voter's log store behind the fence.
#[derive(Clone)]
pub struct FencedLog {
    inner: LogStore,
    fence: LeaseFence,
}

/// The witness voter's state machine behind the fence.
pub struct FencedStateMachine {
    inner: StateMachine,
    fence: LeaseFence,
}

/// The witness voter's snapshot builder behind the fence (building stores the snapshot).
pub struct FencedSnapshotBuilder {
    inner: SnapshotBuilder,
    fence: LeaseFence,
}

impl FencedLog {
    pub fn new(inner: LogStore, fence: LeaseFence) -> FencedLog {
        FencedLog { inner, fence }
    }
}

impl FencedStateMachine {
    pub fn new(inner: StateMachine, fence: LeaseFence) -> FencedStateMachine {
        FencedStateMachine { inner, fence }
    }
}

impl RaftLogReader<TypeConfig> for FencedLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        self.inner.try_get_log_entries(range).await
    }
}

impl RaftLogStorage<TypeConfig> for FencedLog {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        self.inner.get_log_state().await
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.inner.get_log_reader().await
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.fence.guard(ErrorSubject::Vote)?;
        self.inner.save_vote(vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.inner.read_vote().await
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.fence.guard(ErrorSubject::Store)?;
        self.inner.save_committed(committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.inner.read_committed().await
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
        self.fence.guard(ErrorSubject::Logs)?;
        self.inner.append(entries, callback).await
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.fence.guard(ErrorSubject::Logs)?;
        self.inner.truncate(log_id).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.fence.guard(ErrorSubject::Logs)?;
        self.inner.purge(log_id).await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for FencedSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        self.fence.guard(ErrorSubject::Snapshot(None))?;
        self.inner.build_snapshot().await
    }
}

impl RaftStateMachine<TypeConfig> for FencedStateMachine {
    type SnapshotBuilder = FencedSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, ClusterNode>), StorageError<NodeId>>
    {
        self.inner.applied_state().await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.fence.guard(ErrorSubject::StateMachine)?;
        self.inner.apply(entries).await
    }

    async fn get_snapshot_builder(&mut self) -> FencedSnapshotBuilder {
        FencedSnapshotBuilder {
            inner: self.inner.get_snapshot_builder().await,
            fence: self.fence.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        self.inner.begin_receiving_snapshot().await
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.fence
            .guard(ErrorSubject::Snapshot(Some(meta.signature())))?;
        self.inner.install_snapshot(meta, snapshot).await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        self.inner.get_current_snapshot().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_raft::openraft::CommittedLeaderId;

    #[tokio::test]
    async fn writes_pass_before_the_deadline_and_are_refused_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _sm) = keelson_raft::open(dir.path()).unwrap();
        let fence = LeaseFence::new(Instant::now());
        let mut fenced = FencedLog::new(log, fence.clone());
        let vote = Vote::new(1, 3);
        let e = fenced.save_vote(&vote).await.unwrap_err().to_string();
        assert!(
            e.contains("the witness lease is no longer held here"),
            "{e}"
        );
        fence.open_until(60_000);
        fenced.save_vote(&vote).await.unwrap();
        assert_eq!(fenced.read_vote().await.unwrap(), Some(vote));
        fence.close();
        let committed = Some(LogId::new(CommittedLeaderId::new(1, 3), 1));
        assert!(fenced.save_committed(committed).await.is_err());
        assert_eq!(fenced.read_vote().await.unwrap(), Some(vote), "reads pass");
    }
}
