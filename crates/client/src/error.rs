//! What can go wrong talking to a node service, one sentence each. Not the refusals' wording: a
//! refused request carries rcm's message as it is.

use keelson_proto::ProtoError;
use std::path::PathBuf;
use std::time::Duration;

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing accepts connections on the socket (no node service, or a stale socket).
    #[error("cannot reach the node service at {}: {io}", socket.display())]
    Unreachable { socket: PathBuf, io: std::io::Error },
    #[error("cannot send the request to the node service")]
    Send(#[source] ProtoError),
    #[error("bad reply from the node service")]
    BadReply(#[source] ProtoError),
    #[error("the node service did not answer within {}", shown(.0))]
    Timeout(Duration),
    #[error("the node service closed the connection without answering")]
    Closed,
    #[error("the node service closed the stream (did it stop?)")]
    StreamClosed,
    /// The request was refused or failed; rcm's message, as is.
    #[error("{0}")]
    Refused(String),
    /// A reply of another kind than the request calls for.
    #[error("unexpected reply from the node service ({0})")]
    Unexpected(&'static str),
    #[error("the node service sent a view that is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not the view this client knows (e.g. a field of another type).
    #[error("the node service sent a view that this keelson cannot read")]
    BadView(#[source] serde_json::Error),
}

impl ClientError {
    /// A view's text that did not parse: [`ClientError::NotJson`] or [`ClientError::BadView`].
    pub fn of_view(error: serde_json::Error) -> ClientError {
        match error.classify() {
            serde_json::error::Category::Data => ClientError::BadView(error),
            _ => ClientError::NotJson(error),
        }
    }
}

/// `60 s`, or `250 ms` for a deadline that is not whole seconds.
fn shown(deadline: &Duration) -> String {
    match deadline.subsec_millis() {
        0 => format!("{} s", deadline.as_secs()),
        _ => format!("{} ms", deadline.as_millis()),
    }
}
