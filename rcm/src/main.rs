//! `keelson-rcm`, the node service: opens the data directory (lock, cluster database, logs), starts
//! probing the plugin catalogue (each file in a throwaway host; the catalogue fills in as probes
//! report, nothing waits for them here), restores what was online, and serves the control socket until
//! stopped. Wiring only: the behaviour lives in the modules it starts.
#![forbid(unsafe_code)]

mod api;
mod audit;
mod catalogue;
mod cluster;
mod clusterlog;
mod core;
mod datadir;
mod echo;
mod events;
mod logfile;
mod probe;
mod secrets;
mod unsaved;
mod validation;
mod views;

use anyhow::{Context, Result};
use clap::Parser;
use clusterlog::subscriber::{Journald, Plan};
use keelson_engine::Engine;
use keelson_host::{HostConfig, ResourceDirs};
use keelson_store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// keelson node service (Resource Control Manager).
#[derive(Parser, Debug)]
#[command(name = "keelson-rcm", version, about)]
pub struct Args {
    /// Data directory: cluster database, cluster.log, events.jsonl, audit.log, rcm.sock.
    #[arg(long, env = "KEELSON_DATA_DIR", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Directory searched for libkeelson_plugin_*.so files (repeatable).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Rotate cluster.log, events.jsonl and audit.log when one would grow past this many bytes.
    #[arg(long, default_value_t = clusterlog::DEFAULT_MAX_BYTES, value_name = "BYTES")]
    pub log_max_bytes: u64,
    /// Rotated files to keep of each (cluster.log.1 … .N, likewise events.jsonl and audit.log).
    #[arg(long, default_value_t = clusterlog::DEFAULT_KEEP, value_name = "N")]
    pub log_keep: u32,
    /// Node name shown in status (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Repair a damaged cluster database and exit: copy cluster.redb aside, recover every record
    /// that can still be read into a fresh database, and say what was recovered and what was lost.
    /// The node service must be stopped.
    #[arg(long)]
    pub repair: bool,
    /// Which diagnostics reach cluster.log (and the journal), RUST_LOG-style: `debug`,
    /// `keelson_rcm::api=debug`, `warn,keelson_rcm=info`. Everything not named is at INFO and above.
    #[arg(long, env = "RUST_LOG", default_value = "", value_name = "FILTER")]
    pub log_filter: String,
    /// Also send diagnostics to the systemd journal (the default when systemd connected stdout or
    /// stderr to the journal, JOURNAL_STREAM); refuses to start if the journal cannot be reached.
    #[arg(long)]
    pub journald: bool,
    /// Also echo the cluster log on stderr (the default when stderr is a terminal).
    #[arg(long, env = "KEELSON_RCM_FOREGROUND")]
    pub foreground: bool,
    /// How long each plugin file's load may take in its probe host before the host is killed and the
    /// file listed as hung, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_PROBE_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub probe_timeout: u64,
    /// The TCP port of this node's cluster database when it creates or joins a cluster (0: any
    /// free port; the port chosen is recorded in the cluster).
    #[arg(long, value_name = "PORT", default_value_t = cluster::RAFT_PORT)]
    pub raft_port: u16,
    /// Each resource host's lease from this service, in milliseconds (renewed every third of it):
    /// a host whose lease runs out (this process frozen) terminates its resources and exits. 0: no
    /// lease, hosts never fence.
    #[arg(long, value_name = "MS", default_value_t = keelson_host::DEFAULT_HOST_LEASE_MS)]
    pub host_lease: u64,
    /// How long each resource's TERMINATE may take when its host fences itself, in milliseconds
    /// (at most its DeadlockTimeout).
    #[arg(long, value_name = "MS", default_value_t = keelson_host::DEFAULT_FENCE_BUDGET_MS)]
    pub host_fence_budget: u64,
}

/// Nothing rcm creates is readable by others or writable by its group: data dir 0750, files 0640.
const UMASK: u32 = 0o027;

