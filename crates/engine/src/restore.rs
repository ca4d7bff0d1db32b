//! Rebuilding an engine from the cluster database at node-service start: groups, resources,
//! dependencies and desired states; what was Online comes back Online. Not the database (crates/store).

use crate::command::{Command, GroupRecord, ResourceRecord};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::event::{Event, ResourceSpec};
use keelson_types::{GroupProperties, ResourceProperties};

impl Engine {
    /// An engine holding these records, and the commands to run now: StartHost/Open for every resource,
    /// then Online calls (providers first) for what wants to be online. No Persist commands: the
    /// records are already stored. A record that does not hold together (unknown group or provider,
    /// bad property, cycle) is an error naming it.
    pub fn restore(
        now: u64,
        groups: &[GroupRecord],
        resources: &[ResourceRecord],
    ) -> Result<(Engine, Vec<Command>), EngineError> {
        Engine::restore_on("", now, groups, resources)
    }

    /// `restore` on the cluster node `local_node`: only the groups it owns run.
    pub fn restore_on(
        local_node: &str,
        now: u64,
        groups: &[GroupRecord],
        resources: &[ResourceRecord],
    ) -> Result<(Engine, Vec<Command>), EngineError> {
        Engine::restore_with(local_node, false, now, groups, resources)
    }

    /// `restore_on` for a node that has no quorum yet (a cluster node starting): nothing runs
    /// until [`Engine::regain_quorum`], called once it has quorum and has caught up with the log.
    pub fn restore_waiting_for_quorum(
        local_node: &str,
        now: u64,
        groups: &[GroupRecord],
        resources: &[ResourceRecord],
    ) -> Result<(Engine, Vec<Command>), EngineError> {
        Engine::restore_with(local_node, true, now, groups, resources)
    }

    fn restore_with(
        local_node: &str,
        quorum_lost: bool,
        now: u64,
        groups: &[GroupRecord],
        resources: &[ResourceRecord],
    ) -> Result<(Engine, Vec<Command>), EngineError> {
        let mut e = Engine::new();
        e.set_local_node(local_node);
        e.quorum_lost = quorum_lost && !local_node.is_empty();
        let mut out: Vec<Command> = Vec::new();
        for g in groups {
            let properties = GroupProperties::from_map(&g.properties)?;
            out.extend(e.handle(
                now,
                Event::CreateGroup {
                    name: g.name.clone(),
                    properties,
                },
            )?);
            // Owned elsewhere (or still being released): its resources are not opened here.
            let group = e.groups.get_mut(&e.gid(&g.name)?).expect("just created");
            group.owner = g.owner.clone();
            group.placement = g.placement.clone();
        }
        for r in resources {
            let spec = ResourceSpec {
                name: r.name.clone(),
                group: r.group.clone(),
                type_name: r.type_name.clone(),
                plugin: r.plugin.clone(),
                properties: ResourceProperties::from_map(&r.properties)?,
                params: r.params.clone(),
                depends_on: Vec::new(),
            };
            out.extend(e.handle(now, Event::CreateResource(spec))?);
        }
        for r in resources {
            for p in &r.depends_on {
                let event = Event::AddDependency {
                    resource: r.name.clone(),
                    provider: p.clone(),
                };
                out.extend(e.handle(now, event)?);
            }
        }
        for g in groups.iter().filter(|g| g.want_online) {
            e.groups
                .get_mut(&e.gid(&g.name)?)
                .expect("just created")
                .want_online = true;
        }
        for r in resources.iter().filter(|r| r.want_online) {
            let id = e.rid(&r.name)?;
            e.res_mut(id).want_online = true;
        }
        e.reconcile_all();
        out.append(&mut e.out);
        out.retain(|c| !matches!(c, Command::Persist(_)));
        Ok((e, out))
    }
}
