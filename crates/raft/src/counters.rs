//! What a raft transport server refused or dropped, counted, and the gate that keeps the log lines
//! about it to one per peer address per minute (so a flood costs a counter increment each, not a
//! line each). Not the decision what to drop (server.rs).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use keelson_netft::ratelimit::RateLimiter;

/// The server's counters, updated as connections come and go.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    accepted: AtomicU64,
    authenticated: AtomicU64,
    wrong_key: AtomicU64,
    wrong_cluster: AtomicU64,
    wrong_version: AtomicU64,
    handshake_failed: AtomicU64,
    oversized_frames: AtomicU64,
    malformed_frames: AtomicU64,
    bad_tags: AtomicU64,
    over_connection_limit: AtomicU64,
    rpcs_served: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportCounters {
    /// TCP connections accepted.
    pub accepted: u64,
    /// Connections whose peer proved the cluster key.
    pub authenticated: u64,
    /// Peers refused because they do not hold the cluster key.
    pub wrong_key: u64,
    /// Peers refused because they named another cluster.
    pub wrong_cluster: u64,
    /// Peers refused because they speak another protocol version.
    pub wrong_version: u64,
    /// Handshakes that failed otherwise: garbage, a timeout, a peer gone mid-way.
    pub handshake_failed: u64,
    /// Frames whose length was over the limit (the connection is closed: the stream cannot be
    /// resynchronised past a length that was not read).
    pub oversized_frames: u64,
    /// Frames that did not decode (before authentication: the connection is closed; after: the
    /// frame is dropped and answered with `Reply::Malformed`).
    pub malformed_frames: u64,
    /// Authenticated connections' frames whose HMAC did not verify (forged, replayed, reordered;
    /// the connection is closed).
    pub bad_tags: u64,
    /// Connections closed at once because the server already served its maximum.
    pub over_connection_limit: u64,
    /// RPCs answered.
    pub rpcs_served: u64,
}

/// Which counter an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Accepted,
    Authenticated,
    WrongKey,
    WrongCluster,
    WrongVersion,
    HandshakeFailed,
    Oversized,
    Malformed,
    BadTag,
    OverLimit,
    Served,
}

impl Counters {
    fn slot(&self, c: Count) -> &AtomicU64 {
        match c {
            Count::Accepted => &self.accepted,
            Count::Authenticated => &self.authenticated,
            Count::WrongKey => &self.wrong_key,
            Count::WrongCluster => &self.wrong_cluster,
            Count::WrongVersion => &self.wrong_version,
            Count::HandshakeFailed => &self.handshake_failed,
            Count::Oversized => &self.oversized_frames,
            Count::Malformed => &self.malformed_frames,
            Count::BadTag => &self.bad_tags,
            Count::OverLimit => &self.over_connection_limit,
            Count::Served => &self.rpcs_served,
        }
    }

    pub(crate) fn add(&self, c: Count) {
        self.slot(c).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> TransportCounters {
        let get = |c| self.slot(c).load(Ordering::Relaxed);
        TransportCounters {
            accepted: get(Count::Accepted),
            authenticated: get(Count::Authenticated),
            wrong_key: get(Count::WrongKey),
            wrong_cluster: get(Count::WrongCluster),
            wrong_version: get(Count::WrongVersion),
            handshake_failed: get(Count::HandshakeFailed),
            oversized_frames: get(Count::Oversized),
            malformed_frames: get(Count::Malformed),
            bad_tags: get(Count::BadTag),
            over_connection_limit: get(Count::OverLimit),
            rpcs_served: get(Count::Served),
        }
    }
}

/// Lets through at most one log line per peer address per minute.
#[derive(Debug)]
pub(crate) struct LogGate {
    start: Instant,
    limiter: Mutex<RateLimiter>,
}

impl LogGate {
    pub(crate) fn new() -> LogGate {
        LogGate {
            start: Instant::now(),
            limiter: Mutex::new(RateLimiter::default()),
        }
    }

    /// Whether a line about the peer at `addr` (`ADDR:PORT`; one that does not parse counts as
    /// the unspecified address) may be written now.
    pub(crate) fn allow_peer(&self, addr: &str) -> bool {
        let ip = addr
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        self.allow(ip)
    }

    /// Whether a line about `peer` may be written now.
    pub(crate) fn allow(&self, peer: IpAddr) -> bool {
        let now_ms = self.start.elapsed().as_millis() as u64;
        // The limiter is a map and a comparison: a panic cannot leave it inconsistent.
        let mut limiter = self
            .limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        limiter.allow(peer, now_ms)
    }
}
