//! What the state machine tells the node service after each durable apply, in log order: the
//! record changes of one committed entry, or a snapshot that replaced the whole database. The
//! node's engine follows these (`Engine::apply_records`). Not the storage (state_machine.rs).

use crate::ClusterState;
use keelson_types::RecordChange;

/// One durable step of the applied cluster database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Entry `index` committed these changes, now on disk.
    Changes {
        index: u64,
        changes: Vec<RecordChange>,
    },
    /// Entry `index` changed the cluster's name, node list or a node's entry.
    Cluster { index: u64 },
    /// A snapshot up to `index` replaced every record.
    Snapshot {
        index: Option<u64>,
        state: ClusterState,
    },
}
