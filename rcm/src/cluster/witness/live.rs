//! The parts of this node's cluster database the witness follows: its raft, its applied view and
//! its server's hosted rafts, all replaced when raft restarts with new timing (`cluster set`), with
//! the witness voter's registration moved to the new server. Not the witness's own state
//! (witness.rs).

use std::sync::{Arc, Mutex, MutexGuard};

use keelson_raft::openraft::Raft;
use keelson_raft::{HostedRafts, NodeId, SharedState, TypeConfig};

/// A shared, replaceable handle on the running cluster database; cloning shares it.
#[derive(Clone)]
pub struct Live(Arc<Mutex<Parts>>);

struct Parts {
    raft: Raft<TypeConfig>,
    view: SharedState,
    hosted: HostedRafts,
}

impl Live {
    pub fn new(raft: Raft<TypeConfig>, view: SharedState, hosted: HostedRafts) -> Live {
        Live(Arc::new(Mutex::new(Parts { raft, view, hosted })))
    }

    fn lock(&self) -> MutexGuard<'_, Parts> {
        // Plain field swaps: a panic cannot leave them half-changed.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's raft now.
    pub fn raft(&self) -> Raft<TypeConfig> {
        self.lock().raft.clone()
    }

    /// The applied cluster database now.
    pub fn view(&self) -> SharedState {
        self.lock().view.clone()
    }

    /// Has this node's server answer for raft node `id` with `raft` (kept across a replacement).
    pub fn host(&self, id: NodeId, raft: Raft<TypeConfig>) {
        self.lock().hosted.host(id, raft);
    }

    /// Stops this node's server answering for raft node `id`.
    pub fn unhost(&self, id: NodeId) {
        self.lock().hosted.unhost(id);
    }

    /// The restarted database: its raft, view and server, which takes over the hosted rafts.
    pub fn replace(&self, raft: Raft<TypeConfig>, view: SharedState, hosted: HostedRafts) {
        let mut parts = self.lock();
        for id in parts.hosted.ids() {
            if let Some(voter) = parts.hosted.raft(id) {
                hosted.host(id, voter);
            }
        }
        parts.raft = raft;
        parts.view = view;
        parts.hosted = hosted;
    }
}
