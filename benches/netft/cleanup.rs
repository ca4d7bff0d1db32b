//! Everything the benchmark creates (network namespaces, node processes, its temporary directory)
//! is registered here, so that it is removed even when the run is cut short: the owners' Drop
//! guards remove what they own on the way out (and on a panic), and a SIGINT/SIGTERM handler
//! thread removes whatever is still registered and exits. Also removes the namespaces and temporary
//! directory left behind by an earlier run that was SIGKILLed (their names carry the dead run's pid). Not the creation of
//! any of it (lab.rs, nodes.rs).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The prefix of every namespace this benchmark creates: `knb<pid>…`.
pub const NETNS_PREFIX: &str = "knb";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Netns(String),
    Process(u32),
    Dir(PathBuf),
}

static REGISTRY: Mutex<Vec<Item>> = Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<Item>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn register(item: Item) {
    registry().push(item);
}

/// Removes the item and forgets it; returns whether it was still registered.
pub fn remove(item: &Item) -> bool {
    let mut items = registry();
    let Some(at) = items.iter().position(|i| i == item) else {
        return false;
    };
    items.remove(at);
    drop(items);
    destroy(item);
    true
}

/// Just forgets the item (its owner removed it some other way, e.g. a reaped process).
pub fn forget(item: &Item) {
    registry().retain(|i| i != item);
}

fn destroy(item: &Item) {
    match item {
        Item::Process(pid) => {
            if let Err(e) = keelson_sys::process::kill(*pid, keelson_sys::Signal::SIGKILL) {
                eprintln!("cleanup: kill -9 {pid}: {e}");
            }
        }
        Item::Netns(name) => delete_netns(name),
        Item::Dir(dir) => {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                eprintln!("cleanup: rm -r {}: {e}", dir.display());
            }
        }
    }
}

pub fn delete_netns(name: &str) {
    match Command::new("ip").args(["netns", "del", name]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!(
            "cleanup: ip netns del {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => eprintln!("cleanup: cannot run ip netns del {name}: {e}"),
    }
}

/// Removes everything still registered: processes first, then namespaces and directories.
pub fn everything() {
    let mut items = std::mem::take(&mut *registry());
    items.sort_by_key(|i| !matches!(i, Item::Process(_)));
    for item in &items {
        destroy(item);
    }
}

/// On SIGINT or SIGTERM: remove everything and exit 130.
pub fn on_signal_remove_everything() {
    let spawned = std::thread::Builder::new()
        .name("cleanup-on-signal".into())
        .spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("signal runtime");
            runtime.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
                let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            eprintln!("\ninterrupted: removing the benchmark's namespaces and processes");
            everything();
            std::process::exit(130);
        });
    spawned.expect("cannot start the signal thread");
}

/// Removes `knb<pid>…` namespaces and `keelson-netft-bench-<pid>` temporary directories whose run
/// (pid) is no longer alive.
pub fn remove_stale() {
    if let Ok(entries) = std::fs::read_dir("/var/run/netns") {
        for name in entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
        {
            if let Some(pid) = dead_run(&name, NETNS_PREFIX) {
                println!("removing namespace {name} left behind by an earlier run (pid {pid})");
                delete_netns(&name);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = dead_run(&name, TEMP_PREFIX) {
                println!(
                    "removing {} left behind by an earlier run (pid {pid})",
                    entry.path().display()
                );
                destroy(&Item::Dir(entry.path()));
            }
        }
    }
}

/// The prefix of the benchmark's temporary directory: `keelson-netft-bench-<pid>`.
pub const TEMP_PREFIX: &str = "keelson-netft-bench-";

/// The pid in `name` (PREFIX<pid>…) if that run is gone.
fn dead_run(name: &str, prefix: &str) -> Option<u32> {
    let digits: String = name
        .strip_prefix(prefix)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let pid = digits.parse::<u32>().ok()?;
    (pid != std::process::id() && !keelson_sys::process::is_alive(pid)).then_some(pid)
}
