//! The rhs's log: `tracing` events (never from a signal handler: crash.rs writes raw frames) go up
//! the control socket as `Log` frames through [`ControlLayer`] (rcm filters them and writes them to
//! the cluster log with this process's pid and the writing thread's id) and, with --log-stderr, to
//! stderr in cluster-log format. Not the cluster log file itself: that is rcm's.

use keelson_proto::{encode, HostReply};
use keelson_types::{format_log_line, LogLevel, ResourceId};
use std::fmt::Debug;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Serialised writer for the control socket, shared by every thread of the host.
#[derive(Clone)]
pub struct ControlWriter {
    stream: Arc<Mutex<UnixStream>>,
}

impl ControlWriter {
    pub fn new(stream: UnixStream) -> ControlWriter {
        ControlWriter {
            stream: Arc::new(Mutex::new(stream)),
        }
    }

    /// Sends one frame; a dead parent is ignored here (the control reader sees EOF and exits).
    pub fn send(&self, reply: &HostReply) {
        let Ok(frame) = encode(reply) else { return };
        let mut stream = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        let _ = stream.write_all(&frame);
    }
}

/// The process's log: a thin handle over `tracing` (the [`ControlLayer`] installed by `new` turns
/// every event into a `Log` frame) plus the control writer the rest of the host sends replies with.
#[derive(Clone)]
pub struct Logger {
    control: ControlWriter,
}

impl Logger {
    /// Makes a [`ControlLayer`] over `control` this process's tracing subscriber (`stderr`: also echo
    /// each line there) and returns the handle. Called once, at start-up; should a subscriber already
    /// be installed, that one stays and the error says so.
    pub fn new(control: ControlWriter, stderr: bool) -> Result<Logger, String> {
        let layer = ControlLayer {
            control: control.clone(),
            stderr,
        };
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
        Ok(Logger { control })
    }

    /// A `tracing` event about `resource` (kept for call sites not yet written as tracing macros).
    pub fn log(&self, resource: Option<ResourceId>, level: LogLevel, message: String) {
        event(resource, level, &message);
    }

    pub fn control(&self) -> &ControlWriter {
        &self.control
    }
}

/// A `tracing` event at a run-time `level`, with the resource it concerns as field `resource`.
pub fn event(resource: Option<ResourceId>, level: LogLevel, message: &str) {
    let resource = resource.map(|r| r.0);
    match level {
        LogLevel::Err => tracing::error!(resource, "{message}"),
        LogLevel::Warn => tracing::warn!(resource, "{message}"),
        LogLevel::Info => tracing::info!(resource, "{message}"),
        LogLevel::Dbg => tracing::debug!(resource, "{message}"),
    }
}

/// The tracing layer of a host: every event, at every level (rcm filters), goes up the control
/// socket as one `Log` frame with the emitting thread's id and the resource it concerns: the event's
/// `resource` field, else that of the innermost span that has one (each resource thread runs in a
/// `resource` span); with --log-stderr also to stderr in cluster-log format.
pub struct ControlLayer {
    control: ControlWriter,
    stderr: bool,
}

/// A span's `resource` field, kept in the span's extensions for the events inside it.
struct SpanResource(u64);

thread_local! {
    /// The resource a resource thread serves, for its events that name none. A thread-local, not a
    /// span: tracing-subscriber's registry keeps spans in a slab of at most 4,096 threads, and a
    /// host runs a thread per resource (10,000 and more).
    static THREAD_RESOURCE: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Marks the calling thread as serving `resource`: its events name it unless they name another.
pub fn serve_resource_on_this_thread(resource: ResourceId) {
    THREAD_RESOURCE.with(|r| r.set(Some(resource.0)));
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for ControlLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        attrs.record(&mut fields);
        if let (Some(resource), Some(span)) = (fields.resource, ctx.span(id)) {
            span.extensions_mut().insert(SpanResource(resource));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        if fields.resource.is_none() {
            fields.resource = ctx.event_scope(event).and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<SpanResource>().map(|r| r.0))
            });
        }
        if fields.resource.is_none() {
            fields.resource = THREAD_RESOURCE.with(|r| r.get());
        }
        let level = log_level(*event.metadata().level());
        let tid = keelson_sys::process::gettid();
        if self.stderr {
            let pid = keelson_sys::process::getpid();
            let line = format_log_line(pid, tid, unix_ms(), level, "RHS", &fields.message);
            eprintln!("{line}");
        }
        self.control.send(&HostReply::Log {
            resource: fields.resource.map(ResourceId),
            level,
            tid,
            message: fields.message,
        });
    }
}

