//! The data directory's record that it has held a cluster database, `cluster.id` (the database's id,
//! a UUID): written once the database is first created, so that a missing or empty cluster.redb later
//! is recognised as lost, never silently taken for a new cluster. Not the database (lib.rs).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// File name of the marker inside the data directory.
pub const MARKER_FILE: &str = "cluster.id";

/// The marker's path for a database at `db_path`.
pub fn path_for(db_path: &Path) -> PathBuf {
    db_path.with_file_name(MARKER_FILE)
}

/// The database id the marker holds, or None if there is no marker.
pub fn read(db_path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path_for(db_path)) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the marker durably, mode 0640.
pub fn write(db_path: &Path, id: &str) -> std::io::Result<()> {
    write_durably(&path_for(db_path), format!("{id}\n").as_bytes(), 0o640)
}

/// Replaces `path` with `bytes` durably: a temporary file beside it (created with `mode`), fsync,
/// rename over `path`, fsync of the directory. A crash leaves the old file or the new one.
pub fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// fsync of the directory holding `path`, so a create or rename in it is durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// A fresh database id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
