//! Which node a command talks to: the data directory from `--data-dir` / `KEELSON_DATA_DIR`, or the
//! default (`/var/lib/keelson` for root, else `$XDG_DATA_HOME/keelson` or `~/.local/share/keelson`),
//! and the socket path inside it. Not creating the directory (only `keelson node start` does that).

use anyhow::{bail, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The data directory of a root node.
pub const SYSTEM_DATA_DIR: &str = "/var/lib/keelson";

/// The control socket inside a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("rcm.sock")
}

/// The data directory for this process: `explicit` (the option) if given, else `KEELSON_DATA_DIR`
/// if set and not empty, else the default for the effective user.
pub fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let from_env = std::env::var_os("KEELSON_DATA_DIR").map(PathBuf::from);
    choose(
        explicit.or(from_env),
        keelson_sys::process::geteuid(),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The pure rule behind [`resolve`]: explicit, else root's system directory, else XDG, else HOME.
/// Empty or relative XDG_DATA_HOME values are ignored, as the XDG spec asks.
pub fn choose(
    explicit: Option<PathBuf>,
    euid: u32,
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf> {
    if let Some(dir) = explicit.filter(|d| !d.as_os_str().is_empty()) {
        return Ok(dir);
    }
    if euid == 0 {
        return Ok(PathBuf::from(SYSTEM_DATA_DIR));
    }
    if let Some(xdg) = xdg_data_home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(xdg.join("keelson"));
    }
    match home
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
    {
        Some(home) => Ok(home.join(".local/share/keelson")),
        None => bail!("cannot choose a data directory: HOME is not set; use --data-dir DIR"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn explicit_wins_over_everything() {
        let d = choose(Some("/tmp/n1".into()), 0, os("/x"), os("/home/u")).unwrap();
        assert_eq!(d, PathBuf::from("/tmp/n1"));
    }

    #[test]
    fn root_uses_the_system_directory() {
        let d = choose(None, 0, os("/x"), os("/root")).unwrap();
        assert_eq!(d, PathBuf::from("/var/lib/keelson"));
    }

    #[test]
    fn users_use_xdg_then_home() {
        let d = choose(None, 1000, os("/home/u/data"), os("/home/u")).unwrap();
        assert_eq!(d, PathBuf::from("/home/u/data/keelson"));
        let d = choose(None, 1000, None, os("/home/u")).unwrap();
        assert_eq!(d, PathBuf::from("/home/u/.local/share/keelson"));
    }

    #[test]
    fn empty_or_relative_xdg_is_ignored() {
        let d = choose(None, 1000, os(""), os("/home/u")).unwrap();
        assert_eq!(d, PathBuf::from("/home/u/.local/share/keelson"));
        let d = choose(None, 1000, os("rel"), os("/home/u")).unwrap();
        assert_eq!(d, PathBuf::from("/home/u/.local/share/keelson"));
        let d = choose(Some("".into()), 1000, None, os("/home/u")).unwrap();
        assert_eq!(d, PathBuf::from("/home/u/.local/share/keelson"));
    }

    #[test]
    fn no_home_is_a_clear_error() {
        let e = choose(None, 1000, None, None).unwrap_err().to_string();
        assert!(e.contains("--data-dir"), "{e}");
    }

    #[test]
    fn socket_is_inside_the_data_dir() {
        assert_eq!(socket_path(Path::new("/d")), PathBuf::from("/d/rcm.sock"));
    }
}
