//! An authenticated connection after its handshake: every frame is a payload followed by the HMAC,
//! under that direction's session key, of (direction, sequence number, payload). Sequence numbers
//! are implicit (both ends count), so a replayed, reordered, dropped or forged frame fails to
//! verify and the connection is given up. Not the handshake (handshake.rs), not what the payloads
//! mean (wire.rs).

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::key::{SessionKey, TAG_LEN};
use crate::wire::{decode, encode, read_frame, write_frame, WireError, MAX_FRAME};

/// One authenticated TCP connection to a peer.
#[derive(Debug)]
pub struct Channel {
    stream: TcpStream,
    send_key: SessionKey,
    recv_key: SessionKey,
    sent: u64,
    received: u64,
}

/// The largest payload a frame can carry (the tag takes the rest).
pub const MAX_PAYLOAD: usize = MAX_FRAME - TAG_LEN;

impl Channel {
    pub(crate) fn new(stream: TcpStream, send_key: SessionKey, recv_key: SessionKey) -> Channel {
        Channel {
            stream,
            send_key,
            recv_key,
            sent: 0,
            received: 0,
        }
    }

    /// Sends one message.
    pub async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), WireError> {
        let payload = encode(message)?;
        self.send_payload(&payload).await
    }

    /// Sends already encoded payload bytes as the next frame (tests use it to send an
    /// authenticated frame that is not a message).
    pub async fn send_payload(&mut self, payload: &[u8]) -> Result<(), WireError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(WireError::Oversized {
                len: payload.len() + TAG_LEN,
                cap: MAX_FRAME,
            });
        }
        let tag = self.send_key.tag(self.sent, payload);
        let mut body = Vec::with_capacity(payload.len() + TAG_LEN);
        body.extend_from_slice(payload);
        body.extend_from_slice(&tag);
        write_frame(&mut self.stream, &body).await?;
        self.sent += 1;
        Ok(())
    }

    /// Receives the next frame's payload, verified.
    pub async fn recv_payload(&mut self) -> Result<Vec<u8>, WireError> {
        let mut body = read_frame(&mut self.stream, MAX_FRAME).await?;
        if body.len() < TAG_LEN {
            return Err(WireError::BadTag);
        }
        let tag = body.split_off(body.len() - TAG_LEN);
        if !self.recv_key.verify(self.received, &body, &tag) {
            return Err(WireError::BadTag);
        }
        self.received += 1;
        Ok(body)
    }

    /// Receives the next message, verified and decoded.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, WireError> {
        let payload = self.recv_payload().await?;
        decode(&payload)
    }

    /// The TCP stream underneath, for tests that write raw bytes past the authentication.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}
