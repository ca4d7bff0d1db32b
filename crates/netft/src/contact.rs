//! The contact lease: how recently a peer must have been heard for this node to count it towards
//! its quorum, and how recently this node must have heard a peer to tell it "I hear you". Shorter
//! than a node's Down detection, it lets a node that lost the majority give up its groups before
//! the majority can even take it Down, so the majority need not wait after detection (see
//! rcm/src/cluster/takeover.rs for the argument). Plain data and one rule; not the detector's
//! route states, and not quorum itself (crates/quorum, rcm).

/// The two windows, in milliseconds (CLOCK_MONOTONIC on this node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactLease {
    /// A peer last heard longer ago than this is out of contact (`Action::PeerContact`).
    pub window_ms: u64,
    /// This node's heartbeats to a peer say it hears the peer only while the peer was heard
    /// within this long. At most `window_ms` less one Delay, so that a one-way cut (the peer no
    /// longer hears this node) shows here within `window_ms`: the peer's next heartbeat, at most
    /// one Delay after its window ran out, says so.
    pub hears_ms: u64,
}

impl ContactLease {
    /// Whether a peer last heard at `heard_ms` is in contact at `now_ms`.
    pub fn in_contact(&self, heard_ms: Option<u64>, now_ms: u64) -> bool {
        heard_ms.is_some_and(|at| now_ms.saturating_sub(at) <= self.window_ms)
    }

    /// Whether this node may tell a peer last heard at `heard_ms` that it hears it.
    pub fn hears(&self, heard_ms: Option<u64>, now_ms: u64) -> bool {
        heard_ms.is_some_and(|at| now_ms.saturating_sub(at) <= self.hears_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_inclusive_and_a_peer_never_heard_is_out() {
        let lease = ContactLease {
            window_ms: 300,
            hears_ms: 200,
        };
        assert!(lease.in_contact(Some(1000), 1300));
        assert!(!lease.in_contact(Some(1000), 1301));
        assert!(lease.hears(Some(1000), 1200));
        assert!(!lease.hears(Some(1000), 1201));
        assert!(!lease.in_contact(None, 0) && !lease.hears(None, 0));
    }
}
