//! A real keelson-rcm's control socket under a bounded fuzz: 2,000 connections, eight at a time,
//! each sending random bytes or a damaged valid request (bit flips, overwritten bytes, truncation,
//! inserted and deleted bytes, length prefixes that lie, huge claimed lengths), while a watcher asks
//! `status` every 5 ms (and each sender every 25 frames) and samples rcm's VmRSS. Every connection must be answered or closed
//! promptly, `status` must keep answering within its deadline, RSS must stay bounded, and nothing
//! may change: frames that still decode as a valid mutating request (or a never-ending follow) are
//! filtered out before sending. Not a test of the decoders alone (crates/proto/tests does that).

mod common;

use common::rcm::{request_at, Rcm};
use keelson_proto::{
    encode, read_frame, ControlEnvelope, ControlReply, ControlRequest as R,
    CONTROL_PROTOCOL_VERSION, MAX_FRAME_LEN,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections sent in all, and how many at once.
const CONNECTIONS: usize = 2_000;
const WORKERS: usize = 8;
/// Longest a `status` may take while the fuzz runs.
const STATUS_DEADLINE: Duration = Duration::from_millis(1_500);
/// Longest one fuzz connection may stay unanswered after its bytes are sent.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(5);
/// How far rcm's VmRSS may grow over its size before the fuzz.
const RSS_GROWTH_BOUND_KB: u64 = 64 * 1024;
/// The whole run's limit (a hang fails instead of stalling the suite).
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn s(v: &str) -> String {
    v.to_string()
}

/// xorshift64*: a deterministic stream of fuzz choices (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid requests to damage: read-only and mutating ones (the filter drops any that survive intact).
fn corpus() -> Vec<Vec<u8>> {
    let pairs = vec![(s("DeadlockTimeout"), s("200"))];
    let requests = vec![
        R::Status,
        R::PluginList,
        R::GroupList,
        R::ResourceList,
        R::GroupGet { name: s("g") },
        R::ResourceGet { name: s("r") },
        R::Log {
            lines: 5,
            follow: false,
        },
        R::Events {
            last: 5,
            follow: false,
        },
        R::GroupCreate {
            name: s("intruder"),
            properties: pairs.clone(),
        },
        R::ResourceSet {
            name: s("r"),
            properties: pairs,
            params: vec![(s("k"), s("v"))],
            unset_params: vec![],
        },
        R::ResourceOffline { name: s("r") },
        R::GroupDelete { name: s("g") },
        R::NodeStop,
    ];
    requests
        .into_iter()
        .map(|request| {
            encode(&ControlEnvelope {
                version: CONTROL_PROTOCOL_VERSION,
                request,
            })
            .unwrap()
        })
        .collect()
}

/// One damaged frame: random bytes, or a corpus frame with one to three mutations.
fn fuzz_frame(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(5) == 0 {
        let len = rng.below(64);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut frame = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(3) {
        mutate(rng, &mut frame);
    }
    frame
}

fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    let len = frame.len();
    match rng.below(7) {
        0 if len > 0 => {
            let i = rng.below(len);
            frame[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            frame[i] = rng.next() as u8;
        }
        2 => frame.truncate(rng.below(len + 1)),
        3 => frame.insert(rng.below(len + 1), rng.next() as u8),
        4 if len > 0 => {
            frame.remove(rng.below(len));
        }
        5 if len >= 4 => {
            // A length prefix that lies: a little off, the limit, past it, or 4 GiB.
            let claimed = match rng.below(4) {
                0 => (len as u32 - 4)
                    .wrapping_add(rng.below(9) as u32)
                    .wrapping_sub(4),
                1 => MAX_FRAME_LEN as u32,
                2 => MAX_FRAME_LEN as u32 + 1 + rng.below(1000) as u32,
                _ => u32::MAX,
            };
            frame[..4].copy_from_slice(&claimed.to_le_bytes());
        }
        6 if len >= 9 => {
            // A postcard varint claiming a huge string or sequence length.
            let i = 4 + rng.below(len - 8);
            frame[i..i + 5].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
        _ => frame.push(rng.next() as u8),
    }
}

/// Whether rcm would act on `frame` as a change, or stream forever: it still decodes (with rcm's
/// own reader) as a current-version request that mutates or follows.
fn harmful(frame: &[u8]) -> bool {
    match read_frame::<ControlEnvelope>(&mut std::io::Cursor::new(frame)) {
        Ok(Some(env)) => {
            let follows = matches!(
                env.request,
                R::Log { follow: true, .. } | R::Events { follow: true, .. }
            );
            env.version == CONTROL_PROTOCOL_VERSION && (env.request.is_mutating() || follows)
        }
        _ => false,
    }
}

/// What rcm did with one fuzz connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Outcome {
    /// Answered a view (a frame that decoded as a read-only request).
    View,
    /// Refused the frame as undecodable (truncated, malformed, too large).
    BadFrame,
    /// Refused it otherwise (wrong version, unknown name…).
    Refused,
    /// Closed without a reply (nothing, or an empty connection).
    Closed,
}

/// Sends one frame on a fresh connection, ends the write side and reads until rcm closes; returns
/// what rcm answered and how long it took after the last byte. A refused write (rcm closed early)
/// is fine.
fn send_one(socket: &Path, frame: &[u8]) -> (Outcome, Duration) {
    let mut stream = UnixStream::connect(socket).expect("rcm accepts connections");
    stream.set_read_timeout(Some(CONNECTION_DEADLINE)).unwrap();
    let _ = stream.write_all(frame);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let sent = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "rcm neither answered nor closed a fuzz connection within {CONNECTION_DEADLINE:?} \
                 ({e}); frame {frame:02x?}"
            ),
        }
    }
    let outcome = match read_frame::<ControlReply>(&mut std::io::Cursor::new(&answer)) {
        Ok(Some(ControlReply::Json(_))) => Outcome::View,
        Ok(Some(ControlReply::Error { message })) if message.starts_with("bad request frame") => {
            Outcome::BadFrame
        }
        Ok(Some(ControlReply::Line(_) | ControlReply::End)) => Outcome::View,
        Ok(Some(_)) => Outcome::Refused,
        Ok(None) => Outcome::Closed,
        Err(e) => panic!("rcm answered a fuzz frame with a bad reply: {e}"),
    };
    (outcome, sent.elapsed())
}

