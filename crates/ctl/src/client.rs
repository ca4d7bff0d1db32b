//! The client end of the control protocol: one connection per request to `<data-dir>/rcm.sock`,
//! one [`ControlEnvelope`] out, then one reply (or a stream of lines) back, with every failure
//! turned into one clear sentence. Not printing anything and not deciding what a command means.

use anyhow::{anyhow, bail, Context, Result};
use keelson_proto::{
    read_frame_async, write_frame_async, ControlEnvelope, ControlReply, ControlRequest,
    CONTROL_PROTOCOL_VERSION,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;

/// How long a single (non-streaming) request may take before the CLI gives up on the node service.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A node service, known by its control socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// The client of the node whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> Client {
        Client {
            socket: crate::datadir::socket_path(data_dir),
        }
    }

    /// The control socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Connects and sends `request`; the connection is then ready for replies.
    async fn send(&self, request: ControlRequest) -> Result<UnixStream> {
        let mut stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            anyhow!(
                "cannot reach the node service at {}: {e} (is it running? try 'keelson node start')",
                self.socket.display()
            )
        })?;
        let envelope = ControlEnvelope {
            version: CONTROL_PROTOCOL_VERSION,
            request,
        };
        write_frame_async(&mut stream, &envelope)
            .await
            .context("cannot send the request to the node service")?;
        Ok(stream)
    }

    /// One request, one reply. `Error` replies become errors carrying rcm's message as-is.
    pub async fn call(&self, request: ControlRequest) -> Result<ControlReply> {
        let mut stream = self.send(request).await?;
        let reply = tokio::time::timeout(REPLY_TIMEOUT, next_reply(&mut stream))
            .await
            .map_err(|_| {
                anyhow!(
                    "the node service did not answer within {} s",
                    REPLY_TIMEOUT.as_secs()
                )
            })??;
        match reply {
            None => bail!("the node service closed the connection without answering"),
            Some(ControlReply::Error { message }) => Err(anyhow!(message)),
            Some(reply) => Ok(reply),
        }
    }

    /// A request that must be answered with `Done`; its message.
    pub async fn done(&self, request: ControlRequest) -> Result<String> {
        match self.call(request).await? {
            ControlReply::Done { message } => Ok(message),
            other => Err(unexpected(&other)),
        }
    }

    /// A request that must be answered with a JSON view; its text.
    pub async fn json_text(&self, request: ControlRequest) -> Result<String> {
        match self.call(request).await? {
            ControlReply::Json(text) => Ok(text),
            other => Err(unexpected(&other)),
        }
    }

    /// A request answered with a JSON view, parsed.
    pub async fn view(&self, request: ControlRequest) -> Result<Value> {
        let text = self.json_text(request).await?;
        serde_json::from_str(&text).context("the node service sent a view that is not JSON")
    }

    /// A streaming request (`Log`, `Events`): calls `line` for each `Line` until `End`.
    /// Returns `Ok(())` at `End`; the connection closing first is an error.
    pub async fn stream(
        &self,
        request: ControlRequest,
        mut line: impl FnMut(String) -> Result<()>,
    ) -> Result<()> {
        let mut stream = self.send(request).await?;
        loop {
            match next_reply(&mut stream).await? {
                Some(ControlReply::Line(text)) => line(text)?,
                Some(ControlReply::End) => return Ok(()),
                Some(ControlReply::Error { message }) => bail!(message),
                Some(other) => return Err(unexpected(&other)),
                None => bail!("the node service closed the stream (did it stop?)"),
            }
        }
    }

    /// Whether a node service answers a `Status` request on this socket right now.
    pub async fn answers(&self) -> bool {
        let ask = self.call(ControlRequest::Status);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), ask).await,
            Ok(Ok(_))
        )
    }

    /// Whether anything accepts connections on the socket (a node that is still shutting down does).
    pub async fn accepts(&self) -> bool {
        UnixStream::connect(&self.socket).await.is_ok()
    }
}

/// The next reply frame, or `None` when the node service closed the connection.
async fn next_reply(stream: &mut UnixStream) -> Result<Option<ControlReply>> {
    read_frame_async::<ControlReply>(stream)
        .await
        .context("bad reply from the node service")
}

fn unexpected(reply: &ControlReply) -> anyhow::Error {
    let kind = match reply {
        ControlReply::Json(_) => "a JSON view",
        ControlReply::Done { .. } => "a confirmation",
        ControlReply::Error { .. } => "an error",
        ControlReply::Line(_) => "a stream line",
        ControlReply::End => "an end of stream",
    };
    anyhow!("unexpected reply from the node service ({kind})")
}
