//! Moving the calling thread into another network namespace (setns(2) with CLONE_NEWNET), so a test
//! or a tool can run a socket-owning task inside a namespace that `ip netns add` created. Not the
//! creation or removal of namespaces, and not for a whole process: only the calling thread moves.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// Moves the calling thread into the network namespace at `path` (e.g. `/var/run/netns/NAME`).
/// Sockets the thread opens afterwards belong to that namespace; other threads are unaffected.
/// The error names the path.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let file = File::open(path).map_err(|e| named(path, "open", e))?;
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|errno| named(path, "setns", io::Error::from(errno)))
}

fn named(path: &Path, what: &str, err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!("network namespace {}: {what}: {err}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_is_an_error_naming_the_path() {
        let err = enter_netns(Path::new("/nonexistent/netns/x")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/netns/x"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_namespace_is_refused() {
        let err = enter_netns(Path::new("/proc/self/status")).unwrap_err();
        assert!(err.to_string().contains("setns"), "{err}");
    }
}
