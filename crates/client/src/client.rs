//! [`Client`]: a node service known by its control socket, and the requests it answers: one reply,
//! a confirmation, a view (as text or parsed), every reply of a request, or a stream of lines.

use crate::ClientError;
use keelson_proto::{
    read_frame_async, view, write_frame_async, ControlEnvelope, ControlReply, ControlRequest,
    CONTROL_PROTOCOL_VERSION,
};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;

/// How long a request may take to be sent and answered (each frame, for [`Client::replies`]) unless
/// the client is given another deadline.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`Client::answers`] waits for a status.
const ANSWERS_TIMEOUT: Duration = Duration::from_secs(2);

/// A node service, known by its control socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    reply_timeout: Duration,
}

/// One request's connection, ready for its replies.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
}

impl Connection {
    /// The next reply frame, or `None` when the node service closed the connection. No deadline:
    /// a followed stream may be quiet for as long as the node is.
    pub async fn next_reply(&mut self) -> Result<Option<ControlReply>, ClientError> {
        read_frame_async::<ControlReply>(&mut self.stream)
            .await
            .map_err(ClientError::BadReply)
    }
}

impl Client {
    /// The client of the node service listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
        }
    }

    /// The client of the node whose data directory is `data_dir` (its `rcm.sock`).
    pub fn for_data_dir(data_dir: &Path) -> Client {
        Client::new(data_dir.join("rcm.sock"))
    }

    /// The same client with another deadline for each answer.
    pub fn with_reply_timeout(mut self, timeout: Duration) -> Client {
        self.reply_timeout = timeout;
        self
    }

    /// The control socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Connects and sends `request`; the connection is then ready for replies.
    pub async fn send(&self, request: ControlRequest) -> Result<Connection, ClientError> {
        let mut stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|io| ClientError::Unreachable {
                    socket: self.socket.clone(),
                    io,
                })?;
        let envelope = ControlEnvelope {
            version: CONTROL_PROTOCOL_VERSION,
            request,
        };
        write_frame_async(&mut stream, &envelope)
            .await
            .map_err(ClientError::Send)?;
        Ok(Connection { stream })
    }

    /// One request, one reply, both within the deadline. An `Error` reply is
    /// [`ClientError::Refused`] with rcm's message.
    pub async fn call(&self, request: ControlRequest) -> Result<ControlReply, ClientError> {
        let exchange = async {
            let mut connection = self.send(request).await?;
            connection.next_reply().await
        };
        match self.within_deadline(exchange).await? {
            None => Err(ClientError::Closed),
            Some(ControlReply::Error { message }) => Err(ClientError::Refused(message)),
            Some(reply) => Ok(reply),
        }
    }

    /// A request that must be answered with `Done`; its message.
    pub async fn done(&self, request: ControlRequest) -> Result<String, ClientError> {
        match self.call(request).await? {
            ControlReply::Done { message } => Ok(message),
            other => Err(unexpected(&other)),
        }
    }

    /// A request that must be answered with a view; its JSON text as sent.
    pub async fn json_text(&self, request: ControlRequest) -> Result<String, ClientError> {
        match self.call(request).await? {
            ControlReply::Json(text) => Ok(text),
            other => Err(unexpected(&other)),
        }
    }

    /// A request answered with a view, parsed as `T` (one of [`keelson_proto::view`], or
    /// `serde_json::Value`).
    pub async fn view<T: DeserializeOwned>(
        &self,
        request: ControlRequest,
    ) -> Result<T, ClientError> {
        let text = self.json_text(request).await?;
        serde_json::from_str(&text).map_err(ClientError::of_view)
    }

    /// Every reply to `request`, `Error` replies included: frames until one that is not a `Line`,
    /// or until the node service closes the connection; each frame within the deadline.
    pub async fn replies(&self, request: ControlRequest) -> Result<Vec<ControlReply>, ClientError> {
        let mut connection = self.within_deadline(self.send(request)).await?;
        let mut replies = Vec::new();
        while let Some(reply) = self.within_deadline(connection.next_reply()).await? {
            let last = !matches!(reply, ControlReply::Line(_));
            replies.push(reply);
            if last {
                break;
            }
        }
        Ok(replies)
    }

    /// A streaming request (`Log`, `Events`): calls `line` for each `Line` until `End`, which
    /// returns `Ok(())`; the connection closing first is [`ClientError::StreamClosed`]. No deadline
    /// between lines (a followed stream waits for the next one).
    pub async fn stream<E: From<ClientError>>(
        &self,
        request: ControlRequest,
        mut line: impl FnMut(String) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut connection = self.within_deadline(self.send(request)).await?;
        loop {
            match connection.next_reply().await? {
                Some(ControlReply::Line(text)) => line(text)?,
                Some(ControlReply::End) => return Ok(()),
                Some(ControlReply::Error { message }) => {
                    return Err(ClientError::Refused(message).into())
                }
                Some(other) => return Err(unexpected(&other).into()),
                None => return Err(ClientError::StreamClosed.into()),
            }
        }
    }

    /// Whether a node service answers a `Status` request on this socket right now (within 2 s).
    pub async fn answers(&self) -> bool {
        let ask = self.call(ControlRequest::Status);
        matches!(tokio::time::timeout(ANSWERS_TIMEOUT, ask).await, Ok(Ok(_)))
    }

    /// Whether anything accepts connections on the socket (a node that is still shutting down does).
    pub async fn accepts(&self) -> bool {
        UnixStream::connect(&self.socket).await.is_ok()
    }

    /// The `status` view.
    pub async fn status(&self) -> Result<view::Status, ClientError> {
        self.view(ControlRequest::Status).await
    }

    /// The `resource get` view of `name`.
    pub async fn resource(&self, name: &str) -> Result<view::Resource, ClientError> {
        let name = name.to_string();
        self.view(ControlRequest::ResourceGet { name }).await
    }

    /// The `resource list` view.
    pub async fn resources(&self) -> Result<Vec<view::ResourceSummary>, ClientError> {
        self.view(ControlRequest::ResourceList).await
    }

    /// The `group get` view of `name`.
    pub async fn group(&self, name: &str) -> Result<view::Group, ClientError> {
        let name = name.to_string();
        self.view(ControlRequest::GroupGet { name }).await
    }

    /// The `group list` view.
    pub async fn groups(&self) -> Result<Vec<view::GroupSummary>, ClientError> {
        self.view(ControlRequest::GroupList).await
    }

    /// The `plugin list` view.
    pub async fn plugins(&self) -> Result<view::PluginList, ClientError> {
        self.view(ControlRequest::PluginList).await
    }

    /// `work`, or [`ClientError::Timeout`] once the reply deadline has passed.
    async fn within_deadline<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.reply_timeout, work)
            .await
            .map_err(|_| ClientError::Timeout(self.reply_timeout))?
    }
}

fn unexpected(reply: &ControlReply) -> ClientError {
    ClientError::Unexpected(match reply {
        ControlReply::Json(_) => "a JSON view",
        ControlReply::Done { .. } => "a confirmation",
        ControlReply::Error { .. } => "an error",
        ControlReply::Line(_) => "a stream line",
        ControlReply::End => "an end of stream",
    })
}
