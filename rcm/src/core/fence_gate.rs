//! The core's facet for fencing lost members (the cluster's FenceAgent). On the raft leader, a
//! member that goes Down while a FenceAgent is set is fenced at once, beside its lease timer; a
//! failed attempt is logged (component FENCE), raised (event 1700) and retried after
//! FenceRetryDelay, forever; a success is logged and raised (event 1701). The placer hears that
//! member's `LeaseExpired` only once its lease has run out AND it was fenced. A member Up again
//! before its fence, or this node losing the lead, stops it (a new leader fences again: it cannot
//! know whether the old one did). Attempts run off the core's thread and report back as
//! `Notice::Fence`. Not the decisions (cluster/fence/ledger.rs), not running the agent
//! (cluster/fence.rs), not the lease (placement_gate.rs).

use super::Core;
use crate::cluster::fence::config::FenceConfig;
use crate::cluster::fence::ledger::{FenceAction, FenceInput, FenceLedger, StopReason};
use crate::cluster::fence::FenceRequest;
use crate::cluster::heartbeat::Notice;
use keelson_engine::placement::PlacementEvent;
use keelson_engine::EventLevel;
use std::time::Duration;

/// A fence attempt failed (it is retried).
pub const FENCE_FAILED: u32 = 1700;
/// A lost member was fenced.
pub const NODE_FENCED: u32 = 1701;

/// The leader's fencing of lost members.
pub(super) struct Fencing {
    ledger: FenceLedger,
}

impl Default for Fencing {
    fn default() -> Self {
        let delay = FenceConfig::default().retry_delay_ms;
        Fencing {
            ledger: FenceLedger::new(u64::from(delay)),
        }
    }
}

impl Core {
    /// Member `id` went Down: on the leader, with a FenceAgent set, fencing it starts.
    pub(super) fn fence_node_down(&mut self, id: u64) {
        let leads = self.cluster.as_ref().is_some_and(|c| c.is_leader());
        let Some(node) = self.member_name(id).filter(|_| leads) else {
            return;
        };
        // A configuration that cannot be read fences anyway: the attempt says why it fails.
        if self.fence_config().is_ok_and(|c| !c.enabled()) {
            return;
        }
        self.fence(FenceInput::NodeDown { node });
    }

    /// Member `id` is Up again: a fence not done yet stops.
    pub(super) fn fence_node_up(&mut self, id: u64) {
        if let Some(node) = self.member_name(id) {
            self.fence(FenceInput::NodeUp { node });
        }
    }

    /// This node does not lead (any more): every fence in flight stops.
    pub(super) fn fence_not_leading(&mut self) {
        self.fence(FenceInput::LeadershipLost);
    }

    /// `node`'s lease ran out: the placer hears it now if `node` is fenced or not being fenced,
    /// else once the fence succeeds.
    pub(super) fn fence_lease_expired(&mut self, node: String) {
        self.fence(FenceInput::LeaseExpired { node });
    }

    /// An attempt ended or a retry is due (`Notice::Fence`).
    pub(super) fn fence_notice(&mut self, input: FenceInput) {
        self.fence(input);
    }

    fn fence(&mut self, input: FenceInput) {
        if let Ok(config) = self.fence_config() {
            let delay = u64::from(config.retry_delay_ms);
            self.fencing.ledger.set_retry_delay(delay);
        }
        let now = self.now();
        let actions = self.fencing.ledger.handle(now, input);
        for action in actions {
            self.fence_act(action);
        }
    }

    fn fence_config(&self) -> Result<FenceConfig, String> {
        let Some(cluster) = &self.cluster else {
            return Ok(FenceConfig::default());
        };
        FenceConfig::from_properties(&cluster.info().properties)
            .map_err(|e| format!("the cluster's fencing properties: {e}"))
    }