/// Default of --probe-timeout.
const DEFAULT_PROBE_TIMEOUT_MS: u64 = 5_000;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // One thread: the node service's own work is light (plugins run in hosts), and a single thread
    // saves the cross-thread wake-ups that dominated its CPU at 10,000 resources. It also makes the
    // main thread the parent of every host, so PR_SET_PDEATHSIG fires exactly when rcm dies.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keelson-rcm: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keelson-rcm: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let host_lease = match args.host_lease {
        0 => None,
        ms => Some(
            keelson_host::HostLease::new(ms, args.host_fence_budget).map_err(anyhow::Error::msg)?,
        ),
    };
    let journald = Journald::choose(args.journald, std::env::var_os("JOURNAL_STREAM").as_deref());
    let diagnostics = Plan::new(&args.log_filter, journald).map_err(anyhow::Error::msg)?;
    keelson_sys::process::set_umask(UMASK);
    let dir = args.data_dir.clone();
    let tightened = datadir::prepare(&dir)?;
    let _lock = keelson_sys::process::lock_exclusive(&dir.join("rcm.lock")).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            anyhow::anyhow!(
                "another keelson-rcm is already running on {}",
                dir.display()
            )
        } else {
            anyhow::anyhow!("cannot lock {}: {e}", dir.join("rcm.lock").display())
        }
    })?;
    if args.repair {
        return repair(&dir);
    }
    let fd_limit = keelson_sys::process::raise_fd_limit().unwrap_or(0);
    let log = Arc::new(clusterlog::ClusterLog::open(
        &dir,
        args.log_max_bytes,
        args.log_keep,
    )?);
    let journald_note = diagnostics.note.clone();
    diagnostics
        .install(log.layer())
        .map_err(anyhow::Error::msg)?;
    if echo::wanted(args.foreground) {
        let lines = log
            .file()
            .subscribe()
            .context("the cluster log has no live feed")?;
        echo::start(lines).context("cannot start echoing the cluster log")?;
    }
    let events = Arc::new(events::EventLog::open(
        &dir,
        args.log_max_bytes,
        args.log_keep,
    )?);
    let audit = Arc::new(audit::AuditLog::open(
        &dir,
        args.log_max_bytes,
        args.log_keep,
    )?);
    tracing::info!(
        "node service starting: pid {}, data dir {}, open-file limit {fd_limit}",
        std::process::id(),
        dir.display()
    );
    if let Some(note) = journald_note {
        tracing::warn!("{note}");
    }

    if let Some(old) = tightened {
        tracing::warn!(
            "data directory {} was mode {old:o}: now 0750 (its files hold secrets)",
            dir.display()
        );
    }
    let host_config = HostConfig::from_env();
    let probe_timeout = std::time::Duration::from_millis(args.probe_timeout);
    // A missing default plugin directory is no problem; a missing --plugin-dir is listed as one.
    let explicit = !args.plugin_dirs.is_empty();
    let catalogue = probe::initial_catalogue(&plugin_dirs(&args), explicit, probe_timeout);
    let (tx, inputs) = mpsc::unbounded_channel();
    probe::start(&catalogue, &host_config, &tx);

    let (store, snapshot) = match open_store(&dir) {
        Ok(opened) => opened,
        Err(e) => {
            tracing::error!("{e}; not starting");
            return Err(e.into());
        }
    };
    let cluster = cluster::Cluster::open(&dir).map_err(|e| {
        tracing::error!("{e}; not starting");
        anyhow::anyhow!(e)
    })?;
    // A cluster node's configuration is the cluster database's; a single node's is cluster.redb.
    let snapshot = match &cluster {
        Some(c) => c.state().to_snapshot(),
        None => snapshot,
    };
    let node = match (&cluster, args.node_name.clone()) {
        (Some(c), given) => {
            let me = c.status_view().node;
            if given.as_ref().is_some_and(|g| *g != me) {
                anyhow::bail!(
                    "--node-name {} differs from this node's name in its cluster, '{me}'",
                    given.unwrap_or_default()
                );
            }
            me
        }
        (None, given) => given.unwrap_or_else(hostname),
    };
    // A cluster node runs only the groups it owns; a single node runs them all.
    let local = if cluster.is_some() { node.as_str() } else { "" };
    let (engine, commands) = restore(local, cluster.is_some(), &snapshot)?;
    let (mut core, pool_reports) = core::Core::new(core::CoreParts {
        engine,
        store,
        log: log.clone(),
        events: events.clone(),
        audit: audit.clone(),
        catalogue,
        // The pool's hosts hold a lease; probe hosts (started above, renewed by nobody) do not.
        host_config: HostConfig {
            lease: host_lease,
            resource_dirs: Some(ResourceDirs::new(dir.join("resources"), node.clone())),
            ..host_config
        },
        node,
        tx,
        cluster,
        raft_port: args.raft_port,
        data_dir: dir.clone(),
    });
    core.remember_secrets(
        snapshot
            .resources
            .iter()
            .map(|r| (r.name.as_str(), &r.params)),
    );
    core.execute(commands);

    let (api_tx, api_rx) = mpsc::channel(256);
    let (listener, socket_gid) = api::bind(&dir)?;
    let stop_answered = Arc::new(tokio::sync::Notify::new());
    let api = Arc::new(api::Api {
        stop_answered: stop_answered.clone(),
        core: api_tx.clone(),
        audit,
        log: log.clone(),
        events,
        owner_uid: keelson_sys::process::geteuid(),
        socket_gid,
    });
    tokio::spawn(api.serve(listener));
    tokio::spawn(stop_on_signal(api_tx, stop_answered.clone()));
    tracing::info!("node service ready on {}", dir.join("rcm.sock").display());
    core.run(inputs, pool_reports, api_rx).await;
    // The NodeStop reply is written by its connection task: let it go out before exiting.
    let _ = tokio::time::timeout(STOP_REPLY_WAIT, stop_answered.notified()).await;
    let _ = std::fs::remove_file(dir.join("rcm.sock"));
    tracing::info!("node service stopped");
    Ok(())
}