/// One `status` on the way, within its deadline.
fn status_within_deadline(socket: &Path) -> Duration {
    let asked = Instant::now();
    let reply = request_at(socket, R::Status).expect("status answers during the fuzz");
    let took = asked.elapsed();
    assert!(
        matches!(reply.first(), Some(ControlReply::Json(_))),
        "status: {reply:?}"
    );
    assert!(
        took <= STATUS_DEADLINE,
        "status took {took:?} during the fuzz (deadline {STATUS_DEADLINE:?})"
    );
    took
}

/// VmRSS of `pid` in kB, from /proc/PID/status.
fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("rcm is alive");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// What the watcher saw while the fuzz ran.
#[derive(Debug, Default)]
struct Watch {
    statuses: usize,
    slowest: Duration,
    peak_rss_kb: u64,
}

/// Asks `status` every 5 ms (and each sender every 25 frames) and samples RSS until `done`.
fn watch(socket: PathBuf, pid: u32, done: Arc<AtomicBool>) -> Watch {
    let mut seen = Watch::default();
    while !done.load(Ordering::SeqCst) {
        let took = status_within_deadline(&socket);
        seen.statuses += 1;
        seen.slowest = seen.slowest.max(took);
        seen.peak_rss_kb = seen.peak_rss_kb.max(vm_rss_kb(pid));
        std::thread::sleep(Duration::from_millis(5));
    }
    seen
}

