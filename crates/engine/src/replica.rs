//! Following the replicated cluster database: makes the engine's configuration match committed
//! records (groups, resources, properties, parameters, dependencies, desired state, owner and
//! placement: an owner or placement older than the held one is ignored), whoever proposed them, and
//! never refuses: a committed record is a fact. A record equal to what the
//! engine holds changes nothing, so applying a batch twice is harmless. Not validation (plan.rs
//! does that on the proposing node before anything is committed) and not the raft log itself.

use crate::command::{Command, GroupRecord, ResourceRecord};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::event::ResourceSpec;
use crate::ids::GroupId;
use crate::state::ResourceState;
use keelson_types::{GroupProperties, LogLevel, RecordChange, ResourceProperties};
use std::collections::BTreeSet;

impl Engine {
    /// Applies a committed batch of record changes at time `now`, in order, and returns the
    /// commands that follow (opens, onlines, closes, Persist of what changed here). A change that
    /// cannot be applied (e.g. a resource in a group this engine does not have) is logged as an
    /// error naming it and skipped; the others still apply.
    pub fn apply_records(&mut self, now: u64, changes: &[RecordChange]) -> Vec<Command> {
        self.now = self.now.max(now);
        let mut touched = BTreeSet::new();
        for change in changes {
            if let Err(e) = self.converge(change, &mut touched) {
                let (is_group, name) = change.key();
                let kind = if is_group { "group" } else { "resource" };
                self.log(
                    LogLevel::Err,
                    format!("cannot apply the committed change to {kind} '{name}': {e}"),
                );
            }
        }
        let touched: Vec<GroupId> = touched.into_iter().collect();
        for g in &touched {
            if self.groups.contains_key(g) {
                self.reconcile(*g);
            }
        }
        self.flush_persist();
        self.notify_group_changes(Some(touched));
        std::mem::take(&mut self.out)
    }

    /// The configuration as database records, sorted by name: what a replica must hold.
    pub fn records(&self) -> (Vec<GroupRecord>, Vec<ResourceRecord>) {
        let groups = self.group_names.values().map(|g| self.groups[g].record());
        let resources = self.resource_names.values().map(|r| self.record_of(*r));
        (groups.collect(), resources.collect())
    }

    fn converge(
        &mut self,
        change: &RecordChange,
        touched: &mut BTreeSet<GroupId>,
    ) -> Result<(), EngineError> {
        match change {
            RecordChange::PutGroup(g) => self.converge_group(g, touched),
            RecordChange::DeleteGroup(name) => {
                if self.group_names.contains_key(name) {
                    self.delete_group(name)?;
                }
                Ok(())
            }
            RecordChange::PutResource(r) => self.converge_resource(r, touched),
            RecordChange::DeleteResource(name) => {
                let Some(id) = self.resource_names.get(name).copied() else {
                    return Ok(());
                };
                touched.insert(self.res(id).group);
                // The proposer saw it Offline; here it may still be up (another node's view): a
                // committed delete closes it all the same.
                let state = self.res(id).state;
                if !matches!(state, ResourceState::Offline | ResourceState::Failed) {
                    self.log(
                        LogLevel::Warn,
                        format!("Resource '{name}' is deleted by a committed change while {state}: closing it."),
                    );
                }
                self.remove_resource(name)
            }
        }
    }

    fn converge_group(
        &mut self,
        record: &GroupRecord,
        touched: &mut BTreeSet<GroupId>,
    ) -> Result<(), EngineError> {
        let props = GroupProperties::from_map(&record.properties)?;
        if !self.group_names.contains_key(&record.name) {
            self.create_group(record.name.clone(), props.clone())?;
        }
        let id = self.gid(&record.name)?;
        touched.insert(id);
        let g = self
            .groups
            .get_mut(&id)
            .expect("group id from the name table");
        if g.props != props {
            g.props = props;
            self.dirty_groups.insert(id);
        }
        self.converge_placement(id, record);
        let g = self
            .groups
            .get_mut(&id)
            .expect("group id from the name table");
        if g.want_online != record.want_online {
            g.want_online = record.want_online;
            self.dirty_groups.insert(id);
            if record.want_online {
                self.clear_group_failure(id);
            }
        }
        Ok(())
    }

