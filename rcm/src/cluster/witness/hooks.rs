//! What this node does when its witness lease driver says so: open the witness voter's store under
//! the held lease, run the voter in-process (its raft served by this node's raft server, reached by
//! the others through the `witness` routing layer), and close it again when the lease is lost or
//! given up, logging both in cluster.log (`QUORUM`). Not the lease decisions (crates/quorum) nor
//! which witness is configured (witness.rs).

use std::sync::Arc;
use std::time::Duration;

use keelson_netft::NetftSettings;
use keelson_quorum::{
    open_disk_witness_store, open_witness_store, witness_raft_config, HeldLease, HostedWitness,
    LeaseFence, LogLevel, WitnessHooks,
};
use keelson_raft::{raft_timing, ClusterKey, Network, Routing, WitnessConfig};
use keelson_raft::{NodeId, WitnessKind};

/// The witness voter this node runs, shared between the hooks and the driver's owner (which stops
/// it if the driver itself ends without doing so).
pub type HostedSlot = Arc<tokio::sync::Mutex<Option<HostedWitness>>>;

/// Everything starting the voter needs; also says, through `changed`, that hosting changed.
pub struct Hooks {
    pub config: WitnessConfig,
    pub cluster: String,
    pub key: ClusterKey,
    pub netft: NetftSettings,
    pub fence: LeaseFence,
    pub routing: Routing,
    /// This node's raft server (through a raft restart), which answers for the voter's id.
    pub live: super::Live,
    pub slot: HostedSlot,
    /// This node's name and raft endpoint (the witness voter is reached where this node is).
    pub me: (String, String),
    pub changed: tokio::sync::watch::Sender<u64>,
    /// Where the witness voter runs: raft's runtime, not the lease's (whose thread must never wait
    /// for the voter's storage).
    pub raft_rt: tokio::runtime::Handle,
}

impl Hooks {
    fn describe(&self) -> String {
        describe(&self.config)
    }

    fn network(&self, id: NodeId) -> Network {
        Network::new(
            id,
            self.key.clone(),
            &self.cluster,
            &raft_timing(&self.netft),
        )
        .with_routing(self.routing.clone())
    }
}

/// Opens the witness voter's store of `config` under `lease` (blocking I/O).
fn open(
    config: &WitnessConfig,
    lease: &HeldLease,
    fence: &LeaseFence,
) -> Result<keelson_quorum::WitnessStore, String> {
    let path = std::path::Path::new(&config.path);
    match config.kind {
        WitnessKind::FileShare => open_witness_store(path, lease, fence),
        WitnessKind::Disk => open_disk_witness_store(path, lease, fence),
    }
    .map_err(|e| e.to_string())
}

/// `file-share witness /mnt/w` or `disk witness /dev/sdx`.
pub fn describe(config: &WitnessConfig) -> String {
    match config.kind {
        WitnessKind::FileShare => format!("file-share witness {}", config.path),
        WitnessKind::Disk => format!("disk witness {}", config.path),
    }
}

impl WitnessHooks for Hooks {
    async fn start_hosting(&mut self, lease: HeldLease) -> Result<(), String> {
        let id = self.config.id;
        let (config, fence) = (self.config.clone(), self.fence.clone());
        let store = tokio::task::spawn_blocking(move || open(&config, &lease, &fence))
            .await
            .map_err(|e| format!("opening the witness voter's store panicked: {e}"))??;
        let raft_config = witness_raft_config(&self.cluster, &self.netft);
        let network = self.network(id);
        let hosted = self
            .raft_rt
            .spawn(HostedWitness::start(store, id, raft_config, network))
            .await
            .map_err(|e| format!("starting the witness voter panicked: {e}"))?
            .map_err(|e| e.to_string())?;
        self.live.host(id, hosted.raft().clone());
        let (name, addr) = &self.me;
        super::route_to(&self.routing, name, addr);
        *self.slot.lock().await = Some(hosted);
        tracing::info!(
            component = "QUORUM",
            "This node now hosts the witness voter (node {id}, lease generation {}) from the {}",
            lease.generation(),
            self.describe()
        );
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    async fn stop_hosting(&mut self, reason: String, within: Duration) -> Result<(), String> {
        let id = self.config.id;
        self.live.unhost(id);
        let Some(hosted) = self.slot.lock().await.take() else {
            return Ok(());
        };
        let stopped = match self.raft_rt.spawn(hosted.stop(within)).await {
            Ok(stopped) => stopped.map_err(|e| e.to_string()),
            Err(e) => Err(format!("stopping the witness voter panicked: {e}")),
        };
        match &stopped {
            Ok(()) => tracing::info!(
                component = "QUORUM",
                "This node stopped hosting the witness voter (node {id}) of the {}: {reason}",
                self.describe()
            ),
            Err(e) => tracing::error!(
                component = "QUORUM",
                "This node could not stop the witness voter (node {id}) of the {}: {e}",
                self.describe()
            ),
        }
        self.changed.send_modify(|n| *n += 1);
        stopped
    }

    fn log(&mut self, level: LogLevel, line: String) {
        match level {
            LogLevel::Info => tracing::info!(component = "QUORUM", "{line}"),
            LogLevel::Warning => tracing::warn!(component = "QUORUM", "{line}"),
            LogLevel::Error => tracing::error!(component = "QUORUM", "{line}"),
        }
    }
}
