//! Who a detached process runs as: a user named or numbered in the user database, resolved to its
//! uid, primary gid, supplementary groups and home directory before anything is forked. Not the
//! switch itself (detached.rs does setgroups/setgid/setuid in the child).

use nix::unistd::{Gid, Uid, User};
use std::ffi::CString;
use std::io;
use std::path::PathBuf;

/// A user from the user database, ready to switch to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (getgrouplist), the primary one included.
    pub groups: Vec<u32>,
    pub home: PathBuf,
}

impl Identity {
    /// Looks `user` up: a name, or a decimal uid. NotFound when the database has no such user.
    pub fn resolve(user: &str) -> io::Result<Identity> {
        let found = match user.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(user),
        }
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("user '{user}': {e}")))?;
        let user_entry = found.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("unknown user '{user}'"))
        })?;
        let name = CString::new(user_entry.name.as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("user '{user}': bad name"),
            )
        })?;
        let groups = nix::unistd::getgrouplist(&name, user_entry.gid)
            .map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("groups of '{user}': {e}"),
                )
            })?
            .into_iter()
            .map(Gid::as_raw)
            .collect();
        Ok(Identity {
            name: user_entry.name,
            uid: user_entry.uid.as_raw(),
            gid: user_entry.gid.as_raw(),
            groups,
            home: user_entry.dir,
        })
    }

    /// The identity this process runs as (its effective uid's entry), for a process that keeps it.
    pub fn current() -> io::Result<Identity> {
        Identity::resolve(&nix::unistd::geteuid().as_raw().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_by_name_and_by_number() {
        let by_name = Identity::resolve("root").unwrap();
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        assert!(by_name.groups.contains(&0), "{by_name:?}");
        assert_eq!(Identity::resolve("0").unwrap(), by_name);
    }

    #[test]
    fn an_unknown_user_is_not_found_and_named() {
        let err = Identity::resolve("no-such-user-keelson").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.to_string(), "unknown user 'no-such-user-keelson'");
        let err = Identity::resolve("4000000000").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
