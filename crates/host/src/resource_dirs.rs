//! Where a pool's resources keep their own state on this node: `<root>/<resource id>/`, made (0700)
//! before each open, and the node name every resource is told. Not what a plugin puts there.

use keelson_types::ResourceId;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The state-directory root and the node's name, handed to every resource a pool opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceDirs {
    pub root: PathBuf,
    pub node_name: String,
}

impl ResourceDirs {
    pub fn new(root: impl Into<PathBuf>, node_name: impl Into<String>) -> ResourceDirs {
        ResourceDirs {
            root: root.into(),
            node_name: node_name.into(),
        }
    }

    /// Resource `id`'s directory, made (with its parents, mode 0700) when missing.
    pub fn ensure(&self, id: ResourceId) -> Result<PathBuf, String> {
        let dir = self.dir_of(id);
        make_private_dir(&dir).map(|()| dir)
    }

    /// Removes resource `id`'s directory and everything in it (a deleted resource's); one that is
    /// not there is fine.
    pub fn remove(&self, id: ResourceId) -> Result<(), String> {
        let dir = self.dir_of(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!(
                "cannot remove the deleted resource's state directory {}: {e}",
                dir.display()
            )),
        }
    }

    /// Resource `id`'s directory, whether or not it exists.
    pub fn dir_of(&self, id: ResourceId) -> PathBuf {
        self.root.join(id.0.to_string())
    }
}

fn make_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            format!(
                "cannot make the resource's state directory {}: {e}",
                dir.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn each_resource_gets_its_own_private_directory_made_once() {
        let root = tempfile::tempdir().unwrap();
        let dirs = ResourceDirs::new(root.path().join("resources"), "n1");
        let dir = dirs.ensure(ResourceId(7)).unwrap();
        assert_eq!(dir, root.path().join("resources/7"));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::write(dir.join("pid"), "42").unwrap();
        assert_eq!(dirs.ensure(ResourceId(7)).unwrap(), dir);
        assert_eq!(std::fs::read_to_string(dir.join("pid")).unwrap(), "42");
        dirs.remove(ResourceId(7)).unwrap();
        assert!(!dir.exists());
        dirs.remove(ResourceId(7)).unwrap();
    }

    #[test]
    fn a_root_that_cannot_be_made_is_an_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("plain-file");
        std::fs::write(&file, "").unwrap();
        let err = ResourceDirs::new(&file, "n1")
            .ensure(ResourceId(1))
            .unwrap_err();
        assert!(err.contains("plain-file/1"), "{err}");
    }
}
