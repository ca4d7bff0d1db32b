//! IsAlive's read/write probe: write a small file on the mounted filesystem, fsync it, read it
//! back and compare, so a filesystem that stopped answering or went read-only fails the check.
//! Runs on a worker (worker.rs) that bounds it by ProbeTimeoutMs. Not the lease.

use std::io::Write;
use std::path::Path;

/// The probe file's name in the mount's root.
pub const PROBE_FILE: &str = ".keelson-disk-probe";

/// Writes `text` to `path`, syncs it, reads it back.
pub fn write_read(path: &Path, text: &str) -> Result<(), String> {
    let mut file = std::fs::File::create(path)
        .map_err(|e| format!("probe: create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("probe: write {}: {e}", path.display()))?;
    let back = std::fs::read_to_string(path)
        .map_err(|e| format!("probe: read {}: {e}", path.display()))?;
    if back != text {
        return Err(format!(
            "probe: {} read back {back:?}, wrote {text:?}",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_reads_back_what_it_wrote_and_fails_naming_a_missing_dir() {
        let dir = std::env::temp_dir().join(format!("keelson-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_read(&dir.join(PROBE_FILE), "n1 5\n").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let err = write_read(&dir.join(PROBE_FILE), "x").unwrap_err();
        assert!(err.contains("keelson-probe-"), "{err}");
    }
}
