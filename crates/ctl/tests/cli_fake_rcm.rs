//! The real `keelson` binary against a fake node service: a UnixListener on a temporary data
//! directory's rcm.sock that answers from canned replies and records what it received. Checks the
//! requests sent, stdout, stderr and exit codes. Not a test of keelson-rcm (the system tests are).

use keelson_proto::{
    read_frame_async, write_frame_async, ControlEnvelope, ControlReply, ControlReply as Rep,
    ControlRequest, ControlRequest as R, CONTROL_PROTOCOL_VERSION,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UnixListener;

/// Longest any keelson run may take in these tests.
const RUN_LIMIT: Duration = Duration::from_secs(30);

type Responder = Box<dyn FnMut(&ControlRequest) -> Vec<ControlReply> + Send>;

/// A temporary data directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("keelson-ctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fake node service: records every request, answers through the responder, and stops
/// listening (removing its socket) after answering `NodeStop`.
struct FakeRcm {
    received: Arc<Mutex<Vec<ControlRequest>>>,
}

impl FakeRcm {
    fn start(dir: &Path, responder: Responder) -> FakeRcm {
        let socket = dir.join("rcm.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let responder = Arc::new(Mutex::new(responder));
        let rec = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let Ok(Some(env)) = read_frame_async::<ControlEnvelope>(&mut stream).await else {
                    continue; // a probe that only connects
                };
                assert_eq!(env.version, CONTROL_PROTOCOL_VERSION);
                rec.lock().unwrap().push(env.request.clone());
                let replies = (responder.lock().unwrap())(&env.request);
                for reply in &replies {
                    write_frame_async(&mut stream, reply).await.unwrap();
                }
                if env.request == R::NodeStop {
                    let _ = std::fs::remove_file(&socket);
                    return; // drops the listener
                }
            }
        });
        FakeRcm { received }
    }

    fn received(&self) -> Vec<ControlRequest> {
        self.received.lock().unwrap().clone()
    }
}

/// What one keelson run produced.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn keelson(dir: &Path, args: &[&str]) -> Run {
    keelson_env(dir, args, &[]).await
}

async fn keelson_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_keelson"));
    cmd.arg("--data-dir").arg(dir).args(args);
    cmd.env_remove("KEELSON_DATA_DIR").env_remove("KEELSON_RCM");
    cmd.envs(env.iter().copied()).kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .expect("keelson did not finish in time")
        .expect("cannot run keelson");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn done(message: &str) -> Vec<ControlReply> {
    vec![Rep::Done {
        message: message.to_string(),
    }]
}

fn json(text: &str) -> Vec<ControlReply> {
    vec![Rep::Json(text.to_string())]
}

fn error(message: &str) -> Vec<ControlReply> {
    vec![Rep::Error {
        message: message.to_string(),
    }]
}

fn s(v: &str) -> String {
    v.to_string()
}

