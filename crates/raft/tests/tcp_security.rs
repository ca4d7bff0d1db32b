//! The raft transport against peers that do not hold the key or send garbage, on a real node over
//! loopback TCP: a wrong key is refused (one clear refusal, one log line) and can neither join nor
//! vote; a wrong cluster name and another protocol version are refused; a client will not talk to
//! a server that cannot prove the key; malformed, oversized and forged frames are dropped and
//! counted, the log line about them rate-limited, and the server keeps serving.
//!
//! One test function, because it watches the process-wide log.

mod tcp;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use keelson_raft::openraft::error::RPCError;
use keelson_raft::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use keelson_raft::openraft::raft::VoteRequest;
use keelson_raft::openraft::Vote;
use keelson_raft::wire::{Handshake, Reply, Rpc, MAGIC};
use keelson_raft::{
    accept, connect, serve, ClientError, ClusterClient, ConnectError, Network, Server,
    ServerConfig, TransportCounters,
};
use tcp::{bootstrap, eventually, join, key, listen, timing, wrong_key, CLUSTER, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every line the process logs.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_log() {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(|| Capture)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
}

fn lines_with(text: &str) -> Vec<String> {
    let bytes = log().lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| l.contains(text))
        .map(str::to_string)
        .collect()
}

async fn counted(server: &Server, what: &str, cond: impl Fn(&TransportCounters) -> bool) {
    eventually(what, || cond(&server.counters())).await;
}

/// Writes `bytes` on a fresh connection, then reads until the server closes it.
async fn raw(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    answer
}

async fn send_handshake(stream: &mut TcpStream, m: &Handshake) {
    let body = keelson_raft::wire::encode_handshake(m).unwrap();
    keelson_raft::wire::write_frame(stream, &body)
        .await
        .unwrap();
}

