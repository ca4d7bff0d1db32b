//! The cluster key as the raft transport uses it: the handshake's proofs of the key, the per-connection
//! session keys, and the tag over every frame, all HMAC-SHA256 under a key derived from the cluster
//! key (domain-separated from NetFT's heartbeat tags). Pure functions; not the handshake's message
//! flow (handshake.rs) nor the framing (channel.rs).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest cluster key accepted (NetFT's minimum too: both read the same key file).
pub const MIN_KEY_LEN: usize = 16;
/// Size of a nonce, a proof and a frame tag.
pub const TAG_LEN: usize = 32;
/// A handshake nonce.
pub type Nonce = [u8; TAG_LEN];
/// An HMAC-SHA256 tag.
pub type Tag = [u8; TAG_LEN];

/// What the raft key is derived under, so a raft tag is never a valid NetFT tag or the other way.
const DOMAIN: &[u8] = b"keelson raft transport v1";

/// A cluster key too short to be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cluster key of {0} bytes is too short (at least {MIN_KEY_LEN} bytes)")]
pub struct KeyTooShort(pub usize);

/// Which way a frame travels on a connection: each way has its own session key and sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the side that connected to the side that accepted.
    ToServer,
    /// From the side that accepted to the side that connected.
    ToClient,
}

impl Direction {
    fn label(self) -> &'static [u8] {
        match self {
            Direction::ToServer => b"to-server",
            Direction::ToClient => b"to-client",
        }
    }

    fn byte(self) -> u8 {
        match self {
            Direction::ToServer => 1,
            Direction::ToClient => 2,
        }
    }
}

/// The secret every node of a cluster shares (the contents of the cluster key file). Its Debug
/// form shows only its length.
#[derive(Clone)]
pub struct ClusterKey {
    derived: [u8; TAG_LEN],
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterKey(..)")
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: new_from_slice cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn tag_of(key: &[u8], parts: &[&[u8]]) -> Tag {
    let mut m = mac(key);
    for part in parts {
        // Length-prefixed so that no two different part lists hash the same bytes.
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

fn verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut m = mac(key);
    for part in parts {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m.verify_slice(tag).is_ok()
}

/// What a handshake proof binds: the protocol version, the cluster's name and both nonces.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    pub version: u16,
    pub cluster: &'a str,
    pub client_nonce: &'a Nonce,
    pub server_nonce: &'a Nonce,
}

impl Transcript<'_> {
    fn parts<'b>(&'b self, role: &'b [u8], version: &'b [u8; 2]) -> [&'b [u8]; 5] {
        [
            role,
            version,
            self.cluster.as_bytes(),
            self.client_nonce,
            self.server_nonce,
        ]
    }
}

const SERVER_ROLE: &[u8] = b"server proves";
const CLIENT_ROLE: &[u8] = b"client proves";

impl ClusterKey {
    /// A key from its raw bytes (the contents of the cluster key file).
    pub fn new(bytes: &[u8]) -> Result<ClusterKey, KeyTooShort> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyTooShort(bytes.len()));
        }
        Ok(ClusterKey {
            derived: tag_of(bytes, &[DOMAIN]),
        })
    }

    /// The accepting side's proof that it holds the key.
    pub fn server_proof(&self, t: &Transcript<'_>) -> Tag {
        let version = t.version.to_be_bytes();
        tag_of(&self.derived, &t.parts(SERVER_ROLE, &version))
    }

    /// The connecting side's proof that it holds the key.
    pub fn client_proof(&self, t: &Transcript<'_>) -> Tag {
        let version = t.version.to_be_bytes();
        tag_of(&self.derived, &t.parts(CLIENT_ROLE, &version))
    }

    /// Whether `proof` is the accepting side's proof (constant time).
    pub fn verify_server_proof(&self, t: &Transcript<'_>, proof: &[u8]) -> bool {
        let version = t.version.to_be_bytes();
        verify(&self.derived, &t.parts(SERVER_ROLE, &version), proof)
    }

    /// Whether `proof` is the connecting side's proof (constant time).
    pub fn verify_client_proof(&self, t: &Transcript<'_>, proof: &[u8]) -> bool {
        let version = t.version.to_be_bytes();
        verify(&self.derived, &t.parts(CLIENT_ROLE, &version), proof)
    }

    /// The key that tags frames going `direction` on the connection `t` set up.
    pub fn session_key(&self, t: &Transcript<'_>, direction: Direction) -> SessionKey {
        let version = t.version.to_be_bytes();
        SessionKey {
            key: tag_of(&self.derived, &t.parts(direction.label(), &version)),
            direction,
        }
    }
}

