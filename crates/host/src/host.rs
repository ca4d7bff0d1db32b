//! One host process as rcm sees it: spawn (fd layout, Hello within a deadline), the control socket,
//! the supervisor task that forwards log lines and, when the process ends, reaps it and works out
//! why it died. Not per-resource calls (resource.rs) and not restart policy.

use crate::config::HostConfig;
use crate::death::{DeathCause, HostDied};
use crate::error::HostError;
use crate::resource::ResourceHandle;
use keelson_proto::{
    encode, read_frame_async, write_frame_async, FrameBuf, Hello, HostAlarm, HostReply,
    HostRequest, OpenResource, PROTOCOL_VERSION,
};
use keelson_types::{LogLevel, Op, PluginInfo, ResourceId, DEFAULT_DEADLOCK_TIMEOUT_MS};
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};

/// How long a host whose control socket closed may take to exit before it is SIGKILLed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Linux signal number of SIGKILL (crates/host does not call libc itself).
const SIGKILL: i32 = 9;
/// How long loading a plugin may take (library initialisers run in the host).
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What a host reports besides call results.
#[derive(Clone, Debug)]
pub enum HostEvent {
    /// A log line from the host or one of its plugins; `tid` is the host thread that wrote it.
    Log {
        pid: u32,
        tid: u32,
        level: LogLevel,
        resource: Option<ResourceId>,
        message: String,
    },
    /// Progress of a long online/offline.
    Progress {
        pid: u32,
        resource: ResourceId,
        progress: u32,
    },
    /// A line the host process (or plugin code in it) wrote to its stderr.
    Stderr { pid: u32, line: String },
    /// The host refused a request.
    Refused { pid: u32, message: String },
    /// A health check the host ran by itself failed (it runs IsAlive at once after a LooksAlive).
    HealthFailed {
        pid: u32,
        resource: ResourceId,
        op: Op,
        message: String,
    },
    /// Summaries of the health checks the host ran by itself, each since that resource's open.
    CallStats {
        pid: u32,
        stats: Vec<keelson_proto::ResourceCallStats>,
    },
    /// The host is gone; sent once, last.
    Died(HostDied),
}

/// The receiving end of a host's events.
pub type HostEvents = mpsc::UnboundedReceiver<HostEvent>;

/// How to open one resource.
#[derive(Clone, Debug)]
pub struct OpenSpec {
    pub resource: ResourceId,
    pub name: String,
    pub plugin_path: String,
    pub type_name: String,
    /// Private parameters, a JSON object.
    pub params_json: String,
    /// Default deadline of every call on this resource (DeadlockTimeout).
    pub deadlock_timeout: Duration,
    /// Where call timings are recorded; a fresh set per handle when None.
    pub timings: Option<crate::resource::SharedTimings>,
}

impl OpenSpec {
    pub fn new(resource: ResourceId, name: &str, plugin_path: &str, type_name: &str) -> OpenSpec {
        OpenSpec {
            resource,
            name: name.to_string(),
            plugin_path: plugin_path.to_string(),
            type_name: type_name.to_string(),
            params_json: "{}".to_string(),
            deadlock_timeout: Duration::from_millis(DEFAULT_DEADLOCK_TIMEOUT_MS),
            timings: None,
        }
    }

    /// Records call timings into `timings` (e.g. a set that survives re-hosting the resource).
    pub fn timings(mut self, timings: crate::resource::SharedTimings) -> OpenSpec {
        self.timings = Some(timings);
        self
    }

    pub fn params(mut self, json: impl Into<String>) -> OpenSpec {
        self.params_json = json.into();
        self
    }

    pub fn deadlock_timeout(mut self, timeout: Duration) -> OpenSpec {
        self.deadlock_timeout = timeout;
        self
    }
}

/// State shared by the host handle, its resources and its supervisor task.
pub(crate) struct Shared {
    pub(crate) pid: u32,
    pub(crate) watchdog_grace: Duration,
    death: watch::Sender<Option<HostDied>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<PluginInfo, String>>>>,
    names: Mutex<HashMap<ResourceId, String>>,
    /// Set just before rcm's watchdog SIGKILLs the host, so the death is blamed on that call.
    watchdog: Mutex<Option<DeathCause>>,
    events: mpsc::UnboundedSender<HostEvent>,
}

/// A running host. Cheap to clone; the process exits when the last clone (and every resource
/// handle) is dropped, because its control socket then closes.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    next_req: AtomicU64,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("pid", &self.pid()).finish()
    }
}

