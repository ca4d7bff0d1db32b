//! What the quorum tests share: a loop device over a temporary file (util-linux `losetup`),
//! detached even when the test fails. Needs root; under CI=true a missing loop device fails the
//! test, elsewhere it is skipped with the reason printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

/// A loop device over a temporary file, detached on drop.
pub struct LoopDevice {
    device: PathBuf,
    _backing: tempfile::NamedTempFile,
}

impl LoopDevice {
    /// None (with the reason printed) when this machine cannot make one and CI is not set.
    pub fn create(bytes: u64) -> Option<LoopDevice> {
        let backing = tempfile::NamedTempFile::new().unwrap();
        backing.as_file().set_len(bytes).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(backing.path())
            .output();
        let reason = match out {
            Ok(o) if o.status.success() => {
                let device = String::from_utf8(o.stdout).unwrap().trim().to_string();
                return Some(LoopDevice {
                    device: PathBuf::from(device),
                    _backing: backing,
                });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("cannot run losetup: {e}"),
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no loop device could be set up: {reason}"
        );
        eprintln!("skipped: no loop device ({reason}); run as root");
        None
    }

    pub fn path(&self) -> &Path {
        &self.device
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let status = Command::new("losetup").arg("-d").arg(&self.device).status();
        if !matches!(status, Ok(s) if s.success()) && !thread::panicking() {
            panic!("cannot detach {}: {status:?}", self.device.display());
        }
    }
}
