//! Once-per-peer-per-minute gating for log lines about dropped datagrams, so a flood of forged or
//! replayed packets costs a counter increment each, not a log line each. Bounded in memory. Not the
//! counting itself (the detector counts every drop).

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The interval between two log lines about the same peer.
pub const INTERVAL_MS: u64 = 60_000;
/// At most this many peers are remembered; beyond that the oldest entries are forgotten.
const MAX_PEERS: usize = 1024;

/// When each peer was last logged about.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    last: BTreeMap<IpAddr, u64>,
}

impl RateLimiter {
    /// Whether a line about `peer` may be written at `now_ms` (and, if so, records it).
    pub fn allow(&mut self, peer: IpAddr, now_ms: u64) -> bool {
        if let Some(&at) = self.last.get(&peer) {
            if now_ms >= at && now_ms - at < INTERVAL_MS {
                return false;
            }
        }
        if self.last.len() >= MAX_PEERS {
            self.last
                .retain(|_, at| now_ms.saturating_sub(*at) < INTERVAL_MS);
            if self.last.len() >= MAX_PEERS {
                return false;
            }
        }
        self.last.insert(peer, now_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_peer_and_minute() {
        let mut r = RateLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(r.allow(a, 1000));
        assert!(!r.allow(a, 1000 + INTERVAL_MS - 1));
        assert!(r.allow(b, 2000));
        assert!(r.allow(a, 1000 + INTERVAL_MS));
    }

    #[test]
    fn a_flood_from_many_addresses_is_bounded() {
        let mut r = RateLimiter::default();
        for i in 0..5000u32 {
            r.allow(IpAddr::from(i.to_be_bytes()), 0);
        }
        assert!(r.last.len() <= MAX_PEERS);
    }
}
