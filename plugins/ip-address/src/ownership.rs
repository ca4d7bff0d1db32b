//! Whether the address on the interface is this resource's: a marker file in the resource's state
//! directory, written (and synced) before the address is added and removed after it is deleted,
//! so a new host after a crash adopts what the last one added, while an address someone else put
//! there (the node's own, an administrator's) is never adopted and never removed. Not the address
//! itself (netlink.rs). Without a state directory (a host that gives none) every address present is
//! taken as ours, as before.

use std::io;
use std::path::PathBuf;

const MARKER: &str = "address-added";

/// The marker of one resource.
#[derive(Debug)]
pub struct Ownership {
    marker: Option<PathBuf>,
}

impl Ownership {
    pub fn new(state_dir: Option<PathBuf>) -> Ownership {
        Ownership {
            marker: state_dir.map(|d| d.join(MARKER)),
        }
    }

    /// Records that this resource is adding the address (before it does), durably.
    pub fn claim(&self) -> io::Result<()> {
        let Some(marker) = &self.marker else {
            return Ok(());
        };
        let file = std::fs::File::create(marker).map_err(|e| named(marker, e))?;
        file.sync_all().map_err(|e| named(marker, e))
    }

    /// Whether an address present on the interface was added by this resource.
    pub fn is_ours(&self) -> io::Result<bool> {
        let Some(marker) = &self.marker else {
            return Ok(true);
        };
        match std::fs::metadata(marker) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(named(marker, e)),
        }
    }

    /// The address is gone: the marker goes too.
    pub fn release(&self) -> io::Result<()> {
        let Some(marker) = &self.marker else {
            return Ok(());
        };
        match std::fs::remove_file(marker) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(named(marker, e)),
        }
    }
}

fn named(path: &std::path::Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_ours_only_between_claim_and_release() {
        let dir = tempfile::tempdir().unwrap();
        let own = Ownership::new(Some(dir.path().to_path_buf()));
        assert!(!own.is_ours().unwrap(), "nothing claimed yet");
        own.claim().unwrap();
        assert!(own.is_ours().unwrap());
        assert!(
            Ownership::new(Some(dir.path().to_path_buf()))
                .is_ours()
                .unwrap(),
            "a new host sees the claim"
        );
        own.release().unwrap();
        assert!(!own.is_ours().unwrap());
        own.release().unwrap();
    }

    #[test]
    fn without_a_state_directory_every_present_address_is_ours() {
        let own = Ownership::new(None);
        own.claim().unwrap();
        assert!(own.is_ours().unwrap());
        own.release().unwrap();
    }
}
