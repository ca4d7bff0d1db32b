//! Cluster events, `<data-dir>/events.jsonl`: one JSON object per line with the WSFC event ids
//! (1069, 1146, 1205, 1230, …), and a live feed for `keelson events --follow`. Not the cluster log.

use crate::clusterlog::unix_ms;
use crate::logfile::{LogFile, WriteHealth};
use keelson_types::{escape_for_log, format_iso_time};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Events a slow `--follow` reader may fall behind before it is told some were dropped.
const FEED_CAPACITY: usize = 1024;

/// Severity as the Windows event log spells it: the engine's own type, written as it is.
pub use keelson_engine::EventLevel;

/// One event record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: u32,
    pub time: String,
    pub level: EventLevel,
    pub source: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<String>,
}

/// The open event log.
pub struct EventLog {
    file: Arc<LogFile>,
}

impl EventLog {
    /// Opens (appending, creating 0640) `<dir>/events.jsonl`, rotated like the cluster log.
    pub fn open(dir: &Path, max_bytes: u64, keep: u32) -> std::io::Result<EventLog> {
        Ok(EventLog {
            file: Arc::new(LogFile::open(
                dir,
                "events.jsonl",
                max_bytes,
                keep,
                FEED_CAPACITY,
            )?),
        })
    }

    /// Records an event now. Its message is escaped (it may quote a plugin or a request). A line that
    /// cannot be written is counted ([`EventLog::health`]); the event still reaches followers.
    pub fn raise(
        &self,
        id: u32,
        level: EventLevel,
        message: String,
        resource: Option<String>,
        group: Option<String>,
    ) -> Event {
        let event = Event {
            id,
            time: format_iso_time(unix_ms()),
            level,
            source: "Resource Control Manager".into(),
            message: escape_for_log(&message).into_owned(),
            resource,
            group,
        };
        let line = serde_json::to_string(&event).expect("a struct of strings always serialises");
        // A failure is counted by the file and shown in status.
        let _counted = self.file.append(&line);
        event
    }

    /// The file, for tail reads.
    pub fn file(&self) -> Arc<LogFile> {
        self.file.clone()
    }

    /// Write failures and the last error.
    pub fn health(&self) -> WriteHealth {
        self.file.health()
    }
}