impl Host {
    /// Starts a host and waits for its Hello (at most `config.hello_timeout`).
    pub async fn spawn(config: &HostConfig) -> Result<(Host, HostEvents), HostError> {
        let (mut child, control, alarm) = start_process(config)?;
        let pid = child.id().unwrap_or(0);
        let (mut reader, mut writer) = control.into_split();
        if let Err(e) = hello(config, &mut reader, &mut writer).await {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(e);
        }
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pid,
            watchdog_grace: config.watchdog_grace,
            death: watch::channel(None).0,
            pending: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            watchdog: Mutex::new(None),
            events: events_tx,
        });
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_stderr(shared.clone(), stderr));
        }
        tokio::spawn(supervise(shared.clone(), reader, child, alarm));
        let inner = Inner {
            shared,
            writer: tokio::sync::Mutex::new(writer),
            next_req: AtomicU64::new(1),
        };
        Ok((
            Host {
                inner: Arc::new(inner),
            },
            events_rx,
        ))
    }

    /// The host's process id (its MonitorProcessId).
    pub fn pid(&self) -> u32 {
        self.inner.shared.pid
    }

    /// The death report, if the host has died.
    pub fn death(&self) -> Option<HostDied> {
        self.inner.shared.death.borrow().clone()
    }

    /// Waits until the host has died and been reaped.
    pub async fn died(&self) -> HostDied {
        self.inner.shared.died().await
    }

    /// SIGKILLs the host (no-op if already dead). The death is reported as `Killed`.
    pub fn kill(&self) {
        self.inner.shared.kill();
    }

    /// Asks the host to exit and waits for its death report.
    pub async fn shutdown(&self) -> HostDied {
        let _ = self.send(&HostRequest::Shutdown).await;
        self.died().await
    }

    /// Loads (dlopens) a plugin in the host and returns what it offers (at most 30 s).
    pub async fn load_plugin(&self, path: &str) -> Result<PluginInfo, HostError> {
        self.load_plugin_within(path, LOAD_TIMEOUT).await
    }

    /// Loads a plugin; if the host has not answered within `limit` (a library initialiser that never
    /// returns), the host is SIGKILLed and the load is reported as [`HostError::LoadHung`].
    pub async fn load_plugin_within(
        &self,
        path: &str,
        limit: Duration,
    ) -> Result<PluginInfo, HostError> {
        let req = self.inner.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner.shared.lock_pending().insert(req, tx);
        self.send(&HostRequest::LoadPlugin {
            req,
            path: path.to_string(),
        })
        .await?;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(result)) => result.map_err(HostError::Plugin),
            Ok(Err(_)) => Err(HostError::Died(self.died().await)),
            Err(_) => {
                self.kill();
                let died = self.died().await;
                Err(HostError::LoadHung {
                    path: path.to_string(),
                    limit_ms: limit.as_millis() as u64,
                    pid: died.pid,
                })
            }
        }
    }

    /// Opens a resource: hands the host a socket of its own, runs OPEN, and returns its handle.
    pub async fn open(&self, spec: OpenSpec) -> Result<ResourceHandle, HostError> {
        if spec.resource.0 == 0 {
            return Err(HostError::ReservedId);
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(io_err)?;
        self.inner
            .shared
            .lock_names()
            .insert(spec.resource, spec.name.clone());
        let request = HostRequest::Open(OpenResource {
            resource: spec.resource,
            name: spec.name.clone(),
            plugin_path: spec.plugin_path.clone(),
            type_name: spec.type_name.clone(),
            params_json: spec.params_json.clone(),
            deadline_ms: spec.deadlock_timeout.as_millis() as u64,
        });
        self.send_with_fd(&request, theirs.as_fd()).await?;
        drop(theirs);
        ours.set_nonblocking(true).map_err(io_err)?;
        let stream = tokio::net::UnixStream::from_std(ours).map_err(io_err)?;
        ResourceHandle::open(self.clone(), &spec, stream).await
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    async fn send(&self, request: &HostRequest) -> Result<(), HostError> {
        let mut writer = self.inner.writer.lock().await;
        match write_frame_async(&mut *writer, request).await {
            Ok(()) => Ok(()),
            Err(_) => Err(HostError::Died(self.died().await)),
        }
    }

    /// Sends a frame with a descriptor attached to its first byte.
    async fn send_with_fd(
        &self,
        request: &HostRequest,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), HostError> {
        let frame = encode(request).map_err(|e| HostError::Protocol(e.to_string()))?;
        let mut writer = self.inner.writer.lock().await;
        let raw = writer.as_ref().as_raw_fd();
        let sent = writer
            .as_ref()
            .async_io(tokio::io::Interest::WRITABLE, || {
                keelson_sys::fdpass::send_with_fd(raw, &frame, fd)
            })
            .await;
        let result = match sent {
            Ok(n) => writer.write_all(&frame[n..]).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(()),
            Err(_) => {
                drop(writer);
                Err(HostError::Died(self.died().await))
            }
        }
    }
}

impl Shared {
    pub(crate) async fn died(&self) -> HostDied {
        let mut rx = self.death.subscribe();
        let died = rx.wait_for(Option::is_some).await.map(|d| d.clone());
        died.ok()
            .flatten()
            .expect("the supervisor always reports a death before dropping the sender")
    }

    /// The death report if it arrives within `wait`.
    pub(crate) async fn died_within(&self, wait: Duration) -> Option<HostDied> {
        tokio::time::timeout(wait, self.died()).await.ok()
    }

    pub(crate) fn kill(&self) {
        if self.death.borrow().is_none() {
            let _ = keelson_sys::process::kill(self.pid, SIGKILL);
        }
    }

    /// rcm's watchdog: blames `op` on `resource` and SIGKILLs the host.
    pub(crate) fn watchdog_kill(&self, resource: ResourceId, op: Op, elapsed: Duration) {
        let name = self.name_of(resource).unwrap_or_default();
        let cause = DeathCause::Deadlock {
            resource,
            name,
            op,
            elapsed,
            by_watchdog: true,
        };
        self.watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(cause);
        self.kill();
    }

    pub(crate) fn name_of(&self, resource: ResourceId) -> Option<String> {
        self.lock_names().get(&resource).cloned()
    }

    fn lock_names(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceId, String>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<PluginInfo, String>>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, event: HostEvent) {
        let _ = self.events.send(event);
    }

    /// Handles one frame from the control socket.
    fn dispatch(&self, reply: HostReply) {
        let pid = self.pid;
        match reply {
            HostReply::PluginLoaded { req, result } => {
                if let Some(tx) = self.lock_pending().remove(&req) {
                    let _ = tx.send(result);
                }
            }
            HostReply::Log {
                resource,
                level,
                tid,
                message,
            } => self.emit(HostEvent::Log {
                pid,
                tid,
                level,
                resource,
                message,
            }),
            HostReply::Progress { resource, progress } => self.emit(HostEvent::Progress {
                pid,
                resource,
                progress,
            }),
            HostReply::Refused { message } => self.emit(HostEvent::Refused { pid, message }),
            HostReply::HealthFailed {
                resource,
                op,
                message,
                ..
            } => self.emit(HostEvent::HealthFailed {
                pid,
                resource,
                op,
                message,
            }),
            HostReply::CallStats { stats } => self.emit(HostEvent::CallStats { pid, stats }),
            HostReply::Hello(_) => self.emit(HostEvent::Refused {
                pid,
                message: "unexpected second Hello".into(),
            }),
        }
    }

    /// Works out why the host died from its alarms, the watchdog's record and its wait status.
    fn classify(
        &self,
        status: Option<std::process::ExitStatus>,
        alarms: Vec<HostAlarm>,
    ) -> DeathCause {
        use std::os::unix::process::ExitStatusExt;
        // The first alarm is the cause; a dying host writes at most one that matters.
        if let Some(alarm) = alarms.into_iter().next() {
            match alarm {
                HostAlarm::DeadlockDetected {
                    resource,
                    op,
                    elapsed_ns,
                } => {
                    let name = self.name_of(resource).unwrap_or_default();
                    let elapsed = Duration::from_nanos(elapsed_ns);
                    return DeathCause::Deadlock {
                        resource,
                        name,
                        op,
                        elapsed,
                        by_watchdog: false,
                    };
                }
                HostAlarm::Crashed {
                    resource,
                    op,
                    signal,
                } => {
                    let name = resource.and_then(|r| self.name_of(r));
                    return DeathCause::Crash {
                        resource,
                        name,
                        op,
                        signal,
                    };
                }
            }
        }
        if let Some(cause) = self
            .watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return cause;
        }
        match status {
            Some(s) if s.signal().is_some() => DeathCause::Killed {
                signal: s.signal().unwrap_or(0),
            },
            Some(s) => DeathCause::Exit {
                status: s.code().unwrap_or(-1),
            },
            None => DeathCause::Exit { status: -1 },
        }
    }
}

