//! One group's runtime record inside the engine: name, properties, members and whether it has failed
//! (over) and waits for its retry, its owner and placement. Not its state derivation
//! (`GroupState::derive`) nor its policies.

use crate::command::GroupRecord;
use crate::ids::GroupId;
use keelson_types::{GroupPlacement, GroupProperties, ResourceId};
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub id: GroupId,
    pub name: String,
    pub props: GroupProperties,
    pub members: BTreeSet<ResourceId>,
    /// Last administrator request on the whole group (persistent).
    pub want_online: bool,
    /// Failed over with nowhere to go (single node): Failed until the retry timer or an admin online.
    pub failed_over: bool,
    /// The node that runs it (empty: this one, on a single node).
    pub owner: String,
    /// The hand-off and failover state the cluster leader commits (handoff.rs obeys it).
    pub placement: GroupPlacement,
    /// The placement epoch whose release this node last reported (one report per epoch).
    pub reported_release: Option<u64>,
}

impl Group {
    pub fn new(id: GroupId, name: String, props: GroupProperties) -> Self {
        Group {
            id,
            name,
            props,
            members: BTreeSet::new(),
            want_online: false,
            failed_over: false,
            owner: String::new(),
            placement: GroupPlacement::default(),
            reported_release: None,
        }
    }

    /// The database record.
    pub fn record(&self) -> GroupRecord {
        GroupRecord {
            name: self.name.clone(),
            properties: self.props.non_default_map(),
            want_online: self.want_online,
            owner: self.owner.clone(),
            placement: self.placement.clone(),
        }
    }
}
