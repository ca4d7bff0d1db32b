//! Hosting the witness voter: while this node holds the witness lease it runs, in-process, the raft
//! voter whose storage lives on the witness (keelson-raft's store: `<witness dir>/raft.redb` on a
//! file-share witness, past the lease on a disk witness), and it closes that voter, and checks the
//! store is closed, when the lease is lost. Not the lease (lease.rs) and not the raft transport: the
//! caller's `RaftNetworkFactory` must route the witness id's RPCs to whichever node hosts it (the
//! lease holder).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keelson_raft::openraft::error::Fatal;
use keelson_raft::openraft::network::RaftNetworkFactory;
use keelson_raft::openraft::{Config, ErrorSubject, ErrorVerb, Raft, StorageError};
use keelson_raft::{LogStore, NodeId, SharedState, StateMachine, TypeConfig, RAFT_FILE};

use crate::disk_store::BlockBackend;
use crate::fence::{FencedLog, FencedStateMachine, LeaseFence};
use crate::lease::HeldLease;

/// How often `stop` looks whether the store has been let go.
const CLOSE_POLL: Duration = Duration::from_millis(5);

/// A witness voter that could not be started or stopped as asked.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot open the witness voter's store {path}: {source}")]
    Open {
        path: PathBuf,
        source: Box<StorageError<NodeId>>,
    },
    #[error("cannot start the witness voter (node {id}): {source}")]
    Start {
        id: NodeId,
        source: Box<Fatal<NodeId>>,
    },
    #[error("the witness voter (node {id}) did not shut down within {within_ms} ms")]
    StopTimeout { id: NodeId, within_ms: u128 },
    #[error("cannot confirm the witness voter's store {path} was closed within {within_ms} ms: {detail}")]
    NotClosed {
        path: PathBuf,
        within_ms: u128,
        detail: String,
    },
}

/// How to tell that a store has been closed.
#[derive(Debug, Clone)]
enum Closed {
    /// A redb file: closed once redb's lock on it can be taken.
    File(PathBuf),
    /// The disk witness: closed once its storage backend has been dropped.
    Device(PathBuf, Arc<AtomicBool>),
}

/// The witness voter's storage, opened under a held lease and behind the lease fence: what
/// `Raft::new` needs.
pub struct WitnessStore {
    pub log: FencedLog,
    pub state_machine: FencedStateMachine,
    /// The applied database (readers' copy).
    pub view: SharedState,
    /// The generation of the lease it was opened under.
    pub generation: u64,
    closed: Closed,
}

impl WitnessStore {
    fn new(
        (log, state_machine): (LogStore, StateMachine),
        lease: &HeldLease,
        fence: &LeaseFence,
        closed: Closed,
    ) -> WitnessStore {
        WitnessStore {
            log: FencedLog::new(log, fence.clone()),
            view: state_machine.view(),
            state_machine: FencedStateMachine::new(state_machine, fence.clone()),
            generation: lease.generation(),
            closed,
        }
    }
}

/// The witness voter's store file in a file-share witness directory.
pub fn witness_store_path(witness_dir: &Path) -> PathBuf {
    witness_dir.join(RAFT_FILE)
}

/// Opens (creating if needed) the witness voter's store in the file-share witness `witness_dir`,
/// under `lease`, every write checked against `fence`. redb also locks the file (flock), so a second
/// opener in this process or another on the same host (or an NFS client with working locks) is
/// refused outright.
pub fn open_witness_store(
    witness_dir: &Path,
    lease: &HeldLease,
    fence: &LeaseFence,
) -> Result<WitnessStore, HostError> {
    let path = witness_store_path(witness_dir);
    let opened = keelson_raft::open(witness_dir).map_err(|e| HostError::Open {
        path: path.clone(),
        source: Box::new(e),
    })?;
    Ok(WitnessStore::new(opened, lease, fence, Closed::File(path)))
}

