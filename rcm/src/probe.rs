//! Probing plugin files without ever waiting on one: list every `libkeelson_plugin_*.so` in the
//! plugin directories (problems such as a dangling symlink are found right there), then load each
//! file in a throwaway keelson-rhs of its own with its own deadline, a few at a time, and report each
//! result to the core as it comes. Not the core's side (core/catalogue_gate.rs), not the catalogue's
//! bookkeeping (catalogue.rs) and not hosting resources.

use crate::catalogue::{Catalogue, FileState, PluginFile, ProbeReport};
use crate::core::Input;
use crate::event_at;
use keelson_host::{Host, HostConfig, HostError, HostEvent, HostEvents};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tracing::Instrument;

/// Probes running at once (each is one short-lived host process).
const CONCURRENT_PROBES: usize = 8;
/// Extra time a parked create waits past the longest a single probe can take.
pub(crate) const PARK_MARGIN: Duration = Duration::from_secs(1);

/// What the probes tell the core.
#[derive(Debug)]
pub enum CatalogueInput {
    /// One file's probe finished (loaded, hung or failed).
    Probed(ProbeReport),
    /// A parked create has waited as long as it may.
    ParkExpired(u64),
}

/// Every file looked at in `dirs` (sorted, first directory first): plugin files to probe are
/// `Probing`; files that cannot be loaded at all, and unreadable directories, are `Failed`. A missing
/// directory is one only when it was asked for (`explicit`), not a default that may not exist.
pub fn list(dirs: &[PathBuf], explicit: bool) -> Vec<PluginFile> {
    let mut out = Vec::new();
    for dir in dirs {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut found = Vec::new();
                for entry in entries {
                    match entry {
                        Ok(entry) if is_plugin_name(&entry.file_name()) => {
                            found.push(looked_at(&entry.path()))
                        }
                        Ok(_) => {}
                        Err(e) => found.push(failed(dir, format!("cannot list: {e}"))),
                    }
                }
                found.sort_by(|a, b| a.path.cmp(&b.path));
                // A directory given twice is looked at once.
                found.retain(|f| !out.iter().any(|o: &PluginFile| o.path == f.path));
                out.extend(found);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
            Err(e) => out.push(failed(dir, format!("cannot read plugin directory: {e}"))),
        }
    }
    out
}

fn is_plugin_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with("libkeelson_plugin_") && n.ends_with(".so"))
}

fn failed(path: &Path, why: String) -> PluginFile {
    PluginFile {
        path: path.display().to_string(),
        state: FileState::Failed(why),
        probe_ms: None,
    }
}

/// A plugin-named entry: to probe, or why it cannot be (a dangling symlink, not a regular file).
fn looked_at(path: &Path) -> PluginFile {
    let shown = path.display().to_string();
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::read_link(path).ok(),
        Ok(_) => None,
        Err(e) => return failed(path, format!("{shown}: {e}")),
    };
    let named = match &link {
        Some(target) => format!("{shown} -> {}", target.display()),
        None => shown.clone(),
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => PluginFile {
            path: shown,
            state: FileState::Probing,
            probe_ms: None,
        },
        Ok(_) => failed(path, format!("{named}: not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            failed(path, format!("{named}: no such file"))
        }
        Err(e) => failed(path, format!("{named}: {e}")),
    }
}

/// Logs what is about to be probed and starts a probe per file; their results reach the core as they
/// come (as `Input::Catalogue`), never awaited.
pub fn start(catalogue: &Catalogue, config: &HostConfig, tx: &mpsc::UnboundedSender<Input>) {
    let files = catalogue.files();
    let probing = files
        .iter()
        .filter(|f| matches!(f.state, FileState::Probing))
        .count();
    tracing::info!(
        "plugin catalogue: probing {probing} of {} files looked at, each within {} ms",
        files.len(),
        catalogue.probe_timeout().as_millis()
    );
    for file in files
        .iter()
        .filter(|f| matches!(f.state, FileState::Failed(_)))
    {
        let FileState::Failed(e) = &file.state else {
            continue;
        };
        tracing::error!("plugin file {} cannot be used: {e}", file.path);
    }
    if catalogue.is_complete() {
        let (level, line) = catalogue.complete_line();
        event_at!(level, "{line}");
    }
    spawn_probes(files, config.clone(), catalogue.probe_timeout(), tx.clone());
}

/// Starts probing every `Probing` file; each result arrives on `tx` as `Input::Catalogue`.
fn spawn_probes(
    files: &[PluginFile],
    config: HostConfig,
    limit: Duration,
    tx: mpsc::UnboundedSender<Input>,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENT_PROBES));
    for file in files
        .iter()
        .filter(|f| matches!(f.state, FileState::Probing))
    {
        let (path, config, tx, slots) =
            (file.path.clone(), config.clone(), tx.clone(), slots.clone());
        let span = tracing::info_span!("probe", file = %path);
        let probe = async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            let report = probe_file(&config, &path, limit).await;
            let _ = tx.send(Input::Catalogue(CatalogueInput::Probed(report)));
        };
        tokio::spawn(probe.instrument(span));
    }
}

