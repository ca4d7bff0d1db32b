//! Cluster events, `<data-dir>/events.jsonl`: one JSON object per line with the WSFC event ids
//! (1069, 1146, 1205, 1230, …), and a live feed for `keelson events --follow`. Not the cluster log.

use crate::clusterlog::{tail_lines, unix_ms};
use keelson_types::format_iso_time;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Severity as the Windows event log spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventLevel {
    Critical,
    Error,
    Warning,
    Information,
}

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
    path: PathBuf,
    file: Mutex<File>,
    feed: broadcast::Sender<String>,
}

impl EventLog {
    pub fn open(dir: &Path) -> std::io::Result<EventLog> {
        let path = dir.join("events.jsonl");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(EventLog {
            path,
            file: Mutex::new(file),
            feed: broadcast::channel(1024).0,
        })
    }

    /// Records an event now.
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
            message,
            resource,
            group,
        };
        let line = serde_json::to_string(&event).unwrap_or_default();
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(file, "{line}");
        drop(file);
        let _ = self.feed.send(line);
        event
    }

    /// The last `n` events as JSON lines.
    pub fn tail(&self, n: usize) -> std::io::Result<Vec<String>> {
        tail_lines(&self.path, n)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.feed.subscribe()
    }
}
