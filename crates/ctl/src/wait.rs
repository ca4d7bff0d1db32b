//! `--wait` for `online`/`offline`: polls the resource or group view every 20 ms until its state
//! is the target, failing with one line when it goes Failed on the way online or when the timeout
//! passes. Not sending the online/offline request itself.

use crate::client::Client;
use anyhow::{bail, Result};
use keelson_proto::view::{Group, Resource};
use keelson_proto::ControlRequest;
use std::time::{Duration, Instant};

/// How often the state is polled.
pub const POLL: Duration = Duration::from_millis(20);

/// What `--wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Online,
    Offline,
}

impl Target {
    pub fn state(self) -> &'static str {
        match self {
            Target::Online => "Online",
            Target::Offline => "Offline",
        }
    }
}

/// A resource or a group: how to fetch its view and how to call it in messages.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Resource,
    Group,
}

impl Kind {
    /// The state its view shows now (`unknown` if the view does not say).
    async fn state(self, client: &Client, name: &str) -> Result<String> {
        let name = name.to_string();
        let state = match self {
            Kind::Resource => {
                let view: Resource = client.view(ControlRequest::ResourceGet { name }).await?;
                view.state
            }
            Kind::Group => {
                let view: Group = client.view(ControlRequest::GroupGet { name }).await?;
                view.state
            }
        };
        Ok(match state.as_str() {
            "" => "unknown".to_string(),
            _ => state,
        })
    }

    pub fn noun(self) -> &'static str {
        match self {
            Kind::Resource => "resource",
            Kind::Group => "group",
        }
    }
}

/// What one observed state means for the wait.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Reached,
    Failed,
    Pending,
}

fn judge(state: &str, target: Target) -> Verdict {
    if state == target.state() {
        Verdict::Reached
    } else if target == Target::Online && state == "Failed" {
        Verdict::Failed
    } else {
        Verdict::Pending
    }
}

/// Polls until `name` reaches `target`; returns how long it took.
pub async fn until(
    client: &Client,
    kind: Kind,
    name: &str,
    target: Target,
    timeout: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let state = kind.state(client, name).await?;
        match judge(&state, target) {
            Verdict::Reached => return Ok(start.elapsed()),
            Verdict::Failed => bail!(
                "{} '{name}' failed while coming online (state Failed; see 'keelson events')",
                kind.noun()
            ),
            Verdict::Pending if start.elapsed() >= timeout => bail!(
                "{} '{name}' did not become {} within {} ms (state now {state})",
                kind.noun(),
                target.state(),
                timeout.as_millis()
            ),
            Verdict::Pending => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_ends_an_online_wait_but_not_an_offline_one() {
        assert_eq!(judge("Online", Target::Online), Verdict::Reached);
        assert_eq!(judge("OnlinePending", Target::Online), Verdict::Pending);
        assert_eq!(judge("PartialOnline", Target::Online), Verdict::Pending);
        assert_eq!(judge("Failed", Target::Online), Verdict::Failed);
        assert_eq!(judge("Offline", Target::Offline), Verdict::Reached);
        assert_eq!(judge("Failed", Target::Offline), Verdict::Pending);
        assert_eq!(judge("OfflinePending", Target::Offline), Verdict::Pending);
    }
}
