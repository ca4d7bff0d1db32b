//! `keelson cluster quorum [--witness PATH | --witness none]`: shows the quorum model in WSFC's
//! words, the votes as this node counts them and the witness with its lease; sets a witness (the
//! path checked, an id reserved, this node taking the lease and hosting the witness voter, the
//! configuration committed, the voter admitted through the leader) or removes it (the voter out of
//! the membership, then the configuration). Every refusal is one line, and a failure part-way
//! undoes what was done. Not the lease and the voter (cluster/witness.rs) nor the count
//! (crates/quorum).

use std::path::Path;
use std::time::Duration;

use super::Core;
use crate::cluster::witness::describe;
use crate::cluster::Cluster;
use crate::views::json_reply;
use keelson_proto::view::{Quorum, WitnessLease};
use keelson_proto::ControlReply;
use keelson_quorum::{
    LeaseTimings, NodeVoter, QuorumConfig, QuorumInput, QuorumVerdict, WitnessSpec, WITNESS_NAME,
};
use keelson_raft::{NodeId, Request, WitnessConfig, WitnessKind};

/// How long, past the lease's takeover wait, a new witness may take to be hosted here.
const HOSTING_SLACK: Duration = Duration::from_secs(10);
/// How long the nodes may take to elect a leader after the witness voter, leading, is removed: a
/// follower campaigns after its election timeout and the other grants its vote only once the old
/// leader's lease (the longest election timeout) has run out, so up to two election timeouts (10 s
/// at most each at the NetFT defaults), plus a margin.
const LEADER_WAIT: Duration = Duration::from_secs(25);

fn spec_of(config: &WitnessConfig) -> WitnessSpec {
    let path = Path::new(&config.path).to_path_buf();
    match config.kind {
        WitnessKind::FileShare => WitnessSpec::FileShare(path),
        WitnessKind::Disk => WitnessSpec::Disk(path),
    }
}

impl Core {
    /// `keelson cluster quorum [--witness PATH|none]`.
    pub(super) fn cluster_quorum(
        &mut self,
        witness: Option<String>,
    ) -> Result<ControlReply, String> {
        match witness.as_deref() {
            None => json_reply(&self.quorum_view()?),
            Some("none") => self.remove_witness(),
            Some(path) => self.add_witness(path),
        }
    }

    /// The votes as this node counts them now (as `recount` does).
    fn count_votes(&self, cluster: &Cluster) -> QuorumVerdict {
        let (_, me) = cluster.me();
        QuorumInput {
            this_node: me,
            nodes: cluster
                .voters()
                .into_iter()
                .map(|(id, name)| NodeVoter { id, name })
                .collect(),
            has_witness: cluster.witness().has_vote(),
            reachable: self
                .peers
                .iter()
                .filter(|(id, s)| **s == keelson_netft::NodeState::Up && self.hearing.contains(id))
                .map(|(id, _)| *id)
                .collect(),
            witness_reachable: cluster.witness().reachable(
                &self.peers,
                &self.hearing,
                &self.notices_tx,
            ),
        }
        .count()
    }

    fn quorum_view(&self) -> Result<Quorum, String> {
        let cluster = self.in_cluster()?;
        let info = cluster.info();
        let seen = cluster.witness().seen();
        let name_of = |id: NodeId| {
            info.nodes
                .values()
                .find(|n| n.id == Some(id))
                .map(|n| n.name.clone())
                .unwrap_or_else(|| format!("node {id}"))
        };
        let verdict = self.count_votes(cluster);
        let mut voters: Vec<String> = cluster.voters().into_iter().map(|(_, n)| n).collect();
        if cluster.witness().has_vote() {
            voters.push(WITNESS_NAME.to_string());
        }
        let lease = match (seen.record, seen.held_generation) {
            (_, Some(generation)) => Some(WitnessLease {
                expires_in_ms: None,
                generation,
                holder: name_of(cluster.me().1),
                released: false,
            }),
            (Some(r), None) => Some(WitnessLease {
                expires_in_ms: Some(r.expiry_ms as i64 - crate::clusterlog::unix_ms() as i64),
                generation: r.generation,
                holder: name_of(r.holder),
                released: r.released,
            }),
            (None, None) => None,
        };
        Ok(Quorum {
            cluster: info.name.clone(),
            lease,
            model: QuorumConfig {
                witness: info.witness.as_ref().map(spec_of),
            }
            .to_string(),
            needed: verdict.needed() as u64,
            quorum_ok: verdict.in_quorum(),
            verdict: verdict.to_string(),
            voters,
            votes: verdict.votes as u64,
            votes_total: verdict.total as u64,
            witness_host: seen.holder.map(name_of).unwrap_or_default(),
            witness_id: info.witness.as_ref().map_or(0, |w| w.id),
        })
    }