/// Opens (creating if needed) the witness voter's store on the disk witness `device` (from 1 MiB
/// on; the device needs at least 64 MiB), under `lease`, every write checked against `fence`.
pub fn open_disk_witness_store(
    device: &Path,
    lease: &HeldLease,
    fence: &LeaseFence,
) -> Result<WitnessStore, HostError> {
    let open_err = |e: StorageError<NodeId>| HostError::Open {
        path: device.to_path_buf(),
        source: Box::new(e),
    };
    let io = |e: &dyn std::error::Error| {
        open_err(
            keelson_raft::openraft::StorageIOError::new(
                ErrorSubject::Store,
                ErrorVerb::Read,
                keelson_raft::openraft::AnyError::error(e.to_string()),
            )
            .into(),
        )
    };
    let closed = Arc::new(AtomicBool::new(false));
    let backend = BlockBackend::open(device, closed.clone()).map_err(|e| io(&e))?;
    let db = redb::Builder::new()
        .create_with_backend(backend)
        .map_err(|e| io(&e))?;
    let opened = keelson_raft::open_database(db).map_err(open_err)?;
    let closed = Closed::Device(device.to_path_buf(), closed);
    Ok(WitnessStore::new(opened, lease, fence, closed))
}

/// A running witness voter. Always `stop` it: dropping it does not stop the raft tasks (the fence
/// still ends its writes at the lease's give-up deadline).
pub struct HostedWitness {
    id: NodeId,
    raft: Raft<TypeConfig>,
    view: SharedState,
    closed: Closed,
    generation: u64,
}

impl HostedWitness {
    /// Starts raft node `id` on the witness voter's store.
    pub async fn start<N>(
        store: WitnessStore,
        id: NodeId,
        config: Arc<Config>,
        network: N,
    ) -> Result<HostedWitness, HostError>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        let raft = Raft::new(id, config, network, store.log, store.state_machine)
            .await
            .map_err(|e| HostError::Start {
                id,
                source: Box::new(e),
            })?;
        Ok(HostedWitness {
            id,
            raft,
            view: store.view,
            closed: store.closed,
            generation: store.generation,
        })
    }

    /// The witness voter's raft handle (hand its RPCs to it).
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The witness voter's applied database.
    pub fn view(&self) -> &SharedState {
        &self.view
    }

    /// The lease generation it runs under.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Shuts the voter down and waits until its store is closed, all within `within` (the lease's
    /// stop budget). Only an `Ok` means another node may safely open the store.
    pub async fn stop(self, within: Duration) -> Result<(), HostError> {
        let deadline = Instant::now() + within;
        let timeout = || HostError::StopTimeout {
            id: self.id,
            within_ms: within.as_millis(),
        };
        tokio::time::timeout(within, self.raft.shutdown())
            .await
            .map_err(|_| timeout())?
            .map_err(|_| timeout())?;
        drop(self.raft);
        wait_closed(&self.closed, deadline, within).await
    }
}

/// Waits (bounded by `deadline`) until the store is closed.
async fn wait_closed(
    closed: &Closed,
    deadline: Instant,
    within: Duration,
) -> Result<(), HostError> {
    loop {
        let (path, outcome) = match closed {
            Closed::File(path) => (path, file_closed(path)),
            Closed::Device(path, flag) => (path, Ok(flag.load(Ordering::SeqCst))),
        };
        let detail = match outcome {
            Ok(true) => return Ok(()),
            Ok(false) if Instant::now() < deadline => {
                tokio::time::sleep(CLOSE_POLL).await;
                continue;
            }
            Ok(false) => "it is still open".to_string(),
            Err(e) => e,
        };
        return Err(HostError::NotClosed {
            path: path.clone(),
            within_ms: within.as_millis(),
            detail,
        });
    }
}

/// Whether redb's lock on `path` is free (by opening the file and closing it again).
fn file_closed(path: &Path) -> Result<bool, String> {
    match redb::Database::open(path) {
        Ok(db) => {
            drop(db);
            Ok(true)
        }
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}