const STATUS: &str = r#"{"node":"n1","groups":[{"name":"FS","state":"Online","owner_node":"n1","resources":[{"name":"Disk","type":"dummy","state":"Online","host_pid":4242}]}],"hosts":[{"pid":4242,"separate":false,"resources":["Disk"]}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_as_table_and_as_json() {
    let dir = TempDir::new("status");
    let fake = FakeRcm::start(&dir.0, Box::new(|_| json(STATUS)));
    let run = keelson(&dir.0, &["status"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .starts_with("node n1\n\ngroup FS: Online (owner n1)\n"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("  Disk      dummy  Online  4242\n"),
        "{run:?}"
    );
    let run = keelson(&dir.0, &["status", "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let printed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        printed,
        serde_json::from_str::<serde_json::Value>(STATUS).unwrap()
    );
    assert!(
        run.stdout.contains("\n  \"groups\": ["),
        "pretty-printed: {run:?}"
    );
    assert_eq!(fake.received(), [R::Status, R::Status]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_create_and_set_send_params_and_properties() {
    let dir = TempDir::new("create");
    let fake = FakeRcm::start(&dir.0, Box::new(|_| done("resource 'Disk' created")));
    let run = keelson(
        &dir.0,
        &[
            "resource",
            "create",
            "Disk",
            "--type",
            "dummy",
            "--group",
            "FS",
            "--param",
            "path=/srv",
            "RestartAction=Restart",
        ],
    )
    .await;
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (Some(0), "resource 'Disk' created\n", "")
    );
    let run = keelson(
        &dir.0,
        &[
            "resource",
            "set",
            "Disk",
            "SeparateMonitor=true",
            "--param",
            "path=/x",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = keelson(&dir.0, &["resource", "depend", "Share", "--on", "Disk"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = keelson(&dir.0, &["group", "create", "FS", "FailoverThreshold=2"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        fake.received(),
        [
            R::ResourceCreate {
                name: s("Disk"),
                type_name: s("dummy"),
                group: s("FS"),
                params: vec![(s("path"), s("/srv"))],
                properties: vec![(s("RestartAction"), s("Restart"))],
            },
            R::ResourceSet {
                name: s("Disk"),
                properties: vec![(s("SeparateMonitor"), s("true"))],
                params: vec![(s("path"), s("/x"))],
                unset_params: vec![],
            },
            R::ResourceDepend {
                name: s("Share"),
                on: s("Disk")
            },
            R::GroupCreate {
                name: s("FS"),
                properties: vec![(s("FailoverThreshold"), s("2"))]
            },
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_syntax_is_one_line_and_sends_nothing() {
    let dir = TempDir::new("syntax");
    let fake = FakeRcm::start(&dir.0, Box::new(|_| done("should not happen")));
    let run = keelson(&dir.0, &["resource", "set", "Disk", "DeadlockTimeout"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr,
        "keelson: bad property argument 'DeadlockTimeout': expected Prop=Value, e.g. DeadlockTimeout=5000\n"
    );
    let run = keelson(
        &dir.0,
        &[
            "resource", "create", "D", "--type", "t", "--group", "g", "--param", "oops",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.starts_with("keelson: bad --param 'oops'") && run.stderr.lines().count() == 1,
        "{run:?}"
    );
    let run = keelson(&dir.0, &["resource", "frobnicate", "D"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.starts_with("keelson: "), "{run:?}");
    assert!(run.stdout.is_empty());
    assert_eq!(fake.received(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_reply_is_printed_and_exits_1() {
    let dir = TempDir::new("error");
    let fake = FakeRcm::start(
        &dir.0,
        Box::new(|_| error("bad value for DeadlockTimeout: 'abc' is not a number of milliseconds")),
    );
    let run = keelson(&dir.0, &["resource", "set", "Disk", "DeadlockTimeout=abc"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "keelson: bad value for DeadlockTimeout: 'abc' is not a number of milliseconds\n"
    );
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_socket_means_cannot_reach() {
    let dir = TempDir::new("nosocket");
    let run = keelson(&dir.0, &["group", "list"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let expected = format!(
        "keelson: cannot reach the node service at {}: No such file or directory (os error 2) (is it running? try 'keelson node start')\n",
        dir.0.join("rcm.sock").display()
    );
    assert_eq!(run.stderr, expected);
}

/// Answers online/offline with Done and each ResourceGet/GroupGet with the next of `states`
/// (repeating the last one).
fn state_sequence(states: &'static [&'static str]) -> Responder {
    let mut next = 0;
    Box::new(move |req| match req {
        R::ResourceGet { name } | R::GroupGet { name } => {
            let state = states[next.min(states.len() - 1)];
            next += 1;
            json(&format!(r#"{{"name":"{name}","state":"{state}"}}"#))
        }
        _ => done("coming online"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_wait_polls_until_online() {
    let dir = TempDir::new("wait");
    let fake = FakeRcm::start(
        &dir.0,
        state_sequence(&["OnlinePending", "OnlinePending", "Online"]),
    );
    let run = keelson(&dir.0, &["resource", "online", "Disk", "--wait"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .starts_with("coming online\nresource 'Disk' is Online (after "),
        "{run:?}"
    );
    let get = R::ResourceGet { name: s("Disk") };
    assert_eq!(
        fake.received(),
        [
            R::ResourceOnline { name: s("Disk") },
            get.clone(),
            get.clone(),
            get
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_wait_fails_when_the_resource_fails() {
    let dir = TempDir::new("waitfail");
    let _fake = FakeRcm::start(&dir.0, state_sequence(&["OnlinePending", "Failed"]));
    let run = keelson(&dir.0, &["resource", "online", "Disk", "--wait"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr,
        "keelson: resource 'Disk' failed while coming online (state Failed; see 'keelson events')\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_wait_times_out_with_the_current_state() {
    let dir = TempDir::new("waittimeout");
    let fake = FakeRcm::start(&dir.0, state_sequence(&["Pending"]));
    let run = keelson(
        &dir.0,
        &["group", "offline", "FS", "--wait", "--timeout", "100"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr,
        "keelson: group 'FS' did not become Offline within 100 ms (state now Pending)\n"
    );
    let polls = fake
        .received()
        .iter()
        .filter(|r| matches!(r, R::GroupGet { .. }))
        .count();
    assert!(
        (1..=10).contains(&polls),
        "polled every 20 ms for 100 ms: {polls}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_list_views() {
    let dir = TempDir::new("views");
    let fake = FakeRcm::start(
        &dir.0,
        Box::new(|req| match req {
            R::ResourceList => json(
                r#"[{"name":"Disk","type":"dummy","group":"FS","state":"Online","host_pid":7}]"#,
            ),
            R::GroupGet { .. } => json(
                r#"{"name":"FS","state":"Online","owner_node":"n1","properties":{},"resources":["Disk"]}"#,
            ),
            R::PluginList => json(
                r#"{"plugins":[{"path":"/p/libkeelson_plugin_dummy.so","name":"dummy","types":["dummy"]}]}"#,
            ),
            _ => error("unexpected"),
        }),
    );
    let run = keelson(&dir.0, &["resource", "list"]).await;
    assert_eq!(
        run.stdout, "NAME  TYPE   GROUP  STATE   HOST PID\nDisk  dummy  FS     Online  7\n",
        "{run:?}"
    );
    let run = keelson(&dir.0, &["group", "get", "FS", "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("\"owner_node\": \"n1\""), "{run:?}");
    let run = keelson(&dir.0, &["plugin", "list"]).await;
    assert_eq!(
        run.stdout, "PLUGIN  TYPES  PATH\ndummy   dummy  /p/libkeelson_plugin_dummy.so\n",
        "{run:?}"
    );
    assert_eq!(
        fake.received(),
        [
            R::ResourceList,
            R::GroupGet { name: s("FS") },
            R::PluginList
        ]
    );
}

const EVENT: &str = r#"{"id":1230,"time":"2024-05-01T10:00:00.123Z","level":"Error","source":"RCM","message":"Disk crashed","resource":"Disk"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_and_events_stream_lines() {
    let dir = TempDir::new("logs");
    let fake = FakeRcm::start(
        &dir.0,
        Box::new(|req| match req {
            R::Log { .. } => vec![
                Rep::Line(s("1.2::line one")),
                Rep::Line(s("1.2::line two")),
                Rep::End,
            ],
            R::Events { .. } => vec![Rep::Line(s(EVENT)), Rep::End],
            _ => error("unexpected"),
        }),
    );
    let run = keelson(&dir.0, &["log"]).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "1.2::line one\n1.2::line two\n")
    );
    let run = keelson(&dir.0, &["events", "-n", "5"]).await;
    assert_eq!(
        run.stdout, "2024-05-01T10:00:00.123Z Error 1230 Disk crashed\n",
        "{run:?}"
    );
    let run = keelson(&dir.0, &["events", "--json"]).await;
    assert_eq!(run.stdout, format!("{EVENT}\n"), "{run:?}");
    assert_eq!(
        fake.received(),
        [
            R::Log {
                lines: 50,
                follow: false
            },
            R::Events {
                last: 5,
                follow: false
            },
            R::Events {
                last: 50,
                follow: false
            },
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_short_is_an_error() {
    let dir = TempDir::new("cut");
    let _fake = FakeRcm::start(&dir.0, Box::new(|_| vec![Rep::Line(s("only line"))]));
    let run = keelson(&dir.0, &["log", "--follow"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stdout, "only line\n");
    assert_eq!(
        run.stderr,
        "keelson: the node service closed the stream (did it stop?)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_stop_waits_until_the_socket_is_gone() {
    let dir = TempDir::new("stop");
    let fake = FakeRcm::start(
        &dir.0,
        Box::new(|req| match req {
            R::Status => json(r#"{"node":"n1"}"#),
            _ => done("node service stopping"),
        }),
    );
    let run = keelson(&dir.0, &["node", "stop"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "node service stopping\nnode service stopped\n");
    assert_eq!(fake.received(), [R::Status, R::NodeStop]);
    assert!(!dir.0.join("rcm.sock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_start_refuses_when_a_node_already_answers() {
    let dir = TempDir::new("already");
    let fake = FakeRcm::start(&dir.0, Box::new(|_| json(STATUS)));
    let script = write_script(&dir.0, "fake-rcm", "echo started >&2; exit 0");
    let run = keelson_env(&dir.0, &["node", "start"], &[("KEELSON_RCM", &script)]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .starts_with("keelson: a node service already answers at "),
        "{run:?}"
    );
    assert_eq!(fake.received(), [R::Status]);
    assert!(!dir.0.join("rcm.out").exists(), "rcm was not started");
}

fn write_script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_start_reports_an_rcm_that_dies_with_its_output() {
    let dir = TempDir::new("startfail");
    let data = dir.0.join("data");
    let script = write_script(
        &dir.0,
        "fake-rcm",
        "echo \"args: $*\"; echo 'boom: no plugins' >&2; exit 3",
    );
    let run = keelson_env(
        &data,
        &["node", "start", "--plugin-dir", "/p1"],
        &[("KEELSON_RCM", &script)],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .starts_with("keelson: keelson-rcm exited (exit status: 3) before answering"),
        "{run:?}"
    );
    assert!(run.stderr.contains("  boom: no plugins\n"), "{run:?}");
    let out = std::fs::read_to_string(data.join("rcm.out")).unwrap();
    assert!(
        out.contains(&format!(
            "args: --data-dir {} --plugin-dir /p1",
            data.display()
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_start_in_the_foreground_passes_arguments_and_exit_status() {
    let dir = TempDir::new("foreground");
    let script = write_script(&dir.0, "fake-rcm", "echo \"args: $*\"; exit 7");
    let args = [
        "node",
        "start",
        "--foreground",
        "--plugin-dir",
        "/a",
        "--plugin-dir",
        "/b",
    ];
    let run = keelson_env(&dir.0, &args, &[("KEELSON_RCM", &script)]).await;
    assert_eq!(run.code, Some(7), "{run:?}");
    let expected = format!(
        "args: --data-dir {} --plugin-dir /a --plugin-dir /b\n",
        dir.0.display()
    );
    assert_eq!(run.stdout, expected);
}

/// Waits (bounded) until `path` exists.
async fn wait_for_file(path: &Path) {
    let deadline = tokio::time::Instant::now() + RUN_LIMIT;
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_start_detaches_rcm_and_returns_once_the_socket_answers() {
    let dir = TempDir::new("start");
    let data = dir.0.join("data");
    // The "rcm" records how it was started, says it is ready, and stays up; the test then plays
    // its socket.
    let body = r#"echo "args: $*"
echo "session: $(cut -d' ' -f6 /proc/$$/stat) pid: $$"
echo "stdin: $(readlink /proc/$$/fd/0)"
echo "to stderr" >&2
echo $$ > "$2/ready"
exec sleep 60"#;
    let script = write_script(&dir.0, "fake-rcm", body);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("rcm.out"), "earlier run\n").unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_keelson"));
    cmd.arg("--data-dir")
        .arg(&data)
        .args(["node", "start", "--plugin-dir", "/p"]);
    cmd.env("KEELSON_RCM", &script).kill_on_drop(true);
    let keelson = cmd.output();
    let (run, fake) = tokio::join!(keelson, async {
        wait_for_file(&data.join("ready")).await;
        FakeRcm::start(&data, Box::new(|_| json(STATUS)))
    });
    let run = run.unwrap();
    let pid: u32 = std::fs::read_to_string(data.join("ready"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = keelson_sys::process::kill(pid, keelson_sys::Signal::SIGKILL);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let expected = format!(
        "node service started (keelson-rcm pid {pid}, data directory {})\n",
        data.display()
    );
    assert_eq!(stdout, expected);
    assert!(!fake.received().is_empty() && fake.received().iter().all(|r| *r == R::Status));
    let out = std::fs::read_to_string(data.join("rcm.out")).unwrap();
    assert!(
        out.starts_with("earlier run\n"),
        "rcm.out is appended to: {out}"
    );
    assert!(
        out.contains(&format!(
            "args: --data-dir {} --plugin-dir /p\n",
            data.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("session: {pid} pid: {pid}\n")),
        "setsid: {out}"
    );
    assert!(
        out.contains("stdin: /dev/null\n") && out.contains("to stderr\n"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_start_says_already_running_when_another_rcm_answers_in_its_place() {
    // The started "rcm" stays up without answering; the socket is answered by a node service whose
    // pid is not the one just started (another `node start` won the data directory's lock).
    let dir = TempDir::new("lostrace");
    let data = dir.0.join("data");
    let script = write_script(&dir.0, "fake-rcm", "echo $$ > \"$2/ready\"\nexec sleep 60");
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_keelson"));
    cmd.arg("--data-dir").arg(&data).args(["node", "start"]);
    cmd.env("KEELSON_RCM", &script).kill_on_drop(true);
    let other = r#"{"node":"n1","pid":1,"groups":[],"hosts":[]}"#;
    let (run, _fake) = tokio::join!(cmd.output(), async {
        wait_for_file(&data.join("ready")).await;
        FakeRcm::start(&data, Box::new(move |_| json(other)))
    });
    let run = run.unwrap();
    let pid: u32 = std::fs::read_to_string(data.join("ready"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = keelson_sys::process::kill(pid, keelson_sys::Signal::SIGKILL);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        format!(
            "keelson: a node service is already running on {} (keelson-rcm pid 1); this one was not \
             started (stop the other first with 'keelson node stop')\n",
            data.display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_start_reports_rcms_lock_refusal_as_already_running() {
    let dir = TempDir::new("lockrefusal");
    let data = dir.0.join("data");
    let script = write_script(
        &dir.0,
        "fake-rcm",
        "echo \"keelson-rcm: another keelson-rcm is already running on $2\" >&2; exit 1",
    );
    let run = keelson_env(&data, &["node", "start"], &[("KEELSON_RCM", &script)]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.starts_with(&format!(
            "keelson: a node service is already running on {}; this one was not started",
            data.display()
        )),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_start_in_the_foreground_tells_rcm_to_echo_its_log() {
    let dir = TempDir::new("fgenv");
    let script = write_script(
        &dir.0,
        "fake-rcm",
        "echo \"foreground=$KEELSON_RCM_FOREGROUND\"",
    );
    let run = keelson_env(
        &dir.0,
        &["node", "start", "--foreground"],
        &[("KEELSON_RCM", &script)],
    )
    .await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "foreground=true\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_json_turns_each_line_into_an_object() {
    let dir = TempDir::new("logjson");
    let line = "000047b8.000047b9::2026/12/01-07:15:44.051 WARN [API] refused Status";
    let fake = FakeRcm::start(
        &dir.0,
        Box::new(move |_| vec![Rep::Line(s(line)), Rep::End]),
    );
    let run = keelson(&dir.0, &["log", "--json", "-n", "3"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim_end()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"time": "2026-12-01T07:15:44.051Z", "pid": 0x47b8, "tid": 0x47b9,
            "level": "WARN", "component": "API", "message": "refused Status", "line": line})
    );
    assert_eq!(
        fake.received(),
        [R::Log {
            lines: 3,
            follow: false
        }]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_argument_is_named_on_the_one_line() {
    let dir = TempDir::new("missing");
    let run = keelson(&dir.0, &["resource", "create", "Disk", "--group", "FS"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(
        run.stderr,
        "keelson: the following required arguments were not provided: --type <T>; try '--help'\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_the_view_as_sent_pretty_printed_and_text_reads_the_typed_view() {
    use keelson_proto::view::{Group, PropertyValue};
    let view = Group {
        name: s("FS"),
        owner_node: s("n1"),
        properties: [
            (s("FailoverThreshold"), PropertyValue::Text(s("nodes-1"))),
            (s("AutoFailbackType"), PropertyValue::Number(0)),
        ]
        .into_iter()
        .collect(),
        resources: vec![s("Disk")],
        state: s("Online"),
        ..Group::default()
    };
    // A field this keelson does not know is printed by --json and ignored by the table; the
    // fields a cluster adds (all defaulted) are left out, as a single node's older rcm sends it.
    let mut sent = serde_json::to_value(&view).unwrap();
    for cluster_field in [
        "failover_threshold",
        "failovers_in_period",
        "last_move",
        "left_failed",
        "owner_state",
        "owner_state_epoch",
        "placement_epoch",
        "preferred_owners",
        "releasing_from",
    ] {
        sent.as_object_mut().unwrap().remove(cluster_field);
    }
    let sent = serde_json::to_string(&sent)
        .unwrap()
        .replacen('{', r#"{"zz_added_later":true,"#, 1);
    let dir = TempDir::new("typedjson");
    let _fake = FakeRcm::start(&dir.0, Box::new(move |_| json(&sent)));
    let run = keelson(&dir.0, &["group", "get", "FS", "--json"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        concat!(
            "{\n",
            "  \"name\": \"FS\",\n",
            "  \"owner_node\": \"n1\",\n",
            "  \"properties\": {\n",
            "    \"AutoFailbackType\": 0,\n",
            "    \"FailoverThreshold\": \"nodes-1\"\n",
            "  },\n",
            "  \"resources\": [\n",
            "    \"Disk\"\n",
            "  ],\n",
            "  \"state\": \"Online\",\n",
            "  \"zz_added_later\": true\n",
            "}\n"
        )
    );
    let run = keelson(&dir.0, &["group", "get", "FS"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "name:       FS\nstate:      Online\nowner node: n1\nresources:  Disk\nproperties:\n  AutoFailbackType  = 0\n  FailoverThreshold = nodes-1\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_that_does_not_fit_is_one_clear_error() {
    let dir = TempDir::new("badview");
    let _fake = FakeRcm::start(&dir.0, Box::new(|_| json(r#"{"name":"FS","resources":7}"#)));
    let run = keelson(&dir.0, &["group", "get", "FS"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.starts_with(
            "keelson: the node service sent a view that this keelson cannot read: invalid type"
        ),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}