fn io_err(e: std::io::Error) -> HostError {
    HostError::Protocol(e.to_string())
}

/// Forks and execs the host with its control socket on fd 3 and its alarm pipe on fd 4.
fn start_process(
    config: &HostConfig,
) -> Result<
    (
        tokio::process::Child,
        tokio::net::UnixStream,
        std::io::PipeReader,
    ),
    HostError,
> {
    let spawn_err = |source| HostError::Spawn {
        path: config.rhs_path.display().to_string(),
        source,
    };
    let (parent, child_end) = std::os::unix::net::UnixStream::pair().map_err(spawn_err)?;
    let (alarm_r, alarm_w) = std::io::pipe().map_err(spawn_err)?;
    let mut cmd = std::process::Command::new(&config.rhs_path);
    if config.log_stderr {
        cmd.arg("--log-stderr");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    keelson_sys::child::prepare(&mut cmd, vec![(child_end.into(), 3), (alarm_w.into(), 4)]);
    let mut cmd = tokio::process::Command::from(cmd);
    let child = cmd.spawn().map_err(spawn_err)?;
    drop(cmd); // closes this process's copies of the child's ends
    parent.set_nonblocking(true).map_err(spawn_err)?;
    keelson_sys::process::set_nonblocking(alarm_r.as_raw_fd()).map_err(spawn_err)?;
    let control = tokio::net::UnixStream::from_std(parent).map_err(spawn_err)?;
    Ok((child, control, alarm_r))
}

/// The Hello exchange: theirs within the deadline, then ours.
async fn hello(
    config: &HostConfig,
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
) -> Result<(), HostError> {
    let wait = config.hello_timeout;
    let first = tokio::time::timeout(wait, read_frame_async::<HostReply>(reader))
        .await
        .map_err(|_| HostError::HelloTimeout(wait.as_millis() as u64))?;
    match first {
        Ok(Some(HostReply::Hello(h))) if h.protocol_version == PROTOCOL_VERSION => {}
        Ok(Some(HostReply::Hello(h))) => {
            return Err(HostError::Version {
                found: h.protocol_version,
                expected: PROTOCOL_VERSION,
            })
        }
        Ok(Some(other)) => {
            return Err(HostError::Protocol(format!(
                "expected Hello, got {other:?}"
            )))
        }
        Ok(None) => {
            return Err(HostError::Protocol(
                "host exited before saying Hello".into(),
            ))
        }
        Err(e) => return Err(HostError::Protocol(format!("bad Hello: {e}"))),
    }
    let ours = HostRequest::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
    });
    write_frame_async(writer, &ours)
        .await
        .map_err(|e| HostError::Protocol(e.to_string()))
}

