//! The witness lease record and its on-disk form, the same bytes for a file-share and a disk witness:
//! `magic "KLSNWLS1" | holder u64 | generation u64 | expiry wall-clock ms u64 | flags u64 |
//! HMAC-SHA256 [32]`, big-endian, the HMAC over everything before it under the cluster key. Not where
//! the bytes are kept (file_witness.rs, disk_witness.rs) nor when a lease may be taken (lease.rs).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use keelson_raft::NodeId;

/// The record's first bytes.
pub const MAGIC: &[u8; 8] = b"KLSNWLS1";
/// The encoded record's length.
pub const RECORD_LEN: usize = 8 + 4 * 8 + 32;
/// The shortest cluster key accepted (as for NetFT heartbeats).
pub const MIN_KEY_LEN: usize = 16;

const RELEASED: u64 = 1;
const SIGNED_LEN: usize = RECORD_LEN - 32;

type HmacSha256 = Hmac<Sha256>;

/// Who holds the witness, in which generation, until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The node holding (or last holding) the lease.
    pub holder: NodeId,
    /// Counts up by one on every change of holder (every successful claim).
    pub generation: u64,
    /// When the lease ends unless renewed, wall-clock milliseconds since the Unix epoch.
    pub expiry_ms: u64,
    /// The holder gave the lease up: anyone may claim the next generation at once.
    pub released: bool,
}

/// The cluster key the record is signed with.
#[derive(Clone)]
pub struct WitnessKey(Vec<u8>);

impl std::fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WitnessKey({} bytes)", self.0.len())
    }
}

/// A record that cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("cluster key of {0} bytes is too short (at least {MIN_KEY_LEN} bytes)")]
    KeyTooShort(usize),
    #[error("it is {0} bytes long, not {RECORD_LEN}")]
    Length(usize),
    #[error("it is not a keelson witness lease (bad magic)")]
    Magic,
    #[error(
        "its HMAC does not verify under this cluster's key: written by another cluster or forged"
    )]
    Foreign,
}

impl WitnessKey {
    /// The key from its raw bytes (the cluster key file's contents).
    pub fn new(bytes: &[u8]) -> Result<WitnessKey, RecordError> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(RecordError::KeyTooShort(bytes.len()));
        }
        Ok(WitnessKey(bytes.to_vec()))
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

impl LeaseRecord {
    /// The signed bytes.
    pub fn encode(&self, key: &WitnessKey) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[..8].copy_from_slice(MAGIC);
        let flags = if self.released { RELEASED } else { 0 };
        for (i, field) in [self.holder, self.generation, self.expiry_ms, flags]
            .into_iter()
            .enumerate()
        {
            out[8 + i * 8..16 + i * 8].copy_from_slice(&field.to_be_bytes());
        }
        let mut mac = key.mac();
        mac.update(&out[..SIGNED_LEN]);
        out[SIGNED_LEN..].copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// A record read back, trusted only once its HMAC verifies (in constant time).
    pub fn decode(bytes: &[u8], key: &WitnessKey) -> Result<LeaseRecord, RecordError> {
        if bytes.len() != RECORD_LEN {
            return Err(RecordError::Length(bytes.len()));
        }
        if &bytes[..8] != MAGIC {
            return Err(RecordError::Magic);
        }
        let mut mac = key.mac();
        mac.update(&bytes[..SIGNED_LEN]);
        mac.verify_slice(&bytes[SIGNED_LEN..])
            .map_err(|_| RecordError::Foreign)?;
        let field = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[8 + i * 8..16 + i * 8]);
            u64::from_be_bytes(b)
        };
        Ok(LeaseRecord {
            holder: field(0),
            generation: field(1),
            expiry_ms: field(2),
            released: field(3) & RELEASED != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> WitnessKey {
        WitnessKey::new(&[b; 32]).unwrap()
    }

    const RECORD: LeaseRecord = LeaseRecord {
        holder: 2,
        generation: 7,
        expiry_ms: 1_700_000_000_123,
        released: false,
    };

    #[test]
    fn a_record_round_trips_under_its_key() {
        for released in [false, true] {
            let r = LeaseRecord { released, ..RECORD };
            assert_eq!(LeaseRecord::decode(&r.encode(&key(1)), &key(1)), Ok(r));
        }
    }

    #[test]
    fn another_key_or_any_flipped_bit_is_refused() {
        let bytes = RECORD.encode(&key(1));
        assert_eq!(
            LeaseRecord::decode(&bytes, &key(2)),
            Err(RecordError::Foreign)
        );
        for i in 8..RECORD_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            assert_eq!(
                LeaseRecord::decode(&bad, &key(1)),
                Err(RecordError::Foreign),
                "byte {i}"
            );
        }
        let mut bad = bytes;
        bad[0] = b'X';
        assert_eq!(LeaseRecord::decode(&bad, &key(1)), Err(RecordError::Magic));
        assert_eq!(
            LeaseRecord::decode(&bytes[..10], &key(1)),
            Err(RecordError::Length(10))
        );
    }

    #[test]
    fn a_short_key_is_refused_and_never_printed() {
        assert_eq!(
            WitnessKey::new(b"short").unwrap_err(),
            RecordError::KeyTooShort(5)
        );
        assert_eq!(format!("{:?}", key(0x41)), "WitnessKey(32 bytes)");
    }
}
