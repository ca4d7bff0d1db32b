//! The control socket `<data-dir>/rcm.sock` (mode 0660): accepts one request per connection, checks
//! the peer (root, the service's own user, or a member of the socket's group by primary or
//! supplementary gid, as the kernel recorded them at connect), audits every mutating request before
//! it reaches the core (refusing it when the audit cannot be written) and again with its result,
//! streams log/event lines read off the core thread, and hands everything else to the core. Bounded
//! whatever clients do (guard.rs). Not the meaning of requests (core.rs).

mod guard;

use crate::audit::{describe, AuditLog, Peer};
use crate::clusterlog::ClusterLog;
use crate::events::EventLog;
use crate::logfile::tail::{MAX_TAIL_BYTES, MAX_TAIL_LINES};
use crate::logfile::LogFile;
use guard::{FrameError, Limits, MAX_BUFFERED_BYTES, MAX_CONNECTIONS, UNAUTHORISED_FRAME};
use keelson_proto::{
    encode, write_frame_async, ControlEnvelope, ControlReply, ControlRequest,
    CONTROL_PROTOCOL_VERSION, MAX_FRAME_LEN,
};
use keelson_types::{io_reason, io_reason_keep_case};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::Instrument;

/// A request for the core and where its answer goes.
pub type CoreRequest = (ControlRequest, oneshot::Sender<ControlReply>);

/// How long a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused connection gets to take its one-line answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Lines read ahead of the client by a tail reader.
const TAIL_QUEUE: usize = 256;
/// Encoded reply frames gathered into one write while streaming a tail.
const STREAM_BATCH: usize = 64 * 1024;

/// Everything the API needs.
pub struct Api {
    pub core: mpsc::Sender<CoreRequest>,
    pub audit: Arc<AuditLog>,
    pub log: Arc<ClusterLog>,
    pub events: Arc<EventLog>,
    /// uid that owns the service (always allowed besides root).
    pub owner_uid: u32,
    /// The socket file's group (members are allowed).
    pub socket_gid: u32,
    /// Told once the reply to an accepted NodeStop is written: rcm exits only after that.
    pub stop_answered: Arc<tokio::sync::Notify>,
}

/// The span of one control request: its kind, the peer, and the resource and group it names.
fn request_span(peer: Peer, request: &ControlRequest) -> tracing::Span {
    let described = describe(request);
    let kind = described.split(' ').next().unwrap_or_default();
    let (resource, group) = subject(request);
    tracing::info_span!(
        "request",
        request = kind,
        peer_uid = peer.uid,
        peer_pid = peer.pid,
        resource,
        group
    )
}

/// The resource and the group a request names, if any.
fn subject(request: &ControlRequest) -> (Option<&str>, Option<&str>) {
    use ControlRequest as R;
    match request {
        R::ResourceCreate { name, group, .. } => (Some(name), Some(group)),
        R::ResourceSet { name, .. }
        | R::ResourceGet { name }
        | R::ResourceOnline { name, .. }
        | R::ResourceOffline { name, .. }
        | R::ResourceFail { name, .. }
        | R::ResourceDelete { name, .. }
        | R::ResourceDepend { name, .. }
        | R::ResourceUndepend { name, .. } => (Some(name), None),
        R::GroupCreate { name, .. }
        | R::GroupSet { name, .. }
        | R::GroupDelete { name }
        | R::GroupOnline { name }
        | R::GroupOffline { name }
        | R::GroupGet { name } => (None, Some(name)),
        _ => (None, None),
    }
}

/// Binds `<dir>/rcm.sock` with mode 0660, replacing a stale socket file.
pub fn bind(dir: &Path) -> std::io::Result<(UnixListener, u32)> {
    let path = dir.join("rcm.sock");
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    let gid = std::fs::metadata(&path)?.gid();
    Ok((listener, gid))
}