    fn fence_act(&mut self, action: FenceAction) {
        match action {
            FenceAction::Run { node, attempt, run } => self.fence_attempt(node, attempt, run),
            FenceAction::Failed {
                node,
                attempt,
                reason,
                retry_in_ms,
            } => {
                tracing::error!(
                    component = "FENCE",
                    "Fencing node '{node}' failed (attempt {attempt}): {reason}. Retrying in \
                     {retry_in_ms} ms; its groups stay where they are until it is fenced"
                );
                let message = format!(
                    "Fencing node '{node}' failed (attempt {attempt}): {reason}; retried in {retry_in_ms} ms"
                );
                self.events
                    .raise(FENCE_FAILED, EventLevel::Error, message, None, None);
                self.fence_later(FenceInput::RetryDue { node, attempt }, retry_in_ms);
            }
            FenceAction::Rearm {
                node,
                attempt,
                in_ms,
            } => self.fence_later(FenceInput::RetryDue { node, attempt }, in_ms),
            FenceAction::Fenced {
                node,
                attempt,
                after_ms,
                output,
            } => {
                tracing::warn!(
                    component = "FENCE",
                    "Node '{node}' was fenced (attempt {attempt}, {after_ms} ms after fencing \
                     began); the agent said '{output}'"
                );
                let message = format!("Node '{node}' was fenced (attempt {attempt})");
                self.events
                    .raise(NODE_FENCED, EventLevel::Information, message, None, None);
            }
            FenceAction::TakeoverWaits { node, attempts } => tracing::info!(
                component = "FENCE",
                "Node '{node}''s quorum lease has expired but it is not fenced yet ({attempts} \
                 attempts so far): its groups wait for the fence"
            ),
            FenceAction::Takeover { node } => self.place(PlacementEvent::LeaseExpired { node }),
            FenceAction::Stopped {
                node,
                attempts,
                why,
            } => fence_stopped(&node, attempts, why),
        }
    }

    /// Starts attempt `attempt` (run `run`) against `node` off the core's thread; its end comes
    /// back as a notice.
    fn fence_attempt(&mut self, node: String, attempt: u32, run: u64) {
        let config = match self.fence_config() {
            Ok(config) => config,
            Err(reason) => {
                let result = Err(reason);
                return self.fence(FenceInput::AttemptDone { node, run, result });
            }
        };
        if !config.enabled() {
            return self.fence(FenceInput::AgentRemoved { node });
        }
        let request = FenceRequest {
            command: config.command,
            options: config.options,
            node: node.clone(),
            timeout: Duration::from_millis(u64::from(config.timeout_ms)),
        };
        tracing::info!(
            component = "FENCE",
            "Fencing node '{node}' (attempt {attempt}): running '{}' with action=off plug={node} \
             (timeout {} ms)",
            request.command.join(" "),
            config.timeout_ms
        );
        let tx = self.notices_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = request.run();
            let done = FenceInput::AttemptDone { node, run, result };
            // A core that stopped hears nothing more.
            let _ = tx.send(Notice::Fence(done));
        });
    }

    /// `input` for the ledger after `ms`.
    fn fence_later(&self, input: FenceInput, ms: u64) {
        let tx = self.notices_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let _ = tx.send(Notice::Fence(input));
        });
    }
}

fn fence_stopped(node: &str, attempts: u32, why: StopReason) {
    match why {
        StopReason::NodeUp => tracing::warn!(
            component = "FENCE",
            "Node '{node}' is Up again before it was fenced ({attempts} attempts): fencing it stops"
        ),
        StopReason::NotLeader => tracing::info!(
            component = "FENCE",
            "This node no longer leads: it stops fencing node '{node}' after {attempts} attempts \
             (the next leader fences it again)"
        ),
        StopReason::AgentRemoved => tracing::warn!(
            component = "FENCE",
            "FenceAgent is no longer set: fencing node '{node}' stops after {attempts} attempts \
             and its groups may move once its lease has expired (the administrator's call)"
        ),
    }
}
