//! Administrator requests: create/delete groups and resources, properties, dependencies, online,
//! offline and simulated failure. Each validates first and refuses with a clear `EngineError`.
//! Not the state machine that then runs (lifecycle.rs reconciles after every event).

use crate::command::{Command, PersistChange};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::event::ResourceSpec;
use crate::graph;
use crate::group::Group;
use crate::ids::GroupId;
use crate::resource::Resource;
use crate::state::ResourceState;
use crate::timer::TimerKind;
use keelson_types::{GroupProperties, LogLevel, ResourceId};

pub(crate) fn join_names(names: impl IntoIterator<Item = String>) -> String {
    names
        .into_iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine {
    pub(crate) fn create_group(
        &mut self,
        name: String,
        props: GroupProperties,
    ) -> Result<(), EngineError> {
        self.plan_create_group(&name, &props)?;
        self.next_group += 1;
        let id = GroupId(self.next_group);
        self.group_names.insert(name.clone(), id);
        let mut group = Group::new(id, name.clone(), props);
        group.owner = self.local_node.clone();
        self.groups.insert(id, group);
        self.dirty_groups.insert(id);
        self.log(LogLevel::Info, format!("Created group '{name}'."));
        Ok(())
    }

    pub(crate) fn delete_group(&mut self, name: &str) -> Result<(), EngineError> {
        self.plan_delete_group(name)?;
        let id = self.gid(name)?;
        self.groups.remove(&id);
        self.announced.remove(&id);
        self.group_names.remove(name);
        self.dirty_groups.remove(&id);
        self.cancel(TimerKind::GroupRetry(id));
        self.out.push(Command::Persist(PersistChange::DeleteGroup(
            name.to_string(),
        )));
        self.log(LogLevel::Info, format!("Deleted group '{name}'."));
        Ok(())
    }

    pub(crate) fn create_resource(&mut self, spec: ResourceSpec) -> Result<(), EngineError> {
        self.plan_create_resource(&spec)?;
        let group = self.gid(&spec.group)?;
        self.next_resource += 1;
        let id = ResourceId(self.next_resource);
        let mut r = Resource::new(id, spec.name.clone(), group, spec.type_name, spec.plugin);
        r.props = spec.properties;
        r.params = spec.params;
        self.resources.insert(id, r);
        self.resource_names.insert(spec.name.clone(), id);
        self.groups.get_mut(&group).map(|g| g.members.insert(id));
        for provider in &spec.depends_on {
            self.add_dependency(&spec.name, provider)?;
        }
        self.mark_dirty(id);
        self.log(
            LogLevel::Info,
            format!(
                "Created resource '{}' in group '{}'.",
                spec.name, spec.group
            ),
        );
        if self.hosted_here(group) {
            self.open(id);
        }
        Ok(())
    }

    pub(crate) fn delete_resource(&mut self, name: &str) -> Result<(), EngineError> {
        self.plan_delete_resource(name)?;
        self.remove_resource(name)
    }

    /// Deletes a resource without asking whether it may be (the caller decided): its instance is
    /// closed, its timers cancelled, and it is forgotten.
    pub(crate) fn remove_resource(&mut self, name: &str) -> Result<(), EngineError> {
        let id = self.rid(name)?;
        self.cancel_resource_timers(id);
        self.close(id);
        let providers: Vec<ResourceId> = self.res(id).depends_on.iter().copied().collect();
        for p in providers {
            self.res_mut(p).dependents.remove(&id);
        }
        let group = self.res(id).group;
        self.groups.get_mut(&group).map(|g| g.members.remove(&id));
        self.resources.remove(&id);
        self.resource_names.remove(name);
        self.dirty_resources.remove(&id);
        self.out
            .push(Command::Persist(PersistChange::DeleteResource(
                name.to_string(),
            )));
        self.out.push(Command::ResourceDeleted {
            resource: id,
            name: name.to_string(),
        });
        self.log(LogLevel::Info, format!("Deleted resource '{name}'."));
        Ok(())
    }

    pub(crate) fn set_resource_property(
        &mut self,
        resource: &str,
        name: &str,
        value: &str,
    ) -> Result<(), EngineError> {
        let id = self.rid(resource)?;
        let mut props = self.res(id).props.clone();
        props.set(name, value)?;
        self.res_mut(id).props = props;
        self.mark_dirty(id);
        self.log(
            LogLevel::Info,
            format!("Resource '{resource}': set {name}={value}."),
        );
        Ok(())
    }

    /// Validates every assignment against copies, then applies them all (one log line each).
    pub(crate) fn set_resource(
        &mut self,
        resource: &str,
        properties: &[(String, String)],
        params: Vec<(String, String)>,
        unset_params: &[String],
    ) -> Result<(), EngineError> {
        let id = self.rid(resource)?;
        if properties.is_empty() && params.is_empty() && unset_params.is_empty() {
            return Err(EngineError::NothingToSet(resource.to_string()));
        }
        let mut props = self.res(id).props.clone();
        for (name, value) in properties {
            props.set(name, value)?;
        }
        let new_params = self.changed_params(id, &params, unset_params)?;
        let r = self.res_mut(id);
        r.props = props;
        let params_changed = new_params != r.params;
        r.params = new_params;
        self.mark_dirty(id);
        for (name, value) in properties {
            self.log(
                LogLevel::Info,
                format!("Resource '{resource}': set {name}={value}."),
            );
        }
        if !params.is_empty() || !unset_params.is_empty() {
            // Names only: values may be secrets and never reach the log.
            let keys: Vec<String> = params
                .iter()
                .map(|(k, _)| k.clone())
                .chain(unset_params.iter().map(|k| format!("-{k}")))
                .collect();
            self.log(
                LogLevel::Info,
                format!(
                    "Resource '{resource}': private parameters changed ({}).",
                    keys.join(", ")
                ),
            );
        }
        if params_changed {
            self.reopen_for_params(id);
        }
        Ok(())
    }

    /// The parameters after setting `params` and removing `unset`, or why that is refused.
    pub(crate) fn changed_params(
        &self,
        id: ResourceId,
        params: &[(String, String)],
        unset: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>, EngineError> {
        let r = self.res(id);
        let mut out = r.params.clone();
        let mut seen = std::collections::BTreeSet::new();
        for (key, value) in params {
            if !seen.insert(key.as_str()) {
                return Err(EngineError::DuplicateParam { key: key.clone() });
            }
            out.insert(key.clone(), value.clone());
        }
        for key in unset {
            if !seen.insert(key.as_str()) {
                return Err(EngineError::DuplicateParam { key: key.clone() });
            }
            if out.remove(key).is_none() {
                return Err(EngineError::NoSuchParam {
                    resource: r.name.clone(),
                    key: key.clone(),
                });
            }
        }
        Ok(out)
    }

    /// New parameters reach the plugin through a fresh open: at once when the resource is not up
    /// (so a bad parameter shows now, not at the next node start), else at its next online.
    pub(crate) fn reopen_for_params(&mut self, id: ResourceId) {
        let r = self.res(id);
        let idle = matches!(r.state, ResourceState::Offline | ResourceState::Failed);
        if idle && r.host.is_some() {
            self.close(id);
            self.open(id);
        } else if !idle {
            self.res_mut(id).reopen = true;
        }
    }

    /// Validates every property against a copy, then sets them all (one log line each).
    pub(crate) fn set_group(
        &mut self,
        group: &str,
        properties: &[(String, String)],
    ) -> Result<(), EngineError> {
        let props = self.group_props_after(group, properties)?;
        let id = self.gid(group)?;
        let g = self
            .groups
            .get_mut(&id)
            .expect("group id from the name table");
        g.props = props;
        self.dirty_groups.insert(id);
        for (name, value) in properties {
            self.log(
                LogLevel::Info,
                format!("Group '{group}': set {name}={value}."),
            );
        }
        Ok(())
    }

    /// The group's properties with `properties` set, or why not.
    pub(crate) fn group_props_after(
        &self,
        group: &str,
        properties: &[(String, String)],
    ) -> Result<GroupProperties, EngineError> {
        let id = self.gid(group)?;
        if properties.is_empty() {
            return Err(EngineError::NothingToSetOnGroup(group.to_string()));
        }
        let mut props = self.groups[&id].props.clone();
        for (name, value) in properties {
            props.set(name, value)?;
        }
        Ok(props)
    }

    pub(crate) fn add_dependency(
        &mut self,
        resource: &str,
        provider: &str,
    ) -> Result<(), EngineError> {
        let (id, pid) = (self.rid(resource)?, self.rid(provider)?);
        self.check_dependency(id, pid)?;
        if self.res_mut(id).depends_on.insert(pid) {
            self.res_mut(pid).dependents.insert(id);
            self.mark_dirty(id);
            self.log(
                LogLevel::Info,
                format!("Resource '{resource}' now depends on '{provider}'."),
            );
        }
        Ok(())
    }

    pub(crate) fn check_dependency(
        &self,
        id: ResourceId,
        pid: ResourceId,
    ) -> Result<(), EngineError> {
        let (r, p) = (self.res(id), self.res(pid));
        if id == pid {
            return Err(EngineError::SelfDependency(r.name.clone()));
        }
        if r.group != p.group {
            return Err(EngineError::CrossGroup {
                resource: r.name.clone(),
                group: self.group_name_of(id),
                provider: p.name.clone(),
                provider_group: self.group_name_of(pid),
            });
        }
        if let Some(path) = graph::path(&self.resources, pid, id) {
            let mut names: Vec<String> = vec![r.name.clone()];
            names.extend(path.iter().map(|x| self.res(*x).name.clone()));
            let cycle = names.join(" -> ");
            return Err(EngineError::Cycle {
                resource: r.name.clone(),
                provider: p.name.clone(),
                cycle,
            });
        }
        let up = matches!(
            r.state,
            ResourceState::Online | ResourceState::OnlinePending
        );
        if up && p.state != ResourceState::Online {
            return Err(EngineError::ProviderNotOnline {
                resource: r.name.clone(),
                state: r.state,
                provider: p.name.clone(),
                provider_state: p.state,
            });
        }
        Ok(())
    }

    pub(crate) fn remove_dependency(
        &mut self,
        resource: &str,
        provider: &str,
    ) -> Result<(), EngineError> {
        let (id, pid) = (self.rid(resource)?, self.rid(provider)?);
        if !self.res_mut(id).depends_on.remove(&pid) {
            let (resource, provider) = (resource.to_string(), provider.to_string());
            return Err(EngineError::NoSuchDependency { resource, provider });
        }
        self.res_mut(pid).dependents.remove(&id);
        self.mark_dirty(id);
        self.log(
            LogLevel::Info,
            format!("Resource '{resource}' no longer depends on '{provider}'."),
        );
        Ok(())
    }

    /// Wants the resource and everything it depends on online; retries a failed group now.
    pub(crate) fn online_resource(&mut self, name: &str) -> Result<(), EngineError> {
        let id = self.rid(name)?;
        let mut ids = graph::providers(&self.resources, id);
        ids.insert(id);
        self.clear_group_failure(self.res(id).group);
        for r in ids {
            self.want(r, true);
        }
        self.log(
            LogLevel::Info,
            format!("Bringing resource '{name}' online."),
        );
        Ok(())
    }

    /// Wants the resource and everything depending on it offline.
    pub(crate) fn offline_resource(&mut self, name: &str) -> Result<(), EngineError> {
        let id = self.rid(name)?;
        let mut ids = graph::dependents(&self.resources, id);
        ids.insert(id);
        for r in ids {
            self.want(r, false);
        }
        self.log(LogLevel::Info, format!("Taking resource '{name}' offline."));
        Ok(())
    }

    pub(crate) fn online_group(&mut self, name: &str) -> Result<(), EngineError> {
        self.want_group(name, true)
    }

    pub(crate) fn offline_group(&mut self, name: &str) -> Result<(), EngineError> {
        self.want_group(name, false)
    }

    fn want_group(&mut self, name: &str, online: bool) -> Result<(), EngineError> {
        let id = self.gid(name)?;
        self.clear_group_failure(id);
        let g = self
            .groups
            .get_mut(&id)
            .expect("group id from the name table");
        g.want_online = online;
        let members: Vec<ResourceId> = g.members.iter().copied().collect();
        self.dirty_groups.insert(id);
        for r in members {
            self.want(r, online);
        }
        let verb = if online {
            "Bringing group '{}' online."
        } else {
            "Taking group '{}' offline."
        };
        self.log(LogLevel::Info, verb.replace("{}", name));
        Ok(())
    }

    /// Records the wish; a Failed resource is reset to Offline (its restart/retry cancelled) so that
    /// reconciliation acts on the wish at once.
    pub(crate) fn want(&mut self, id: ResourceId, online: bool) {
        let r = self.res_mut(id);
        if r.want_online != online {
            r.want_online = online;
            self.mark_dirty(id);
        }
        if self.res(id).state == ResourceState::Failed {
            self.cancel(TimerKind::Restart(id));
            self.cancel(TimerKind::Retry(id));
            self.res_mut(id).restarts.clear();
            self.set_state(id, ResourceState::Offline);
        }
    }

    pub(crate) fn fail_resource(&mut self, name: &str) -> Result<(), EngineError> {
        self.plan_fail(name)?;
        let id = self.rid(name)?;
        self.log(
            LogLevel::Info,
            format!("Simulating a failure of resource '{name}'."),
        );
        self.fail(id, "failure simulated by the administrator");
        Ok(())
    }
}