impl Api {
    /// Serves connections until the listener fails: at most [`MAX_CONNECTIONS`] at once.
    pub async fn serve(self: Arc<Api>, listener: UnixListener) {
        let limits = Arc::new(Limits::new(MAX_CONNECTIONS, MAX_BUFFERED_BYTES));
        loop {
            match listener.accept().await {
                Ok((stream, _)) => match limits.connection_slot() {
                    Some(slot) => {
                        let api = self.clone();
                        let limits = limits.clone();
                        tokio::spawn(async move {
                            api.connection(stream, &limits).await;
                            drop(slot);
                        });
                    }
                    None => {
                        tokio::spawn(self.clone().too_many(stream, limits.clone()));
                    }
                },
                Err(e) => {
                    tracing::error!(component = "API", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// One line for a connection over the cap, then close.
    async fn too_many(self: Arc<Api>, mut stream: UnixStream, limits: Arc<Limits>) {
        let message = format!(
            "too many connections: the node service serves at most {MAX_CONNECTIONS} at once; \
             try again"
        );
        if let Ok(cred) = stream.peer_cred() {
            self.noise(
                &limits,
                cred.uid(),
                &format!("refused a connection: {message}"),
            );
        }
        let answer = ControlReply::Error { message };
        let _gone = tokio::time::timeout(REFUSAL_TIMEOUT, reply(&mut stream, answer)).await;
    }

    async fn connection(self: Arc<Api>, mut stream: UnixStream, limits: &Arc<Limits>) {
        let peer = match stream.peer_cred() {
            Ok(cred) => Peer {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            },
            Err(e) => {
                self.noise(limits, u32::MAX, &format!("cannot identify a peer: {e}"));
                return;
            }
        };
        let authorised = self.authorised(&stream, peer);
        let max_len = if authorised {
            MAX_FRAME_LEN
        } else {
            UNAUTHORISED_FRAME
        };
        let read = tokio::time::timeout(REQUEST_TIMEOUT, limits.read_request(&mut stream, max_len));
        let (envelope, budget) = match read.await {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                return self
                    .bad_frame(&mut stream, limits, peer, authorised, e)
                    .await
            }
            Err(_) => {
                let what = format!("no complete request within {REQUEST_TIMEOUT:?}");
                self.noise(limits, peer.uid, &format!("{what} from {}", shown(peer)));
                return;
            }
        };
        if envelope.version != CONTROL_PROTOCOL_VERSION {
            return self
                .wrong_version(&mut stream, limits, peer, &envelope)
                .await;
        }
        let request = envelope.request;
        if !authorised {
            return self.deny(&mut stream, limits, peer, &request).await;
        }
        let span = request_span(peer, &request);
        async move { self.answer(stream, peer, request, budget).await }
            .instrument(span)
            .await
    }

    /// Answers an authorised request (inside its span).
    async fn answer(
        &self,
        mut stream: UnixStream,
        peer: Peer,
        request: ControlRequest,
        budget: Option<guard::OwnedBudget>,
    ) {
        tracing::debug!(component = "API", "request from {}", shown(peer));
        match request {
            ControlRequest::Log { lines, follow } => {
                drop(budget);
                stream_tail(&mut stream, self.log.file(), lines, follow).await
            }
            ControlRequest::Events { last, follow } => {
                drop(budget);
                stream_tail(&mut stream, self.events.file(), last, follow).await
            }
            request if request.is_mutating() => {
                let stop = request == ControlRequest::NodeStop;
                let answer = self.audited(peer, request).await;
                drop(budget);
                let stopping = stop && matches!(answer, ControlReply::Done { .. });
                let _gone = reply(&mut stream, answer).await;
                if stopping {
                    self.stop_answered.notify_one();
                }
            }
            request => {
                let answer = self.ask_core(request).await;
                drop(budget);
                let _gone = reply(&mut stream, answer).await;
            }
        }
    }

    /// Root, the service's own user, or a member of the socket's group: by primary gid, or by a
    /// supplementary group as the kernel recorded it at connect (SO_PEERGROUPS, no pid race).
    fn authorised(&self, stream: &UnixStream, peer: Peer) -> bool {
        if peer.uid == 0 || peer.uid == self.owner_uid || peer.gid == self.socket_gid {
            return true;
        }
        match keelson_sys::peer::peer_groups(stream) {
            Ok(groups) => groups.contains(&self.socket_gid),
            Err(e) => {
                tracing::warn!(
                    component = "API",
                    "cannot read the groups of {}: {e}",
                    shown(peer)
                );
                false
            }
        }
    }

    /// A mutating request from an authorised peer: audited before it reaches the core (refused,
    /// unchanged, when that record cannot be written), and again with its result.
    async fn audited(&self, peer: Peer, request: ControlRequest) -> ControlReply {
        let described = describe(&request);
        if let Err(e) = self.audit.record(peer, &described, true, "pending") {
            let message = format!(
                "cannot write the audit log: {}; nothing was changed",
                io_reason(&e)
            );
            tracing::error!(
                component = "API",
                "refused {described} from {}: {message}",
                shown(peer)
            );
            return ControlReply::Error { message };
        }
        let answer = self.ask_core(request).await;
        let result = match &answer {
            ControlReply::Error { message } => format!("refused: {message}"),
            ControlReply::Done { message } => format!("done: {message}"),
            _ => "done".to_string(),
        };
        if let Err(e) = self.audit.record(peer, &described, true, &result) {
            tracing::error!(
                component = "API",
                "cannot write the audit record of the result of {described} from {} ({result}): {}",
                shown(peer),
                io_reason(&e)
            );
        }
        answer
    }

    /// An unauthorised peer: refused, audited when it asked for a change, logged (rate-limited).
    async fn deny(
        &self,
        stream: &mut UnixStream,
        limits: &Limits,
        peer: Peer,
        request: &ControlRequest,
    ) {
        let message = format!(
            "permission denied: uid {} is not root and not in the socket's group {}",
            peer.uid, self.socket_gid
        );
        let described = describe(request);
        if request.is_mutating() {
            self.audit_denial(peer, &described, &message);
        }
        self.noise(
            limits,
            peer.uid,
            &format!("refused {described} from {}", shown(peer)),
        );
        let _gone = reply(stream, ControlReply::Error { message }).await;
    }

    fn audit_denial(&self, peer: Peer, described: &str, message: &str) {
        let result = format!("denied: {message}");
        if let Err(e) = self.audit.record(peer, described, false, &result) {
            tracing::error!(
                component = "API",
                "cannot write the audit record of a denied {described} from {}: {}",
                shown(peer),
                io_reason(&e)
            );
        }
    }

    /// A frame that could not be read: one Error line to the client, a rate-limited log line.
    async fn bad_frame(
        &self,
        stream: &mut UnixStream,
        limits: &Limits,
        peer: Peer,
        authorised: bool,
        error: FrameError,
    ) {
        let message = match (&error, authorised) {
            (FrameError::OverBudget { .. }, _) => error.to_string(),
            (_, false) => {
                let message = format!(
                    "permission denied: uid {} is not root and not in the socket's group {}",
                    peer.uid, self.socket_gid
                );
                self.audit_denial(peer, &format!("(unreadable request: {error})"), &message);
                message
            }
            (_, true) => format!("bad request frame: {error}"),
        };
        self.noise(
            limits,
            peer.uid,
            &format!("bad control frame from {}: {error}", shown(peer)),
        );
        let _gone = reply(stream, ControlReply::Error { message }).await;
    }

    async fn wrong_version(
        &self,
        stream: &mut UnixStream,
        limits: &Limits,
        peer: Peer,
        envelope: &ControlEnvelope,
    ) {
        let message = format!(
            "client speaks control protocol {}, this node speaks {CONTROL_PROTOCOL_VERSION}",
            envelope.version
        );
        self.noise(
            limits,
            peer.uid,
            &format!("refused a request from {}: {message}", shown(peer)),
        );
        let _gone = reply(stream, ControlReply::Error { message }).await;
    }

    /// A WARN line about bad traffic, at most one per uid per 10 s, with a count of the suppressed.
    fn noise(&self, limits: &Limits, uid: u32, line: &str) {
        if let Some(suppressed) = limits.noise.admit(uid, Instant::now()) {
            let line = match suppressed {
                0 => line.to_string(),
                n => format!("{line} ({n} similar lines from uid {uid} suppressed)"),
            };
            tracing::warn!(component = "API", "{line}");
        }
    }

    async fn ask_core(&self, request: ControlRequest) -> ControlReply {
        let (tx, rx) = oneshot::channel();
        if self.core.send((request, tx)).await.is_err() {
            return ControlReply::Error {
                message: "the node service is stopping".into(),
            };
        }
        rx.await.unwrap_or(ControlReply::Error {
            message: "the node service dropped the request".into(),
        })
    }
}

/// `uid U gid G pid P`.
fn shown(peer: Peer) -> String {
    match peer.pid {
        Some(pid) => format!("uid {} gid {} pid {pid}", peer.uid, peer.gid),
        None => format!("uid {} gid {}", peer.uid, peer.gid),
    }
}

async fn reply(
    stream: &mut UnixStream,
    answer: ControlReply,
) -> Result<(), keelson_proto::ProtoError> {
    write_frame_async(stream, &answer).await
}

/// The last `wanted` lines of a log file (read on a blocking thread, streamed as they are read,
/// capped per request with a final line saying so), then live lines when following, else End. A read
/// error is the client's Error reply.
async fn stream_tail(stream: &mut UnixStream, file: Arc<LogFile>, wanted: u32, follow: bool) {
    let name = file.name();
    let (lines_tx, mut lines) = mpsc::channel::<String>(TAIL_QUEUE);
    let (live_tx, live_rx) = oneshot::channel();
    let reader = tokio::task::spawn_blocking(move || {
        let (tail, live) = file.open_tail(follow)?;
        let _reader_waits = live_tx.send(live);
        tail.stream(wanted as usize, |line| lines_tx.blocking_send(line).is_ok())
    });
    if send_batched(stream, &mut lines).await.is_err() {
        return; // the client went away; the reader stops at its next line
    }
    let end = match reader.await {
        Ok(Ok(end)) => end,
        Ok(Err(e)) => {
            let message = format!("cannot read {}", io_reason_keep_case(&e));
            let _gone = reply(stream, ControlReply::Error { message }).await;
            return;
        }
        Err(e) => {
            let message = format!("the reader of {name} failed: {e}");
            let _gone = reply(stream, ControlReply::Error { message }).await;
            return;
        }
    };
    if end.capped {
        let note = format!(
            "... only the last {} lines shown: one request reads at most {MAX_TAIL_LINES} lines or \
             {} MiB; older lines are in {name} and {name}.1 … in the data directory",
            end.lines,
            MAX_TAIL_BYTES >> 20
        );
        if reply(stream, ControlReply::Line(note)).await.is_err() {
            return;
        }
    }
    stream_lines(stream, live_rx.await.ok().flatten()).await
}

/// Sends every line from `lines` as Line frames, gathering what is ready into one write.
async fn send_batched(
    stream: &mut UnixStream,
    lines: &mut mpsc::Receiver<String>,
) -> Result<(), keelson_proto::ProtoError> {
    let mut out = Vec::with_capacity(STREAM_BATCH);
    while let Some(line) = lines.recv().await {
        out.extend_from_slice(&encode(&ControlReply::Line(line))?);
        while out.len() < STREAM_BATCH {
            let Ok(line) = lines.try_recv() else { break };
            out.extend_from_slice(&encode(&ControlReply::Line(line))?);
        }
        stream.write_all(&out).await?;
        out.clear();
    }
    Ok(())
}

/// Live lines while following (until the client goes away), else End.
async fn stream_lines(stream: &mut UnixStream, live: Option<broadcast::Receiver<String>>) {
    let Some(mut live) = live else {
        let _gone = reply(stream, ControlReply::End).await;
        return;
    };
    loop {
        match live.recv().await {
            Ok(line) => {
                if reply(stream, ControlReply::Line(line)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let note = format!("... {n} lines dropped (reader too slow) ...");
                if reply(stream, ControlReply::Line(note)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