#[test]
fn random_and_mutated_frames_leave_the_control_socket_answering_and_rss_bounded() {
    let rcm = Rcm::start("fuzz-control");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("r"),
        type_name: s("dummy"),
        group: s("g"),
        params: vec![],
        properties: vec![],
    });
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_group("g", "Online", Duration::from_secs(15));
    let before = rcm.resource("r");
    let baseline_kb = vm_rss_kb(rcm.pid());
    let socket = rcm.dir.join("rcm.sock");

    let seed = 0x6b65_656c_736f_6e09_u64;
    println!("fuzz seed {seed:#x}");
    let corpus = corpus();
    let mut rng = Rng(seed);
    let mut frames = Vec::with_capacity(CONNECTIONS);
    let mut filtered = 0;
    while frames.len() < CONNECTIONS {
        let frame = fuzz_frame(&mut rng, &corpus);
        if harmful(&frame) {
            filtered += 1;
        } else {
            frames.push(frame);
        }
    }

    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (socket, pid, done) = (socket.clone(), rcm.pid(), done.clone());
        std::thread::spawn(move || watch(socket, pid, done))
    };
    let started = Instant::now();
    let chunks: Vec<Vec<Vec<u8>>> = frames
        .chunks(CONNECTIONS.div_ceil(WORKERS))
        .map(|c| c.to_vec())
        .collect();
    let workers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                let mut outcomes = BTreeMap::new();
                for (i, frame) in chunk.iter().enumerate() {
                    assert!(
                        started.elapsed() < RUN_LIMIT,
                        "the fuzz ran past {RUN_LIMIT:?}"
                    );
                    let (outcome, took) = send_one(&socket, frame);
                    *outcomes.entry(outcome).or_insert(0usize) += 1;
                    slowest = slowest.max(took);
                    if i % 25 == 24 {
                        status_within_deadline(&socket);
                    }
                }
                (slowest, outcomes)
            })
        })
        .collect();
    let mut slowest_connection = Duration::ZERO;
    let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    for worker in workers {
        let (slowest, seen) = worker.join().expect("a fuzz worker failed");
        slowest_connection = slowest_connection.max(slowest);
        for (outcome, n) in seen {
            *outcomes.entry(outcome).or_default() += n;
        }
    }
    done.store(true, Ordering::SeqCst);
    let seen = watcher.join().expect("the status watcher failed");
    let elapsed = started.elapsed();
    println!(
        "{CONNECTIONS} fuzz connections ({filtered} harmful frames filtered) in {elapsed:?}; \
         slowest close {slowest_connection:?}; outcomes {outcomes:?}; {} statuses, slowest {:?}; \
         VmRSS {baseline_kb} kB before, peak {} kB",
        seen.statuses, seen.slowest, seen.peak_rss_kb
    );
    // The fuzz reached both the frame decoder's refusals and requests that decoded.
    assert!(
        outcomes.get(&Outcome::BadFrame) > Some(&100),
        "{outcomes:?}"
    );
    assert!(outcomes.get(&Outcome::View) > Some(&10), "{outcomes:?}");

    assert!(seen.statuses >= 1, "the watcher asked at least once");
    let after_kb = vm_rss_kb(rcm.pid());
    let peak_kb = seen.peak_rss_kb.max(after_kb);
    assert!(
        peak_kb <= baseline_kb + RSS_GROWTH_BOUND_KB,
        "rcm's VmRSS grew from {baseline_kb} kB to {peak_kb} kB"
    );
    // Still the same node, unchanged, and answering properly.
    assert!(common::wait_until(Duration::from_secs(5), || rcm
        .ok(R::Status)
        .is_object()));
    let status = rcm.ok(R::Status);
    assert_eq!(status["pid"], rcm.pid(), "the same rcm answers");
    let groups: Vec<&str> = status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(groups, ["g"], "no request got through to change anything");
    let after = rcm.resource("r");
    assert_eq!(after["state"], "Online", "{after}");
    assert_eq!(after["properties"], before["properties"]);
    assert_eq!(after["parameters"], before["parameters"]);
    assert!(
        !rcm.cluster_log().contains("panicked"),
        "{}",
        rcm.cluster_log()
    );
}
