//! Waiting for groups to settle on a new owner (`group move --wait`, `node pause --drain`): polls
//! each group's view, on the node asked, until a newer placement than the one seen before the
//! request has no hand-off left and its owner reports the state the group had (Online stays
//! Online, Offline stays Offline). Fails with one line naming the group when its owner reports it
//! Failed or the timeout passes. Not the request itself, and not single-node `--wait` (wait.rs).

use crate::client::Client;
use crate::wait::POLL;
use anyhow::{bail, Result};
use keelson_proto::view::Group;
use keelson_proto::ControlRequest;
use std::time::{Duration, Instant};

/// A group as seen before a request that may move it.
#[derive(Debug, Clone)]
pub struct Before {
    pub name: String,
    pub owner: String,
    pub epoch: u64,
    /// The state it should have again on its new owner.
    pub target: &'static str,
}

impl Before {
    /// What `view` says, before the request.
    pub fn of(view: &Group) -> Before {
        let target = match view.owner_state.as_str() {
            "Online" | "PartialOnline" | "Pending" => "Online",
            _ => "Offline",
        };
        Before {
            name: view.name.clone(),
            owner: view.owner_node.clone(),
            epoch: view.placement_epoch,
            target,
        }
    }

    /// Fetches group `name`'s view and remembers it.
    pub async fn fetch(client: &Client, name: &str) -> Result<Before> {
        let view: Group = client
            .view(ControlRequest::GroupGet {
                name: name.to_string(),
            })
            .await?;
        Ok(Before::of(&view))
    }
}

/// Where one group is in its move.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Settled,
    Failed,
    Moving,
}

fn judge(before: &Before, now: &Group) -> Verdict {
    let untouched = now.placement_epoch == before.epoch && now.owner_node == before.owner;
    let placed = now.placement_epoch > before.epoch && now.releasing_from.is_empty();
    if now.owner_state == "Failed" && (placed || untouched) {
        Verdict::Failed
    } else if (placed || untouched) && now.owner_state == before.target {
        Verdict::Settled
    } else {
        Verdict::Moving
    }
}

/// Polls until every group in `before` has settled; returns each one's final view and how long
/// the slowest took.
pub async fn settle(
    client: &Client,
    before: &[Before],
    timeout: Duration,
) -> Result<(Vec<Group>, Duration)> {
    let start = Instant::now();
    let mut settled: Vec<Option<Group>> = vec![None; before.len()];
    loop {
        for (b, done) in before.iter().zip(settled.iter_mut()) {
            if done.is_some() {
                continue;
            }
            let view: Group = client
                .view(ControlRequest::GroupGet {
                    name: b.name.clone(),
                })
                .await?;
            match judge(b, &view) {
                Verdict::Settled => *done = Some(view),
                Verdict::Failed => bail!(
                    "group '{}' failed on node '{}' (see 'keelson events' there)",
                    b.name,
                    view.owner_node
                ),
                Verdict::Moving if start.elapsed() >= timeout => bail!(
                    "group '{}' did not settle within {} ms: owner '{}', reported state '{}'{}",
                    b.name,
                    timeout.as_millis(),
                    view.owner_node,
                    view.owner_state,
                    match view.releasing_from.as_str() {
                        "" => String::new(),
                        from => format!(", still being released by '{from}'"),
                    }
                ),
                Verdict::Moving => {}
            }
        }
        if settled.iter().all(Option::is_some) {
            return Ok((settled.into_iter().flatten().collect(), start.elapsed()));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(owner: &str, epoch: u64, releasing: &str, state: &str) -> Group {
        Group {
            name: "web".into(),
            owner_node: owner.into(),
            placement_epoch: epoch,
            releasing_from: releasing.into(),
            owner_state: state.into(),
            ..Group::default()
        }
    }

    #[test]
    fn a_move_settles_once_the_new_owner_reports_the_state_it_had() {
        let before = Before::of(&view("n1", 3, "", "Online"));
        assert_eq!(before.target, "Online");
        assert_eq!(
            judge(&before, &view("n1", 3, "", "Online")),
            Verdict::Settled
        );
        // Moved, still released by n1; then released but not started; then Online on n2.
        assert_eq!(
            judge(&before, &view("n2", 4, "n1", "Offline")),
            Verdict::Moving
        );
        assert_eq!(
            judge(&before, &view("n2", 5, "", "Offline")),
            Verdict::Moving
        );
        assert_eq!(
            judge(&before, &view("n2", 5, "", "Pending")),
            Verdict::Moving
        );
        assert_eq!(
            judge(&before, &view("n2", 5, "", "Online")),
            Verdict::Settled
        );
        assert_eq!(
            judge(&before, &view("n2", 5, "", "Failed")),
            Verdict::Failed
        );
        // A group that was offline is settled offline on its new owner.
        let offline = Before::of(&view("n1", 3, "", "Offline"));
        assert_eq!(
            judge(&offline, &view("n2", 5, "", "Offline")),
            Verdict::Settled
        );
        assert_eq!(
            judge(&offline, &view("n2", 4, "n1", "Offline")),
            Verdict::Moving
        );
    }
}
