//! The control socket `<data-dir>/rcm.sock` (mode 0660): accepts one request per connection, checks
//! the peer with SO_PEERCRED (root, the service's own user, or the socket's group), audits every
//! mutating request allowed or refused, streams log/event lines, and hands everything else to the
//! core. Not the meaning of requests (core.rs).

use crate::audit::AuditLog;
use crate::clusterlog::ClusterLog;
use crate::events::EventLog;
use keelson_proto::{
    read_frame_async, write_frame_async, ControlEnvelope, ControlReply, ControlRequest,
    CONTROL_PROTOCOL_VERSION,
};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot};

/// A request for the core and where its answer goes.
pub type CoreRequest = (ControlRequest, oneshot::Sender<ControlReply>);

/// How long a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Serves connections until the listener fails.
    pub async fn serve(self: Arc<Api>, listener: UnixListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(self.clone().connection(stream));
                }
                Err(e) => {
                    self.log.log(
                        keelson_types::LogLevel::Err,
                        "API",
                        &format!("accept failed: {e}"),
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn connection(self: Arc<Api>, mut stream: UnixStream) {
        let Ok(cred) = stream.peer_cred() else { return };
        let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid());
        let envelope = match tokio::time::timeout(
            REQUEST_TIMEOUT,
            read_frame_async::<ControlEnvelope>(&mut stream),
        )
        .await
        {
            Ok(Ok(Some(envelope))) => envelope,
            Ok(Err(e)) => {
                let _ = reply(
                    &mut stream,
                    ControlReply::Error {
                        message: format!("bad request frame: {e}"),
                    },
                )
                .await;
                return;
            }
            _ => return,
        };
        let request = envelope.request;
        let described = format!("{request:?}");
        if envelope.version != CONTROL_PROTOCOL_VERSION {
            let message = format!(
                "client speaks control protocol {}, this node speaks {CONTROL_PROTOCOL_VERSION}",
                envelope.version
            );
            let _ = reply(&mut stream, ControlReply::Error { message }).await;
            return;
        }
        if !(uid == 0 || uid == self.owner_uid || gid == self.socket_gid) {
            let message = format!(
                "permission denied: uid {uid} is not root and not in the socket's group {}",
                self.socket_gid
            );
            if request.is_mutating() {
                let result = format!("denied: {message}");
                self.audit.record(uid, gid, pid, &described, false, &result);
            }
            self.log.log(
                keelson_types::LogLevel::Warn,
                "API",
                &format!("refused {described} from uid {uid} pid {}", shown_pid(pid)),
            );
            let _ = reply(&mut stream, ControlReply::Error { message }).await;
            return;
        }
        match request {
            ControlRequest::Log { lines, follow } => {
                let backlog = self.log.tail(lines as usize).unwrap_or_default();
                stream_lines(&mut stream, backlog, follow.then(|| self.log.subscribe())).await
            }
            ControlRequest::Events { last, follow } => {
                let backlog = self.events.tail(last as usize).unwrap_or_default();
                stream_lines(
                    &mut stream,
                    backlog,
                    follow.then(|| self.events.subscribe()),
                )
                .await
            }
            request => {
                let mutating = request.is_mutating();
                let stop = request == ControlRequest::NodeStop;
                let answer = self.ask_core(request).await;
                let stopping = stop && matches!(answer, ControlReply::Done { .. });
                if mutating {
                    let result = match &answer {
                        ControlReply::Error { message } => format!("refused: {message}"),
                        ControlReply::Done { message } => format!("done: {message}"),
                        _ => "done".to_string(),
                    };
                    self.audit.record(uid, gid, pid, &described, true, &result);
                }
                let _ = reply(&mut stream, answer).await;
                if stopping {
                    self.stop_answered.notify_one();
                }
            }
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

/// A peer's pid for the log: the number, or `unknown` when the kernel did not say.
fn shown_pid(pid: Option<i32>) -> String {
    pid.map_or_else(|| "unknown".to_string(), |p| p.to_string())
}

async fn reply(
    stream: &mut UnixStream,
    answer: ControlReply,
) -> Result<(), keelson_proto::ProtoError> {
    write_frame_async(stream, &answer).await
}

/// Sends the backlog, then live lines while following (until the client goes away), else End.
async fn stream_lines(
    stream: &mut UnixStream,
    backlog: Vec<String>,
    live: Option<broadcast::Receiver<String>>,
) {
    for line in backlog {
        if reply(stream, ControlReply::Line(line)).await.is_err() {
            return;
        }
    }
    let Some(mut live) = live else {
        let _ = reply(stream, ControlReply::End).await;
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
