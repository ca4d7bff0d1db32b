//! The quorum calculator: given the voters (every node, plus the witness if there is one) and which of
//! them this node can count on, whether this node is in quorum, and the one line that says why not.
//! Pure: no I/O, no clock. Not how reachability is learned (NetFT and raft do that) and not what to do
//! without quorum (the caller refuses administrator changes and logs event 1177).

use std::collections::BTreeSet;
use std::fmt;

use keelson_raft::NodeId;

/// One voting node: its raft id and the name an administrator knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVoter {
    pub id: NodeId,
    pub name: String,
}

/// Everything the count needs, as this node sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInput {
    /// The node doing the count (it always counts its own vote, if it is a voter).
    pub this_node: NodeId,
    /// Every voting node, this one included.
    pub nodes: Vec<NodeVoter>,
    /// Whether the cluster has a witness vote.
    pub has_witness: bool,
    /// The other nodes this node can reach now (ids not in `nodes` are ignored).
    pub reachable: BTreeSet<NodeId>,
    /// Whether the witness voter runs on this node or on a node this node can reach.
    pub witness_reachable: bool,
}

/// The outcome of one count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVerdict {
    /// Votes this node can count on (its own included).
    pub votes: usize,
    /// All votes in the cluster.
    pub total: usize,
    /// The voters it cannot count on, by name (`witness` for the witness), in voter order.
    pub missing: Vec<String>,
    /// Set when this node is not a voter at all.
    pub not_a_voter: bool,
}

/// What the witness is called in a verdict.
pub const WITNESS_NAME: &str = "witness";

impl QuorumInput {
    /// Counts the votes.
    pub fn count(&self) -> QuorumVerdict {
        let not_a_voter = !self.nodes.iter().any(|n| n.id == self.this_node);
        let mut votes = 0;
        let mut missing = Vec::new();
        for node in &self.nodes {
            let counted =
                !not_a_voter && (node.id == self.this_node || self.reachable.contains(&node.id));
            if counted {
                votes += 1;
            } else {
                missing.push(node.name.clone());
            }
        }
        if self.has_witness {
            if self.witness_reachable && !not_a_voter {
                votes += 1;
            } else {
                missing.push(WITNESS_NAME.to_string());
            }
        }
        QuorumVerdict {
            votes,
            total: self.nodes.len() + usize::from(self.has_witness),
            missing,
            not_a_voter,
        }
    }
}

impl QuorumVerdict {
    /// A strict majority of all votes.
    pub fn in_quorum(&self) -> bool {
        !self.not_a_voter && self.votes * 2 > self.total
    }

    /// Votes needed for quorum.
    pub fn needed(&self) -> usize {
        self.total / 2 + 1
    }

    /// The one line an administrator change is refused with, or None in quorum.
    pub fn refusal(&self) -> Option<String> {
        (!self.in_quorum()).then(|| format!("{self}; administrator changes are refused"))
    }
}

impl fmt::Display for QuorumVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.in_quorum() {
            "in quorum"
        } else {
            "no quorum"
        };
        if self.not_a_voter {
            return write!(
                f,
                "no quorum: this node is not a voting member of the cluster"
            );
        }
        write!(f, "{state}: {} of {} votes", self.votes, self.total)?;
        if !self.missing.is_empty() {
            write!(f, " ({} unreachable)", self.missing.join(", "))?;
        }
        if !self.in_quorum() {
            write!(f, ", {} needed", self.needed())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[NodeId]) -> Vec<NodeVoter> {
        ids.iter()
            .map(|&id| NodeVoter {
                id,
                name: format!("node{id}"),
            })
            .collect()
    }

    fn input(this: NodeId, ids: &[NodeId], witness: Option<bool>, reach: &[NodeId]) -> QuorumInput {
        QuorumInput {
            this_node: this,
            nodes: nodes(ids),
            has_witness: witness.is_some(),
            reachable: reach.iter().copied().collect(),
            witness_reachable: witness.unwrap_or(false),
        }
    }

    #[test]
    fn two_nodes_and_a_witness_survive_the_loss_of_either_node() {
        for (this, other) in [(1, 2), (2, 1)] {
            let v = input(this, &[1, 2], Some(true), &[]).count();
            assert!(v.in_quorum(), "{v}");
            assert_eq!((v.votes, v.total), (2, 3));
            assert_eq!(v.missing, vec![format!("node{other}")]);
            assert_eq!(v.refusal(), None);
        }
    }

    #[test]
    fn the_exact_refusal_line_names_every_missing_voter() {
        let v = input(2, &[1, 2], Some(false), &[]).count();
        assert!(!v.in_quorum());
        assert_eq!(
            v.refusal().unwrap(),
            "no quorum: 1 of 3 votes (node1, witness unreachable), 2 needed; administrator changes are refused"
        );
    }

    #[test]
    fn two_nodes_without_a_witness_need_both() {
        assert!(!input(1, &[1, 2], None, &[]).count().in_quorum());
        let both = input(1, &[1, 2], None, &[2]).count();
        assert!(both.in_quorum());
        assert_eq!(both.to_string(), "in quorum: 2 of 2 votes");
    }

    #[test]
    fn a_majority_is_strict() {
        // 4 nodes: 2 is half, not a majority; 3 is.
        assert!(!input(1, &[1, 2, 3, 4], None, &[2]).count().in_quorum());
        assert!(input(1, &[1, 2, 3, 4], None, &[2, 3]).count().in_quorum());
        // 4 nodes + witness: 3 of 5.
        assert!(input(1, &[1, 2, 3, 4], Some(true), &[2])
            .count()
            .in_quorum());
        assert!(!input(1, &[1, 2, 3, 4], Some(false), &[2])
            .count()
            .in_quorum());
        // A single node is its own majority.
        assert!(input(1, &[1], None, &[]).count().in_quorum());
    }

    #[test]
    fn only_voters_count_and_a_non_voter_has_no_quorum() {
        let v = input(1, &[1, 2, 3], None, &[9, 8]).count();
        assert_eq!(v.votes, 1, "unknown ids do not vote");
        let outsider = input(7, &[1, 2, 3], Some(true), &[1, 2, 3]).count();
        assert!(!outsider.in_quorum());
        assert_eq!(
            outsider.refusal().unwrap(),
            "no quorum: this node is not a voting member of the cluster; administrator changes are refused"
        );
    }

    #[test]
    fn the_count_is_the_size_of_a_majority_for_every_small_cluster() {
        for n in 1..=6u64 {
            let ids: Vec<NodeId> = (1..=n).collect();
            for witness in [None, Some(true)] {
                for k in 0..n {
                    let reach: Vec<NodeId> = (2..=k + 1).filter(|id| *id <= n).collect();
                    let v = input(1, &ids, witness, &reach).count();
                    let total = n as usize + usize::from(witness.is_some());
                    let votes = reach.len() + 1 + usize::from(witness.is_some());
                    assert_eq!((v.votes, v.total), (votes, total));
                    assert_eq!(v.in_quorum(), 2 * votes > total, "{v}");
                }
            }
        }
    }
}
