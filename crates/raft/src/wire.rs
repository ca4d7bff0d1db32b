//! The raft transport's wire protocol, and its one codec: the messages (plain types, one `Rpc`
//! variant per call, one `Reply` variant per answer, the handshake's), postcard encoding, and
//! length-prefixed frames with a size cap. Not authentication (key.rs, channel.rs) nor who sends
//! what when (handshake.rs, network.rs, server.rs).
//!
//! A frame is a 4-byte big-endian length and that many bytes. Before the handshake is done a frame
//! is at most `MAX_HANDSHAKE_FRAME` bytes and starts with `MAGIC` and the protocol version (so a
//! peer of another version is recognised as such, whatever else changed); after it, a frame is at
//! most `MAX_FRAME` bytes: a postcard-encoded `Rpc` or `Reply` followed by its 32-byte tag.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{LogId, StoredMembership};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::key::{Nonce, Tag};
use crate::{ClusterNode, NodeId, Request, Response, TypeConfig};

/// The protocol version this node speaks; a peer speaking another is refused, naming both.
/// Version 2 added `Hello::target` (which raft of the accepting node a connection is for).
pub const PROTOCOL_VERSION: u16 = 2;
/// What every handshake frame starts with.
pub const MAGIC: [u8; 4] = *b"KRFT";
/// The largest frame accepted after the handshake (an append-entries batch or snapshot chunk).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// The largest frame accepted before the peer has proved the key: nothing unauthenticated gets
/// more memory than this.
pub const MAX_HANDSHAKE_FRAME: usize = 1024;

/// The handshake's messages (see handshake.rs for the exchange).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Handshake {
    /// Connecting side: which cluster it means, its nonce, and which raft of the accepting node
    /// the connection is for: None for the node's own (and its administrative calls), or a voter
    /// it hosts (the witness voter) by id.
    Hello {
        cluster: String,
        nonce: Nonce,
        target: Option<NodeId>,
    },
    /// Accepting side: its nonce and its proof of the key over both nonces.
    Challenge { nonce: Nonce, proof: Tag },
    /// Connecting side: its proof of the key over both nonces.
    Proof { proof: Tag },
    /// Accepting side: the connecting side proved the key; RPCs may follow.
    Welcome,
    /// Either side: the connection is refused, and why (the one line the other side logs).
    Refused { reason: String },
}

/// One call from a peer: raft's own RPCs and the cluster's administrative ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Rpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot (openraft's chunked transfer; the last has `done`).
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Propose a request, already validated by the sender's engine, through the leader.
    ClientWrite(Request),
    /// A node holding the cluster key asks for an id: the leader reserves one for it.
    Join(ClusterNode),
    /// The node given `id` by `Join` runs its raft now: add it as a learner, catch it up, make it
    /// a voter.
    Admit {
        id: NodeId,
    },
    /// Remove the node from the cluster; its id is never given out again.
    Evict {
        id: NodeId,
    },
    /// The log id up to which a node must have applied to read linearizably (leader only).
    LinearizableRead,
}

/// Why an administrative call was not done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AdminError {
    /// This node is not the leader; the leader is this one, if known.
    #[error("not the leader; the leader is {}", describe_leader(.leader_id, .leader))]
    ForwardToLeader {
        leader_id: Option<NodeId>,
        leader: Option<ClusterNode>,
    },
    /// The leader could not do it: one line saying why.
    #[error("{0}")]
    Refused(String),
    /// The request reached raft but its outcome is unknown (leadership moved mid-way): it may or
    /// may not be committed, so it must not be re-proposed blindly.
    #[error("{0}")]
    Uncertain(String),
}

fn describe_leader(id: &Option<NodeId>, node: &Option<ClusterNode>) -> String {
    match (id, node) {
        (Some(id), Some(node)) => format!("node {id} ({node})"),
        (Some(id), None) => format!("node {id} (address unknown)"),
        _ => "not known yet".into(),
    }
}

/// A membership as the cluster committed it.
pub type Membership = StoredMembership<NodeId, ClusterNode>;

/// One answer, to the `Rpc` of the same name.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The applied request's response and the log id that committed it.
    ClientWrite(Result<Response, AdminError>),
    /// The id reserved for the joining node.
    Join(Result<NodeId, AdminError>),
    /// The membership that made the node a voter.
    Admit(Result<Membership, AdminError>),
    /// The membership without the node.
    Evict(Result<Membership, AdminError>),
    LinearizableRead(Result<Option<LogId<NodeId>>, AdminError>),
    /// The frame authenticated but did not decode as an `Rpc` this node knows.
    Malformed(String),
}