/// Forwards control frames until the socket closes, then reaps the process and reports its death.
async fn supervise(
    shared: Arc<Shared>,
    mut reader: OwnedReadHalf,
    mut child: tokio::process::Child,
    alarm: std::io::PipeReader,
) {
    while let Ok(Some(reply)) = read_frame_async::<HostReply>(&mut reader).await {
        shared.dispatch(reply);
    }
    let status = match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    };
    let died = HostDied {
        pid: shared.pid,
        cause: shared.classify(status, read_alarms(alarm)),
    };
    for (_, tx) in shared.lock_pending().drain() {
        drop(tx);
    }
    shared.death.send_replace(Some(died.clone()));
    shared.emit(HostEvent::Died(died));
}

/// Every complete alarm frame in the (non-blocking) alarm pipe.
fn read_alarms(mut alarm: std::io::PipeReader) -> Vec<HostAlarm> {
    let mut frames = FrameBuf::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = alarm.read(&mut buf) {
        if n == 0 {
            break;
        }
        frames.push(&buf[..n]);
    }
    let mut alarms = Vec::new();
    while let Ok(Some(alarm)) = frames.next_frame::<HostAlarm>() {
        alarms.push(alarm);
    }
    alarms
}

/// Turns the host's stderr into events, line by line.
async fn forward_stderr(shared: Arc<Shared>, stderr: tokio::process::ChildStderr) {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        shared.emit(HostEvent::Stderr {
            pid: shared.pid,
            line,
        });
    }
}
