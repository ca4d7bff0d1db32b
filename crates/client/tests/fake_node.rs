//! The client against a fake node service on a temporary socket: every reply kind, refusals,
//! silence (the deadline), a close before the answer or in the middle of a stream, views that do
//! not parse, and no socket at all. Not rcm (the system tests in tests/ use the client on a real
//! one).

use keelson_client::{Client, ClientError};
use keelson_proto::{
    read_frame_async, view, write_frame_async, ControlEnvelope, ControlReply as Rep,
    ControlRequest as R, CONTROL_PROTOCOL_VERSION,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UnixListener;

/// What the fake does with one request.
#[derive(Clone)]
enum Answer {
    /// These frames, then close.
    Frames(Vec<Rep>),
    /// Nothing, with the connection kept open.
    Silence,
}

struct Fake {
    dir: PathBuf,
    received: Arc<Mutex<Vec<ControlEnvelope>>>,
}

impl Fake {
    fn start(tag: &str, answer: Answer) -> Fake {
        let dir = std::env::temp_dir().join(format!("keelson-client-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = UnixListener::bind(dir.join("rcm.sock")).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = received.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let Ok(Some(env)) = read_frame_async::<ControlEnvelope>(&mut stream).await else {
                    continue;
                };
                rec.lock().unwrap().push(env);
                match &answer {
                    Answer::Frames(frames) => {
                        for frame in frames {
                            write_frame_async(&mut stream, frame).await.unwrap();
                        }
                    }
                    Answer::Silence => held.push(stream),
                }
            }
        });
        Fake { dir, received }
    }

    fn client(&self) -> Client {
        Client::for_data_dir(&self.dir)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn line(text: &str) -> Rep {
    Rep::Line(text.to_string())
}

#[tokio::test]
async fn a_call_sends_one_versioned_envelope_and_returns_the_answer() {
    let fake = Fake::start(
        "done",
        Answer::Frames(vec![Rep::Done {
            message: "ok".into(),
        }]),
    );
    let request = R::GroupOnline { name: "FS".into() };
    assert_eq!(fake.client().done(request.clone()).await.unwrap(), "ok");
    let received = fake.received.lock().unwrap().clone();
    assert_eq!(
        received,
        [ControlEnvelope {
            version: CONTROL_PROTOCOL_VERSION,
            request
        }]
    );
}

#[tokio::test]
async fn a_refusal_carries_the_message_as_is() {
    let message = "no group named 'FS'";
    let fake = Fake::start(
        "refused",
        Answer::Frames(vec![Rep::Error {
            message: message.into(),
        }]),
    );
    let err = fake
        .client()
        .done(R::GroupOnline { name: "FS".into() })
        .await;
    assert!(
        matches!(&err, Err(ClientError::Refused(m)) if m == message),
        "{err:?}"
    );
    assert_eq!(err.unwrap_err().to_string(), message);
}

#[tokio::test]
async fn a_silent_node_is_given_up_on_at_the_deadline() {
    let fake = Fake::start("silent", Answer::Silence);
    let client = fake.client().with_reply_timeout(Duration::from_millis(200));
    let start = Instant::now();
    let err = client.call(R::Status).await.unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the node service did not answer within 200 ms"
    );
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let err = client.replies(R::Status).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn a_close_before_the_answer_and_a_wrong_kind_of_answer_are_errors() {
    let fake = Fake::start("closed", Answer::Frames(vec![]));
    let err = fake.client().call(R::Status).await.unwrap_err();
    assert!(matches!(err, ClientError::Closed), "{err:?}");
    assert_eq!(fake.client().replies(R::Status).await.unwrap(), []);
    let fake = Fake::start("kind", Answer::Frames(vec![Rep::End]));
    let err = fake.client().json_text(R::Status).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected reply from the node service (an end of stream)"
    );
}

#[tokio::test]
async fn replies_and_streams_read_lines_until_the_end() {
    let frames = vec![line("a"), line("b"), Rep::End, line("never read")];
    let fake = Fake::start("stream", Answer::Frames(frames));
    let replies = fake
        .client()
        .replies(R::Log {
            lines: 2,
            follow: false,
        })
        .await
        .unwrap();
    assert_eq!(replies, [line("a"), line("b"), Rep::End]);
    let mut seen = Vec::new();
    fake.client()
        .stream(
            R::Log {
                lines: 2,
                follow: false,
            },
            |l| {
                seen.push(l);
                Ok::<(), ClientError>(())
            },
        )
        .await
        .unwrap();
    assert_eq!(seen, ["a", "b"]);
}

#[tokio::test]
async fn a_stream_that_stops_without_its_end_is_an_error() {
    let fake = Fake::start("cut", Answer::Frames(vec![line("a")]));
    let mut seen = 0;
    let err = fake
        .client()
        .stream(
            R::Events {
                last: 1,
                follow: true,
            },
            |_| {
                seen += 1;
                Ok::<(), ClientError>(())
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::StreamClosed), "{err:?}");
    assert_eq!(seen, 1);
}

#[tokio::test]
async fn views_are_parsed_and_ones_that_do_not_fit_are_named_so() {
    let fake = Fake::start(
        "view",
        Answer::Frames(vec![Rep::Json(r#"{"node":"n1","pid":42}"#.into())]),
    );
    let status: view::Status = fake.client().status().await.unwrap();
    assert_eq!((status.node.as_str(), status.pid), ("n1", 42));

    let fake = Fake::start("notjson", Answer::Frames(vec![Rep::Json("{oops".into())]));
    let err = fake.client().status().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the node service sent a view that is not JSON"
    );
    let fake = Fake::start(
        "badview",
        Answer::Frames(vec![Rep::Json(r#"{"pid":"x"}"#.into())]),
    );
    let err = fake.client().status().await.unwrap_err();
    assert!(matches!(err, ClientError::BadView(_)), "{err:?}");
}

#[tokio::test]
async fn no_socket_is_unreachable_and_names_it() {
    let dir = std::env::temp_dir().join(format!("keelson-client-none-{}", std::process::id()));
    let client = Client::for_data_dir(&dir);
    assert!(!client.accepts().await);
    assert!(!client.answers().await);
    let err = client.call(R::Status).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach the node service at {}: No such file or directory (os error 2)",
            dir.join("rcm.sock").display()
        )
    );
}
