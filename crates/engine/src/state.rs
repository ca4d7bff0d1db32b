//! Resource and group states with their exact display strings. Not the transitions: those live in the
//! engine's handlers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The state of one resource, as WSFC names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceState {
    Offline,
    OnlinePending,
    Online,
    OfflinePending,
    Failed,
}

impl ResourceState {
    /// Every state, in display order.
    pub const ALL: [ResourceState; 5] = [
        ResourceState::Offline,
        ResourceState::OnlinePending,
        ResourceState::Online,
        ResourceState::OfflinePending,
        ResourceState::Failed,
    ];

    /// The exact state string (`Offline`, `OnlinePending`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Offline => "Offline",
            ResourceState::OnlinePending => "OnlinePending",
            ResourceState::Online => "Online",
            ResourceState::OfflinePending => "OfflinePending",
            ResourceState::Failed => "Failed",
        }
    }

    /// OnlinePending or OfflinePending: a state call is under way.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            ResourceState::OnlinePending | ResourceState::OfflinePending
        )
    }
}

impl fmt::Display for ResourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one group, derived from its resources (see `GroupState::derive`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupState {
    Online,
    Offline,
    PartialOnline,
    Failed,
    Pending,
}

impl GroupState {
    /// Every state, in display order.
    pub const ALL: [GroupState; 5] = [
        GroupState::Online,
        GroupState::Offline,
        GroupState::PartialOnline,
        GroupState::Failed,
        GroupState::Pending,
    ];

    /// The exact state string (`Online`, `PartialOnline`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Online => "Online",
            GroupState::Offline => "Offline",
            GroupState::PartialOnline => "PartialOnline",
            GroupState::Failed => "Failed",
            GroupState::Pending => "Pending",
        }
    }

    /// The group state for a group whose resources are in `states`. `failed_over` is true while the
    /// group has failed (over) and waits for its retry: it is then Failed whatever its resources do.
    /// Otherwise: empty → Offline; any pending → Pending; all Online → Online; all Offline → Offline;
    /// some Online → PartialOnline; none Online but some Failed → Failed.
    pub fn derive(
        failed_over: bool,
        states: impl IntoIterator<Item = ResourceState>,
    ) -> GroupState {
        if failed_over {
            return GroupState::Failed;
        }
        let states: Vec<ResourceState> = states.into_iter().collect();
        let all = |s: ResourceState| states.iter().all(|x| *x == s);
        let any = |s: ResourceState| states.contains(&s);
        if states.is_empty() || all(ResourceState::Offline) {
            GroupState::Offline
        } else if states.iter().any(|s| s.is_pending()) {
            GroupState::Pending
        } else if all(ResourceState::Online) {
            GroupState::Online
        } else if any(ResourceState::Online) {
            GroupState::PartialOnline
        } else {
            GroupState::Failed
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResourceState::*;

    #[test]
    fn strings_are_exact() {
        let r: Vec<String> = ResourceState::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            r,
            [
                "Offline",
                "OnlinePending",
                "Online",
                "OfflinePending",
                "Failed"
            ]
        );
        let g: Vec<String> = GroupState::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            g,
            ["Online", "Offline", "PartialOnline", "Failed", "Pending"]
        );
    }

    #[test]
    fn group_state_derivation() {
        assert_eq!(GroupState::derive(false, []), GroupState::Offline);
        assert_eq!(
            GroupState::derive(false, [Online, Online]),
            GroupState::Online
        );
        assert_eq!(
            GroupState::derive(false, [Offline, Offline]),
            GroupState::Offline
        );
        assert_eq!(
            GroupState::derive(false, [Online, Offline]),
            GroupState::PartialOnline
        );
        assert_eq!(
            GroupState::derive(false, [Online, Failed]),
            GroupState::PartialOnline
        );
        assert_eq!(
            GroupState::derive(false, [Offline, Failed]),
            GroupState::Failed
        );
        assert_eq!(
            GroupState::derive(false, [Online, OnlinePending]),
            GroupState::Pending
        );
        assert_eq!(
            GroupState::derive(true, [Online, OfflinePending]),
            GroupState::Failed
        );
    }
}
