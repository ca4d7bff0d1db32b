//! Shared pieces of the benchmarks: the raw process-to-process Unix-socket ping-pong baseline (the
//! bench binary re-executes itself as the echo child), percentile summaries, and where the release
//! binaries are. Not any keelson measurement.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Instant;

/// Calls discarded before measuring.
pub const WARMUP: usize = 2_000;
/// The echo child exits after this many messages at most (a bound, not a target).
const ECHO_LIMIT: usize = 10_000_000;
/// Bytes per ping: the size of an encoded LOOKSALIVE request frame.
const PING_LEN: usize = 8;

/// Summary of samples in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50: f64,
    pub p99: f64,
    pub mean: f64,
}

pub fn summarize(mut us: Vec<f64>) -> Summary {
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| us[((p * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1];
    Summary {
        p50: at(0.50),
        p99: at(0.99),
        mean: us.iter().sum::<f64>() / us.len() as f64,
    }
}

/// The echo side of the raw baseline: a separate process echoing fixed-size messages on fd 3.
pub fn echo_child() {
    // SAFETY: fd 3 is the socket raw_ping_pong placed there (child::prepare); nothing else owns it.
    let fd = unsafe { keelson_sys::process::adopt_fd(3) }.expect("echo child needs fd 3");
    let mut sock = UnixStream::from(fd);
    let mut buf = [0u8; PING_LEN];
    for _ in 0..ECHO_LIMIT {
        if sock.read_exact(&mut buf).is_err() || sock.write_all(&buf).is_err() {
            return;
        }
    }
}

/// Blocking ping-pong with a child process over a socketpair.
pub fn raw_ping_pong(n: usize) -> Summary {
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.env("KEELSON_BENCH_ECHO", "1");
    keelson_sys::child::prepare(&mut cmd, vec![(theirs.into(), 3)]);
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let msg = [7u8; PING_LEN];
    let mut buf = [0u8; PING_LEN];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + WARMUP {
        let start = Instant::now();
        ours.write_all(&msg).unwrap();
        ours.read_exact(&mut buf).unwrap();
        if i >= WARMUP {
            samples.push(start.elapsed().as_nanos() as f64 / 1000.0);
        }
    }
    drop(ours);
    child.wait().unwrap();
    summarize(samples)
}

/// Whether this process was started as the echo child of [`raw_ping_pong`].
pub fn is_echo_child() -> bool {
    std::env::var_os("KEELSON_BENCH_ECHO").is_some()
}

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// target/<profile> of the running bench binary (target/<profile>/deps/<bench>-…), or
/// `KEELSON_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KEELSON_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}
