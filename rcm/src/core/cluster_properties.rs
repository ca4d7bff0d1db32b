//! The core's side of the cluster-wide properties: `keelson cluster get` shows them from the
//! applied cluster database, `keelson cluster set` checks a change against the latest committed
//! properties and proposes it, acknowledged once committed on a majority and applied here. Not what
//! the properties mean (cluster/settings.rs) nor raft (cluster.rs).

use super::Core;
use crate::cluster::settings;
use crate::views::json_reply;
use keelson_proto::{Assignments, ControlReply};
use keelson_raft::Request;

impl Core {
    /// `keelson cluster get [NAME...]`.
    pub(super) fn cluster_get(&self, names: &[String]) -> Result<ControlReply, String> {
        let info = self
            .in_cluster()?
            .state()
            .cluster
            .ok_or("the cluster has no name and node list yet")?;
        json_reply(&settings::view(&info, names)?)
    }

    /// `keelson cluster set Prop=Value...`: all of them or, refused, none.
    pub(super) fn cluster_set(
        &mut self,
        assignments: &Assignments,
    ) -> Result<ControlReply, String> {
        let cluster = self.in_cluster()?;
        self.admit_cluster_change()?;
        let info = cluster.committed_info()?;
        let changes = settings::check_set(&info, assignments)?;
        let shown: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let index = cluster
            .propose(Request::SetClusterProperties(changes.clone()))
            .map_err(|e| format!("{e}; nothing was changed"))?;
        tracing::info!(
            component = "RCM",
            "Cluster '{}' properties set: {} (log index {index})",
            info.name,
            shown.join(", ")
        );
        if changes
            .get(settings::TEST_ONLY_LOWER_LIMITS)
            .is_some_and(|v| v == "1")
        {
            tracing::warn!(
                component = "RCM",
                "Cluster '{}': {}=1 allows heartbeat settings below WSFC's ranges; for tests only, \
                 never in production",
                info.name,
                settings::TEST_ONLY_LOWER_LIMITS
            );
        }
        // Followed here before the answer (heartbeats, raft's timing): what the administrator
        // reads next is the cluster as set.
        self.catch_up();
        Ok(ControlReply::Done {
            message: format!("cluster '{}' updated: {}", info.name, shown.join(", ")),
        })
    }
}