    /// `--witness PATH`: a directory (file-share witness) or a block device (disk witness).
    fn add_witness(&mut self, path: &str) -> Result<ControlReply, String> {
        let spec = WitnessSpec::from_path(Path::new(path))
            .map_err(|e| format!("{e}; nothing was changed"))?;
        let cluster = self.in_cluster()?;
        self.admit_cluster_change()?;
        let info = cluster.committed_info()?;
        if let Some(old) = &info.witness {
            return Err(if old.path == path {
                format!(
                    "the cluster already has the {}; nothing was changed",
                    describe(old)
                )
            } else {
                format!(
                    "the cluster already has the {}: remove it first with `keelson cluster quorum \
                     --witness none`; nothing was changed",
                    describe(old)
                )
            });
        }
        if info.nodes.contains_key(WITNESS_NAME) {
            return Err(format!(
                "a node is named '{WITNESS_NAME}', the name of the witness voter; nothing was changed"
            ));
        }
        let kind = match spec {
            WitnessSpec::FileShare(_) => WitnessKind::FileShare,
            WitnessSpec::Disk(_) => WitnessKind::Disk,
        };
        let netft = crate::cluster::settings::netft_settings(&info)?;
        let probe = WitnessConfig {
            kind,
            path: path.to_string(),
            id: 0,
        };
        let witness = cluster.witness();
        if let Some(id) = witness.hosted_member() {
            return Err(format!(
                "raft's membership still holds a witness voter (node {id}) of an earlier witness: \
                 remove it first with `keelson cluster quorum --witness none`; nothing was changed"
            ));
        }
        witness
            .prepare(&probe, &netft)
            .map_err(|e| format!("{e}; nothing was changed"))?;
        let reservation = witness
            .reserve()
            .map_err(|e| format!("{e}; nothing was changed"))?;
        let config = WitnessConfig {
            id: reservation.id,
            ..probe
        };
        // This node takes the lease first (nobody else watches it yet) and hosts the voter.
        witness.set_pending(Some(config.clone()));
        let timings = LeaseTimings::from_netft(&netft);
        let within = Duration::from_millis(timings.takeover_after_ms()) + HOSTING_SLACK;
        let hosted = witness.wait_hosted(&config, within).and_then(|_| {
            cluster
                .propose(Request::SetWitness(Some(config.clone())))
                .map(drop)
        });
        witness.set_pending(None);
        hosted.map_err(|e| format!("{e}; nothing was changed"))?;
        if let Err(e) = witness.admit(&reservation) {
            return Err(match cluster.propose(Request::SetWitness(None)) {
                Ok(_) => format!("{e}; the witness was not configured"),
                Err(undo) => format!(
                    "{e}; removing its configuration failed too ({undo}): run `keelson cluster \
                     quorum --witness none`"
                ),
            });
        }
        let model = QuorumConfig {
            witness: Some(spec),
        };
        tracing::info!(
            component = "QUORUM",
            "Quorum of cluster '{}' is now {model}: the witness voter is node {}, hosted by node '{}'",
            info.name,
            config.id,
            self.node
        );
        Ok(ControlReply::Done {
            message: format!(
                "quorum: {model}; the witness voter is node {}, hosted by '{}'",
                config.id, self.node
            ),
        })
    }

    /// `--witness none`: back to Node Majority, if the nodes alone are a majority now.
    fn remove_witness(&mut self) -> Result<ControlReply, String> {
        let cluster = self.in_cluster()?;
        self.admit_cluster_change()?;
        let info = cluster.committed_info()?;
        let witness = cluster.witness();
        let config = match (info.witness.clone(), witness.hosted_member()) {
            (Some(config), _) => config,
            // Left by a configuration that failed part-way: only the voter to take out.
            (None, Some(id)) => {
                witness
                    .evict(id)
                    .map_err(|e| format!("{e}; nothing was changed"))?;
                return Ok(ControlReply::Done {
                    message: format!(
                        "quorum: Node Majority; the leftover witness voter (node {id}) was removed"
                    ),
                });
            }
            (None, None) => {
                return Err(
                    "the cluster has no witness (Node Majority); nothing was changed".into(),
                )
            }
        };
        let nodes = cluster.voters();
        let (_, me) = cluster.me();
        let up = |id: &NodeId| {
            *id == me
                || (self.peers.get(id) == Some(&keelson_netft::NodeState::Up)
                    && self.hearing.contains(id))
        };
        let reachable = nodes.iter().filter(|(id, _)| up(id)).count();
        if reachable * 2 <= nodes.len() {
            return Err(format!(
                "without the witness this node would count {reachable} of {} node votes, {} needed: \
                 bring the other nodes back first; nothing was changed",
                nodes.len(),
                nodes.len() / 2 + 1
            ));
        }
        if witness.is_member(config.id) {
            witness
                .evict(config.id)
                .map_err(|e| format!("{e}; nothing was changed"))?;
        }
        // A witness voter that led steps down once it is out: the nodes elect a leader first.
        witness
            .wait_leader_other_than(config.id, LEADER_WAIT)
            .map_err(|e| {
                format!(
                    "the witness voter (node {}) was removed, but {e}; run the command again",
                    config.id
                )
            })?;
        cluster.propose(Request::SetWitness(None)).map_err(|e| {
            format!(
                "the witness voter (node {}) was removed, but the witness configuration was not: \
                     {e}; run the command again",
                config.id
            )
        })?;
        tracing::info!(
            component = "QUORUM",
            "Quorum of cluster '{}' is now Node Majority: the {} and its voter (node {}) were removed",
            info.name,
            describe(&config),
            config.id
        );
        Ok(ControlReply::Done {
            message: format!(
                "quorum: Node Majority; the {} is no longer used (its voter, node {}, removed)",
                describe(&config),
                config.id
            ),
        })
    }
}
