//! The heartbeat wire format: one fixed-size, versioned datagram carrying the sender's node id,
//! incarnation, per-route sequence number and both route ends, authenticated with HMAC-SHA256 under
//! the cluster key and verified in constant time. Not the policy for what a valid heartbeat means
//! (detector.rs decides replay, incarnation and route matching).
//!
//! Layout (big-endian), `HEARTBEAT_LEN` = 92 bytes:
//! `magic "KNFT" | version u8 = 1 | kind u8 = 1 | down u16 | node u32 | incarnation u64 |
//!  sequence u64 | from [u8;16] | to [u8;16] | hmac-sha256 [u8;32]` where the addresses are IPv6 or
//! IPv4-mapped IPv6 and the tag covers every byte before it. `down` has bit i (0..15) set when the
//! sender's interface i (in its topology order; the first 15) is down: the receiver need not wait
//! for missed heartbeats to stop using routes to it; and bit 15 set when the sender hears the
//! receiver (its node state for it is Up), so each node knows which peers hear it, not only which
//! it hears: a one-way cut shows on both sides. The field was a reserved zero before.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, Ipv6Addr};
use thiserror::Error;

/// The four bytes every keelson NetFT datagram starts with.
pub const MAGIC: [u8; 4] = *b"KNFT";
/// The only wire version this code speaks.
pub const VERSION: u8 = 1;
/// The datagram kind of a heartbeat.
pub const KIND_HEARTBEAT: u8 = 1;
/// Size of the HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// Size of everything the tag covers.
pub const BODY_LEN: usize = 4 + 1 + 1 + 2 + 4 + 8 + 8 + 16 + 16;
/// Size of one heartbeat datagram; any other size is refused.
pub const HEARTBEAT_LEN: usize = BODY_LEN + TAG_LEN;
/// Bit 15 of the `down` field: the sender hears the receiver.
const HEARS_YOU: u16 = 1 << 15;
/// How many of a sender's interfaces its `down` bits can report.
pub const REPORTED_INTERFACES: usize = 15;
/// The shortest cluster key accepted.
pub const MIN_KEY_LEN: usize = 16;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Why a datagram is not a heartbeat this node accepts at the wire level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("datagram of {0} bytes is not a {HEARTBEAT_LEN}-byte heartbeat")]
    WrongLength(usize),
    #[error("datagram does not start with the NetFT magic")]
    BadMagic,
    #[error("heartbeat wire version {0} is not supported (this node speaks {VERSION})")]
    UnsupportedVersion(u8),
    #[error("datagram kind {0} is not a heartbeat")]
    UnknownKind(u8),
    #[error("HMAC does not verify under the cluster key")]
    Unauthenticated,
}

/// A cluster key that is too short to be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("cluster key of {0} bytes is too short (at least {MIN_KEY_LEN} bytes)")]
pub struct KeyTooShort(pub usize);

/// The secret every node of a cluster shares; heartbeats are authenticated under it.
#[derive(Clone)]
pub struct ClusterKey(Vec<u8>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterKey({} bytes)", self.0.len())
    }
}

impl ClusterKey {
    /// A key from its raw bytes (the contents of the cluster key file).
    pub fn new(bytes: &[u8]) -> Result<Self, KeyTooShort> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyTooShort(bytes.len()));
        }
        Ok(ClusterKey(bytes.to_vec()))
    }

    pub(crate) fn mac(&self) -> HmacSha256 {
        // HMAC accepts a key of any length, so this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

/// One heartbeat's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub node: u32,
    pub incarnation: u64,
    pub sequence: u64,
    /// The sender's interface address (the route's far end, seen from the receiver).
    pub from: IpAddr,
    /// The receiver's interface address the sender meant.
    pub to: IpAddr,
    /// The sender's interfaces that are down (bit i: its interface i in topology order, i < 15).
    pub down: u16,
    /// The sender hears the receiver (its node state for the receiver is Up).
    pub hears_you: bool,
}

