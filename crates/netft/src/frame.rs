//! The virtual adapter's wire format: one IP packet from `keelson0`, encapsulated in one UDP
//! datagram on the NetFT port next to the heartbeats, with the sender's node id, incarnation and
//! per-peer sequence number, authenticated with HMAC-SHA256 under the cluster key and verified in
//! constant time before anything in it is trusted. Not the policy for what a valid frame means
//! (tunnel.rs decides replay, sender and inner addresses).
//!
//! Layout (big-endian), `OVERHEAD` = 60 bytes around the packet:
//! `magic "KNFT" | version u8 = 1 | kind u8 = 2 | reserved u16 = 0 | node u32 | incarnation u64 |
//!  sequence u64 | packet [1..=MAX_PACKET bytes] | hmac-sha256 [u8;32]` where the tag covers every
//! byte before it. The first six bytes are the heartbeat's, with a different kind, so one socket
//! carries both and `is_frame` tells them apart.

use crate::packet::{ClusterKey, MAGIC, TAG_LEN, VERSION};
use hmac::Mac;
use thiserror::Error;

/// The datagram kind of an encapsulated packet (a heartbeat is `packet::KIND_HEARTBEAT`, 1).
pub const KIND_FRAME: u8 = 2;
/// Bytes before the packet.
pub const HEADER_LEN: usize = 4 + 1 + 1 + 2 + 4 + 8 + 8;
/// Bytes a frame adds to the packet it carries.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The largest packet a frame carries (a jumbo-frame MTU); `keelson0`'s MTU never exceeds it.
pub const MAX_PACKET: usize = 9000;
/// The shortest and longest valid frame.
pub const MIN_LEN: usize = OVERHEAD + 1;
pub const MAX_LEN: usize = OVERHEAD + MAX_PACKET;

/// Why a datagram is not a frame this node accepts at the wire level, or a packet cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("datagram of {0} bytes is not a frame ({MIN_LEN}..={MAX_LEN} bytes)")]
    WrongLength(usize),
    #[error("datagram does not start with the NetFT magic")]
    BadMagic,
    #[error("frame wire version {0} is not supported (this node speaks {VERSION})")]
    UnsupportedVersion(u8),
    #[error("datagram kind {0} is not a frame")]
    NotAFrame(u8),
    #[error("HMAC does not verify under the cluster key")]
    Unauthenticated,
    #[error("reserved field is {0:#06x}, not zero")]
    Reserved(u16),
    #[error("a packet of {0} bytes cannot be carried (1..={MAX_PACKET} bytes)")]
    PacketSize(usize),
}

/// Who sent a frame and where it stands in the sender's stream to this peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub node: u32,
    pub incarnation: u64,
    /// Per (sender incarnation, receiving peer), starting at 1.
    pub sequence: u64,
}

/// A decoded, authenticated frame borrowing its packet from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    pub packet: &'a [u8],
}

/// Whether a datagram on the NetFT socket claims to be a frame (magic and kind; nothing verified).
pub fn is_frame(datagram: &[u8]) -> bool {
    datagram.len() > 5 && datagram[0..4] == MAGIC && datagram[5] == KIND_FRAME
}

