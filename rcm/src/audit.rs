//! The audit trail, `<data-dir>/audit.log`: every mutating control request, allowed or refused, as one
//! JSON line with time, peer uid and pid, the request and its result. Not authorisation (api.rs).

use crate::clusterlog::unix_ms;
use keelson_types::format_iso_time;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// One audit record.
#[derive(Serialize, Debug)]
struct Record<'a> {
    time: String,
    uid: u32,
    gid: u32,
    pid: Option<i32>,
    request: &'a str,
    /// Whether the peer was authorised at all.
    allowed: bool,
    /// `done: …`, `refused: …` (bad input, nothing changed) or `denied: …` (not authorised).
    result: &'a str,
}

/// The open audit log.
pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    pub fn open(dir: &Path) -> std::io::Result<AuditLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("audit.log"))?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    /// Appends one record and flushes it to the file.
    pub fn record(
        &self,
        uid: u32,
        gid: u32,
        pid: Option<i32>,
        request: &str,
        allowed: bool,
        result: &str,
    ) {
        let rec = Record {
            time: format_iso_time(unix_ms()),
            uid,
            gid,
            pid,
            request,
            allowed,
            result,
        };
        let line = serde_json::to_string(&rec).unwrap_or_default();
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(file, "{line}");
        let _ = file.flush();
    }
}
