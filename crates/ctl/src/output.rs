//! Writing command output to stdout: views as `--json` or as rendered text, confirmations as their
//! message. A closed stdout (`keelson log -f | head`) ends the command quietly instead of panicking.
//! Not rendering (see render.rs) and not error reporting (main.rs prints errors).

use crate::client::Client;
use anyhow::{Context, Result};
use keelson_client::ClientError;
use keelson_proto::ControlRequest;
use serde::de::DeserializeOwned;
use std::io::Write;

/// The reader of stdout went away; main ends the command quietly with success.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `text` to stdout; a broken pipe becomes [`StdoutClosed`], which stops a stream.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => other.context("cannot write to stdout"),
    }
}

/// Writes `text` and a newline.
pub fn emit_line(text: &str) -> Result<()> {
    emit(&format!("{text}\n"))
}

/// Fetches a view and prints it: with `--json`, the JSON rcm sent, pretty-printed with its keys in
/// order (fields a newer node service adds included); else parsed as `T` (one of
/// `keelson_proto::view`) and rendered through `render`.
pub async fn show<T: DeserializeOwned>(
    client: &Client,
    request: ControlRequest,
    json: bool,
    render: impl FnOnce(&T) -> String,
) -> Result<()> {
    let raw = client.json_text(request).await?;
    if json {
        return emit_line(&crate::render::pretty_json(&raw));
    }
    let view: T = serde_json::from_str(&raw).map_err(ClientError::of_view)?;
    emit(&render(&view))
}

/// Sends a request that is answered with `Done` and prints its message.
pub async fn confirm(client: &Client, request: ControlRequest) -> Result<()> {
    let message = client.done(request).await?;
    emit_line(&message)
}
