//! The dry run of an administrator event: validates it as a whole against the engine as it is and
//! says which database records it would write, without changing anything (and without copying the
//! engine). The shell makes those durable first, then applies the event; so a refusal, or a
//! database that cannot save, leaves the engine untouched. Its cost is what the event touches.
//! Not the application of the event (admin.rs) nor the state machine that follows (lifecycle.rs).

use crate::command::{GroupRecord, PersistChange, ResourceRecord};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::event::{Event, ResourceSpec};
use crate::graph;
use crate::state::ResourceState;
use keelson_types::ResourceId;
use std::collections::BTreeMap;

impl Engine {
    /// What the administrator event `event` would persist, or why it is refused. `None` for an event
    /// that is not an administrator's.
    pub fn admin_changes(&self, event: &Event) -> Option<Result<Vec<PersistChange>, EngineError>> {
        Some(match event {
            Event::CreateGroup { name, properties } => self.plan_create_group(name, properties),
            Event::DeleteGroup { name } => self.plan_delete_group(name),
            Event::CreateResource(spec) => self.plan_create_resource(spec),
            Event::DeleteResource { name } => self.plan_delete_resource(name),
            Event::SetResourceProperty {
                resource,
                name,
                value,
            } => self.plan_set_resource(resource, &[(name.clone(), value.clone())], &[], &[]),
            Event::SetResource {
                resource,
                properties,
                params,
                unset_params,
            } => self.plan_set_resource(resource, properties, params, unset_params),
            Event::SetGroupProperty { group, name, value } => {
                self.plan_set_group(group, &[(name.clone(), value.clone())])
            }
            Event::SetGroup { group, properties } => self.plan_set_group(group, properties),
            Event::AddDependency { resource, provider } => {
                self.plan_add_dependency(resource, provider)
            }
            Event::RemoveDependency { resource, provider } => {
                self.plan_remove_dependency(resource, provider)
            }
            Event::OnlineResource { name } => self.plan_want_resource(name, true),
            Event::OfflineResource { name } => self.plan_want_resource(name, false),
            Event::OnlineGroup { name } => self.plan_want_group(name, true),
            Event::OfflineGroup { name } => self.plan_want_group(name, false),
            Event::FailResource { name } => self.plan_fail(name),
            Event::CallDone { .. }
            | Event::TimerFired { .. }
            | Event::HostStarted { .. }
            | Event::HostDied { .. }
            | Event::HealthFailed { .. }
            | Event::FailureReported { .. } => return None,
        })
    }

