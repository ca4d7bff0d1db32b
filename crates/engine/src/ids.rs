//! Engine-assigned identifiers for groups, hosts and timers (resources use `keelson_types::ResourceId`).
//! Plain counters, so a replay of the same events yields the same ids. Not names: admin events use names.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One group, numbered from 1 in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(pub u64);

/// Host slots are shared with crates/host's pool, so they live in crates/types.
pub use keelson_types::HostId;

/// One scheduled timer, numbered from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimerId(pub u64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group#{}", self.0)
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer#{}", self.0)
    }
}