    /// Takes the record's owner and placement unless they are older than the held ones (an
    /// upsert built on a stale view: `GroupRecord::merge_placement`, logged).
    fn converge_placement(&mut self, id: GroupId, record: &GroupRecord) {
        let held = self.groups[&id].record();
        let merged = record.merge_placement(&held);
        if merged.placement != record.placement {
            let (name, theirs, ours) = (&record.name, record.placement.epoch, held.placement.epoch);
            self.log(
                LogLevel::Warn,
                format!(
                    "Group '{name}': a committed record carries placement epoch {theirs}, older than {ours}: \
                     its owner and placement are ignored."
                ),
            );
        }
        let g = self
            .groups
            .get_mut(&id)
            .expect("group id from the name table");
        if g.owner != merged.owner || g.placement != merged.placement {
            g.owner = merged.owner;
            g.placement = merged.placement;
            self.dirty_groups.insert(id);
        }
    }

    fn converge_resource(
        &mut self,
        record: &ResourceRecord,
        touched: &mut BTreeSet<GroupId>,
    ) -> Result<(), EngineError> {
        let props = ResourceProperties::from_map(&record.properties)?;
        if !self.resource_names.contains_key(&record.name) {
            self.create_resource(ResourceSpec {
                name: record.name.clone(),
                group: record.group.clone(),
                type_name: record.type_name.clone(),
                plugin: record.plugin.clone(),
                properties: props.clone(),
                params: record.params.clone(),
                depends_on: Vec::new(),
            })?;
        }
        let id = self.rid(&record.name)?;
        if self.record_of(id) == *record {
            return Ok(());
        }
        let group = self.gid(&record.group)?;
        if self.res(id).group != group {
            return Err(EngineError::CrossGroup {
                resource: record.name.clone(),
                group: record.group.clone(),
                provider: record.name.clone(),
                provider_group: self.group_name_of(id),
            });
        }
        touched.insert(group);
        if self.res(id).props != props {
            self.res_mut(id).props = props;
            self.mark_dirty(id);
        }
        if self.res(id).params != record.params {
            self.res_mut(id).params = record.params.clone();
            self.mark_dirty(id);
            self.reopen_for_params(id);
        }
        self.converge_dependencies(id, record)?;
        if self.res(id).want_online != record.want_online {
            self.want(id, record.want_online);
        }
        Ok(())
    }

    /// Removes the dependencies the record no longer has, then adds the new ones.
    fn converge_dependencies(
        &mut self,
        id: keelson_types::ResourceId,
        record: &ResourceRecord,
    ) -> Result<(), EngineError> {
        let have: BTreeSet<String> = self
            .res(id)
            .depends_on
            .iter()
            .map(|d| self.res(*d).name.clone())
            .collect();
        let want: BTreeSet<String> = record.depends_on.iter().cloned().collect();
        for gone in have.difference(&want) {
            self.remove_dependency(&record.name, gone)?;
        }
        for new in want.difference(&have) {
            self.add_committed_dependency(id, new)?;
        }
        Ok(())
    }

    /// Adds a committed dependency. The proposer checked it against its own states; here the
    /// dependent may be up while its provider is not (another node ran it), which the engine never
    /// allows: the dependent then fails, and its restart waits for the provider.
    fn add_committed_dependency(
        &mut self,
        id: keelson_types::ResourceId,
        provider: &str,
    ) -> Result<(), EngineError> {
        let pid = self.rid(provider)?;
        match self.check_dependency(id, pid) {
            Ok(()) | Err(EngineError::ProviderNotOnline { .. }) => {}
            Err(e) => return Err(e),
        }
        let name = self.res(id).name.clone();
        let up = matches!(
            self.res(id).state,
            ResourceState::Online | ResourceState::OnlinePending
        );
        self.res_mut(id).depends_on.insert(pid);
        self.res_mut(pid).dependents.insert(id);
        self.mark_dirty(id);
        self.log(
            LogLevel::Info,
            format!("Resource '{name}' now depends on '{provider}'."),
        );
        if up && self.res(pid).state != ResourceState::Online {
            let reason = format!("it now depends on '{provider}', which is not Online");
            self.fail(id, &reason);
        }
        Ok(())
    }
}