/// The cluster-log level of a tracing level: TRACE and DEBUG are both DBG.
fn log_level(level: Level) -> LogLevel {
    match level {
        Level::ERROR => LogLevel::Err,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        _ => LogLevel::Dbg,
    }
}

/// The fields of an event that a `Log` frame carries.
#[derive(Default)]
struct EventFields {
    message: String,
    resource: Option<u64>,
}

impl Visit for EventFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "resource" {
            self.resource = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            // A format string's arguments: their Debug is their Display.
            self.message = format!("{value:?}");
        }
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_proto::read_frame;

    /// The frames a layer over one end of a socketpair sends for what `emit` logs.
    fn frames(emit: impl FnOnce()) -> Vec<HostReply> {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let layer = ControlLayer {
            control: ControlWriter::new(ours),
            stderr: false,
        };
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
        let mut reader = std::io::BufReader::new(theirs);
        let mut out = Vec::new();
        while let Ok(Some(frame)) = read_frame::<HostReply>(&mut reader) {
            out.push(frame);
        }
        out
    }

    #[test]
    fn every_event_becomes_a_log_frame_with_its_resource_and_level() {
        let tid = keelson_sys::process::gettid();
        let got = frames(|| {
            tracing::info!("before any resource");
            let _thread = tracing::info_span!("resource", resource = 7u64, name = "web").entered();
            let _call = tracing::debug_span!("call", op = "ONLINE").entered();
            event(Some(ResourceId(7)), LogLevel::Err, "boom");
            tracing::debug!("fine detail {}", 1);
            tracing::trace!(resource = 9u64, "finer");
        });
        let expected = vec![
            HostReply::Log {
                resource: None,
                level: LogLevel::Info,
                tid,
                message: "before any resource".into(),
            },
            HostReply::Log {
                resource: Some(ResourceId(7)),
                level: LogLevel::Err,
                tid,
                message: "boom".into(),
            },
            // No resource field of its own: the enclosing resource span's.
            HostReply::Log {
                resource: Some(ResourceId(7)),
                level: LogLevel::Dbg,
                tid,
                message: "fine detail 1".into(),
            },
            HostReply::Log {
                resource: Some(ResourceId(9)),
                level: LogLevel::Dbg,
                tid,
                message: "finer".into(),
            },
        ];
        assert_eq!(format!("{got:?}"), format!("{expected:?}"));
    }

    /// A host runs a thread per resource, far more than the registry's 4,096 span-holding threads:
    /// every one of 4,200 threads alive at once, started as a resource thread starts, logs naming
    /// its resource, without a panic.
    #[test]
    fn more_resource_threads_than_the_span_registry_holds_all_log() {
        const THREADS: u64 = 4_200;
        let (ours, theirs) = UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(theirs);
            let mut named = Vec::new();
            while let Ok(Some(frame)) = read_frame::<HostReply>(&mut reader) {
                if let HostReply::Log {
                    resource: Some(r), ..
                } = frame
                {
                    named.push(r.0);
                }
            }
            named
        });
        let layer = ControlLayer {
            control: ControlWriter::new(ours),
            stderr: false,
        };
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        // All alive at once (each waits, at most 20 s, for every other to have started), so a
        // per-thread limit anywhere below is hit; a thread that panics fails the join below.
        let started = std::sync::Arc::new((std::sync::Mutex::new(0u64), std::sync::Condvar::new()));
        let threads: Vec<_> = (0..THREADS)
            .map(|i| {
                let (dispatch, started) = (dispatch.clone(), started.clone());
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            serve_resource_on_this_thread(ResourceId(i));
                            let (count, all) = &*started;
                            let mut n = count.lock().unwrap();
                            *n += 1;
                            all.notify_all();
                            let limit = std::time::Duration::from_secs(20);
                            drop(all.wait_timeout_while(n, limit, |n| *n < THREADS).unwrap());
                            tracing::info!("serving");
                        })
                    })
                    .unwrap()
            })
            .collect();
        for t in threads {
            t.join().expect("a resource thread panicked");
        }
        drop(dispatch);
        let mut named = reader.join().unwrap();
        named.sort_unstable();
        assert_eq!(named, (0..THREADS).collect::<Vec<_>>());
    }
}
