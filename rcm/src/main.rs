//! `keelson-rcm`, the node service: opens the data directory (lock, cluster database, logs), probes the
//! plugin catalogue in a throwaway host, restores what was online, and serves the control socket until
//! stopped. Wiring only: the behaviour lives in the modules it starts.

mod api;
mod audit;
mod catalogue;
mod clusterlog;
mod core;
mod events;
mod exec;
mod logfile;
mod requests;
mod views;

use anyhow::{Context, Result};
use clap::Parser;
use keelson_engine::Engine;
use keelson_host::HostConfig;
use keelson_store::Store;
use keelson_types::LogLevel;
use std::collections::{BTreeMap, HashMap};
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
}

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
    let dir = args.data_dir.clone();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
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
    let fd_limit = keelson_sys::process::raise_fd_limit().unwrap_or(0);
    let log = Arc::new(clusterlog::ClusterLog::open(
        &dir,
        args.log_max_bytes,
        args.log_keep,
    )?);
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
    log.log(
        LogLevel::Info,
        "RCM",
        &format!(
            "node service starting: pid {}, data dir {}, open-file limit {fd_limit}",
            std::process::id(),
            dir.display()
        ),
    );

    let host_config = HostConfig::from_env();
    let plugin_dirs = plugin_dirs(&args);
    let (catalogue, warnings) = catalogue::Catalogue::probe(&host_config, &plugin_dirs)
        .await
        .with_context(|| {
            format!(
                "cannot probe plugins with {}",
                host_config.rhs_path.display()
            )
        })?;
    for w in warnings {
        log.log(LogLevel::Warn, "RCM", &w);
    }
    log.log(
        LogLevel::Info,
        "RCM",
        &format!(
            "plugin catalogue: types {}",
            catalogue.type_names().join(", ")
        ),
    );

    let store = Store::open(&dir.join("cluster.redb"))?;
    let snapshot = store.load()?;
    let (engine, commands, params) = restore(&catalogue, &snapshot)?;
    let (tx, inputs) = mpsc::unbounded_channel();
    let node = args.node_name.clone().unwrap_or_else(hostname);
    let mut core = core::Core::new(
        engine,
        store,
        log.clone(),
        events.clone(),
        catalogue,
        host_config,
        node,
        tx,
    );
    core.params = params;
    core.execute(commands);

    let (api_tx, api_rx) = mpsc::channel(256);
    let (listener, socket_gid) = api::bind(&dir)?;
    let api = Arc::new(api::Api {
        core: api_tx.clone(),
        audit,
        log: log.clone(),
        events,
        owner_uid: keelson_sys::process::geteuid(),
        socket_gid,
    });
    tokio::spawn(api.serve(listener));
    tokio::spawn(stop_on_signal(api_tx));
    log.log(
        LogLevel::Info,
        "RCM",
        &format!("node service ready on {}", dir.join("rcm.sock").display()),
    );
    core.run(inputs, api_rx).await;
    let _ = std::fs::remove_file(dir.join("rcm.sock"));
    log.log(LogLevel::Info, "RCM", "node service stopped");
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

/// Private parameters by resource name.
type Params = HashMap<String, BTreeMap<String, String>>;

/// Rebuilds the engine from the database; returns the commands that bring back what was online.
fn restore(
    catalogue: &catalogue::Catalogue,
    snapshot: &keelson_store::Snapshot,
) -> Result<(Engine, Vec<keelson_engine::Command>, Params)> {
    // The plugin behind each type is re-resolved from today's catalogue.
    let resources: Vec<keelson_engine::ResourceRecord> = snapshot
        .resources
        .iter()
        .map(|r| keelson_engine::ResourceRecord {
            plugin: catalogue
                .lookup(&r.type_name)
                .map(|(p, _)| p.to_string())
                .unwrap_or_default(),
            ..r.clone()
        })
        .collect();
    let groups = &snapshot.groups;
    let now = clusterlog::unix_ms();
    let (engine, commands) = Engine::restore(now, groups, &resources)
        .map_err(|e| anyhow::anyhow!("cluster database does not hold together: {e}"))?;
    let params = snapshot
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.params.clone()))
        .collect();
    Ok((engine, commands, params))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// SIGTERM or SIGINT: stop like `keelson node stop`.
async fn stop_on_signal(core: mpsc::Sender<api::CoreRequest>) {
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
}
