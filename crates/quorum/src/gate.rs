//! The quorum gate: remembers the last count, admits or refuses an administrator change with the
//! count's one line, and yields event 1177 once each time the node loses quorum. Pure. Not the count
//! (votes.rs) and not the logging itself (the caller writes the event and the line).

use keelson_netft::EventLevel;

use crate::votes::QuorumVerdict;

/// The event a node logs when it loses quorum, with WSFC's id and wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumEvent {
    pub id: u32,
    pub level: EventLevel,
    pub message: String,
}

/// Event 1177: quorum lost.
pub const EVENT_QUORUM_LOST: u32 = 1177;

/// Event 1177, with the count that lost quorum.
pub fn event_1177(verdict: &QuorumVerdict) -> QuorumEvent {
    QuorumEvent {
        id: EVENT_QUORUM_LOST,
        level: EventLevel::Critical,
        message: format!(
            "The Cluster service is shutting down because quorum was lost. This could be due to the loss of network connectivity between some or all nodes in the cluster, or a failover of the witness disk. Run the Validate a Configuration wizard to check your network configuration. If the condition persists, check for hardware or software errors related to the network adapter. Also check for failures in any other network components to which the node is connected such as hubs, switches, or bridges. ({verdict})"
        ),
    }
}

/// Whether administrator changes are admitted, from the last count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumGate {
    last: Option<QuorumVerdict>,
}

impl Default for QuorumGate {
    fn default() -> Self {
        QuorumGate::new()
    }
}

impl QuorumGate {
    /// A gate that has seen no count yet (and admits nothing until it has).
    pub fn new() -> QuorumGate {
        QuorumGate { last: None }
    }

    /// Records a new count; event 1177 if quorum was held before and is not now.
    pub fn update(&mut self, verdict: QuorumVerdict) -> Option<QuorumEvent> {
        let was_in = self.last.as_ref().is_some_and(QuorumVerdict::in_quorum);
        let event = (was_in && !verdict.in_quorum()).then(|| event_1177(&verdict));
        self.last = Some(verdict);
        event
    }

    /// Ok for an administrator change, or the one line it is refused with.
    pub fn admit(&self) -> Result<(), String> {
        match &self.last {
            None => Err("no quorum yet: this node has not counted the cluster's votes; administrator changes are refused".into()),
            Some(v) => v.refusal().map_or(Ok(()), Err),
        }
    }

    /// The last count.
    pub fn last(&self) -> Option<&QuorumVerdict> {
        self.last.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::votes::{NodeVoter, QuorumInput};

    fn verdict(reach_other: bool, witness: bool) -> QuorumVerdict {
        QuorumInput {
            this_node: 1,
            nodes: vec![
                NodeVoter {
                    id: 1,
                    name: "node1".into(),
                },
                NodeVoter {
                    id: 2,
                    name: "node2".into(),
                },
            ],
            has_witness: true,
            reachable: if reach_other { [2].into() } else { [].into() },
            witness_reachable: witness,
        }
        .count()
    }

    #[test]
    fn losing_quorum_refuses_changes_and_logs_1177_once() {
        let mut gate = QuorumGate::new();
        assert!(gate.admit().unwrap_err().starts_with("no quorum yet"));
        assert_eq!(gate.update(verdict(true, true)), None);
        assert_eq!(gate.admit(), Ok(()));
        assert_eq!(
            gate.update(verdict(false, true)),
            None,
            "2 of 3 is still quorum"
        );
        assert_eq!(gate.admit(), Ok(()));

        let event = gate.update(verdict(false, false)).expect("event 1177");
        assert_eq!(event.id, 1177);
        assert_eq!(event.level, EventLevel::Critical);
        assert!(event
            .message
            .starts_with("The Cluster service is shutting down because quorum was lost."));
        assert!(
            event
                .message
                .ends_with("(no quorum: 1 of 3 votes (node2, witness unreachable), 2 needed)"),
            "{}",
            event.message
        );
        assert_eq!(
            gate.admit().unwrap_err(),
            "no quorum: 1 of 3 votes (node2, witness unreachable), 2 needed; administrator changes are refused"
        );
        assert_eq!(gate.update(verdict(false, false)), None, "once per loss");

        assert_eq!(gate.update(verdict(true, false)), None);
        assert_eq!(gate.admit(), Ok(()));
        assert!(
            gate.update(verdict(false, false)).is_some(),
            "a second loss logs again"
        );
    }
}