/// Why bytes from a peer are not a message this node accepts.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {len} bytes is larger than the {cap}-byte limit")]
    Oversized { len: usize, cap: usize },
    #[error("frame does not start with the raft transport magic")]
    BadMagic,
    #[error("peer speaks raft transport version {0}; this node speaks {PROTOCOL_VERSION}")]
    Version(u16),
    #[error("frame does not decode: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("frame's HMAC does not verify under this connection's session key")]
    BadTag,
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

impl WireError {
    /// Whether the peer simply went away (end of stream), not sent something wrong.
    pub fn is_eof(&self) -> bool {
        matches!(self, WireError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    }
}

/// A message's payload bytes.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, WireError> {
    Ok(postcard::to_allocvec(message)?)
}

/// A message from its payload bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    Ok(postcard::from_bytes(bytes)?)
}

/// A handshake frame's body: magic, version, message.
pub fn encode_handshake(message: &Handshake) -> Result<Vec<u8>, WireError> {
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    body.extend_from_slice(&encode(message)?);
    Ok(body)
}

/// A handshake message from a frame's body; another version is refused before anything else is
/// read from it.
pub fn decode_handshake(body: &[u8]) -> Result<Handshake, WireError> {
    if body.len() < 6 || body[..4] != MAGIC {
        return Err(WireError::BadMagic);
    }
    let version = u16::from_be_bytes([body[4], body[5]]);
    if version != PROTOCOL_VERSION {
        return Err(WireError::Version(version));
    }
    decode(&body[6..])
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<(), WireError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|len| *len as usize <= MAX_FRAME)
        .ok_or(WireError::Oversized {
            len: body.len(),
            cap: MAX_FRAME,
        })?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame of at most `cap` bytes; a longer one is refused before its body is read.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, cap: usize) -> Result<Vec<u8>, WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > cap {
        return Err(WireError::Oversized { len, cap });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_types::{RecordChange, ResourceRecord};
    use openraft::error::{Fatal, InstallSnapshotError, SnapshotMismatch};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, Membership as RaftMembership, Vote};
    use std::collections::{BTreeMap, BTreeSet};

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn node(id: NodeId) -> ClusterNode {
        ClusterNode {
            name: format!("n{id}"),
            addr: format!("127.0.0.1:{}", 4000 + id),
        }
    }

    fn entries() -> Vec<Entry<TypeConfig>> {
        let resource = ResourceRecord {
            name: "ip".into(),
            type_name: "dummy".into(),
            group: "web".into(),
            properties: BTreeMap::from([("RestartDelay".into(), "500".into())]),
            params: BTreeMap::from([("password".into(), "s3cret".into())]),
            depends_on: vec!["disk".into()],
            want_online: true,
            ..Default::default()
        };
        let voters = vec![BTreeSet::from([1, 2, 3])];
        let nodes = BTreeMap::from([(1, node(1)), (2, node(2)), (3, node(3)), (4, node(4))]);
        vec![
            Entry {
                log_id: log_id(1, 1),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(1, 2),
                payload: EntryPayload::Normal(Request::Changes(vec![
                    RecordChange::PutResource(resource),
                    RecordChange::DeleteGroup("old".into()),
                ])),
            },
            Entry {
                log_id: log_id(1, 3),
                payload: EntryPayload::Normal(Request::AllocateNodeId),
            },
            Entry {
                log_id: log_id(2, 4),
                payload: EntryPayload::Membership(RaftMembership::new(voters, nodes)),
            },
        ]
    }

    /// Every message survives postcard (which, unlike JSON, is not self-describing: a type that
    /// needed `deserialize_any` would fail here, not in production).
    #[test]
    fn every_rpc_and_reply_round_trips_through_postcard() {
        let vote = Vote::new_committed(2, 1);
        let append = AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: Some(log_id(1, 0)),
            entries: entries(),
            leader_commit: Some(log_id(1, 2)),
        };
        let rpcs = vec![
            Rpc::AppendEntries(append),
            Rpc::Vote(VoteRequest::new(vote, Some(log_id(1, 3)))),
            Rpc::ClientWrite(Request::AllocateNodeId),
            Rpc::Join(node(5)),
            Rpc::Admit { id: 5 },
            Rpc::Evict { id: 2 },
            Rpc::LinearizableRead,
        ];
        for rpc in rpcs {
            let back: Rpc = decode(&encode(&rpc).unwrap()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{rpc:?}"));
        }
        let mismatch = InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
            expect: openraft::SnapshotSegmentId {
                id: "a".into(),
                offset: 0,
            },
            got: openraft::SnapshotSegmentId {
                id: "b".into(),
                offset: 7,
            },
        });
        let membership = StoredMembership::new(
            Some(log_id(2, 4)),
            RaftMembership::new(
                vec![BTreeSet::from([1, 2])],
                BTreeMap::from([(1, node(1)), (2, node(2))]),
            ),
        );
        let replies = vec![
            Reply::AppendEntries(Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(
                1, 2,
            ))))),
            Reply::AppendEntries(Err(RaftError::Fatal(Fatal::Stopped))),
            Reply::Vote(Ok(VoteResponse::new(vote, None, true))),
            Reply::InstallSnapshot(Err(RaftError::APIError(mismatch))),
            Reply::ClientWrite(Ok(Response {
                log_id: Some(log_id(2, 5)),
                allocated: Some(5),
            })),
            Reply::ClientWrite(Err(AdminError::ForwardToLeader {
                leader_id: Some(1),
                leader: Some(node(1)),
            })),
            Reply::Join(Err(AdminError::Refused("no".into()))),
            Reply::Admit(Ok(membership.clone())),
            Reply::Evict(Ok(membership)),
            Reply::LinearizableRead(Ok(Some(log_id(2, 5)))),
            Reply::Malformed("x".into()),
        ];
        for reply in replies {
            let back: Reply = decode(&encode(&reply).unwrap()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{reply:?}"));
        }
    }

    #[test]
    fn a_snapshot_chunk_round_trips() {
        let meta = openraft::SnapshotMeta {
            last_log_id: Some(log_id(2, 9)),
            last_membership: StoredMembership::default(),
            snapshot_id: "2-9-1".into(),
        };
        let rpc = Rpc::InstallSnapshot(InstallSnapshotRequest {
            vote: Vote::new_committed(2, 1),
            meta,
            offset: 0,
            data: vec![7u8; 1000],
            done: true,
        });
        let back: Rpc = decode(&encode(&rpc).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{rpc:?}"));
    }

    #[test]
    fn handshakes_carry_magic_and_version_and_refuse_others() {
        let hello = Handshake::Hello {
            cluster: "c".into(),
            nonce: [3; 32],
            target: Some(7),
        };
        let body = encode_handshake(&hello).unwrap();
        assert_eq!(&body[..4], b"KRFT");
        assert_eq!(decode_handshake(&body).unwrap(), hello);
        let mut v2 = body.clone();
        v2[5] = 3;
        assert!(matches!(decode_handshake(&v2), Err(WireError::Version(3))));
        let mut magic = body.clone();
        magic[0] = b'X';
        assert!(matches!(decode_handshake(&magic), Err(WireError::BadMagic)));
        assert!(matches!(
            decode_handshake(&body[..3]),
            Err(WireError::BadMagic)
        ));
        assert!(matches!(
            decode_handshake(&body[..8]),
            Err(WireError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_its_body_is_read() {
        let mut bytes: &[u8] = &[0x01, 0x00, 0x00, 0x01, 0xAA];
        let e = read_frame(&mut bytes, MAX_FRAME).await.unwrap_err();
        assert!(
            matches!(
                e,
                WireError::Oversized {
                    len: 16_777_217,
                    cap: MAX_FRAME
                }
            ),
            "{e}"
        );
        let mut sink = Vec::new();
        let e = write_frame(&mut sink, &vec![0u8; MAX_FRAME + 1])
            .await
            .unwrap_err();
        assert!(matches!(e, WireError::Oversized { .. }), "{e}");
        assert!(sink.is_empty(), "nothing written");
        write_frame(&mut sink, b"abc").await.unwrap();
        let mut read: &[u8] = &sink;
        assert_eq!(read_frame(&mut read, 3).await.unwrap(), b"abc");
        let mut short: &[u8] = &sink[..5];
        assert!(read_frame(&mut short, 3).await.unwrap_err().is_eof());
    }
}
