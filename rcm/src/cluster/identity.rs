//! What makes a data directory a cluster node's: `node.json` (the cluster's name, this node's name
//! and raft id) and `cluster.key` (the shared secret, mode 0600: a first line
//! `keelson-cluster NAME` naming the cluster it belongs to, then the key as hex). `node.json` is written last when
//! a cluster is created, so its presence is the commit point: without it the directory is a single
//! node's. Not the cluster database (raft.redb, crates/raft).

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// File name of this node's identity in the data directory.
pub const IDENTITY_FILE: &str = "node.json";
/// File name of the cluster key in the data directory.
pub const KEY_FILE: &str = "cluster.key";
/// Bytes of a generated cluster key.
const KEY_BYTES: usize = 32;

/// This node's place in its cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub cluster: String,
    pub node_name: String,
    pub node_id: u64,
}

impl Identity {
    /// The identity in `dir`, or None for a single node's directory.
    pub fn read(dir: &Path) -> Result<Option<Identity>, String> {
        let path = dir.join(IDENTITY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is damaged: {e}", path.display()))
    }

    /// Writes the identity durably (mode 0640): from now on the directory is a cluster node's.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(IDENTITY_FILE);
        let text = serde_json::to_string_pretty(self).expect("plain data") + "\n";
        keelson_store::marker::write_durably(&path, text.as_bytes(), 0o640)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// The key file's path in `dir`.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// The first word of a key file.
const KEY_HEADER: &str = "keelson-cluster";

/// A cluster key and the name of its cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub cluster: String,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyFile {{ cluster: {:?}, key: *** }}", self.cluster)
    }
}

impl KeyFile {
    fn text(&self) -> String {
        format!("{KEY_HEADER} {}\n{}\n", self.cluster, hex(&self.key))
    }
}

/// Writes `key` into `dir` (mode 0600), refusing to replace a key file.
pub fn install_key(dir: &Path, key: &KeyFile) -> Result<(), String> {
    let path = key_path(dir);
    if path.exists() {
        return Err(format!(
            "{} already exists: this node already has a cluster key",
            path.display()
        ));
    }
    keelson_store::marker::write_durably(&path, key.text().as_bytes(), 0o600)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Creates a new random key for cluster `cluster` in `dir` (mode 0600), refusing to replace one.
pub fn create_key(dir: &Path, cluster: &str) -> Result<KeyFile, String> {
    let path = key_path(dir);
    if path.exists() {
        return Err(format!(
            "{} already exists: this node already has a cluster key",
            path.display()
        ));
    }
    let mut key = vec![0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| format!("cannot read random bytes for the cluster key: {e}"))?;
    let file = KeyFile {
        cluster: cluster.to_string(),
        key,
    };
    install_key(dir, &file)?;
    Ok(file)
}

/// Reads the cluster key from `path`, refusing one that others can read or that is not a key.
pub fn read_key(path: &Path) -> Result<KeyFile, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the cluster key {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the cluster key {} has mode {mode:o}: it must be readable by its owner only (0600)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the cluster key {}: {e}", path.display()))?;
    let not_a_key = || {
        format!(
            "{} is not a cluster key (a line `{KEY_HEADER} NAME` and a line of hex expected)",
            path.display()
        )
    };
    let mut lines = text.lines();
    let cluster = lines
        .next()
        .and_then(|l| l.strip_prefix(KEY_HEADER))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(not_a_key)?
        .to_string();
    let key = lines
        .next()
        .and_then(|l| unhex(l.trim()))
        .ok_or_else(not_a_key)?;
    if key.len() < 16 {
        return Err(format!(
            "the cluster key {} is {} bytes long: at least 16 are needed",
            path.display(),
            key.len()
        ));
    }
    Ok(KeyFile { cluster, key })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let key = create_key(dir.path(), "prod").unwrap();
        assert_eq!((key.key.len(), key.cluster.as_str()), (KEY_BYTES, "prod"));
        let mode = std::fs::metadata(key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_key(&key_path(dir.path())).unwrap(), key);
        let again = create_key(dir.path(), "prod").unwrap_err();
        assert!(again.contains("already exists"), "{again}");
    }

    #[test]
    fn a_key_others_can_read_or_that_is_not_hex_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path());
        std::fs::write(
            &path,
            "keelson-cluster prod\n00112233445566778899aabbccddeeff\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_key(&path).unwrap_err().contains("mode 644"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key(&path).unwrap().key.len(), 16);
        for bad in [
            "not a key\n",
            "00112233445566778899aabbccddeeff\n",
            "keelson-cluster prod\nzz\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                read_key(&path).unwrap_err().contains("not a cluster key"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_identity_round_trips_and_its_absence_means_a_single_node() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Identity::read(dir.path()).unwrap(), None);
        let me = Identity {
            cluster: "prod".into(),
            node_name: "n1".into(),
            node_id: 1,
        };
        me.write(dir.path()).unwrap();
        assert_eq!(Identity::read(dir.path()).unwrap(), Some(me));
        std::fs::write(dir.path().join(IDENTITY_FILE), "{").unwrap();
        assert!(Identity::read(dir.path()).unwrap_err().contains("damaged"));
    }
}
