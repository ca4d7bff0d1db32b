//! Timers the engine asks the shell to run. Not a timer wheel: the shell sleeps until `at` and feeds
//! `Event::TimerFired` back; the engine ignores any timer it has since replaced or cancelled. Not
//! health polling: the host runs that by the plan of `Command::Poll`.

use crate::ids::{GroupId, TimerId};
use keelson_types::ResourceId;
use serde::{Deserialize, Serialize};

/// What a timer is for. At most one timer of each kind is live at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimerKind {
    /// `PendingTimeout` of an Online/Offline call.
    PendingTimeout(ResourceId),
    /// `RestartDelay` has passed: restart the failed resource.
    Restart(ResourceId),
    /// `RetryPeriodOnFailure` has passed: try the failed resource again.
    Retry(ResourceId),
    /// `RetryPeriodOnFailure` has passed for a failed group: try the group again.
    GroupRetry(GroupId),
}

/// One scheduled timer: hand it back unchanged in `Event::TimerFired`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timer {
    pub id: TimerId,
    pub kind: TimerKind,
}