/// --plugin-dir, or the directory of this executable and /usr/lib/keelson/plugins.
fn plugin_dirs(args: &Args) -> Vec<PathBuf> {
    if !args.plugin_dirs.is_empty() {
        return args.plugin_dirs.clone();
    }
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
    {
        dirs.push(dir);
    }
    dirs.push(PathBuf::from("/usr/lib/keelson/plugins"));
    dirs
}

fn open_store(dir: &std::path::Path) -> Result<(Store, keelson_store::Snapshot), StoreError> {
    let store = Store::open(&dir.join("cluster.redb"))?;
    let snapshot = store.load()?;
    Ok((store, snapshot))
}

/// `--repair`: the data directory is locked; repair, report, exit.
fn repair(dir: &std::path::Path) -> Result<()> {
    let path = dir.join("cluster.redb");
    let report = keelson_store::repair(&path)
        .map_err(|e| anyhow::anyhow!("cannot repair {}: {e}", path.display()))?;
    println!("{report}");
    println!("{} is ready: start the node service", path.display());
    Ok(())
}

/// Rebuilds the engine from the database; returns the commands that bring back what was online.
/// Every stored resource comes back with its stored plugin name; the file behind its type is resolved
/// from the catalogue when it is opened (an open waits while that type is still being probed, and a
/// type no probe provides fails the open with the reason).
/// A cluster node starts with nothing running: its groups wait until it has quorum and has caught
/// up with the cluster (another node may own them by now).
fn restore(
    local_node: &str,
    clustered: bool,
    snapshot: &keelson_store::Snapshot,
) -> Result<(Engine, Vec<keelson_engine::Command>)> {
    let groups = &snapshot.groups;
    let now = clusterlog::unix_ms();
    let restored = if clustered {
        Engine::restore_waiting_for_quorum(local_node, now, groups, &snapshot.resources)
    } else {
        Engine::restore_on(local_node, now, groups, &snapshot.resources)
    };
    let (engine, commands) =
        restored.map_err(|e| anyhow::anyhow!("cluster database does not hold together: {e}"))?;
    Ok((engine, commands))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Longest wait, after the core stopped, for the reply to `NodeStop` to be written.
const STOP_REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// SIGTERM or SIGINT: stop like `keelson node stop` (with no reply to write).
async fn stop_on_signal(core: mpsc::Sender<api::CoreRequest>, answered: Arc<tokio::sync::Notify>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let _ = core
        .send((keelson_proto::ControlRequest::NodeStop, tx))
        .await;
    answered.notify_one();
}
