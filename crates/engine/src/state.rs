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

    /// The group state for a group whose resources are in `states` (none of them awaiting a
    /// restart); see [`GroupState::derive_members`].
    pub fn derive(
        failed_over: bool,
        states: impl IntoIterator<Item = ResourceState>,
    ) -> GroupState {
        GroupState::derive_members(failed_over, states.into_iter().map(|s| (s, false)))
    }

    /// The group state for a group whose members are `(state, restart_scheduled)`, where
    /// `restart_scheduled` says a Failed member only waits out its RestartDelay (a restart within
    /// its RestartThreshold is already decided). `failed_over` is true while the group has failed
    /// (over) and waits for its retry: it is then Failed whatever its resources do. Otherwise:
    /// empty → Offline; all Offline → Offline; any pending → Pending; all Online → Online; some
    /// Online → PartialOnline; none Online and some Failed for good → Failed; none Online and the
    /// only Failed ones about to restart → Pending (an ordinary restart is a transition, not a
    /// failure of the group).
    pub fn derive_members(
        failed_over: bool,
        members: impl IntoIterator<Item = (ResourceState, bool)>,
    ) -> GroupState {
        if failed_over {
            return GroupState::Failed;
        }
        let members: Vec<(ResourceState, bool)> = members.into_iter().collect();
        let all = |s: ResourceState| members.iter().all(|(x, _)| *x == s);
        let any = |s: ResourceState| members.iter().any(|(x, _)| *x == s);
        let failed_for_good = members
            .iter()
            .any(|(s, restarting)| *s == ResourceState::Failed && !restarting);
        if members.is_empty() || all(ResourceState::Offline) {
            GroupState::Offline
        } else if members.iter().any(|(s, _)| s.is_pending()) {
            GroupState::Pending
        } else if all(ResourceState::Online) {
            GroupState::Online
        } else if any(ResourceState::Online) {
            GroupState::PartialOnline
        } else if failed_for_good {
            GroupState::Failed
        } else {
            GroupState::Pending
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

    #[test]
    fn a_member_awaiting_its_restart_does_not_fail_the_group() {
        let derive =
            |f: bool, m: &[(ResourceState, bool)]| GroupState::derive_members(f, m.iter().copied());
        assert_eq!(derive(false, &[(Failed, true)]), GroupState::Pending);
        assert_eq!(
            derive(false, &[(Failed, true), (Offline, false)]),
            GroupState::Pending
        );
        assert_eq!(
            derive(false, &[(Failed, true), (Online, false)]),
            GroupState::PartialOnline
        );
        assert_eq!(
            derive(false, &[(Failed, true), (Failed, false)]),
            GroupState::Failed
        );
        assert_eq!(derive(false, &[(Failed, false)]), GroupState::Failed);
        assert_eq!(derive(true, &[(Failed, true)]), GroupState::Failed);
    }
}
