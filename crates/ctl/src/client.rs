//! The CLI's handle on the node service: the shared control-socket client (crates/client) on
//! `<data-dir>/rcm.sock`, with its errors as `anyhow` errors and the one hint only the CLI can give
//! (how to start a node service). Not printing anything and not deciding what a command means.

use anyhow::{anyhow, Result};
use keelson_client::ClientError;
use keelson_proto::{ControlReply, ControlRequest};
use serde::de::DeserializeOwned;
use std::path::Path;

/// A node service, known by its data directory's control socket.
#[derive(Debug, Clone)]
pub struct Client {
    inner: keelson_client::Client,
}

impl Client {
    /// The client of the node whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> Client {
        Client {
            inner: keelson_client::Client::new(crate::datadir::socket_path(data_dir)),
        }
    }

    /// The control socket this client talks to.
    pub fn socket(&self) -> &Path {
        self.inner.socket()
    }

    /// One request, one reply. `Error` replies become errors carrying rcm's message as-is.
    pub async fn call(&self, request: ControlRequest) -> Result<ControlReply> {
        self.inner.call(request).await.map_err(with_hint)
    }

    /// A request that must be answered with `Done`; its message.
    pub async fn done(&self, request: ControlRequest) -> Result<String> {
        self.inner.done(request).await.map_err(with_hint)
    }

    /// A request that must be answered with a JSON view; its text.
    pub async fn json_text(&self, request: ControlRequest) -> Result<String> {
        self.inner.json_text(request).await.map_err(with_hint)
    }

    /// A request answered with a view, parsed as `T` (one of `keelson_proto::view`).
    pub async fn view<T: DeserializeOwned>(&self, request: ControlRequest) -> Result<T> {
        self.inner.view(request).await.map_err(with_hint)
    }

    /// A streaming request (`Log`, `Events`): calls `line` for each `Line` until `End`.
    /// Returns `Ok(())` at `End`; the connection closing first is an error.
    pub async fn stream(
        &self,
        request: ControlRequest,
        line: impl FnMut(String) -> Result<()>,
    ) -> Result<()> {
        self.inner
            .stream(request, line)
            .await
            .map_err(|e| match e.downcast::<ClientError>() {
                Ok(client_error) => with_hint(client_error),
                Err(other) => other,
            })
    }

    /// Whether a node service answers a `Status` request on this socket right now.
    pub async fn answers(&self) -> bool {
        self.inner.answers().await
    }

    /// Whether anything accepts connections on the socket (a node that is still shutting down does).
    pub async fn accepts(&self) -> bool {
        self.inner.accepts().await
    }
}

/// The client's error; an unreachable node service also says how to start one.
fn with_hint(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Unreachable { .. } => {
            anyhow!("{e} (is it running? try 'keelson node start')")
        }
        other => other.into(),
    }
}
