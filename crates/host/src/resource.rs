//! One open resource as rcm sees it: its own socket to its call thread in the host, calls with a
//! deadline and rcm's watchdog behind it, its health plan, and the resource's call timings. Not the
//! host process (host.rs, spawn.rs, supervisor.rs).

use crate::error::{CallError, HostError};
use crate::link::Link;
use crate::spec::OpenSpec;
use keelson_proto::{
    encode, read_frame_buffered, CallDone, FrameBuf, ProtoError, ResourceReply, ResourceRequest,
};
use keelson_types::{CallStats, CallTimings, HealthPlan};
use keelson_types::{Op, ResourceId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// How long to wait for the host's death report after a resource socket closes unexpectedly.
const DEATH_REPORT_WAIT: Duration = Duration::from_secs(3);

/// Where a resource's call timings go; shared so they can outlive one handle (re-hosting).
pub type SharedTimings = Arc<Mutex<CallTimings>>;

/// The resource's socket and the bytes read from it but not yet decoded.
struct Channel {
    stream: UnixStream,
    frames: FrameBuf,
}

impl Channel {
    fn new(stream: UnixStream) -> Channel {
        Channel {
            stream,
            frames: FrameBuf::new(),
        }
    }
}

/// An open resource in a host. Calls on one handle run one at a time, in order.
pub struct ResourceHandle {
    id: ResourceId,
    name: String,
    /// The host's control link: keeps the host alive while this handle lives.
    link: Arc<Link>,
    deadline: Duration,
    socket: tokio::sync::Mutex<Option<Channel>>,
    timings: SharedTimings,
}

impl std::fmt::Debug for ResourceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceHandle")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl ResourceHandle {
    /// The handle `spec` describes, on `channel` (None: a one-call handle that owns no socket).
    fn for_spec(link: Arc<Link>, spec: &OpenSpec, channel: Option<Channel>) -> ResourceHandle {
        ResourceHandle {
            id: spec.resource,
            name: spec.name.clone(),
            link,
            deadline: spec.deadlock_timeout,
            socket: tokio::sync::Mutex::new(channel),
            timings: spec.timings.clone().unwrap_or_default(),
        }
    }

    /// Waits for the OPEN answer on a freshly passed socket.
    pub(crate) async fn open(
        link: Arc<Link>,
        spec: &OpenSpec,
        socket: UnixStream,
    ) -> Result<ResourceHandle, HostError> {
        let handle = ResourceHandle::for_spec(link, spec, Some(Channel::new(socket)));
        let mut socket = handle.socket.lock().await;
        let channel = socket.as_mut().expect("just created");
        let done = handle
            .await_reply(channel, Op::Open, handle.deadline, Instant::now())
            .await;
        drop(socket);
        match done {
            Ok(done) if done.status == 0 => {
                handle.lock_timings().begin_instance();
                Ok(handle)
            }
            Ok(done) => Err(HostError::OpenFailed {
                name: spec.name.clone(),
                status: done.status,
                message: done.message,
            }),
            Err(CallError::HostDied(died)) => Err(HostError::Died(died)),
            Err(e) => Err(HostError::Protocol(e.to_string())),
        }
    }

    /// Waits for the one VALIDATE answer on a freshly passed socket (`Host::validate`); the host
    /// closes the socket after it.
    pub(crate) async fn validate_once(
        link: Arc<Link>,
        spec: &OpenSpec,
        socket: UnixStream,
    ) -> Result<CallDone, CallError> {
        let handle = ResourceHandle::for_spec(link, spec, None);
        let mut channel = Channel::new(socket);
        handle
            .await_reply(&mut channel, Op::Validate, handle.deadline, Instant::now())
            .await
    }

    pub fn id(&self) -> ResourceId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id of the host this resource runs in.
    pub fn host_pid(&self) -> u32 {
        self.link.shared.pid
    }

    /// The deadline the resource was opened with, which [`ResourceHandle::call`] uses.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Calls `op` with the deadline the resource was opened with: for callers whose deadline never
    /// changes (`keelson plugin test`, tests). rcm passes the engine's with `call_with_deadline`.
    pub async fn call(&self, op: Op) -> Result<CallDone, CallError> {
        self.call_with_deadline(op, self.deadline).await
    }

    /// Calls `op`; the host kills itself if the call outlives `deadline`, and rcm's watchdog kills
    /// the host if no answer comes within `deadline` plus the grace period.
    pub async fn call_with_deadline(
        &self,
        op: Op,
        deadline: Duration,
    ) -> Result<CallDone, CallError> {
        let mut socket = self.socket.lock().await;
        let channel = socket.as_mut().ok_or(CallError::Closed)?;
        let start = Instant::now();
        let request = ResourceRequest::Call {
            op,
            deadline_ms: deadline.as_millis() as u64,
        };
        let frame = encode(&request).map_err(|e| CallError::Protocol(e.to_string()))?;
        if channel.stream.write_all(&frame).await.is_err() {
            return Err(self.lost().await);
        }
        let done = self.await_reply(channel, op, deadline, start).await;
        if op == Op::Close || matches!(done, Err(CallError::HostDied(_))) {
            *socket = None;
        }
        done
    }

    /// Asks the host to poll the resource's health by `plan` on its own thread (None: stop), in
    /// order with the calls sent before and after. No answer comes: failures arrive as
    /// `HostEvent::HealthFailed`, statistics as `HostEvent::CallStats`.
    pub async fn set_polling(&self, plan: Option<HealthPlan>) -> Result<(), CallError> {
        let mut socket = self.socket.lock().await;
        let channel = socket.as_mut().ok_or(CallError::Closed)?;
        let frame = encode(&ResourceRequest::Poll { plan })
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        if channel.stream.write_all(&frame).await.is_err() {
            *socket = None;
            return Err(self.lost().await);
        }
        Ok(())
    }

    /// Closes the resource (runs CLOSE within `deadline`, which the caller decides now: the
    /// resource's DeadlockTimeout may have changed since it was opened); the handle refuses calls
    /// afterwards.
    pub async fn close(&self, deadline: Duration) -> Result<CallDone, CallError> {
        self.call_with_deadline(Op::Close, deadline).await
    }

    /// Timings of every entry point called so far (round trip as seen from here; the health
    /// checks the host ran by itself as it reported them).
    pub fn call_stats(&self) -> BTreeMap<Op, CallStats> {
        self.lock_timings().summary()
    }

    /// Where this resource's timings are kept (shared with the caller that gave them at open).
    pub fn timings(&self) -> &SharedTimings {
        &self.timings
    }

    fn lock_timings(&self) -> std::sync::MutexGuard<'_, CallTimings> {
        self.timings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the answer to `op`, enforcing the watchdog.
    async fn await_reply(
        &self,
        channel: &mut Channel,
        op: Op,
        deadline: Duration,
        start: Instant,
    ) -> Result<CallDone, CallError> {
        let limit = deadline + self.link.shared.watchdog_grace;
        let reply = read_frame_buffered::<ResourceReply>(&mut channel.stream, &mut channel.frames);
        let outcome = tokio::time::timeout(limit, reply).await;
        // Every call sent is timed, whatever its end: a call that died with its host (a deadlock, a
        // crash) is the one whose duration matters most.
        let elapsed = start.elapsed();
        self.lock_timings().record(op, elapsed);
        match outcome {
            Ok(Ok(Some(ResourceReply::CallDone(done)))) if done.op == op => Ok(done),
            Ok(Ok(Some(ResourceReply::CallDone(done)))) => Err(CallError::Protocol(format!(
                "asked {}, host answered {}",
                op.upper(),
                done.op.upper()
            ))),
            Ok(Ok(None)) | Ok(Err(ProtoError::Io(_))) | Ok(Err(ProtoError::Truncated)) => {
                Err(self.lost().await)
            }
            Ok(Err(e)) => Err(CallError::Protocol(e.to_string())),
            Err(_) => {
                self.link.shared.watchdog_kill(self.id, op, elapsed);
                Err(CallError::HostDied(self.link.shared.died().await))
            }
        }
    }

    /// The resource's socket closed: the host died (report it) or dropped just this resource.
    async fn lost(&self) -> CallError {
        match self.link.shared.died_within(DEATH_REPORT_WAIT).await {
            Some(died) => CallError::HostDied(died),
            None => CallError::Closed,
        }
    }
}
