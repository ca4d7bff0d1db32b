//! cluster.log as a tracing layer, end to end: INFO and above by default (no DBG line unless
//! asked), RUST_LOG-style filters through --log-filter or RUST_LOG, a bad filter refused before the
//! data directory is touched, and the optional journald layer (--journald, or JOURNAL_STREAM set by
//! systemd) checked against a stand-in journal socket. Not the line format itself (rcm's unit tests
//! compare it byte for byte).

mod common;

use common::rcm::Rcm;
use keelson_proto::ControlRequest;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where tracing-journald sends its datagrams (fixed by systemd).
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The `LEVEL [COMPONENT] message` part of each cluster-log line.
fn bodies(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            l.split_once(' ')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn only_info_and_above_by_default() {
    let rcm = Rcm::start("trace-default");
    rcm.ok(ControlRequest::Status);
    let log = rcm.cluster_log();
    let bodies = bodies(&log);
    assert!(
        bodies
            .iter()
            .any(|b| b.starts_with("INFO [RCM] node service ready on ")),
        "{log}"
    );
    assert!(!bodies.iter().any(|b| b.starts_with("DBG ")), "{log}");
}

#[test]
fn a_filter_turns_on_debug_lines_for_one_module() {
    let dir = Rcm::new_dir("trace-filter");
    let rcm = Rcm::start_in_with_args(dir, &["--log-filter", "keelson_rcm::api=debug"]);
    rcm.ok(ControlRequest::Status);
    let ready = common::wait_until(Duration::from_secs(10), || {
        bodies(&rcm.cluster_log())
            .iter()
            .any(|b| b.starts_with("DBG [API] request from uid "))
    });
    let log = rcm.cluster_log();
    assert!(ready, "no DBG line from the API:\n{log}");
    // Everything else stays at INFO and above, as without a filter.
    assert!(log.contains(" INFO [RCM] node service ready on "), "{log}");
    assert!(
        bodies(&log)
            .iter()
            .filter(|b| b.starts_with("DBG "))
            .all(|b| b.starts_with("DBG [API] ")),
        "{log}"
    );
}

/// Runs keelson-rcm on a fresh directory expecting it to refuse to start; returns its stderr and
/// the directory.
fn refused_start(tag: &str, args: &[&str], env: &[(&str, &str)]) -> (String, std::path::PathBuf) {
    let dir = Rcm::new_dir(tag);
    let mut cmd = Command::new(common::artefact("keelson-rcm"));
    cmd.arg("--data-dir")
        .arg(&dir)
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("keelson-rcm runs");
    assert!(
        !out.status.success(),
        "keelson-rcm started with {args:?} {env:?}"
    );
    (String::from_utf8_lossy(&out.stderr).into_owned(), dir)
}

#[test]
fn a_bad_filter_is_refused_and_nothing_is_written() {
    for (args, env) in [
        (vec!["--log-filter", "keelson_rcm=loud"], vec![]),
        (vec![], vec![("RUST_LOG", "keelson_rcm=loud")]),
    ] {
        let (stderr, dir) = refused_start("trace-bad", &args, &env);
        assert!(
            stderr.contains("invalid log filter 'keelson_rcm=loud'"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "wrote into {dir:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The fields of one journald native-protocol datagram: `KEY=value\n`, or `KEY\n`, a 64-bit
/// little-endian length, the value and `\n`.
fn journal_fields(mut datagram: &[u8]) -> Entry {
    let mut fields = Vec::new();
    while let Some(end) = datagram.iter().position(|&b| b == b'\n') {
        let line = &datagram[..end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            fields.push((
                String::from_utf8_lossy(key).into(),
                String::from_utf8_lossy(value).into(),
            ));
            datagram = &datagram[end + 1..];
            continue;
        }
        let rest = &datagram[end + 1..];
        let Some(len) = rest
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
        else {
            break;
        };
        let Some(value) = rest.get(8..8 + len) else {
            break;
        };
        fields.push((
            String::from_utf8_lossy(line).into(),
            String::from_utf8_lossy(value).into(),
        ));
        datagram = rest.get(8 + len + 1..).unwrap_or_default();
    }
    fields
}

/// One journal entry: its fields in the order sent.
type Entry = Vec<(String, String)>;

/// A stand-in journal: a thread drains the socket (a journal that stops reading would stall its
/// senders, as the real one would) and keeps every datagram's fields.
struct Journal {
    entries: Arc<Mutex<Vec<Entry>>>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Journal {
    fn listen(socket: UnixDatagram) -> Journal {
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (entries, stop) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicBool::new(false)),
        );
        let (kept, stopped) = (entries.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stopped.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok(n) = socket.recv(&mut buf) {
                    kept.lock().unwrap().push(journal_fields(&buf[..n]));
                }
            }
        });
        Journal {
            entries,
            stop,
            reader: Some(reader),
        }
    }

    /// The first entry whose MESSAGE starts with `message`, waiting up to 10 s for it.
    fn entry(&self, message: &str) -> Option<Entry> {
        let find = || {
            self.entries
                .lock()
                .unwrap()
                .iter()
                .find(|f| {
                    f.iter()
                        .any(|(k, v)| k == "MESSAGE" && v.starts_with(message))
                })
                .cloned()
        };
        common::wait_until(Duration::from_secs(10), || find().is_some());
        find()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
    }
}

#[test]
fn journald_is_used_when_asked_or_under_systemd() {
    let stale = UnixDatagram::unbound()
        .and_then(|probe| probe.connect(JOURNAL_SOCKET))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    if stale {
        // Left by an earlier run of this test that died before removing its stand-in.
        std::fs::remove_file(JOURNAL_SOCKET).unwrap();
    }
    if Path::new(JOURNAL_SOCKET).exists() {
        // A real journal listens here: the stand-in would steal its traffic.
        assert!(
            !common::in_ci(),
            "CI machine runs a journal at {JOURNAL_SOCKET}"
        );
        eprintln!("skipped: a systemd journal owns {JOURNAL_SOCKET}");
        return;
    }
    // No journal: --journald refuses to start, JOURNAL_STREAM alone starts with a warning.
    let (stderr, dir) = refused_start("trace-nojournal", &["--journald"], &[]);
    assert!(
        stderr.contains("--journald: cannot reach the systemd journal"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "wrote into {dir:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let rcm = Rcm::start_with(
        Rcm::new_dir("trace-stream"),
        &common::target_dir(),
        &[],
        &[("JOURNAL_STREAM", Path::new("8:12345"))],
    );
    assert!(
        rcm.cluster_log()
            .contains(" WARN [RCM] not logging to the systemd journal: "),
        "{}",
        rcm.cluster_log()
    );
    drop(rcm);

    // A stand-in journal: each event arrives as one datagram of journald fields.
    let made_dir = !Path::new(JOURNAL_SOCKET).parent().unwrap().exists();
    if let Err(e) = std::fs::create_dir_all(Path::new(JOURNAL_SOCKET).parent().unwrap()) {
        assert!(!common::in_ci(), "cannot create the journal directory: {e}");
        eprintln!("skipped the journal stand-in: {e} (needs root)");
        return;
    }
    let journal = Journal::listen(UnixDatagram::bind(JOURNAL_SOCKET).expect("bind the journal"));
    let rcm = Rcm::start_in_with_args(Rcm::new_dir("trace-journal"), &["--journald"]);
    rcm.ok(ControlRequest::Status);
    let ready = journal.entry("node service ready on ");
    let seen = format!("{:#?}", journal.entries.lock().unwrap());
    let log = rcm.cluster_log();
    drop(rcm);
    drop(journal);
    std::fs::remove_file(JOURNAL_SOCKET).unwrap();
    if made_dir {
        let _ = std::fs::remove_dir_all("/run/systemd");
    }
    let fields = ready.unwrap_or_else(|| panic!("no ready line in the journal: {seen}"));
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        field("SYSLOG_IDENTIFIER"),
        Some("keelson-rcm"),
        "{fields:?}"
    );
    assert_eq!(
        field("PRIORITY"),
        Some("5"),
        "INFO is journald's notice: {fields:?}"
    );
    assert_eq!(field("TARGET"), Some("keelson_rcm"), "{fields:?}");
    // The cluster log still has every line: journald is a second layer, not a replacement.
    assert!(log.contains(" INFO [RCM] node service ready on "), "{log}");
}
