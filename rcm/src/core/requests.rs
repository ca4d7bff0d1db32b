//! Control requests turned into engine events (with validation that must happen before anything
//! changes) or into views. Every refusal is one clear line and changes nothing. Not transport or
//! authorisation (api.rs).

use super::Core;
use crate::views::json_reply;
use keelson_engine::{Event, ResourceSpec, ResourceState};
use keelson_proto::{Assignments, ControlReply, ControlRequest};
use keelson_types::{GroupProperties, ResourceProperties};
use std::collections::BTreeMap;

fn done(message: String) -> ControlReply {
    ControlReply::Done { message }
}

fn error(message: String) -> ControlReply {
    ControlReply::Error { message }
}

impl Core {
    /// Answers one control request.
    pub fn request(&mut self, request: ControlRequest) -> ControlReply {
        match self.try_request(request) {
            Ok(reply) => reply,
            Err(message) => error(message),
        }
    }

    fn try_request(&mut self, request: ControlRequest) -> Result<ControlReply, String> {
        use ControlRequest as R;
        Ok(match request {
            R::Status => json_reply(&self.views().status_view())?,
            R::PluginList => json_reply(&self.views().plugin_view())?,
            R::GroupList => json_reply(&self.views().group_list_view())?,
            R::GroupGet { name } => json_reply(&self.views().group_view(&name)?)?,
            R::ResourceList => json_reply(&self.views().resource_list_view())?,
            R::ResourceGet { name } => json_reply(&self.views().resource_view(&name)?)?,
            R::GroupCreate { name, properties } => {
                check_name("group", &name)?;
                let properties = group_properties(GroupProperties::default(), &properties)?;
                self.admin(Event::CreateGroup {
                    name: name.clone(),
                    properties,
                })?;
                done(format!("group '{name}' created"))
            }
            R::GroupDelete { name } => {
                self.admin(Event::DeleteGroup { name: name.clone() })?;
                done(format!("group '{name}' deleted"))
            }
            R::GroupSet { name, properties } => {
                self.admin(Event::SetGroup {
                    group: name.clone(),
                    properties,
                })?;
                done(format!("group '{name}' updated"))
            }
            R::GroupOnline { name } => {
                self.admin(Event::OnlineGroup { name: name.clone() })?;
                done(format!("group '{name}' coming online"))
            }
            R::GroupMove { name, to } => self.group_move(name, to)?,
            R::GroupOffline { name } => {
                self.admin(Event::OfflineGroup { name: name.clone() })?;
                done(format!("group '{name}' going offline"))
            }
            R::ResourceCreate {
                name,
                type_name,
                group,
                params,
                properties,
            } => self.create_resource(name, type_name, group, params, properties)?,
            R::ResourceSet {
                name,
                properties,
                params,
                unset_params,
            } => self.set_resource(name, properties, params, unset_params)?,
            R::ResourceOnline { name } => {
                self.admin(Event::OnlineResource { name: name.clone() })?;
                done(format!("resource '{name}' coming online"))
            }
            R::ResourceOffline { name } => {
                self.admin(Event::OfflineResource { name: name.clone() })?;
                done(format!("resource '{name}' going offline"))
            }
            R::ResourceFail { name } => {
                self.admin(Event::FailResource { name: name.clone() })?;
                done(format!("failure injected into resource '{name}'"))
            }
            R::ResourceDelete { name } => {
                self.admin(Event::DeleteResource { name: name.clone() })?;
                done(format!("resource '{name}' deleted"))
            }
            R::ResourceDepend { name, on } => {
                self.admin(Event::AddDependency {
                    resource: name.clone(),
                    provider: on.clone(),
                })?;
                done(format!("resource '{name}' now depends on '{on}'"))
            }
            R::ResourceUndepend { name, on } => {
                self.admin(Event::RemoveDependency {
                    resource: name.clone(),
                    provider: on.clone(),
                })?;
                done(format!("resource '{name}' no longer depends on '{on}'"))
            }
            R::NodeStop => {
                self.stop = true;
                done("node service stopping".into())
            }
            R::ClusterCreate {
                name,
                nodes,
                virtual_subnet,
            } => self.cluster_create(name, nodes, virtual_subnet)?,
            R::ClusterStatus => json_reply(&self.in_cluster()?.status_view())?,
            R::NodeList => json_reply(
                &self
                    .in_cluster()?
                    .node_list_view(&self.peers, &self.hearing),
            )?,
            R::NetworkList => json_reply(&self.network_list_view()?)?,
            R::Validate => json_reply(&self.validation_view()?)?,
            R::NodeEvict { name } => self.node_evict(name)?,
            R::NodePause { name, drain } => self.node_pause(name, drain)?,
            R::NodeResume { name } => self.node_resume(name)?,
            R::NodeJoin {
                cluster,
                key_file,
                name,
            } => self.node_join(cluster, key_file, name)?,
            R::ClusterGet { names } => self.cluster_get(&names)?,
            R::ClusterSet { properties } => self.cluster_set(&properties)?,
            R::ClusterQuorum { witness } => self.cluster_quorum(witness)?,
            R::Log { .. } | R::Events { .. } => {
                return Err("log and events are streamed by the API".into())
            }
        })
    }