    pub(crate) fn plan_create_group(
        &self,
        name: &str,
        properties: &keelson_types::GroupProperties,
    ) -> Result<Vec<PersistChange>, EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::EmptyName("group"));
        }
        if self.group_names.contains_key(name) {
            return Err(EngineError::GroupExists(name.to_string()));
        }
        Ok(vec![PersistChange::PutGroup(GroupRecord {
            name: name.to_string(),
            properties: properties.non_default_map(),
            want_online: false,
            owner: self.local_node.clone(),
            placement: Default::default(),
        })])
    }

    pub(crate) fn plan_delete_group(&self, name: &str) -> Result<Vec<PersistChange>, EngineError> {
        let id = self.gid(name)?;
        let g = &self.groups[&id];
        if !g.members.is_empty() {
            let resources =
                crate::admin::join_names(g.members.iter().map(|r| self.res(*r).name.clone()));
            return Err(EngineError::GroupNotEmpty {
                group: name.to_string(),
                resources,
            });
        }
        Ok(vec![PersistChange::DeleteGroup(name.to_string())])
    }

    pub(crate) fn plan_create_resource(
        &self,
        spec: &ResourceSpec,
    ) -> Result<Vec<PersistChange>, EngineError> {
        if spec.name.trim().is_empty() {
            return Err(EngineError::EmptyName("resource"));
        }
        if self.resource_names.contains_key(&spec.name) {
            return Err(EngineError::ResourceExists(spec.name.clone()));
        }
        let group = self.gid(&spec.group)?;
        // A new resource is Offline and nothing depends on it: only self-dependencies, unknown
        // providers and other groups can be wrong.
        let mut depends_on = Vec::new();
        for provider in &spec.depends_on {
            if provider == &spec.name {
                return Err(EngineError::SelfDependency(spec.name.clone()));
            }
            let pid = self.rid(provider)?;
            if self.res(pid).group != group {
                return Err(EngineError::CrossGroup {
                    resource: spec.name.clone(),
                    group: spec.group.clone(),
                    provider: provider.clone(),
                    provider_group: self.group_name_of(pid),
                });
            }
            depends_on.push(provider.clone());
        }
        depends_on.sort();
        depends_on.dedup();
        Ok(vec![PersistChange::PutResource(ResourceRecord {
            name: spec.name.clone(),
            type_name: spec.type_name.clone(),
            plugin: spec.plugin.clone(),
            group: spec.group.clone(),
            properties: spec.properties.non_default_map(),
            params: spec.params.clone(),
            depends_on,
            want_online: false,
        })])
    }

    pub(crate) fn plan_delete_resource(
        &self,
        name: &str,
    ) -> Result<Vec<PersistChange>, EngineError> {
        let id = self.rid(name)?;
        let state = self.res(id).state;
        if !matches!(state, ResourceState::Offline | ResourceState::Failed) {
            return Err(EngineError::NotOffline {
                name: name.to_string(),
                state,
            });
        }
        let dependents = graph::direct_dependents(&self.resources, id);
        if !dependents.is_empty() {
            let dependents =
                crate::admin::join_names(dependents.iter().map(|d| self.res(*d).name.clone()));
            return Err(EngineError::StillDependedOn {
                name: name.to_string(),
                dependents,
            });
        }
        Ok(vec![PersistChange::DeleteResource(name.to_string())])
    }

    fn plan_set_resource(
        &self,
        resource: &str,
        properties: &[(String, String)],
        params: &[(String, String)],
        unset_params: &[String],
    ) -> Result<Vec<PersistChange>, EngineError> {
        let id = self.rid(resource)?;
        if properties.is_empty() && params.is_empty() && unset_params.is_empty() {
            return Err(EngineError::NothingToSet(resource.to_string()));
        }
        let mut record = self.record_of(id);
        let mut props = self.res(id).props.clone();
        for (name, value) in properties {
            props.set(name, value)?;
        }
        record.properties = props.non_default_map();
        record.params = self.changed_params(id, params, unset_params)?;
        Ok(vec![PersistChange::PutResource(record)])
    }

    fn plan_set_group(
        &self,
        group: &str,
        properties: &[(String, String)],
    ) -> Result<Vec<PersistChange>, EngineError> {
        let props = self.group_props_after(group, properties)?;
        let mut record = self.groups[&self.gid(group)?].record();
        record.properties = props.non_default_map();
        Ok(vec![PersistChange::PutGroup(record)])
    }

    fn plan_add_dependency(
        &self,
        resource: &str,
        provider: &str,
    ) -> Result<Vec<PersistChange>, EngineError> {
        let (id, pid) = (self.rid(resource)?, self.rid(provider)?);
        self.check_dependency(id, pid)?;
        if self.res(id).depends_on.contains(&pid) {
            return Ok(vec![]);
        }
        let mut record = self.record_of(id);
        record.depends_on.push(provider.to_string());
        record.depends_on.sort();
        Ok(vec![PersistChange::PutResource(record)])
    }

    fn plan_remove_dependency(
        &self,
        resource: &str,
        provider: &str,
    ) -> Result<Vec<PersistChange>, EngineError> {
        let (id, pid) = (self.rid(resource)?, self.rid(provider)?);
        if !self.res(id).depends_on.contains(&pid) {
            let (resource, provider) = (resource.to_string(), provider.to_string());
            return Err(EngineError::NoSuchDependency { resource, provider });
        }
        let mut record = self.record_of(id);
        record.depends_on.retain(|p| p != provider);
        Ok(vec![PersistChange::PutResource(record)])
    }

    /// Online: the resource and everything it depends on; offline: it and everything depending on it.
    fn plan_want_resource(
        &self,
        name: &str,
        online: bool,
    ) -> Result<Vec<PersistChange>, EngineError> {
        let id = self.rid(name)?;
        let mut ids = match online {
            true => graph::providers(&self.resources, id),
            false => graph::dependents(&self.resources, id),
        };
        ids.insert(id);
        Ok(self.want_records(ids, online))
    }

    fn plan_want_group(&self, name: &str, online: bool) -> Result<Vec<PersistChange>, EngineError> {
        let id = self.gid(name)?;
        let g = &self.groups[&id];
        let mut changes = self.want_records(g.members.iter().copied(), online);
        let mut record = g.record();
        record.want_online = online;
        changes.push(PersistChange::PutGroup(record));
        Ok(changes)
    }

    pub(crate) fn plan_fail(&self, name: &str) -> Result<Vec<PersistChange>, EngineError> {
        let id = self.rid(name)?;
        let state = self.res(id).state;
        if state != ResourceState::Online {
            return Err(EngineError::NotOnline {
                name: name.to_string(),
                state,
            });
        }
        Ok(vec![])
    }

    /// The records of `ids` whose wish changes to `online`.
    fn want_records(
        &self,
        ids: impl IntoIterator<Item = ResourceId>,
        online: bool,
    ) -> Vec<PersistChange> {
        ids.into_iter()
            .filter(|id| self.res(*id).want_online != online)
            .map(|id| {
                let mut record = self.record_of(id);
                record.want_online = online;
                PersistChange::PutResource(record)
            })
            .collect()
    }

    /// A resource's database record as it stands (dependencies by name, sorted).
    pub(crate) fn record_of(&self, id: ResourceId) -> ResourceRecord {
        let r = self.res(id);
        let group = self.group_name_of(id);
        let mut deps: Vec<String> = r
            .depends_on
            .iter()
            .map(|d| self.res(*d).name.clone())
            .collect();
        deps.sort();
        r.record(&group, deps)
    }
}

/// Two change lists that hold the same records, whatever their order.
pub(crate) fn same_changes(a: &[PersistChange], b: &[PersistChange]) -> bool {
    let keyed = |v: &[PersistChange]| -> BTreeMap<(bool, String), PersistChange> {
        v.iter()
            .map(|c| {
                let (group, name) = c.key();
                ((group, name.to_string()), c.clone())
            })
            .collect()
    };
    a.len() == b.len() && keyed(a) == keyed(b)
}
