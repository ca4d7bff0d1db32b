//! One group's runtime record inside the engine: name, properties, members and whether it has failed
//! (over) and waits for its retry. Not its state derivation (`GroupState::derive`) nor its policies.

use crate::command::GroupRecord;
use crate::ids::GroupId;
use keelson_types::{GroupProperties, ResourceId};
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
        }
    }

    /// The database record.
    pub fn record(&self) -> GroupRecord {
        GroupRecord {
            name: self.name.clone(),
            properties: self.props.non_default_map(),
            want_online: self.want_online,
            owner: self.owner.clone(),
        }
    }
}