impl Heartbeat {
    /// The datagram for this heartbeat, tagged under `key`.
    pub fn encode(&self, key: &ClusterKey) -> [u8; HEARTBEAT_LEN] {
        let mut out = [0u8; HEARTBEAT_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = KIND_HEARTBEAT;
        let flags = (self.down & !HEARS_YOU) | if self.hears_you { HEARS_YOU } else { 0 };
        out[6..8].copy_from_slice(&flags.to_be_bytes());
        out[8..12].copy_from_slice(&self.node.to_be_bytes());
        out[12..20].copy_from_slice(&self.incarnation.to_be_bytes());
        out[20..28].copy_from_slice(&self.sequence.to_be_bytes());
        out[28..44].copy_from_slice(&as_v6(self.from).octets());
        out[44..60].copy_from_slice(&as_v6(self.to).octets());
        let mut mac = key.mac();
        mac.update(&out[..BODY_LEN]);
        out[BODY_LEN..].copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Parses and authenticates one datagram. Nothing past the header checks is read before the
    /// tag verifies (constant-time comparison).
    pub fn decode(bytes: &[u8], key: &ClusterKey) -> Result<Heartbeat, PacketError> {
        if bytes.len() != HEARTBEAT_LEN {
            return Err(PacketError::WrongLength(bytes.len()));
        }
        if bytes[0..4] != MAGIC {
            return Err(PacketError::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(PacketError::UnsupportedVersion(bytes[4]));
        }
        let mut mac = key.mac();
        mac.update(&bytes[..BODY_LEN]);
        mac.verify_slice(&bytes[BODY_LEN..])
            .map_err(|_| PacketError::Unauthenticated)?;
        if bytes[5] != KIND_HEARTBEAT {
            return Err(PacketError::UnknownKind(bytes[5]));
        }
        let flags = u16::from_be_bytes([bytes[6], bytes[7]]);
        Ok(Heartbeat {
            down: flags & !HEARS_YOU,
            hears_you: flags & HEARS_YOU != 0,
            node: u32::from_be_bytes(array(&bytes[8..12])),
            incarnation: u64::from_be_bytes(array(&bytes[12..20])),
            sequence: u64::from_be_bytes(array(&bytes[20..28])),
            from: from_v6(Ipv6Addr::from(array::<16>(&bytes[28..44]))),
            to: from_v6(Ipv6Addr::from(array::<16>(&bytes[44..60]))),
        })
    }
}

fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    out
}

fn as_v6(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn from_v6(addr: Ipv6Addr) -> IpAddr {
    match addr.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> ClusterKey {
        ClusterKey::new(b"0123456789abcdef-cluster-key").unwrap()
    }

    fn sample() -> Heartbeat {
        Heartbeat {
            node: 2,
            incarnation: 7,
            sequence: 42,
            from: "192.0.2.2".parse().unwrap(),
            to: "192.0.2.1".parse().unwrap(),
            down: 0,
            hears_you: false,
        }
    }

    #[test]
    fn round_trips_v4_and_v6() {
        let mut hb = sample();
        assert_eq!(Heartbeat::decode(&hb.encode(&key()), &key()), Ok(hb));
        hb.from = "fe80::1".parse().unwrap();
        hb.to = "2001:db8::2".parse().unwrap();
        assert_eq!(Heartbeat::decode(&hb.encode(&key()), &key()), Ok(hb));
        hb.down = 0b10;
        hb.hears_you = true;
        assert_eq!(Heartbeat::decode(&hb.encode(&key()), &key()), Ok(hb));
    }

    #[test]
    fn a_different_key_is_unauthenticated() {
        let other = ClusterKey::new(b"another-cluster-key!").unwrap();
        assert_eq!(
            Heartbeat::decode(&sample().encode(&other), &key()),
            Err(PacketError::Unauthenticated)
        );
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let good = sample().encode(&key());
        for byte in 0..HEARTBEAT_LEN {
            for bit in 0..8 {
                let mut bad = good;
                bad[byte] ^= 1 << bit;
                assert!(Heartbeat::decode(&bad, &key()).is_err(), "{byte}:{bit}");
            }
        }
    }

    #[test]
    fn wrong_sizes_magic_and_version_are_named() {
        let good = sample().encode(&key());
        assert_eq!(
            Heartbeat::decode(&good[..91], &key()),
            Err(PacketError::WrongLength(91))
        );
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(
            Heartbeat::decode(&long, &key()),
            Err(PacketError::WrongLength(93))
        );
        let mut v2 = good;
        v2[4] = 2;
        assert_eq!(
            Heartbeat::decode(&v2, &key()),
            Err(PacketError::UnsupportedVersion(2))
        );
        let mut magic = good;
        magic[0] = b'X';
        assert_eq!(
            Heartbeat::decode(&magic, &key()),
            Err(PacketError::BadMagic)
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(ClusterKey::new(b"short").unwrap_err(), KeyTooShort(5));
        assert!(
            !format!("{:?}", key()).contains("0123"),
            "Debug hides the key"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_are_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(Heartbeat::decode(&bytes, &key()).is_err());
        }

        #[test]
        fn a_valid_header_with_arbitrary_rest_is_unauthenticated(rest in proptest::collection::vec(any::<u8>(), HEARTBEAT_LEN - 5..=HEARTBEAT_LEN - 5)) {
            let mut bytes = vec![b'K', b'N', b'F', b'T', VERSION];
            bytes.extend(rest);
            prop_assert_eq!(Heartbeat::decode(&bytes, &key()), Err(PacketError::Unauthenticated));
        }

        #[test]
        fn any_heartbeat_round_trips(node: u32, incarnation: u64, sequence: u64, from: [u8; 4], to: [u8; 16], down in 0u16..(1 << 15), hears_you: bool) {
            let hb = Heartbeat { node, incarnation, sequence, from: IpAddr::from(from), to: from_v6(Ipv6Addr::from(to)), down, hears_you };
            prop_assert_eq!(Heartbeat::decode(&hb.encode(&key()), &key()), Ok(hb));
        }
    }
}
