//! The plugin entry points a host can call, with the upper-case names the cluster log uses.
//! Not the call itself: deadlines and results live in crates/proto.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One entry point of a resource type's function table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Op {
    Open = 1,
    Close = 2,
    Online = 3,
    Offline = 4,
    LooksAlive = 5,
    IsAlive = 6,
    Terminate = 7,
    Validate = 8,
}

impl Op {
    /// Every op, in a stable order.
    pub const ALL: [Op; 8] = [
        Op::Open,
        Op::Close,
        Op::Online,
        Op::Offline,
        Op::LooksAlive,
        Op::IsAlive,
        Op::Terminate,
        Op::Validate,
    ];

    /// The name as the cluster log spells it: `LOOKSALIVE`, `ONLINE`, …
    pub fn upper(self) -> &'static str {
        match self {
            Op::Open => "OPEN",
            Op::Close => "CLOSE",
            Op::Online => "ONLINE",
            Op::Offline => "OFFLINE",
            Op::LooksAlive => "LOOKSALIVE",
            Op::IsAlive => "ISALIVE",
            Op::Terminate => "TERMINATE",
            Op::Validate => "VALIDATE",
        }
    }

    /// The snake-case name used in parameters and JSON: `looks_alive`, `online`, …
    pub fn snake(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Close => "close",
            Op::Online => "online",
            Op::Offline => "offline",
            Op::LooksAlive => "looks_alive",
            Op::IsAlive => "is_alive",
            Op::Terminate => "terminate",
            Op::Validate => "validate",
        }
    }

    /// Inverse of `as u8`, for the async-signal-safe crash path.
    pub fn from_u8(v: u8) -> Option<Op> {
        Op::ALL.into_iter().find(|op| *op as u8 == v)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.upper())
    }
}

/// A string that names no entry point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownOp(pub String);

impl fmt::Display for UnknownOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown entry point '{}' (expected one of: open, close, online, offline, looks_alive, is_alive, terminate, validate)",
            self.0
        )
    }
}

impl std::error::Error for UnknownOp {}

impl FromStr for Op {
    type Err = UnknownOp;

    /// Accepts the snake-case or upper-case name, case-insensitively (`looks_alive`, `LOOKSALIVE`).
    fn from_str(s: &str) -> Result<Op, UnknownOp> {
        let folded: String = s.chars().filter(|c| *c != '_' && *c != '-').collect();
        Op::ALL
            .into_iter()
            .find(|op| op.upper().eq_ignore_ascii_case(&folded))
            .ok_or_else(|| UnknownOp(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for op in Op::ALL {
            assert_eq!(op.snake().parse::<Op>().unwrap(), op);
            assert_eq!(op.upper().parse::<Op>().unwrap(), op);
            assert_eq!(Op::from_u8(op as u8), Some(op));
        }
        assert_eq!(Op::from_u8(0), None);
        assert!("lookalive".parse::<Op>().is_err());
    }
}
