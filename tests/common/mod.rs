//! Shared helpers for the end-to-end tests: where the built binaries and plugins are, a host config
//! pointing at them, and bounded waiting. Not assertions of any capability.
#![allow(dead_code)]

use keelson_host::HostConfig;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// target/<profile>, found from the running test binary (target/<profile>/deps/t01-…).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(2)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// A built artefact in target/<profile>; fails with the command that builds it.
pub fn artefact(file: &str) -> PathBuf {
    let path = target_dir().join(file);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before `cargo test` (scripts/test does)",
        path.display()
    );
    path
}

/// The plugin library `libkeelson_plugin_<name>.so`.
pub fn plugin(name: &str) -> String {
    artefact(&format!("libkeelson_plugin_{}.so", name.replace('-', "_")))
        .display()
        .to_string()
}

/// A host config for the freshly built keelson-rhs.
pub fn host_config() -> HostConfig {
    HostConfig::with_rhs(artefact("keelson-rhs"))
}

/// Polls `cond` every 2 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether the test runs in CI, where a missing prerequisite is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// The scheduler state letter of every thread of `pid` (R, S, T, Z, …), from /proc.
pub fn thread_states(pid: u32) -> Vec<char> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| {
            keelson_sys::process::stat_fields(&t.path().join("stat").display().to_string()).ok()
        })
        .filter_map(|fields| fields.first().and_then(|state| state.chars().next()))
        .collect()
}

/// Zombie children of this process whose command name is `comm`.
pub fn zombie_children_named(comm: &str) -> Vec<u32> {
    keelson_sys::process::zombie_children(std::process::id())
        .unwrap_or_default()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == comm)
                .unwrap_or(false)
        })
        .collect()
}

pub mod faults;
pub mod knot;
pub mod lab;
pub mod rcm;
