//! The quorum configuration `keelson cluster quorum [--witness PATH]` shows and sets: node majority,
//! or node majority plus a file-share witness (PATH is a directory) or a disk witness (PATH is a block
//! device), with WSFC's names for the three models. Checks the path; does not store the setting (the
//! cluster database does) nor touch the witness (file_witness.rs, disk_witness.rs).

use std::fmt;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// The witness a cluster votes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessSpec {
    /// A directory every node reaches.
    FileShare(PathBuf),
    /// A small block device every node sees.
    Disk(PathBuf),
}

/// The quorum model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumConfig {
    pub witness: Option<WitnessSpec>,
}

/// A witness path that cannot be used; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessPathError {
    #[error("witness {0} is not an absolute path")]
    Relative(PathBuf),
    #[error("witness {path}: {source}")]
    Stat {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "witness {0} is neither a directory (file-share witness) nor a block device (disk witness)"
    )]
    Kind(PathBuf),
}

impl WitnessSpec {
    /// The witness at `path`: a directory is a file-share witness, a block device a disk witness.
    pub fn from_path(path: &Path) -> Result<WitnessSpec, WitnessPathError> {
        if !path.is_absolute() {
            return Err(WitnessPathError::Relative(path.to_path_buf()));
        }
        let meta = fs::metadata(path).map_err(|source| WitnessPathError::Stat {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            Ok(WitnessSpec::FileShare(path.to_path_buf()))
        } else if meta.file_type().is_block_device() {
            Ok(WitnessSpec::Disk(path.to_path_buf()))
        } else {
            Err(WitnessPathError::Kind(path.to_path_buf()))
        }
    }

    /// The witness's path.
    pub fn path(&self) -> &Path {
        match self {
            WitnessSpec::FileShare(p) | WitnessSpec::Disk(p) => p,
        }
    }
}

impl fmt::Display for WitnessSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WitnessSpec::FileShare(p) => write!(f, "file-share witness {}", p.display()),
            WitnessSpec::Disk(p) => write!(f, "disk witness {}", p.display()),
        }
    }
}

impl fmt::Display for QuorumConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.witness {
            None => write!(f, "Node Majority"),
            Some(w @ WitnessSpec::FileShare(_)) => write!(f, "Node and File Share Majority ({w})"),
            Some(w @ WitnessSpec::Disk(_)) => write!(f, "Node and Disk Majority ({w})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_a_file_share_witness() {
        let dir = tempfile::tempdir().unwrap();
        let spec = WitnessSpec::from_path(dir.path()).unwrap();
        assert_eq!(spec, WitnessSpec::FileShare(dir.path().to_path_buf()));
        let config = QuorumConfig {
            witness: Some(spec),
        };
        assert_eq!(
            config.to_string(),
            format!(
                "Node and File Share Majority (file-share witness {})",
                dir.path().display()
            )
        );
        assert_eq!(QuorumConfig::default().to_string(), "Node Majority");
    }

    #[test]
    fn a_block_device_is_a_disk_witness() {
        let Some(dev) = ["/dev/loop0"]
            .iter()
            .map(Path::new)
            .find(|p| fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device()))
        else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but there is no /dev/loop0 block device"
            );
            eprintln!("skipped: no /dev/loop0 block device here");
            return;
        };
        let spec = WitnessSpec::from_path(dev).unwrap();
        assert_eq!(spec, WitnessSpec::Disk(dev.to_path_buf()));
        assert_eq!(
            QuorumConfig {
                witness: Some(spec)
            }
            .to_string(),
            "Node and Disk Majority (disk witness /dev/loop0)"
        );
    }

    #[test]
    fn anything_else_is_refused_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        for (path, want) in [
            (
                file.clone(),
                "is neither a directory (file-share witness) nor a block device",
            ),
            (dir.path().join("missing"), "No such file or directory"),
            (PathBuf::from("relative/dir"), "is not an absolute path"),
        ] {
            let e = WitnessSpec::from_path(&path).unwrap_err().to_string();
            assert!(e.starts_with(&format!("witness {}", path.display())), "{e}");
            assert!(e.contains(want), "{e}");
        }
    }
}