/// The key of one direction of one connection: tags (direction, sequence number, payload).
#[derive(Clone)]
pub struct SessionKey {
    key: [u8; TAG_LEN],
    direction: Direction,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKey({:?})", self.direction)
    }
}

impl SessionKey {
    /// The tag of frame number `seq` carrying `payload`.
    pub fn tag(&self, seq: u64, payload: &[u8]) -> Tag {
        tag_of(
            &self.key,
            &[&[self.direction.byte()], &seq.to_be_bytes(), payload],
        )
    }

    /// Whether `tag` is that of frame number `seq` carrying `payload` (constant time).
    pub fn verify(&self, seq: u64, payload: &[u8], tag: &[u8]) -> bool {
        verify(
            &self.key,
            &[&[self.direction.byte()], &seq.to_be_bytes(), payload],
            tag,
        )
    }
}

/// A fresh nonce from the operating system's CSPRNG.
pub fn nonce() -> Result<Nonce, getrandom::Error> {
    let mut n = [0u8; TAG_LEN];
    getrandom::fill(&mut n)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(bytes: &[u8]) -> ClusterKey {
        ClusterKey::new(bytes).unwrap()
    }

    #[test]
    fn a_short_key_is_refused() {
        assert_eq!(ClusterKey::new(b"short").unwrap_err(), KeyTooShort(5));
    }

    #[test]
    fn proofs_verify_only_under_the_same_key_role_cluster_and_nonces() {
        let (a, b) = (key(b"0123456789abcdef-one"), key(b"0123456789abcdef-two"));
        let (cn, sn) = (nonce().unwrap(), nonce().unwrap());
        assert_ne!(cn, sn, "nonces are random");
        let t = Transcript {
            version: 1,
            cluster: "c",
            client_nonce: &cn,
            server_nonce: &sn,
        };
        let proof = a.server_proof(&t);
        assert!(a.verify_server_proof(&t, &proof));
        assert!(!b.verify_server_proof(&t, &proof), "another key");
        assert!(
            !a.verify_client_proof(&t, &proof),
            "reflected to the other role"
        );
        let other_cluster = Transcript { cluster: "d", ..t };
        assert!(!a.verify_server_proof(&other_cluster, &proof));
        let other_nonce = Transcript {
            server_nonce: &cn,
            ..t
        };
        assert!(!a.verify_server_proof(&other_nonce, &proof));
        let other_version = Transcript { version: 2, ..t };
        assert!(!a.verify_server_proof(&other_version, &proof));
    }

    #[test]
    fn frame_tags_bind_direction_sequence_and_payload() {
        let k = key(b"0123456789abcdef-one");
        let (cn, sn) = ([1u8; 32], [2u8; 32]);
        let t = Transcript {
            version: 1,
            cluster: "c",
            client_nonce: &cn,
            server_nonce: &sn,
        };
        let up = k.session_key(&t, Direction::ToServer);
        let down = k.session_key(&t, Direction::ToClient);
        let tag = up.tag(7, b"payload");
        assert!(up.verify(7, b"payload", &tag));
        assert!(
            !up.verify(8, b"payload", &tag),
            "replayed at another position"
        );
        assert!(!up.verify(7, b"payloaD", &tag), "forged payload");
        assert!(!down.verify(7, b"payload", &tag), "reflected back");
        assert!(!up.verify(7, b"payload", &tag[..31]), "truncated tag");
    }
}