/// Loads one file in a fresh host; the load gets `limit`, after which the host is killed.
async fn probe_file(config: &HostConfig, path: &str, limit: Duration) -> ProbeReport {
    let start = Instant::now();
    let report = |state| ProbeReport {
        path: path.to_string(),
        state,
        probe_ms: start.elapsed().as_millis() as u64,
    };
    let (host, events) = match Host::spawn(config).await {
        Ok(spawned) => spawned,
        Err(e) => return report(FileState::Failed(format!("cannot start a probe host: {e}"))),
    };
    let output = forward_probe_output(events, path.to_string());
    tokio::spawn(output.in_current_span());
    let state = match host.load_plugin_within(path, limit).await {
        Ok(info) => FileState::Loaded(info),
        Err(HostError::LoadHung { limit_ms, pid, .. }) => FileState::Hung(format!(
            "hung at load: not loaded within the probe deadline of {limit_ms} ms (a library \
             initialiser never returned); probe host {pid} was killed"
        )),
        Err(HostError::Died(died)) => {
            FileState::Failed(format!("the probe host died while loading it: {died}"))
        }
        Err(e) => FileState::Failed(e.to_string()),
    };
    // The verdict does not wait for the host to exit.
    tokio::spawn(async move {
        host.shutdown().await;
    });
    report(state)
}

/// What plugin code printed or logged while being probed goes to cluster.log, marked as such.
async fn forward_probe_output(mut events: HostEvents, path: String) {
    while let Some(event) = events.recv().await {
        match event {
            HostEvent::Log {
                pid,
                tid,
                level,
                message,
                ..
            } => event_at!(
                level,
                pid,
                tid,
                component = "RHS",
                "probe of {path}: {message}"
            ),
            HostEvent::Stderr { pid, line } => tracing::warn!(
                pid,
                tid = 0u32,
                component = "RHS",
                "probe of {path}: stderr: {line}"
            ),
            HostEvent::Died(_) => return,
            HostEvent::Refused { .. }
            | HostEvent::Progress { .. }
            | HostEvent::HealthFailed { .. }
            | HostEvent::FailureReported { .. }
            | HostEvent::CallStats { .. } => {}
        }
    }
}

/// The catalogue's state at start-up: every file listed, none probed yet.
pub fn initial_catalogue(dirs: &[PathBuf], explicit: bool, limit: Duration) -> Catalogue {
    Catalogue::new(list(dirs, explicit), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keelson-probe-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_plugin_named_entry_is_listed_with_what_stops_it_from_loading() {
        let d = temp_dir("list");
        std::fs::write(d.join("libkeelson_plugin_b.so"), b"").unwrap();
        std::fs::write(d.join("README"), b"").unwrap();
        std::os::unix::fs::symlink("/nonexistent/x.so", d.join("libkeelson_plugin_a.so")).unwrap();
        std::fs::create_dir(d.join("libkeelson_plugin_c.so")).unwrap();
        let files = list(std::slice::from_ref(&d), true);
        let shown: Vec<(String, String)> = files
            .iter()
            .map(|f| {
                let name = Path::new(&f.path).file_name().unwrap().to_string_lossy();
                let state = match &f.state {
                    FileState::Probing => "probing".to_string(),
                    FileState::Failed(e) => e.replace(&d.display().to_string(), "D"),
                    other => format!("{other:?}"),
                };
                (name.to_string(), state)
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "libkeelson_plugin_a.so".into(),
                    "D/libkeelson_plugin_a.so -> /nonexistent/x.so: no such file".into()
                ),
                ("libkeelson_plugin_b.so".into(), "probing".into()),
                (
                    "libkeelson_plugin_c.so".into(),
                    "D/libkeelson_plugin_c.so: not a regular file".into()
                ),
            ]
        );
        assert_eq!(
            list(&[d.clone(), d.clone()], true).len(),
            3,
            "a directory given twice"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_missing_directory_is_a_problem_only_when_it_was_asked_for() {
        let gone = Path::new("/nonexistent/keelson-plugins");
        assert!(list(&[gone.to_path_buf()], false).is_empty());
        let files = list(&[gone.to_path_buf()], true);
        assert_eq!(files.len(), 1);
        assert!(
            matches!(&files[0].state, FileState::Failed(e) if e.starts_with("cannot read plugin directory:")),
            "{files:?}"
        );
    }
}