async fn recv_handshake(stream: &mut TcpStream) -> Handshake {
    let body = keelson_raft::wire::read_frame(stream, 1024).await.unwrap();
    keelson_raft::wire::decode_handshake(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_garbage_are_refused_counted_and_logged_once_and_the_server_survives() {
    capture_log();
    tokio::time::timeout(Duration::from_secs(120), scenario())
        .await
        .expect("the scenario finishes within 120 s");
}

async fn scenario() {
    let n1 = bootstrap().await;
    let server = n1.server.as_ref().unwrap();
    let addr = n1.member.addr.clone();

    // A node with another key cannot join: one clear refusal, one line.
    let (_l, stranger) = listen("stranger").await;
    let rogue = ClusterClient::new(wrong_key(), CLUSTER, WAIT);
    let e = rogue.join(&addr, stranger.clone()).await.unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::Connect {
                source: ConnectError::PeerUnproven,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("the cluster keys differ"), "{e}");
    counted(server, "a wrong key counted", |c| c.wrong_key == 1).await;
    // The count comes before the log line: wait for the line, then check there is exactly one.
    eventually("the refusal logged", || {
        !lines_with("Raft connection from 127.0.0.1").is_empty()
    })
    .await;
    let refused = lines_with("Raft connection from 127.0.0.1");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("RAFT"), "{}", refused[0]);
    assert!(
        refused[0].contains("refused: the cluster keys differ"),
        "{}",
        refused[0]
    );

    // ... nor vote: its raft cannot even reach node 1's.
    let mut factory = Network::new(9, wrong_key(), CLUSTER, &timing());
    let mut peer = factory.new_client(1, &n1.member).await;
    let term_before = n1.raft.metrics().borrow().current_term;
    let vote = VoteRequest::new(Vote::new(term_before + 10, 9), None);
    let answer = peer.vote(vote, RPCOption::new(WAIT)).await;
    assert!(
        matches!(answer, Err(RPCError::Unreachable(_))),
        "{answer:?}"
    );
    counted(server, "the rogue vote's key counted", |c| c.wrong_key == 2).await;
    let m = n1.raft.metrics().borrow().clone();
    assert_eq!(
        m.current_term, term_before,
        "the rogue's higher term was never seen"
    );
    assert_eq!(m.current_leader, Some(1));

    // A peer that skips checking our proof and sends a wrong one gets the server's refusal.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let hello = Handshake::Hello {
        cluster: CLUSTER.into(),
        nonce: [1; 32],
        target: None,
    };
    send_handshake(&mut stream, &hello).await;
    assert!(matches!(
        recv_handshake(&mut stream).await,
        Handshake::Challenge { .. }
    ));
    send_handshake(&mut stream, &Handshake::Proof { proof: [0; 32] }).await;
    assert_eq!(
        recv_handshake(&mut stream).await,
        Handshake::Refused {
            reason: "the cluster key does not match".into()
        }
    );
    counted(server, "a forged proof counted", |c| c.wrong_key == 3).await;

    // The right key but another cluster's name.
    match connect(&addr, &key(), "another-cluster", WAIT).await {
        Err(ConnectError::Refused(why)) => {
            assert!(
                why.contains("belongs to cluster 'test-cluster', not 'another-cluster'"),
                "{why}"
            )
        }
        other => panic!("another cluster must be refused: {other:?}"),
    }
    counted(server, "a wrong cluster counted", |c| c.wrong_cluster == 1).await;

    // A server that cannot prove the key is not talked to.
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake.local_addr().unwrap().to_string();
    let impostor = tokio::spawn(async move {
        let (stream, _) = fake.accept().await.unwrap();
        accept(stream, &wrong_key(), CLUSTER, WAIT).await
    });
    let e = connect(&fake_addr, &key(), CLUSTER, WAIT)
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectError::PeerUnproven), "{e}");
    assert!(impostor.await.unwrap().is_err());

    // Garbage before the handshake: not a handshake frame, too long, another version.
    raw(&addr, &[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']).await;
    counted(server, "a malformed hello", |c| c.malformed_frames == 1).await;
    raw(&addr, &[0, 0, 8, 0]).await;
    counted(server, "an oversized hello", |c| c.oversized_frames == 1).await;
    let mut v2 = MAGIC.to_vec();
    v2.extend_from_slice(&3u16.to_be_bytes());
    v2.extend_from_slice(b"future");
    let mut frame = (v2.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&v2);
    let answer = raw(&addr, &frame).await;
    let refusal = keelson_raft::wire::decode_handshake(&answer[4..]).unwrap();
    assert_eq!(
        refusal,
        Handshake::Refused {
            reason: "peer speaks raft transport version 3; this node speaks 2".into()
        }
    );
    counted(server, "another version", |c| c.wrong_version == 1).await;

    // After the handshake: an authenticated frame that is no Rpc is answered and dropped, and the
    // connection goes on.
    let mut channel = connect(&addr, &key(), CLUSTER, WAIT).await.unwrap();
    channel
        .send_payload(&[0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let reply: Reply = channel.recv().await.unwrap();
    assert!(matches!(reply, Reply::Malformed(_)), "{reply:?}");
    channel.send(&Rpc::LinearizableRead).await.unwrap();
    let reply: Reply = channel.recv().await.unwrap();
    assert!(
        matches!(reply, Reply::LinearizableRead(Ok(Some(_)))),
        "{reply:?}"
    );
    counted(server, "an undecodable payload", |c| {
        c.malformed_frames == 2
    })
    .await;

    // A forged frame (its tag does not verify): dropped, the connection closed.
    let stream = channel.stream_mut();
    let mut forged = 40u32.to_be_bytes().to_vec();
    forged.extend_from_slice(&[7u8; 40]);
    stream.write_all(&forged).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("closed")
        .unwrap();
    counted(server, "a forged frame", |c| c.bad_tags == 1).await;

    // An oversized authenticated frame: refused before its body is read, the connection closed.
    let mut channel = connect(&addr, &key(), CLUSTER, WAIT).await.unwrap();
    let stream = channel.stream_mut();
    stream
        .write_all(&((16 * 1024 * 1024 + 1) as u32).to_be_bytes())
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("closed")
        .unwrap();
    counted(server, "an oversized frame", |c| c.oversized_frames == 2).await;

    // A flood: every frame counted, no more log lines about the address.
    for _ in 0..20 {
        raw(&addr, &[0, 0, 0, 1, 0]).await;
    }
    counted(server, "the flood", |c| c.malformed_frames == 22).await;
    assert_eq!(lines_with("Raft connection from 127.0.0.1").len(), 1);

    // The server still serves: a node with the key joins through it.
    let n2 = join(&addr, "node2").await;
    assert_eq!(n2.id, 2);
    let c = server.counters();
    assert!(c.authenticated >= 4 && c.rpcs_served >= 3, "{c:?}");

    limits(&n1).await;
    n2.raft.shutdown().await.unwrap();
    n1.raft.shutdown().await.unwrap();
}

/// A second server on node 1's raft with small limits: a peer that never finishes its handshake
/// holds the one handshake slot, so the next connection is closed at once; an authenticated
/// connection that stays silent is closed after the idle timeout.
async fn limits(n1: &tcp::Node) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = ServerConfig::new(CLUSTER);
    config.max_connections = 4;
    config.idle_timeout = Duration::from_millis(300);
    let server = serve(listener, n1.raft.clone(), key(), config).unwrap();
    let stalled = TcpStream::connect(&addr).await.unwrap();
    counted(&server, "the stalled peer accepted", |c| c.accepted == 1).await;
    raw(&addr, &[]).await;
    counted(&server, "over the handshake limit", |c| {
        c.over_connection_limit == 1
    })
    .await;
    drop(stalled);
    counted(&server, "the stalled handshake ended", |c| {
        c.handshake_failed == 1
    })
    .await;
    let mut channel = connect(&addr, &key(), CLUSTER, WAIT).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, channel.stream_mut().read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "the idle connection is closed: {closed:?}"
    );
    assert_eq!(server.counters().authenticated, 1);
}
