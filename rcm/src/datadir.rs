//! The data directory itself: created mode 0750 (it holds the cluster database with every private
//! parameter, and the audit trail), and an existing one that others can enter is tightened. Not the
//! files inside (each is created 0640 by its owner module) nor the lock (main.rs).

use anyhow::{Context, Result};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Mode of the data directory.
pub const MODE: u32 = 0o750;

/// Creates `dir` (and missing parents) mode 0750, or tightens an existing one; returns its old mode
/// when it had to be tightened.
pub fn prepare(dir: &Path) -> Result<Option<u32>> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(MODE)
            .create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        return Ok(None);
    }
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read data directory {}", dir.display()))?;
    anyhow::ensure!(
        meta.is_dir(),
        "data directory {} is not a directory",
        dir.display()
    );
    let mode = meta.permissions().mode() & 0o7777;
    if mode & !MODE == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & MODE))
        .with_context(|| format!("cannot restrict data directory {} to 0750", dir.display()))?;
    Ok(Some(mode))
}
