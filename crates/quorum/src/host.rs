//! Hosting the witness voter: while this node holds the witness lease it runs, in-process, the raft
//! voter whose storage lives on the witness (`<witness dir>/raft.redb`, keelson-raft's store), and it
//! closes that voter, and checks the file is closed, when the lease is lost. Not the lease (lease.rs)
//! and not the raft transport: the caller's `RaftNetworkFactory` must route the witness id's RPCs to
//! whichever node hosts it (the lease holder).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keelson_raft::openraft::error::Fatal;
use keelson_raft::openraft::network::RaftNetworkFactory;
use keelson_raft::openraft::{Config, Raft, StorageError};
use keelson_raft::{NodeId, SharedState, TypeConfig, RAFT_FILE};

use crate::fence::{FencedLog, FencedStateMachine, LeaseFence};
use crate::lease::HeldLease;

/// How often `stop` looks whether the store file has been let go.
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

/// The witness voter's storage, opened under a held lease and behind the lease fence: what
/// `Raft::new` needs.
pub struct WitnessStore {
    pub log: FencedLog,
    pub state_machine: FencedStateMachine,
    /// The applied database (readers' copy).
    pub view: SharedState,
    /// The generation of the lease it was opened under.
    pub generation: u64,
}

/// The witness voter's store file in a file-share witness directory.
pub fn witness_store_path(witness_dir: &Path) -> PathBuf {
    witness_dir.join(RAFT_FILE)
}

/// Opens (creating if needed) the witness voter's store in `witness_dir`, under `lease`, every
/// write checked against `fence`. redb also locks the file (flock), so a second opener in this
/// process or another on the same host (or an NFS client with working locks) is refused outright.
pub fn open_witness_store(
    witness_dir: &Path,
    lease: &HeldLease,
    fence: &LeaseFence,
) -> Result<WitnessStore, HostError> {
    let (log, state_machine) = keelson_raft::open(witness_dir).map_err(|e| HostError::Open {
        path: witness_store_path(witness_dir),
        source: Box::new(e),
    })?;
    Ok(WitnessStore {
        log: FencedLog::new(log, fence.clone()),
        view: state_machine.view(),
        state_machine: FencedStateMachine::new(state_machine, fence.clone()),
        generation: lease.generation(),
    })
}

/// A running witness voter.
pub struct HostedWitness {
    id: NodeId,
    raft: Raft<TypeConfig>,
    view: SharedState,
    store_path: PathBuf,
    generation: u64,
}

impl HostedWitness {
    /// Opens the witness voter's store under `lease` and starts raft node `id` on it.
    pub async fn start<N>(
        witness_dir: &Path,
        lease: &HeldLease,
        fence: &LeaseFence,
        id: NodeId,
        config: Arc<Config>,
        network: N,
    ) -> Result<HostedWitness, HostError>
    where
        N: RaftNetworkFactory<TypeConfig>,
    {
        let store = open_witness_store(witness_dir, lease, fence)?;
        let view = store.view;
        let raft = Raft::new(id, config, network, store.log, store.state_machine)
            .await
            .map_err(|e| HostError::Start {
                id,
                source: Box::new(e),
            })?;
        Ok(HostedWitness {
            id,
            raft,
            view,
            store_path: witness_store_path(witness_dir),
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

    /// Shuts the voter down and waits until its store file is closed, all within `within` (the
    /// lease's stop budget). Only an `Ok` means another node may safely open the store.
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
        wait_closed(&self.store_path, deadline, within).await
    }
}

/// Waits (bounded by `deadline`) until redb's lock on `path` is free, by opening the file.
async fn wait_closed(path: &Path, deadline: Instant, within: Duration) -> Result<(), HostError> {
    loop {
        match redb::Database::open(path) {
            Ok(db) => {
                drop(db);
                return Ok(());
            }
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                tokio::time::sleep(CLOSE_POLL).await;
            }
            Err(e) => {
                return Err(HostError::NotClosed {
                    path: path.to_path_buf(),
                    within_ms: within.as_millis(),
                    detail: e.to_string(),
                })
            }
        }
    }
}
