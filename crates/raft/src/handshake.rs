//! The mutual challenge-response that opens every raft transport connection, each side proving it
//! holds the cluster key over both sides' fresh nonces, the protocol version and the cluster name:
//!
//! ```text
//! client -> server  Hello { cluster, client nonce }
//! server -> client  Challenge { server nonce, server proof }   or Refused { reason }
//! client -> server  Proof { client proof }                     or Refused { reason }
//! server -> client  Welcome                                    or Refused { reason }
//! ```
//!
//! Both proofs and both directions' session keys derive from that transcript (key.rs), so a proof
//! or frame from one connection is worthless on another. Not what happens after (channel.rs).

use std::time::Duration;

use tokio::net::{TcpStream, ToSocketAddrs};

use crate::channel::Channel;
use crate::key::{nonce, ClusterKey, Direction, Transcript};
use crate::wire::{
    decode_handshake, encode_handshake, read_frame, write_frame, Handshake, WireError,
    MAX_HANDSHAKE_FRAME, PROTOCOL_VERSION,
};

/// Why a connection to a peer was not set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("the peer refused the connection: {0}")]
    Refused(String),
    #[error("the cluster keys differ: the peer's proof of the cluster key does not verify")]
    PeerUnproven,
    #[error("the handshake did not finish within {0:?}")]
    Timeout(Duration),
    #[error("the peer answered the handshake with {0}")]
    Unexpected(&'static str),
    #[error("handshake: {0}")]
    Wire(#[from] WireError),
    #[error("no random nonce from the operating system: {0}")]
    Random(getrandom::Error),
}

/// Why an incoming connection was not accepted; each kind is counted apart.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("the cluster keys differ: its proof of the cluster key does not verify")]
    WrongKey,
    #[error("the cluster keys differ: it refused this node's proof of the cluster key ({0})")]
    OurProofRefused(String),
    #[error("it belongs to cluster '{0}'")]
    WrongCluster(String),
    #[error("the handshake did not finish within {0:?}")]
    Timeout(Duration),
    #[error("it sent {0} instead of the next handshake message")]
    Unexpected(&'static str),
    #[error("handshake: {0}")]
    Wire(#[from] WireError),
    #[error("no random nonce from the operating system: {0}")]
    Random(getrandom::Error),
}

fn name(m: &Handshake) -> &'static str {
    match m {
        Handshake::Hello { .. } => "Hello",
        Handshake::Challenge { .. } => "Challenge",
        Handshake::Proof { .. } => "Proof",
        Handshake::Welcome => "Welcome",
        Handshake::Refused { .. } => "Refused",
    }
}

async fn send(stream: &mut TcpStream, m: &Handshake) -> Result<(), WireError> {
    write_frame(stream, &encode_handshake(m)?).await
}

async fn recv(stream: &mut TcpStream) -> Result<Handshake, WireError> {
    decode_handshake(&read_frame(stream, MAX_HANDSHAKE_FRAME).await?)
}

/// Tells the peer why, best effort: the connection is being dropped either way, and what matters
/// (the log line and the counter) happens on this side whether or not the peer reads it.
async fn refuse(stream: &mut TcpStream, reason: String) {
    if let Err(e) = send(stream, &Handshake::Refused { reason }).await {
        tracing::debug!(component = "RAFT", "could not send a refusal: {e}");
    }
}

/// Connects to `addr` and proves the key; the channel is ready for RPCs.
pub async fn connect<A: ToSocketAddrs>(
    addr: A,
    key: &ClusterKey,
    cluster: &str,
    timeout: Duration,
) -> Result<Channel, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
        .map_err(ConnectError::Connect)?;
    tokio::time::timeout(timeout, client_side(stream, key, cluster))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

async fn client_side(
    mut stream: TcpStream,
    key: &ClusterKey,
    cluster: &str,
) -> Result<Channel, ConnectError> {
    stream.set_nodelay(true).map_err(ConnectError::Connect)?;
    let client_nonce = nonce().map_err(ConnectError::Random)?;
    let hello = Handshake::Hello {
        cluster: cluster.to_string(),
        nonce: client_nonce,
    };
    send(&mut stream, &hello).await?;
    let (server_nonce, proof) = match recv(&mut stream).await? {
        Handshake::Challenge { nonce, proof } => (nonce, proof),
        Handshake::Refused { reason } => return Err(ConnectError::Refused(reason)),
        other => return Err(ConnectError::Unexpected(name(&other))),
    };
    let t = Transcript {
        version: PROTOCOL_VERSION,
        cluster,
        client_nonce: &client_nonce,
        server_nonce: &server_nonce,
    };
    if !key.verify_server_proof(&t, &proof) {
        refuse(
            &mut stream,
            "your proof of the cluster key does not verify".into(),
        )
        .await;
        return Err(ConnectError::PeerUnproven);
    }
    let proof = key.client_proof(&t);
    send(&mut stream, &Handshake::Proof { proof }).await?;
    match recv(&mut stream).await? {
        Handshake::Welcome => {}
        Handshake::Refused { reason } => return Err(ConnectError::Refused(reason)),
        other => return Err(ConnectError::Unexpected(name(&other))),
    }
    let send_key = key.session_key(&t, Direction::ToServer);
    let recv_key = key.session_key(&t, Direction::ToClient);
    Ok(Channel::new(stream, send_key, recv_key))
}

/// Runs the accepting side's handshake on `stream`; on any failure the peer is told why (when it
/// got far enough to be told) and the stream is dropped.
pub async fn accept(
    stream: TcpStream,
    key: &ClusterKey,
    cluster: &str,
    timeout: Duration,
) -> Result<Channel, AcceptError> {
    tokio::time::timeout(timeout, server_side(stream, key, cluster))
        .await
        .map_err(|_| AcceptError::Timeout(timeout))?
}

async fn server_side(
    mut stream: TcpStream,
    key: &ClusterKey,
    cluster: &str,
) -> Result<Channel, AcceptError> {
    stream
        .set_nodelay(true)
        .map_err(|e| AcceptError::Wire(e.into()))?;
    let hello = match recv(&mut stream).await {
        Ok(hello) => hello,
        Err(WireError::Version(v)) => {
            let e = WireError::Version(v);
            refuse(&mut stream, e.to_string()).await;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let client_nonce = match hello {
        Handshake::Hello {
            cluster: theirs, ..
        } if theirs != cluster => {
            let reason = format!("this node belongs to cluster '{cluster}', not '{theirs}'");
            refuse(&mut stream, reason).await;
            return Err(AcceptError::WrongCluster(theirs));
        }
        Handshake::Hello { nonce, .. } => nonce,
        other => return Err(AcceptError::Unexpected(name(&other))),
    };
    let server_nonce = nonce().map_err(AcceptError::Random)?;
    let t = Transcript {
        version: PROTOCOL_VERSION,
        cluster,
        client_nonce: &client_nonce,
        server_nonce: &server_nonce,
    };
    let challenge = Handshake::Challenge {
        nonce: server_nonce,
        proof: key.server_proof(&t),
    };
    send(&mut stream, &challenge).await?;
    match recv(&mut stream).await? {
        Handshake::Proof { proof } if key.verify_client_proof(&t, &proof) => {}
        Handshake::Proof { .. } => {
            refuse(&mut stream, "the cluster key does not match".into()).await;
            return Err(AcceptError::WrongKey);
        }
        Handshake::Refused { reason } => return Err(AcceptError::OurProofRefused(reason)),
        other => return Err(AcceptError::Unexpected(name(&other))),
    }
    send(&mut stream, &Handshake::Welcome).await?;
    let send_key = key.session_key(&t, Direction::ToClient);
    let recv_key = key.session_key(&t, Direction::ToServer);
    Ok(Channel::new(stream, send_key, recv_key))
}
