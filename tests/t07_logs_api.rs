//! The node service's logs and control socket under hostile use, with a real keelson-rcm: log files
//! created 0640 and rotated (cluster.log, events.jsonl, audit.log), tails that reach into rotated
//! files, survive a chunk boundary inside a UTF-8 character and stay bounded for `-n 4294967295`;
//! the audit keeping parameter names but not values, and refusing what it cannot record (a full
//! tmpfs) without leaving a torn line; raw frames that try to forge log lines or smuggle invisible
//! names; a plugin error with a newline; the connection cap, the request-byte budget, rate-limited
//! logging of bad frames; and a member of the socket's group by supplementary group only.

mod common;

use common::rcm::{request_at, Rcm};
use keelson_proto::{
    encode, read_frame, ControlEnvelope, ControlReply, ControlRequest as R, MAX_FRAME_LEN,
};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(15);

fn s(v: &str) -> String {
    v.to_string()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (s(k), s(v))
}

/// Whether the test may act as root (mounts, other users); in CI it must.
fn have_root(what: &str) -> bool {
    if keelson_sys::process::geteuid() == 0 {
        return true;
    }
    assert!(!common::in_ci(), "CI runs as root: {what} must run there");
    println!("skipping: needs root to {what}");
    false
}

fn group(rcm: &Rcm, name: &str) {
    rcm.ok(R::GroupCreate {
        name: s(name),
        properties: vec![],
    });
}

fn group_names(rcm: &Rcm) -> Vec<String> {
    rcm.ok(R::GroupList)
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect()
}

/// Sends raw bytes as one connection's request and reads every reply frame (until End, an answer
/// or the close).
fn raw_exchange(socket: &Path, bytes: &[u8]) -> Vec<ControlReply> {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(bytes).unwrap();
    let mut replies = Vec::new();
    while let Ok(Some(reply)) = read_frame::<ControlReply>(&mut stream) {
        let last = !matches!(reply, ControlReply::Line(_));
        replies.push(reply);
        if last {
            break;
        }
    }
    replies
}

fn envelope(version: u32, request: keelson_proto::ControlRequest) -> Vec<u8> {
    encode(&ControlEnvelope { version, request }).unwrap()
}