impl FrameHeader {
    /// The datagram carrying `packet`, tagged under `key`.
    pub fn encode(&self, packet: &[u8], key: &ClusterKey) -> Result<Vec<u8>, FrameError> {
        if packet.is_empty() || packet.len() > MAX_PACKET {
            return Err(FrameError::PacketSize(packet.len()));
        }
        let mut out = Vec::with_capacity(OVERHEAD + packet.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[VERSION, KIND_FRAME, 0, 0]);
        out.extend_from_slice(&self.node.to_be_bytes());
        out.extend_from_slice(&self.incarnation.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(packet);
        let mut mac = key.mac();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        Ok(out)
    }
}

impl<'a> Frame<'a> {
    /// Parses and authenticates one datagram. Nothing past the length, magic and version is read
    /// before the tag verifies (constant-time comparison).
    pub fn decode(datagram: &'a [u8], key: &ClusterKey) -> Result<Frame<'a>, FrameError> {
        let len = datagram.len();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(FrameError::WrongLength(len));
        }
        if datagram[0..4] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        if datagram[4] != VERSION {
            return Err(FrameError::UnsupportedVersion(datagram[4]));
        }
        let (body, tag) = datagram.split_at(len - TAG_LEN);
        let mut mac = key.mac();
        mac.update(body);
        mac.verify_slice(tag)
            .map_err(|_| FrameError::Unauthenticated)?;
        if body[5] != KIND_FRAME {
            return Err(FrameError::NotAFrame(body[5]));
        }
        let reserved = u16::from_be_bytes([body[6], body[7]]);
        if reserved != 0 {
            return Err(FrameError::Reserved(reserved));
        }
        let header = FrameHeader {
            node: u32::from_be_bytes(array(&body[8..12])),
            incarnation: u64::from_be_bytes(array(&body[12..20])),
            sequence: u64::from_be_bytes(array(&body[20..28])),
        };
        Ok(Frame {
            header,
            packet: &body[HEADER_LEN..],
        })
    }
}

fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Heartbeat, KIND_HEARTBEAT};
    use proptest::prelude::*;

    fn key() -> ClusterKey {
        ClusterKey::new(b"0123456789abcdef-cluster-key").unwrap()
    }

    fn header() -> FrameHeader {
        FrameHeader {
            node: 2,
            incarnation: 7,
            sequence: 42,
        }
    }

    const PACKET: &[u8] = b"\x45\x00\x00\x1c an IPv4 packet, more or less";

    #[test]
    fn round_trips_and_is_told_apart_from_a_heartbeat() {
        let datagram = header().encode(PACKET, &key()).unwrap();
        assert_eq!(datagram.len(), PACKET.len() + OVERHEAD);
        let frame = Frame::decode(&datagram, &key()).unwrap();
        assert_eq!(frame.header, header());
        assert_eq!(frame.packet, PACKET);
        assert!(is_frame(&datagram));
        let hb = Heartbeat {
            node: 2,
            incarnation: 7,
            sequence: 1,
            from: "192.0.2.2".parse().unwrap(),
            to: "192.0.2.1".parse().unwrap(),
            down: 0,
            hears_you: false,
        }
        .encode(&key());
        assert_eq!(hb[5], KIND_HEARTBEAT);
        assert!(!is_frame(&hb));
        assert!(!is_frame(b"KNFT"));
    }

    #[test]
    fn a_forged_or_foreign_key_tag_is_unauthenticated() {
        let other = ClusterKey::new(b"another-cluster-key!").unwrap();
        let foreign = header().encode(PACKET, &other).unwrap();
        assert_eq!(
            Frame::decode(&foreign, &key()),
            Err(FrameError::Unauthenticated)
        );
        // A sender rewriting the node id, the sequence or the packet without the key.
        let good = header().encode(PACKET, &key()).unwrap();
        for at in [8, 27, HEADER_LEN + 3, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            assert_eq!(
                Frame::decode(&bad, &key()),
                Err(FrameError::Unauthenticated),
                "byte {at}"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let good = header().encode(PACKET, &key()).unwrap();
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                assert!(Frame::decode(&bad, &key()).is_err(), "{byte}:{bit}");
            }
        }
    }

    #[test]
    fn truncation_length_magic_version_and_kind_are_named() {
        let good = header().encode(PACKET, &key()).unwrap();
        let cut = &good[..good.len() - 1];
        assert_eq!(
            Frame::decode(cut, &key()),
            Err(FrameError::Unauthenticated),
            "a truncated frame of valid length fails its tag"
        );
        assert_eq!(
            Frame::decode(&good[..MIN_LEN - 1], &key()),
            Err(FrameError::WrongLength(MIN_LEN - 1))
        );
        assert_eq!(
            Frame::decode(&vec![0u8; MAX_LEN + 1], &key()),
            Err(FrameError::WrongLength(MAX_LEN + 1))
        );
        let mut v2 = good.clone();
        v2[4] = 2;
        assert_eq!(
            Frame::decode(&v2, &key()),
            Err(FrameError::UnsupportedVersion(2))
        );
        let mut magic = good.clone();
        magic[1] = b'X';
        assert_eq!(Frame::decode(&magic, &key()), Err(FrameError::BadMagic));
        // A heartbeat-sized datagram is not a frame even when its tag verifies as one.
        let mut as_heartbeat = header().encode(&[0u8; 32], &key()).unwrap();
        as_heartbeat[5] = KIND_HEARTBEAT;
        let body_len = as_heartbeat.len() - TAG_LEN;
        let mut mac = key().mac();
        mac.update(&as_heartbeat[..body_len]);
        let tag = mac.finalize().into_bytes();
        as_heartbeat[body_len..].copy_from_slice(&tag);
        assert_eq!(
            Frame::decode(&as_heartbeat, &key()),
            Err(FrameError::NotAFrame(KIND_HEARTBEAT))
        );
        assert_eq!(
            FrameError::WrongLength(3).to_string(),
            format!("datagram of 3 bytes is not a frame ({MIN_LEN}..={MAX_LEN} bytes)")
        );
    }

    #[test]
    fn empty_and_oversized_packets_are_not_sent() {
        assert_eq!(header().encode(&[], &key()), Err(FrameError::PacketSize(0)));
        assert_eq!(
            header().encode(&vec![0; MAX_PACKET + 1], &key()),
            Err(FrameError::PacketSize(MAX_PACKET + 1))
        );
        let biggest = header().encode(&vec![7; MAX_PACKET], &key()).unwrap();
        assert_eq!(biggest.len(), MAX_LEN);
        assert!(Frame::decode(&biggest, &key()).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_are_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert!(Frame::decode(&bytes, &key()).is_err());
        }

        #[test]
        fn a_valid_header_with_arbitrary_rest_is_unauthenticated(rest in proptest::collection::vec(any::<u8>(), MIN_LEN - 6..400)) {
            let mut bytes = vec![b'K', b'N', b'F', b'T', VERSION, KIND_FRAME];
            bytes.extend(rest);
            prop_assert_eq!(Frame::decode(&bytes, &key()), Err(FrameError::Unauthenticated));
        }

        #[test]
        fn any_frame_round_trips(node: u32, incarnation: u64, sequence: u64, packet in proptest::collection::vec(any::<u8>(), 1..1500)) {
            let header = FrameHeader { node, incarnation, sequence };
            let datagram = header.encode(&packet, &key()).unwrap();
            let frame = Frame::decode(&datagram, &key()).unwrap();
            prop_assert_eq!(frame.header, header);
            prop_assert_eq!(frame.packet, &packet[..]);
        }
    }
}
