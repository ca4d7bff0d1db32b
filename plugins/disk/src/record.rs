//! The on-disk lease record: one 4 KiB sector at the start of the device's reserved last MiB,
//! saying who holds the disk (node name and a random incarnation of the holding host), how many
//! times it took it (generation), how often it renewed (renewals) and when, with a checksum. Not
//! the I/O (area.rs) nor the acquire/renew rules (lease.rs).

/// The record's size on disk: one direct-I/O sector.
pub const RECORD_SIZE: usize = 4096;
const MAGIC: &[u8; 8] = b"KLSNDLS1";
const VERSION: u32 = 1;
const MAX_HOLDER: usize = 255;
const CHECKSUM_AT: usize = RECORD_SIZE - 8;

/// Whether the holder still claims the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    Held,
    Released,
}

/// One lease record, as written by its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub state: LeaseState,
    pub holder: String,
    pub incarnation: u64,
    pub generation: u64,
    pub renewals: u64,
    pub timestamp_ms: u64,
    pub lease_ms: u64,
}

/// What a reserved area's first sector holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sector {
    /// Never written by keelson (all zeroes, or another magic): free.
    Blank,
    /// A keelson record whose checksum does not match: a torn or foreign write.
    Corrupt(String),
    Record(LeaseRecord),
}

impl LeaseRecord {
    /// The record as its 4 KiB sector.
    pub fn encode(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let state: u32 = match self.state {
            LeaseState::Held => 1,
            LeaseState::Released => 2,
        };
        b[12..16].copy_from_slice(&state.to_le_bytes());
        let fields = [
            self.incarnation,
            self.generation,
            self.renewals,
            self.timestamp_ms,
            self.lease_ms,
        ];
        for (i, v) in fields.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        let name = &self.holder.as_bytes()[..self.holder.len().min(MAX_HOLDER)];
        b[56..58].copy_from_slice(&(name.len() as u16).to_le_bytes());
        b[58..58 + name.len()].copy_from_slice(name);
        let sum = checksum(&b[..CHECKSUM_AT]);
        b[CHECKSUM_AT..].copy_from_slice(&sum.to_le_bytes());
        b
    }
}

/// Reads a sector: blank, corrupt (with why) or a record.
pub fn decode(b: &[u8]) -> Sector {
    if b.len() < RECORD_SIZE || &b[0..8] != MAGIC {
        return Sector::Blank;
    }
    let stored = u64_at(b, CHECKSUM_AT);
    if checksum(&b[..CHECKSUM_AT]) != stored {
        return Sector::Corrupt("checksum mismatch".into());
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Sector::Corrupt(format!("unknown record version {version}"));
    }
    let state = match u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) {
        1 => LeaseState::Held,
        2 => LeaseState::Released,
        other => return Sector::Corrupt(format!("unknown lease state {other}")),
    };
    let len = u16::from_le_bytes([b[56], b[57]]) as usize;
    if len > MAX_HOLDER {
        return Sector::Corrupt(format!("holder name of {len} bytes"));
    }
    Sector::Record(LeaseRecord {
        state,
        holder: String::from_utf8_lossy(&b[58..58 + len]).into_owned(),
        incarnation: u64_at(b, 16),
        generation: u64_at(b, 24),
        renewals: u64_at(b, 32),
        timestamp_ms: u64_at(b, 40),
        lease_ms: u64_at(b, 48),
    })
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// FNV-1a, 64 bits: enough to tell a torn or foreign sector from a record.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LeaseRecord {
        LeaseRecord {
            state: LeaseState::Held,
            holder: "n1".into(),
            incarnation: 0xdead_beef,
            generation: 3,
            renewals: 41,
            timestamp_ms: 1_700_000_000_000,
            lease_ms: 1500,
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let r = sample();
        assert_eq!(decode(&r.encode()), Sector::Record(r));
    }

    #[test]
    fn zeroes_are_blank_and_a_flipped_bit_is_corrupt() {
        assert_eq!(decode(&[0u8; RECORD_SIZE]), Sector::Blank);
        let mut b = sample().encode();
        b[33] ^= 1;
        assert_eq!(decode(&b), Sector::Corrupt("checksum mismatch".into()));
    }

    #[test]
    fn a_long_holder_name_is_cut_not_overflowing() {
        let mut r = sample();
        r.holder = "x".repeat(1000);
        let Sector::Record(back) = decode(&r.encode()) else {
            panic!("not a record")
        };
        assert_eq!(back.holder.len(), MAX_HOLDER);
    }
}