fn lines_of(replies: &[ControlReply]) -> Vec<String> {
    replies
        .iter()
        .filter_map(|r| match r {
            ControlReply::Line(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

/// The contents of `name`, `name.1` … oldest first.
fn all_rotations(dir: &Path, name: &str) -> String {
    let mut text = String::new();
    for k in (1..=10).rev() {
        if let Ok(t) = std::fs::read_to_string(dir.join(format!("{name}.{k}"))) {
            text.push_str(&t);
        }
    }
    text.push_str(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    text
}

/// The invisible and bidirectional characters names must not smuggle in.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o777
}

#[test]
fn log_files_are_0640_rotate_alike_and_tails_reach_into_rotated_files() {
    let dir = Rcm::new_dir("logmodes");
    let rcm = Rcm::start_in_with_args(dir, &["--log-max-bytes", "1000", "--log-keep", "3"]);
    group(&rcm, "g");
    const N: usize = 12;
    for i in 0..N {
        rcm.ok(R::ResourceCreate {
            name: format!("r{i}"),
            type_name: s("dummy"),
            group: s("g"),
            params: vec![],
            properties: vec![pair("RestartAction", "NoRestart")],
        });
    }
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_group("g", "Online", LIMIT);
    for i in 0..N {
        rcm.ok(R::ResourceFail {
            name: format!("r{i}"),
        });
    }
    let failures = |text: &str| text.lines().filter(|l| l.contains("\"id\":1069")).count();
    assert!(common::wait_until(LIMIT, || {
        failures(&all_rotations(&rcm.dir, "events.jsonl")) == N
    }));
    for name in ["cluster.log", "events.jsonl", "audit.log"] {
        for file in [s(name), format!("{name}.1"), format!("{name}.2")] {
            let path = rcm.dir.join(&file);
            assert_eq!(mode(&path), 0o640, "{file} is {:o}", mode(&path));
        }
        assert!(
            !rcm.dir.join(format!("{name}.4")).exists(),
            "{name}: --log-keep 3"
        );
        assert!(std::fs::metadata(rcm.dir.join(name)).unwrap().len() <= 1000);
    }
    // `events` reaches back into the rotated files, oldest first, every line once (retried while
    // the last events may still be arriving).
    let mut same = false;
    for _ in 0..20 {
        let streamed = lines_of(&rcm.request(R::Events {
            last: 10_000,
            follow: false,
        }));
        let on_disk: Vec<String> = all_rotations(&rcm.dir, "events.jsonl")
            .lines()
            .map(String::from)
            .collect();
        if streamed == on_disk && failures(&streamed.join("\n")) == N {
            same = true;
            break;
        }
    }
    assert!(same, "events streamed as on disk, across rotations");
    let audit_lines = all_rotations(&rcm.dir, "audit.log");
    assert!(audit_lines.lines().count() > 10);
    assert!(audit_lines
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
}

#[test]
fn the_audit_keeps_parameter_names_and_redacts_their_values() {
    let rcm = Rcm::start("redact");
    group(&rcm, "g");
    // hang_load takes any parameters (dummy and c-example declare theirs, and refuse these).
    rcm.ok(R::ResourceCreate {
        name: s("db"),
        type_name: s("hang_load"),
        group: s("g"),
        params: vec![pair("password", "hunter2"), pair("path", "/srv/db-data")],
        properties: vec![pair("RestartDelay", "20")],
    });
    rcm.ok(R::ResourceSet {
        name: s("db"),
        properties: vec![],
        params: vec![pair("api_token", "tok-abc123")],
        unset_params: vec![s("path")],
    });
    let audit = std::fs::read_to_string(rcm.dir.join("audit.log")).unwrap();
    for secret in ["hunter2", "/srv/db-data", "tok-abc123"] {
        assert!(!audit.contains(secret), "{secret} in the audit:\n{audit}");
    }
    let created = audit
        .lines()
        .find(|l| l.contains("ResourceCreate") && l.contains("done: "))
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(
        created.contains("params=[password=<redacted>, path=<redacted>]")
            && created.contains("properties=[RestartDelay=20]"),
        "{created}"
    );
    // Audited before it reached the core, then with its result.
    assert!(
        audit
            .lines()
            .any(|l| l.contains("ResourceSet") && l.contains("\"result\":\"pending\"")),
        "{audit}"
    );
    assert!(audit
        .lines()
        .any(|l| l.contains("params=[api_token=<redacted>] unset_params=[path]")));
}

#[test]
fn a_tail_whose_chunk_boundary_splits_a_character_still_streams_every_line() {
    let dir = Rcm::new_dir("utf8tail");
    let wide = "é".repeat(1000); // 2000 bytes
    let mut seed = String::new();
    for i in 0..100 {
        seed.push_str(&format!("{i:04} {wide}\n"));
    }
    std::fs::write(dir.join("cluster.log"), &seed).unwrap();
    let rcm = Rcm::start_in(dir);
    // rcm is quiet once its plugin probes have all reported (their lines come after start-up).
    assert!(
        common::wait_until(std::time::Duration::from_secs(20), || rcm.plugins()
            ["complete"]
            == true),
        "plugin probes never completed"
    );
    // Pad the end so that 64 KiB before it falls inside a two-byte character of the seed.
    let path = rcm.dir.join("cluster.log");
    let current = std::fs::read(&path).unwrap();
    let pad = (1..5000usize)
        .find(|&p| {
            let end = current.len() + p + 1;
            let cut = end - 64 * 1024;
            cut < seed.len() && (current[cut] & 0xC0) == 0x80
        })
        .expect("some padding splits a character");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(format!("{}\n", "z".repeat(pad)).as_bytes())
        .unwrap();
    drop(file);

    let lines = lines_of(&rcm.request(R::Log {
        lines: 60,
        follow: false,
    }));
    assert_eq!(lines.len(), 60, "{lines:?}");
    assert_eq!(lines.last().unwrap(), &"z".repeat(pad));
    let wide_lines = lines.iter().filter(|l| l.ends_with(&wide)).count();
    assert!(wide_lines > 20, "{wide_lines} whole wide lines");
    // Through the CLI too: lines printed, exit 0.
    let out = std::process::Command::new(common::artefact("keelson"))
        .arg("--data-dir")
        .arg(&rcm.dir)
        .args(["log", "-n", "40"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 40);
}

#[test]
fn a_huge_log_request_is_capped_bounded_and_status_keeps_answering() {
    let dir = Rcm::new_dir("hugelog");
    // 3 x 20 MB of old log lines in rotated files, as a busy node would have.
    let line = format!(
        "000004d2.000004d2::2026/01/01-00:00:00.000 INFO [RCM] {}\n",
        "x".repeat(40)
    );
    let block = line.repeat(20 * 1024 * 1024 / line.len());
    for k in 1..=3 {
        std::fs::write(dir.join(format!("cluster.log.{k}")), &block).unwrap();
    }
    let rcm = Rcm::start_in(dir);
    let pid = rcm.pid();
    let before = keelson_sys::process::rss_bytes(pid).unwrap();
    let socket = rcm.dir.join("rcm.sock");
    let reader = std::thread::spawn(move || {
        request_at(
            &socket,
            R::Log {
                lines: u32::MAX,
                follow: false,
            },
        )
    });
    let (mut peak, mut slowest) = (before, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reader.is_finished() {
        assert!(Instant::now() < deadline, "the log request never ended");
        let asked = Instant::now();
        rcm.ok(R::Status);
        slowest = slowest.max(asked.elapsed());
        peak = peak.max(keelson_sys::process::rss_bytes(pid).unwrap());
    }
    let replies = reader.join().unwrap().unwrap();
    let lines = lines_of(&replies);
    assert_eq!(replies.last(), Some(&ControlReply::End));
    let note = lines.last().unwrap();
    assert!(
        note.contains("only the last 100000 lines shown"),
        "the cap is said: {note}"
    );
    assert_eq!(lines.len(), 100_001);
    assert!(lines[..100_000].iter().all(|l| l.starts_with("000")));
    let grown = peak.saturating_sub(before);
    println!(
        "rss before {} MB, peak {} MB; slowest status {slowest:?}",
        before >> 20,
        peak >> 20
    );
    assert!(grown < 64 << 20, "RSS grew by {} MB", grown >> 20);
    assert!(
        slowest < Duration::from_millis(500),
        "status stalled {slowest:?}"
    );
}

/// Reads one reply frame from a non-blocking stream if it has arrived: `Some(None)` when closed.
fn poll_reply(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Option<Option<ControlReply>> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) => return Some(None),
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => return Some(None),
    }
    if buf.len() >= 4 {
        let len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
        if buf.len() >= 4 + len {
            return Some(keelson_proto::decode(&buf[4..4 + len]).ok());
        }
    }
    None
}

#[test]
fn connections_over_the_cap_are_told_so_and_closed() {
    let rcm = Rcm::start("conncap");
    let socket = rcm.dir.join("rcm.sock");
    // Its own fds once every plugin's probe host is done (each holds a few while it runs).
    assert!(common::wait_until(LIMIT, || rcm.plugins()["complete"] == true));
    let baseline = std::fs::read_dir(format!("/proc/{}/fd", rcm.pid()))
        .unwrap()
        .count();
    let mut idle: Vec<(UnixStream, Vec<u8>, bool)> = (0..200)
        .map(|_| {
            let s = UnixStream::connect(&socket).unwrap();
            s.set_nonblocking(true).unwrap();
            (s, Vec::new(), false)
        })
        .collect();
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while refused < 72 && Instant::now() < deadline {
        for (stream, buf, done) in idle.iter_mut().filter(|c| !c.2) {
            if let Some(reply) = poll_reply(stream, buf) {
                *done = true;
                match reply {
                    Some(ControlReply::Error { message }) => {
                        assert!(message.starts_with("too many connections"), "{message}");
                        assert!(!message.contains('\n'));
                        refused += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(refused, 72, "200 idle connections, 128 served at once");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", rcm.pid()))
        .unwrap()
        .count();
    assert!(
        fds < 128 + 64 && fds < baseline + 128 + 32,
        "rcm holds {fds} fds ({baseline} before the connections)"
    );
    drop(idle);
    assert!(
        common::wait_until(LIMIT, || request_at(&socket, R::Status)
            .map(|r| matches!(r.first(), Some(ControlReply::Json(_))))
            .unwrap_or(false)),
        "status answers again once the idle connections are gone"
    );
}

#[test]
fn stalled_big_frames_keep_memory_bounded_and_status_answers() {
    let rcm = Rcm::start("stalled");
    let socket = rcm.dir.join("rcm.sock");
    let pid = rcm.pid();
    let before = keelson_sys::process::rss_bytes(pid).unwrap();
    // Each connection claims a full frame and sends all of it but the last byte.
    let mut frame = (MAX_FRAME_LEN as u32).to_le_bytes().to_vec();
    frame.extend(std::iter::repeat_n(7u8, MAX_FRAME_LEN - 1));
    let mut conns: Vec<(UnixStream, usize)> = (0..300)
        .map(|_| {
            let s = UnixStream::connect(&socket).unwrap();
            s.set_nonblocking(true).unwrap();
            (s, 0)
        })
        .collect();
    let mut peak = before;
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let mut pending = 0;
        for (stream, sent) in conns.iter_mut().filter(|c| c.1 < frame.len()) {
            let end = (*sent + 256 * 1024).min(frame.len());
            match stream.write(&frame[*sent..end]) {
                Ok(n) => *sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => *sent = frame.len(), // refused and closed by rcm
            }
            pending += usize::from(*sent < frame.len());
        }
        peak = peak.max(keelson_sys::process::rss_bytes(pid).unwrap());
        if pending == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // While the admitted ones hang, status answers and memory stays bounded.
    let asked = Instant::now();
    let status = request_at(&socket, R::Status).unwrap();
    assert!(
        matches!(status.first(), Some(ControlReply::Json(_))),
        "{status:?}"
    );
    let answered_in = asked.elapsed();
    peak = peak.max(keelson_sys::process::rss_bytes(pid).unwrap());
    let grown = peak.saturating_sub(before);
    println!(
        "rss before {} MB, peak {} MB with 300 stalled 1 MiB frames; status in {answered_in:?}",
        before >> 20,
        peak >> 20
    );
    assert!(grown < 64 << 20, "RSS grew by {} MB", grown >> 20);
    drop(conns);
}

#[test]
fn malformed_frames_and_wrong_versions_are_logged_once_per_uid_per_window() {
    let rcm = Rcm::start("noise");
    let socket = rcm.dir.join("rcm.sock");
    for _ in 0..20 {
        let replies = raw_exchange(&socket, &[2, 0, 0, 0, 200, 1]);
        match replies.first() {
            Some(ControlReply::Error { message }) => {
                assert!(message.starts_with("bad request frame"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    for _ in 0..5 {
        let replies = raw_exchange(&socket, &envelope(999, R::Status));
        assert!(
            matches!(replies.first(), Some(ControlReply::Error { message }) if message.contains("control protocol 999")),
            "{replies:?}"
        );
    }
    group(&rcm, "after-the-noise");
    let log = rcm.cluster_log();
    let noise: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[API]") && l.contains("uid 0"))
        .collect();
    assert_eq!(noise.len(), 1, "one line per uid per 10 s:\n{log}");
    assert!(
        noise[0].contains("bad control frame from uid 0"),
        "{noise:?}"
    );
}

#[test]
fn raw_frames_cannot_forge_log_lines_or_smuggle_invisible_names() {
    let rcm = Rcm::start("forge");
    let socket = rcm.dir.join("rcm.sock");
    group(&rcm, "g");
    rcm.ok(R::ResourceCreate {
        name: s("c"),
        type_name: s("chaos"),
        group: s("g"),
        params: vec![],
        properties: vec![],
    });
    let forged = "\n00000001.00000001::2026/01/01-00:00:00.000 ERR [RCM] forged";
    let bad_requests = vec![
        (
            R::ResourceSet {
                name: s("c"),
                properties: vec![],
                params: vec![(format!("entry{forged}"), s("online"))],
                unset_params: vec![],
            },
            "parameter name 'entry\\n00000001",
        ),
        (
            R::ResourceSet {
                name: s("c"),
                properties: vec![],
                params: vec![],
                unset_params: vec![s("two words")],
            },
            "parameter name 'two words'",
        ),
        (
            R::ResourceCreate {
                name: s("d"),
                type_name: s("dummy"),
                group: s("g"),
                params: vec![pair("a=b", "c")],
                properties: vec![],
            },
            "parameter name 'a=b'",
        ),
        (
            R::GroupCreate {
                name: s("web\u{200B}"),
                properties: vec![],
            },
            "group name 'web\\u{200b}'",
        ),
        (
            R::GroupCreate {
                name: s("g\u{202E}"),
                properties: vec![],
            },
            "group name 'g\\u{202e}'",
        ),
        (
            R::ResourceCreate {
                name: s("line\u{2028}sep"),
                type_name: s("dummy"),
                group: s("g"),
                params: vec![],
                properties: vec![],
            },
            "resource name 'line\\u{2028}sep'",
        ),
    ];
    for (request, expect) in bad_requests {
        let shown = format!("{request:?}");
        let replies = request_at(&socket, request).unwrap();
        let message = match replies.as_slice() {
            [ControlReply::Error { message }] => message.clone(),
            other => panic!("{shown} was not refused: {other:?}"),
        };
        assert!(message.contains(expect), "{shown}: {message}");
        assert!(
            !message.contains('\n') && !message.chars().any(invisible),
            "one clear line: {message:?}"
        );
    }
    assert_eq!(group_names(&rcm), ["g"]);
    assert_eq!(rcm.resource("c")["parameters"], serde_json::json!({}));
    assert!(rcm.ok(R::ResourceList).as_array().unwrap().len() == 1);
    // Nothing forged a line; the refusals were audited, escaped, one JSON line each.
    let log = rcm.cluster_log();
    assert!(
        !log.lines().any(|l| l.starts_with("00000001.00000001::")),
        "{log}"
    );
    let audit = std::fs::read_to_string(rcm.dir.join("audit.log")).unwrap();
    assert!(audit
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    assert!(audit.contains("refused: parameter name"), "{audit}");
}

#[test]
fn a_plugin_error_with_a_newline_is_logged_escaped_on_one_line() {
    let rcm = Rcm::start("plugin-newline");
    group(&rcm, "g");
    // chaos quotes an unknown entry point back in its error message, newline and all: since
    // validation before commit, in the refusal of the create (logged too), not in a failed online.
    let refusal = rcm.refused(R::ResourceCreate {
        name: s("c"),
        type_name: s("chaos"),
        group: s("g"),
        params: vec![
            pair("entry", "x\nERR [RCM] forged-by-plugin \u{1b}[2J"),
            pair("fault", "error"),
        ],
        properties: vec![pair("RestartAction", "NoRestart")],
    });
    assert!(refusal.contains("parameter entry="), "{refusal}");
    assert!(
        common::wait_until(LIMIT, || rcm.cluster_log().contains("forged-by-plugin")),
        "{}",
        rcm.cluster_log()
    );
    let log = rcm.cluster_log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("forged-by-plugin"))
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.contains("\\nERR [RCM] forged-by-plugin \\u{1b}[2J"),
            "{line}"
        );
        assert!(line.starts_with(|c: char| c.is_ascii_hexdigit()), "{line}");
    }
    assert!(!log.contains('\u{1b}'));
    assert!(!log.lines().any(|l| l.starts_with("ERR")), "{log}");
    for event in rcm.events() {
        let message = event["message"].as_str().unwrap();
        assert!(!message.contains('\n') && !message.contains('\u{1b}'));
    }
}

#[test]
fn a_member_of_the_socket_group_by_supplementary_group_is_allowed() {
    if !have_root("act as another user") {
        return;
    }
    let rcm = Rcm::start("suppgroup");
    let socket = rcm.dir.join("rcm.sock");
    let socket_gid = std::fs::metadata(&socket).unwrap().gid();
    std::fs::set_permissions(
        &rcm.dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let as_nobody = |groups: Vec<u32>, name: &str| {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(common::artefact("keelson"));
        cmd.arg("--data-dir")
            .arg(&rcm.dir)
            .args(["group", "create", name])
            .env_remove("KEELSON_DATA_DIR");
        // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid) between fork and exec;
        // `groups` is allocated before the fork and only read in the child.
        unsafe {
            cmd.pre_exec(move || {
                let list: Vec<libc::gid_t> = groups.clone();
                if libc::setgroups(list.len(), list.as_ptr()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        cmd.output().unwrap()
    };
    let out = as_nobody(vec![65534, socket_gid], "friends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a supplementary member is allowed: {stderr}"
    );
    assert_eq!(group_names(&rcm), ["friends"]);
    let audit = std::fs::read_to_string(rcm.dir.join("audit.log")).unwrap();
    assert!(audit.lines().any(|l| l.contains("\"uid\":65534")
        && l.contains("\"allowed\":true")
        && l.contains("friends")));

    // Without the group (and with the socket opened to everyone) it is still refused.
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let out = as_nobody(vec![65534], "strangers");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("permission denied: uid 65534"), "{stderr}");
    assert_eq!(group_names(&rcm), ["friends"]);
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted (and removed) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Tmpfs {
        let dir = Rcm::new_dir(tag);
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs on {}", dir.display());
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the file system holding `dir` to the last byte; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    for size in [64 * 1024, 4096, 1] {
        let block = vec![0u8; size];
        while file.write_all(&block).is_ok() {}
    }
    path
}

/// Every line of a log file is whole: `check` holds for it and the file ends with a newline.
fn assert_whole_lines(path: &Path, check: impl Fn(&str) -> bool) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in a torn line: {:?}",
        path.display(),
        &text[text.len().saturating_sub(200)..]
    );
    for line in text.lines() {
        assert!(check(line), "{}: torn line {line:?}", path.display());
    }
}

#[test]
fn a_full_disk_refuses_what_cannot_be_audited_and_leaves_no_torn_line() {
    if !have_root("mount a tmpfs") {
        return;
    }
    let tmpfs = Tmpfs::mount("fulldisk", "6m");
    let rcm = Rcm::start_in(tmpfs.0.clone());
    group(&rcm, "before");
    let filler = fill(&rcm.dir);
    let (mut acked, mut refused) = (Vec::new(), None);
    for i in 0..200 {
        let name = format!("full-{i}");
        match rcm
            .request(R::GroupCreate {
                name: name.clone(),
                properties: vec![],
            })
            .into_iter()
            .next()
        {
            Some(ControlReply::Done { .. }) => acked.push(name),
            Some(ControlReply::Error { message }) if message.contains("audit") => {
                refused = Some((name, message));
                break;
            }
            Some(ControlReply::Error { .. }) => {}
            other => panic!(
                "{other:?}\nrcm.out:\n{}\ncluster.log:\n{}",
                rcm.output(),
                rcm.cluster_log()
            ),
        }
    }
    let (name, message) = refused.expect("a full disk refuses a request it cannot audit");
    assert_eq!(
        message,
        "cannot write the audit log: no space left on device; nothing was changed"
    );
    let groups = group_names(&rcm);
    assert!(!groups.contains(&name), "{name} was refused but exists");
    for name in &acked {
        assert!(
            groups.contains(name),
            "{name} was acknowledged but is missing"
        );
    }
    let audit = std::fs::read_to_string(rcm.dir.join("audit.log")).unwrap();
    for name in &acked {
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!("name='{name}'")) && l.contains("\"pending\"")),
            "{name} acknowledged without an audit record"
        );
    }
    assert_whole_lines(&rcm.dir.join("audit.log"), |l| {
        serde_json::from_str::<Value>(l).is_ok()
    });
    assert_whole_lines(&rcm.dir.join("events.jsonl"), |l| {
        serde_json::from_str::<Value>(l).is_ok()
    });
    assert_whole_lines(&rcm.dir.join("cluster.log"), |l| {
        l.len() > 20 && &l[8..9] == "." && &l[17..19] == "::"
    });
    // Room again: changes are accepted again without a restart.
    std::fs::remove_file(filler).unwrap();
    group(&rcm, "after");
    assert!(group_names(&rcm).contains(&s("after")));
    drop(rcm);
}

#[test]
fn a_log_read_error_is_the_clients_error_not_silence() {
    let rcm = Rcm::start("readerror");
    // A rotated "file" that cannot be read (a directory): the tail must say so, not stop short.
    std::fs::create_dir(rcm.dir.join("cluster.log.1")).unwrap();
    std::fs::create_dir(rcm.dir.join("events.jsonl.1")).unwrap();
    for request in [
        R::Log {
            lines: 10_000,
            follow: false,
        },
        R::Events {
            last: 10_000,
            follow: false,
        },
    ] {
        let shown = format!("{request:?}");
        let replies = rcm.request(request);
        match replies.last() {
            Some(ControlReply::Error { message }) => {
                assert!(
                    message.starts_with("cannot read ") && message.contains(".1: "),
                    "{shown}: {message}"
                );
                assert!(message.to_lowercase().contains("directory"), "{message}");
            }
            other => panic!("{shown}: the read error was hidden: {other:?}"),
        }
    }
    let out = std::process::Command::new(common::artefact("keelson"))
        .arg("--data-dir")
        .arg(&rcm.dir)
        .args(["log", "-n", "10000"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status says the read failed");
    assert!(stderr.contains("cannot read cluster.log"), "{stderr}");
}