    fn create_resource(
        &mut self,
        name: String,
        type_name: String,
        group: String,
        params: Assignments,
        properties: Assignments,
    ) -> Result<ControlReply, String> {
        check_name("resource", &name)?;
        check_param_keys(params.iter().map(|(k, _)| k))?;
        let plugin = self.catalogue.plugin_for_create(&type_name)?;
        // The type's own poll intervals and timeouts where the request sets none.
        let properties =
            resource_properties(self.catalogue.properties_for(&type_name), &properties)?;
        let params: BTreeMap<String, String> = params.into_iter().collect();
        let spec = ResourceSpec {
            name: name.clone(),
            group: group.clone(),
            type_name: type_name.clone(),
            plugin,
            properties,
            params: params.clone(),
            depends_on: vec![],
        };
        self.admin(Event::CreateResource(spec))?;
        self.remember_secrets_of(&name, &type_name, &params);
        Ok(done(format!(
            "resource '{name}' created in group '{group}'"
        )))
    }

    fn set_resource(
        &mut self,
        name: String,
        properties: Assignments,
        params: Assignments,
        unset_params: Vec<String>,
    ) -> Result<ControlReply, String> {
        check_param_keys(params.iter().map(|(k, _)| k).chain(&unset_params))?;
        let params_changed = !params.is_empty() || !unset_params.is_empty();
        self.admin(Event::SetResource {
            resource: name.clone(),
            properties,
            params,
            unset_params,
        })?;
        let Some(r) = self.engine.resource(&name) else {
            return Ok(done(format!("resource '{name}' updated")));
        };
        self.remember_secrets_of(&name, &r.type_name, &r.params);
        if !params_changed {
            return Ok(done(format!("resource '{name}' updated")));
        }
        let when = match r.state {
            ResourceState::Offline | ResourceState::Failed => "reopened with them now",
            _ => "they apply at its next online",
        };
        Ok(done(format!(
            "resource '{name}' updated (parameters changed: {when})"
        )))
    }
}

impl Core {
    /// Keeps the secret values of `params` of `resource` (of `type_name`) out of logs and events.
    pub(super) fn remember_secrets_of(
        &mut self,
        resource: &str,
        type_name: &str,
        params: &BTreeMap<String, String>,
    ) {
        let catalogue = &self.catalogue;
        self.secrets
            .update(resource, params, |k| catalogue.is_secret(type_name, k));
    }
}

/// Names are shown in logs and quoted in messages: keep them printable, visible and bounded.
fn check_name(kind: &str, name: &str) -> Result<(), String> {
    keelson_types::check_name(kind, name)
}

/// Every private parameter key of a request, checked before anything changes (never trusting the
/// client's own checks).
fn check_param_keys<'a>(keys: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    keys.into_iter()
        .try_for_each(|key| keelson_types::check_param_key(key))
}

fn resource_properties(
    mut props: ResourceProperties,
    assignments: &Assignments,
) -> Result<ResourceProperties, String> {
    for (name, value) in assignments {
        props.set(name, value).map_err(|e| e.to_string())?;
    }
    Ok(props)
}

fn group_properties(
    mut props: GroupProperties,
    assignments: &Assignments,
) -> Result<GroupProperties, String> {
    for (name, value) in assignments {
        props.set(name, value).map_err(|e| e.to_string())?;
    }
    Ok(props)
}
