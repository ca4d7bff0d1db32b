//! Starting this node's cluster database: opens `raft.redb`, derives raft's timing from the
//! cluster's NetFT settings as applied there, listens on the node's endpoint port on every address
//! (its cluster addresses for joins, its virtual address once the adapter is up), and starts raft
//! and its server. Also what a restart of raft with new timing needs (`cluster set` of a NetFT
//! delay or threshold). Runs on the raft runtime. Not membership or proposals (cluster.rs).

use keelson_raft::openraft::Raft;
use keelson_raft::{
    raft_timing, Applied, ClusterInfo, ClusterKey, Network, NodeId, RaftTiming, Routing, Server,
    ServerConfig, SharedState, TypeConfig,
};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a restart keeps trying to bind the port the stopped server is still letting go of.
const REBIND_FOR: Duration = Duration::from_secs(3);
const REBIND_PAUSE: Duration = Duration::from_millis(20);

/// What starting raft needs.
#[derive(Clone)]
pub struct LaunchSpec {
    pub dir: PathBuf,
    pub id: NodeId,
    pub cluster_name: String,
    pub key: ClusterKey,
    pub routing: Routing,
}

/// A started cluster database.
pub struct Launched {
    pub raft: Raft<TypeConfig>,
    pub view: SharedState,
    pub applied: mpsc::UnboundedReceiver<Applied>,
    pub server: Server,
    /// The recorded endpoint's address with the port listened on.
    pub endpoint: SocketAddr,
    pub timing: RaftTiming,
}

/// Raft's timing for the cluster's NetFT settings (the defaults while there is no cluster entry
/// yet, or when the stored ones do not read: that is logged).
pub fn timing_of(info: Option<&ClusterInfo>) -> RaftTiming {
    let settings = match info.map(super::settings::netft_settings) {
        Some(Ok(settings)) => settings,
        Some(Err(e)) => {
            tracing::error!(component = "RAFT", "{e}; raft uses the default timing");
            keelson_netft::NetftSettings::default()
        }
        None => keelson_netft::NetftSettings::default(),
    };
    raft_timing(&settings)
}

/// Opens the database and starts raft and its server on `endpoint`'s port (or, None, on the
/// endpoint this node's entry records, named `me`).
pub async fn launch(
    spec: LaunchSpec,
    endpoint: Option<SocketAddr>,
    me: &str,
) -> Result<Launched, String> {
    let (log, mut sm) = open(&spec.dir).await?;
    let view = sm.view();
    let applied = sm.follow();
    let addr = match endpoint {
        Some(addr) => addr,
        None => super::recorded_endpoint(&view, me)?,
    };
    let listener = bind(addr).await?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?
        .port();
    let timing = {
        let state = view.read().unwrap_or_else(|p| p.into_inner());
        timing_of(state.cluster.as_ref())
    };
    let config = timing
        .config(&spec.cluster_name)
        .map_err(|e| format!("raft configuration: {e}"))?;
    let network = Network::new(spec.id, spec.key.clone(), &spec.cluster_name, &timing)
        .with_routing(spec.routing.clone());
    let raft = Raft::new(spec.id, config, network, log, sm)
        .await
        .map_err(|e| format!("cannot start the cluster database: {e}"))?;
    let mut server_config = ServerConfig::new(&spec.cluster_name);
    server_config.admission = Some(super::admission(view.clone()));
    let server = keelson_raft::serve(listener, raft.clone(), spec.key.clone(), server_config)
        .map_err(|e| format!("cannot serve the cluster database on {addr}: {e}"))?;
    Ok(Launched {
        raft,
        view,
        applied,
        server,
        endpoint: SocketAddr::new(addr.ip(), port),
        timing,
    })
}

/// Opens the database; one a stopped raft's tasks are still letting go of (redb's lock still
/// held) is retried for REBIND_FOR.
async fn open(
    dir: &std::path::Path,
) -> Result<(keelson_raft::LogStore, keelson_raft::StateMachine), String> {
    let deadline = tokio::time::Instant::now() + REBIND_FOR;
    loop {
        match keelson_raft::open(dir) {
            Ok(opened) => return Ok(opened),
            Err(e)
                if e.to_string().contains("already open")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(REBIND_PAUSE).await
            }
            Err(e) => return Err(format!("cannot open the cluster database: {e}")),
        }
    }
}

/// Listens on `addr`'s port on every address of its family; a port still held by a server being
/// stopped is retried for REBIND_FOR.
async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    let wildcard = SocketAddr::new(unspecified(addr.ip()), addr.port());
    let deadline = tokio::time::Instant::now() + REBIND_FOR;
    loop {
        match tokio::net::TcpListener::bind(wildcard).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && addr.port() != 0
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(REBIND_PAUSE).await
            }
            Err(e) => return Err(format!("cannot listen on {wildcard}: {e}")),
            Ok(listener) => return Ok(listener),
        }
    }
}

/// The wildcard address of `ip`'s family.
fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}
