//! Where the rhs binary is and the timing knobs of hosting, the hosts' lease included. Not
//! per-resource deadlines (OpenSpec).

use crate::lease::HostLease;
use crate::resource_dirs::ResourceDirs;
use keelson_types::{DEFAULT_HELLO_TIMEOUT_MS, DEFAULT_WATCHDOG_GRACE_MS};
use std::path::PathBuf;
use std::time::Duration;

/// How to start hosts.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The `keelson-rhs` executable.
    pub rhs_path: PathBuf,
    /// How long a new host has to say Hello.
    pub hello_timeout: Duration,
    /// Extra time past a call's deadline before rcm's watchdog SIGKILLs the host.
    pub watchdog_grace: Duration,
    /// Pass `--log-stderr` to the host (its log lines also go to its stderr).
    pub log_stderr: bool,
    /// Hosts hold this lease and fence themselves when it is not renewed (None: no lease, they
    /// never fence). A `Pool` grants and renews it; a bare `Host` started with one holds no lease
    /// until its owner grants one through `Host::lease_socket` (with a `LeaseRenewer`).
    pub lease: Option<HostLease>,
    /// Where a `Pool` makes each resource's state directory and which node name it tells them
    /// (None: resources get neither).
    pub resource_dirs: Option<ResourceDirs>,
}

impl HostConfig {
    /// `KEELSON_RHS` if set, else `keelson-rhs` next to the running executable (or one directory up,
    /// for test binaries in target/*/deps), else `keelson-rhs` from PATH.
    pub fn from_env() -> HostConfig {
        HostConfig::with_rhs(locate_rhs())
    }

    pub fn with_rhs(rhs_path: PathBuf) -> HostConfig {
        HostConfig {
            rhs_path,
            hello_timeout: Duration::from_millis(DEFAULT_HELLO_TIMEOUT_MS),
            watchdog_grace: Duration::from_millis(DEFAULT_WATCHDOG_GRACE_MS),
            log_stderr: false,
            lease: None,
            resource_dirs: None,
        }
    }
}

fn locate_rhs() -> PathBuf {
    if let Some(path) = std::env::var_os("KEELSON_RHS") {
        return PathBuf::from(path);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("keelson-rhs");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("keelson-rhs")
}
