//! The error a plugin's entry points return: a message and what kind of failure it is, which
//! becomes the entry point's status code (`KEELSON_ERROR`, `KEELSON_MISCONFIGURED`, …). A `String`
//! or `&str` converts into a generic error, so `Err("…".into())` and `?` on `Result<_, String>` keep
//! working. Not the conversion at the ABI (trampoline.rs).

use keelson_abi::{
    KEELSON_ERROR, KEELSON_INVALID, KEELSON_MISCONFIGURED, KEELSON_NOT_INSTALLED,
    KEELSON_NOT_RUNNING,
};
use std::fmt;

/// What kind of failure an [`Error`] is; each is one status code of the C ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Generic (`KEELSON_ERROR`; from `open`/`validate`, `KEELSON_INVALID`): the restart policy
    /// applies.
    Error,
    /// The parameters were rejected (`KEELSON_INVALID`).
    Invalid,
    /// The configuration is wrong (`KEELSON_MISCONFIGURED`, OCF's ERR_CONFIGURED): never restarted;
    /// the resource goes Failed at once with the message.
    Misconfigured,
    /// This node cannot run it (`KEELSON_NOT_INSTALLED`): not retried here; in a cluster the group
    /// fails over at once, on a single node it stays Failed.
    NotInstalled,
    /// From a health check: the resource is cleanly down (`KEELSON_NOT_RUNNING`). A health failure,
    /// logged as "not running"; the restart policy applies.
    NotRunning,
}

/// A failed entry point: its kind and its message (shown in the cluster log and `resource get`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// A generic failure.
    pub fn new(message: impl Into<String>) -> Error {
        Error::with_kind(ErrorKind::Error, message)
    }

    pub fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Rejected parameters (`KEELSON_INVALID`).
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::with_kind(ErrorKind::Invalid, message)
    }

    /// A configuration error: the resource is never restarted (`KEELSON_MISCONFIGURED`).
    pub fn misconfigured(message: impl Into<String>) -> Error {
        Error::with_kind(ErrorKind::Misconfigured, message)
    }

    /// This node cannot run the resource (`KEELSON_NOT_INSTALLED`).
    pub fn not_installed(message: impl Into<String>) -> Error {
        Error::with_kind(ErrorKind::NotInstalled, message)
    }

    /// From a health check: cleanly down (`KEELSON_NOT_RUNNING`).
    pub fn not_running(message: impl Into<String>) -> Error {
        Error::with_kind(ErrorKind::NotRunning, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status code of this error returned by an entry point on an open resource.
    pub(crate) fn call_status(&self) -> i32 {
        match self.kind {
            ErrorKind::Error => KEELSON_ERROR,
            ErrorKind::Invalid => KEELSON_INVALID,
            ErrorKind::Misconfigured => KEELSON_MISCONFIGURED,
            ErrorKind::NotInstalled => KEELSON_NOT_INSTALLED,
            ErrorKind::NotRunning => KEELSON_NOT_RUNNING,
        }
    }

    /// The status code of this error returned by `open` or `validate`, where a generic error has
    /// always meant rejected parameters.
    pub(crate) fn params_status(&self) -> i32 {
        match self.kind {
            ErrorKind::Error => KEELSON_INVALID,
            _ => self.call_status(),
        }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::new(message)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(e.to_string())
    }
}

impl PartialEq<&str> for Error {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}

/// Reads as its message, so code (and tests) written when errors were plain `String`s keep working.
impl std::ops::Deref for Error {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_generic_errors_and_each_kind_has_its_code() {
        let e: Error = "boom".into();
        assert_eq!(
            (e.kind(), e.call_status(), e.params_status()),
            (ErrorKind::Error, 1, 3)
        );
        assert_eq!(Error::from(format!("x{}", 1)), "x1");
        assert_eq!(Error::misconfigured("m").call_status(), 4);
        assert_eq!(Error::not_installed("n").params_status(), 5);
        assert_eq!(Error::not_running("r").call_status(), 6);
        assert_eq!(Error::invalid("i").call_status(), 3);
        assert_eq!(Error::misconfigured("port=0").to_string(), "port=0");
    }
}
