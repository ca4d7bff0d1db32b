//! The tracing layer that writes cluster.log: each event becomes one line in the seed's format
//! `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm LEVEL [COMPONENT] message`, escaped, appended whole to the
//! rotating [`LogFile`] (which also feeds `keelson log --follow` and `--foreground`). The event's
//! `component` field names the component (default: the layer's, "RCM"); `pid` and `tid` fields write
//! a line on behalf of a host's thread (default: this process and the emitting thread). Other
//! fields and spans are not part of the line format: they reach layers that keep them (journald).
//! Not filtering (the EnvFilter in subscriber.rs decides which events arrive).

use crate::logfile::LogFile;
use keelson_types::{escape_for_log, format_log_line, LogLevel};
use std::fmt::Debug;
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Writes every event it is given to one cluster-log file.
pub struct ClusterLogLayer {
    file: Arc<LogFile>,
    default_component: &'static str,
    clock: fn() -> u64,
}

impl ClusterLogLayer {
    /// A layer writing to `file`, stamping lines with `clock` (milliseconds since the Unix epoch).
    pub fn new(file: Arc<LogFile>, default_component: &'static str, clock: fn() -> u64) -> Self {
        ClusterLogLayer {
            file,
            default_component,
            clock,
        }
    }

    /// The line for one event's fields at `level`, escaped so no text can end it or forge another.
    fn line(&self, level: LogLevel, fields: &LineFields) -> String {
        let component = fields
            .component
            .as_deref()
            .unwrap_or(self.default_component);
        format_log_line(
            fields.pid.unwrap_or_else(std::process::id),
            fields.tid.unwrap_or_else(keelson_sys::process::gettid),
            (self.clock)(),
            level,
            &escape_for_log(component),
            &escape_for_log(&fields.message),
        )
    }
}

impl<S: Subscriber> Layer<S> for ClusterLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = LineFields::default();
        event.record(&mut fields);
        let line = self.line(log_level(*event.metadata().level()), &fields);
        // A failure is counted by the file and shown in status; there is nowhere else to log it.
        let _counted = self.file.append(&line);
    }
}

/// The cluster-log level of a tracing level: TRACE and DEBUG are both DBG.
pub fn log_level(level: Level) -> LogLevel {
    match level {
        Level::ERROR => LogLevel::Err,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Dbg,
    }
}

/// The fields of an event that make up a line.
#[derive(Default)]
struct LineFields {
    message: String,
    component: Option<String>,
    pid: Option<u32>,
    tid: Option<u32>,
}

impl LineFields {
    fn set_id(&mut self, field: &Field, value: u64) {
        let value = u32::try_from(value).ok();
        match field.name() {
            "pid" => self.pid = value,
            "tid" => self.tid = value,
            _ => {}
        }
    }
}

impl Visit for LineFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "component" => self.component = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set_id(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.set_id(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            // A format string's arguments: their Debug is their Display.
            "message" => self.message = format!("{value:?}"),
            "component" => self.component = Some(format!("{value:?}")),
            _ => {}
        }
    }
}
