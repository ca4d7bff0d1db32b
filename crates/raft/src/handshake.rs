//! The mutual challenge-response that opens every raft transport connection, each side proving it
//! holds the cluster key over both sides' fresh nonces, the protocol version and the cluster name:
//!
//! ```text
//! client -> server  Hello { cluster, client nonce, target }
//! server -> client  Challenge { server nonce, server proof }   or Refused { reason }
//! client -> server  Proof { client proof }                     or Refused { reason }
//! server -> client  Welcome                                    or Refused { reason }
//! ```
//!
//! `target` says which raft of the accepting node the connection is for: None for its own, or the
//! id of a voter it hosts (the witness voter, run by whichever node holds the witness lease); a
//! node that does not serve that target refuses it after the proofs, so only a key holder learns
//! what it hosts. The target is bound into the transcript with the cluster name.
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
use crate::NodeId;

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
    #[error("it asked for {0}, which this node does not serve")]
    NotServed(String),
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

/// What the transcript binds besides the nonces: the cluster name and, for a hosted voter, its
/// id (a cluster name never holds a NUL: names are printable).
fn context(cluster: &str, target: Option<NodeId>) -> String {
    match target {
        None => cluster.to_string(),
        Some(id) => format!("{cluster}\0node {id}"),
    }
}

/// Connects to `addr` and proves the key; the channel is ready for RPCs to that node's own raft
/// and its administrative calls.
pub async fn connect<A: ToSocketAddrs>(
    addr: A,
    key: &ClusterKey,
    cluster: &str,
    timeout: Duration,
) -> Result<Channel, ConnectError> {
    connect_to(addr, None, key, cluster, timeout).await
}

/// Connects to `addr` for raft node `target` (None: the node's own raft; Some: that id, which the
/// node at `addr` must serve, its own or one it hosts) and proves the key.
pub async fn connect_to<A: ToSocketAddrs>(
    addr: A,
    target: Option<NodeId>,
    key: &ClusterKey,
    cluster: &str,
    timeout: Duration,
) -> Result<Channel, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
        .map_err(ConnectError::Connect)?;
    tokio::time::timeout(timeout, client_side(stream, key, cluster, target))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

async fn client_side(
    mut stream: TcpStream,
    key: &ClusterKey,
    cluster: &str,
    target: Option<NodeId>,
) -> Result<Channel, ConnectError> {
    stream.set_nodelay(true).map_err(ConnectError::Connect)?;
    let client_nonce = nonce().map_err(ConnectError::Random)?;
    let hello = Handshake::Hello {
        cluster: cluster.to_string(),
        nonce: client_nonce,
        target,
    };
    let bound = context(cluster, target);
    send(&mut stream, &hello).await?;
    let (server_nonce, proof) = match recv(&mut stream).await? {
        Handshake::Challenge { nonce, proof } => (nonce, proof),
        Handshake::Refused { reason } => return Err(ConnectError::Refused(reason)),
        other => return Err(ConnectError::Unexpected(name(&other))),
    };
    let t = Transcript {
        version: PROTOCOL_VERSION,
        cluster: &bound,
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

/// Runs the accepting side's handshake on `stream` for a node serving only its own raft; on any
/// failure the peer is told why (when it got far enough to be told) and the stream is dropped.
pub async fn accept(
    stream: TcpStream,
    key: &ClusterKey,
    cluster: &str,
    timeout: Duration,
) -> Result<Channel, AcceptError> {
    let own_only = |target: Option<NodeId>| match target {
        None => Ok(()),
        Some(id) => Err(format!("raft node {id}")),
    };
    accept_for(stream, key, cluster, timeout, own_only)
        .await
        .map(|(channel, _)| channel)
}

/// As `accept`, for a node that serves the targets `serves` admits (its answer to a target it does
/// not serve is the refusal the peer is sent); the channel and the target it is for.
pub async fn accept_for(
    stream: TcpStream,
    key: &ClusterKey,
    cluster: &str,
    timeout: Duration,
    serves: impl Fn(Option<NodeId>) -> Result<(), String> + Send,
) -> Result<(Channel, Option<NodeId>), AcceptError> {
    tokio::time::timeout(timeout, server_side(stream, key, cluster, serves))
        .await
        .map_err(|_| AcceptError::Timeout(timeout))?
}

async fn server_side(
    mut stream: TcpStream,
    key: &ClusterKey,
    cluster: &str,
    serves: impl Fn(Option<NodeId>) -> Result<(), String>,
) -> Result<(Channel, Option<NodeId>), AcceptError> {
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
    let (client_nonce, target) = match hello {
        Handshake::Hello {
            cluster: theirs, ..
        } if theirs != cluster => {
            let reason = format!("this node belongs to cluster '{cluster}', not '{theirs}'");
            refuse(&mut stream, reason).await;
            return Err(AcceptError::WrongCluster(theirs));
        }
        Handshake::Hello { nonce, target, .. } => (nonce, target),
        other => return Err(AcceptError::Unexpected(name(&other))),
    };
    let bound = context(cluster, target);
    let server_nonce = nonce().map_err(AcceptError::Random)?;
    let t = Transcript {
        version: PROTOCOL_VERSION,
        cluster: &bound,
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
    if let Err(why) = serves(target) {
        refuse(&mut stream, format!("this node does not serve {why}")).await;
        return Err(AcceptError::NotServed(why));
    }
    send(&mut stream, &Handshake::Welcome).await?;
    let send_key = key.session_key(&t, Direction::ToClient);
    let recv_key = key.session_key(&t, Direction::ToServer);
    Ok((Channel::new(stream, send_key, recv_key), target))
}
