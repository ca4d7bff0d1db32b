//! The control API's views (status, resources, groups, hosts, plugins) as the wire structs of
//! `keelson_proto::view`, and their JSON reply. Each view is one `Views` method that reads the
//! facts (engine, pool timings, store, logs, catalogue), borrowed from the core, and one pure
//! function that shapes them, so where a fact comes from can change without touching its shape. Not the CLI's tables (crates/ctl) and
//! not the JSON's shape (pinned in crates/proto).

use crate::catalogue::Catalogue;
use crate::catalogue::{Conflict, PluginEntry};
use crate::logfile::WriteHealth;
use crate::secrets::Secrets;
use crate::unsaved::Unsaved;
use keelson_engine::Engine;
use keelson_engine::{GroupView, HostView, LastError, ResourceView};
use keelson_host::CallStats;
use keelson_host::Pool;
use keelson_proto::view::{self, PropertyValue};
use keelson_proto::ControlReply;
use keelson_store::Store;
use keelson_types::{GroupRecord, Op};
use serde::Serialize;
use std::collections::BTreeMap;

/// A view as the JSON reply that carries it.
pub fn json_reply<T: Serialize>(view: &T) -> Result<ControlReply, String> {
    serde_json::to_string(view)
        .map(ControlReply::Json)
        .map_err(|e| format!("cannot encode the view: {e}"))
}

/// The facts the views read, borrowed from the core for one request.
pub struct Views<'a> {
    pub engine: &'a Engine,
    pub pool: &'a Pool,
    pub store: &'a Store,
    pub unsaved: &'a Unsaved,
    /// Write health of cluster.log, events.jsonl and audit.log.
    pub logs: [WriteHealth; 3],
    pub catalogue: &'a Catalogue,
    /// The resources' secret values, kept out of the last errors' messages.
    pub secrets: &'a Secrets,
    pub node: &'a str,
    /// Engine time (Unix ms), for the failovers within a group's FailoverPeriod.
    pub now_ms: u64,
    /// The cluster's member count (1 on a single node), for FailoverThreshold's `nodes-1`.
    pub members: u32,
}

impl Views<'_> {
    /// `resource get`.
    pub fn resource_view(&self, name: &str) -> Result<view::Resource, String> {
        let r = self
            .engine
            .resource(name)
            .ok_or(format!("no resource named '{name}'"))?;
        let stats = self.pool.call_stats(r.id);
        let owner = self
            .engine
            .group(&r.group)
            .map(|g| owner_of(&g, self.node).to_string())
            .unwrap_or_else(|| self.node.to_string());
        let secret = |k: &str| self.catalogue.is_secret(&r.type_name, k);
        let mut view = resource(&r, &owner, &stats, secret);
        if owner == self.node {
            view.state_dir = self
                .pool
                .state_dir_of(r.id)
                .map(|d| d.to_string_lossy().into_owned());
        }
        for e in view.last_errors.values_mut() {
            e.message = self.secrets.redact(&e.message).into_owned();
        }
        Ok(view)
    }

    /// `resource list`.
    pub fn resource_list_view(&self) -> Vec<view::ResourceSummary> {
        self.engine
            .resources()
            .iter()
            .map(resource_summary)
            .collect()
    }

    /// `group get`.
    pub fn group_view(&self, name: &str) -> Result<view::Group, String> {
        let g = self
            .engine
            .group(name)
            .ok_or(format!("no group named '{name}'"))?;
        let record = self.engine.group_record(name).unwrap_or_default();
        Ok(group(&g, &record, self.node, self.now_ms, self.members))
    }

    /// `group list`.
    pub fn group_list_view(&self) -> Vec<view::GroupSummary> {
        let node = self.node;
        self.engine
            .groups()
            .iter()
            .map(|g| {
                let record = self.engine.group_record(&g.name).unwrap_or_default();
                group_summary(g, &record, node)
            })
            .collect()
    }

    /// `status`.
    pub fn status_view(&self) -> view::Status {
        let resources = self.engine.resources();
        let groups = self
            .engine
            .groups()
            .iter()
            .map(|g| status_group(g, &resources, self.node))
            .collect();
        let hosts = self
            .engine
            .hosts()
            .iter()
            .map(|h| host(h, |id| self.engine.resource_by_id(id).map(|r| r.name)))
            .collect();
        view::Status {
            calls_completed: by_op(self.pool.call_totals(), |n| *n),
            database: database(self.store.health(), self.unsaved.len()),
            groups,
            hosts,
            logs: self.logs.iter().cloned().map(log_health).collect(),
            node: self.node.to_string(),
            pid: std::process::id(),
        }
    }

    /// `plugin list`: every plugin file looked at with its status and problem, the conflicting
    /// types, and whether every probe has reported.
    pub fn plugin_view(&self) -> view::PluginList {
        view::PluginList {
            complete: self.catalogue.is_complete(),
            conflicts: self
                .catalogue
                .conflicts()
                .into_iter()
                .map(conflict)
                .collect(),
            plugins: self
                .catalogue
                .entries()
                .into_iter()
                .map(plugin_file)
                .collect(),
            probe_timeout_ms: self.catalogue.probe_timeout().as_millis() as u64,
        }
    }
}

/// Per-op values keyed by the op's upper-case name (`LOOKSALIVE`).
fn by_op<T, U>(values: &BTreeMap<Op, T>, shape: impl Fn(&T) -> U) -> BTreeMap<String, U> {
    values
        .iter()
        .map(|(op, v)| (op.upper().to_string(), shape(v)))
        .collect()
}

/// Property texts as view values: numbers and booleans where they are ones.
fn properties(map: BTreeMap<String, String>) -> view::Properties {
    map.into_iter()
        .map(|(k, v)| (k, PropertyValue::from_text(&v)))
        .collect()
}

fn resource(
    r: &ResourceView,
    node: &str,
    stats: &BTreeMap<Op, CallStats>,
    is_secret: impl Fn(&str) -> bool,
) -> view::Resource {
    let mut properties = properties(r.properties.to_map());
    properties.insert(
        "MonitorProcessId".into(),
        PropertyValue::from_number(r.monitor_process_id),
    );
    // Secret values are the plugin's, not the reader's: shown as *** like in the logs.
    let parameters = r
        .params
        .iter()
        .map(|(k, v)| match is_secret(k) {
            true => (k.clone(), "***".to_string()),
            false => (k.clone(), v.clone()),
        })
        .collect();
    view::Resource {
        call_stats: by_op(stats, call_stats),
        depends_on: r.depends_on.clone(),
        group: r.group.clone(),
        host_pid: r.monitor_process_id,
        id: r.id.0,
        last_errors: by_op(&r.last_errors, last_error),
        name: r.name.clone(),
        owner_node: node.to_string(),
        parameters,
        plugin: r.plugin.clone(),
        properties,
        state: r.state.to_string(),
        state_dir: None,
        type_name: r.type_name.clone(),
    }
}

fn last_error(e: &LastError) -> view::LastError {
    view::LastError {
        at: keelson_types::format_iso_time(e.at_ms),
        message: e.message.clone(),
        status: e.status.to_string(),
    }
}

fn call_stats(s: &CallStats) -> view::CallStats {
    view::CallStats {
        count: s.count,
        last_us: s.last_us,
        max_us: s.max_us,
        p50_us: s.p50_us,
        p99_us: s.p99_us,
    }
}

fn resource_summary(r: &ResourceView) -> view::ResourceSummary {
    view::ResourceSummary {
        group: r.group.clone(),
        host_pid: r.monitor_process_id,
        name: r.name.clone(),
        state: r.state.to_string(),
        type_name: r.type_name.clone(),
    }
}

/// The node a group runs on: its owner, or this node when it has none (a single node).
fn owner_of<'a>(g: &'a GroupView, node: &'a str) -> &'a str {
    if g.owner.is_empty() {
        node
    } else {
        &g.owner
    }
}

/// The group's state on its owner: this node's when it owns it (or on a single node), else what
/// the owner reported for the current placement (empty until it has).
fn owner_state(g: &GroupView, record: &GroupRecord, node: &str) -> String {
    if g.owner.is_empty() || g.owner == node {
        return g.state.to_string();
    }
    record
        .placement
        .reported_state(&record.owner)
        .map(|s| s.state.clone())
        .unwrap_or_default()
}

fn group(
    g: &GroupView,
    record: &GroupRecord,
    node: &str,
    now_ms: u64,
    members: u32,
) -> view::Group {
    let p = &record.placement;
    view::Group {
        failovers_in_period: p.failovers_in_period(now_ms, g.properties.failover_period_ms) as u64,
        failover_threshold: u64::from(g.properties.effective_failover_threshold(members)),
        last_move: p.last_move.as_ref().map(|m| view::GroupMove {
            at: keelson_types::format_iso_time(m.at_ms),
            from: m.from.clone(),
            reason: m.reason.clone(),
            to: m.to.clone(),
        }),
        left_failed: p.failed,
        name: g.name.clone(),
        owner_node: owner_of(g, node).to_string(),
        owner_state: owner_state(g, record, node),
        owner_state_epoch: p.owner_state.as_ref().map(|s| s.epoch),
        placement_epoch: p.epoch,
        preferred_owners: g.properties.preferred_owners.clone(),
        properties: properties(g.properties.to_map()),
        releasing_from: p.releasing_from.clone(),
        resources: g.resources.clone(),
        state: g.state.to_string(),
    }
}

fn group_summary(g: &GroupView, record: &GroupRecord, node: &str) -> view::GroupSummary {
    view::GroupSummary {
        name: g.name.clone(),
        owner_node: owner_of(g, node).to_string(),
        owner_state: owner_state(g, record, node),
        resources: g.resources.clone(),
        state: g.state.to_string(),
    }
}

/// A group with its members, out of every resource.
fn status_group(g: &GroupView, resources: &[ResourceView], node: &str) -> view::StatusGroup {
    let members = resources
        .iter()
        .filter(|r| r.group == g.name)
        .map(|r| view::Member {
            host_pid: r.monitor_process_id,
            name: r.name.clone(),
            state: r.state.to_string(),
            type_name: r.type_name.clone(),
        })
        .collect();
    view::StatusGroup {
        name: g.name.clone(),
        owner_node: owner_of(g, node).to_string(),
        resources: members,
        state: g.state.to_string(),
    }
}

/// A host with the names of its resources (`name_of` finds them; ones it does not know are left
/// out).
fn host(h: &HostView, name_of: impl Fn(keelson_types::ResourceId) -> Option<String>) -> view::Host {
    view::Host {
        pid: h.pid,
        resources: h.resources.iter().filter_map(|id| name_of(*id)).collect(),
        separate: h.dedicated_to.is_some(),
    }
}

/// The database from its store's health: `None` when it is usable, else why it is not.
fn database(unusable: Option<&str>, unsaved_changes: usize) -> view::Database {
    let unsaved_changes = unsaved_changes as u64;
    match unusable {
        None => view::Database {
            note: None,
            reason: None,
            state: view::DatabaseState::Ok,
            unsaved_changes,
        },
        Some(reason) => view::Database {
            note: Some("changes are refused until the cluster database can be reopened".into()),
            reason: Some(reason.to_string()),
            state: view::DatabaseState::Unavailable,
            unsaved_changes,
        },
    }
}

fn log_health(h: WriteHealth) -> view::LogHealth {
    view::LogHealth {
        file: h.file,
        last_error: h.last_error,
        write_failures: h.write_failures,
    }
}

fn plugin_file(e: PluginEntry) -> view::PluginFile {
    view::PluginFile {
        conflicting_types: e.conflicting_types,
        error: e.error,
        name: e.name,
        path: e.path,
        probe_ms: e.probe_ms,
        schemas: e
            .schemas
            .iter()
            .map(|(t, s)| view::TypeSchemaView::of(t, s))
            .collect(),
        status: e.status.to_string(),
        types: e.types,
    }
}

fn conflict(c: Conflict) -> view::Conflict {
    view::Conflict {
        files: c.files,
        type_name: c.type_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_engine::{GroupId, GroupState, HostId, ResourceState};
    use keelson_types::{GroupProperties, ResourceId, ResourceProperties};

    fn share(monitor_process_id: Option<u32>) -> ResourceView {
        ResourceView {
            id: ResourceId(3),
            name: "Share".into(),
            group: "FS".into(),
            type_name: "dummy".into(),
            plugin: "dummy".into(),
            state: ResourceState::OnlinePending,
            want_online: true,
            properties: ResourceProperties::default(),
            params: [("path", "/srv"), ("api_token", "t0p"), ("Password", "p")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            depends_on: vec!["Disk".into()],
            host: Some(HostId(1)),
            monitor_process_id,
            gen: 0,
            outstanding: vec![],
            last_errors: BTreeMap::from([(
                Op::Online,
                LastError {
                    status: keelson_types::StatusKind::Misconfigured,
                    message: "port=0".into(),
                    at_ms: 1_700_000_000_123,
                },
            )]),
        }
    }

    #[test]
    fn a_resource_shows_typed_properties_its_host_and_no_secret() {
        let stats = BTreeMap::from([(
            Op::LooksAlive,
            CallStats {
                count: 2,
                p50_us: 5,
                p99_us: 9,
                max_us: 9,
                last_us: 5,
            },
        )]);
        let v = resource(
            &share(Some(77)),
            "n1",
            &stats,
            keelson_types::is_secret_param,
        );
        assert_eq!(v.state, "OnlinePending");
        assert_eq!((v.host_pid, v.owner_node.as_str()), (Some(77), "n1"));
        assert_eq!(v.properties["MonitorProcessId"], PropertyValue::Number(77));
        assert_eq!(v.properties["SeparateMonitor"], PropertyValue::Flag(false));
        assert!(matches!(
            v.properties["DeadlockTimeout"],
            PropertyValue::Number(_)
        ));
        assert!(matches!(
            v.properties["RestartAction"],
            PropertyValue::Text(_)
        ));
        let params: Vec<(&str, &str)> = v
            .parameters
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            params,
            [("Password", "***"), ("api_token", "***"), ("path", "/srv")]
        );
        assert_eq!(v.call_stats["LOOKSALIVE"].p99_us, 9);
        assert_eq!(
            v.last_errors["ONLINE"],
            view::LastError {
                at: "2023-11-14T22:13:20.123Z".into(),
                message: "port=0".into(),
                status: "misconfigured".into(),
            }
        );
        let hostless = resource(
            &share(None),
            "n1",
            &BTreeMap::new(),
            keelson_types::is_secret_param,
        );
        assert_eq!(
            hostless.properties["MonitorProcessId"],
            PropertyValue::Unset
        );
        assert_eq!(hostless.host_pid, None);
    }

    #[test]
    fn groups_show_failover_threshold_as_text_and_their_members() {
        let g = GroupView {
            id: GroupId(1),
            name: "FS".into(),
            state: GroupState::PartialOnline,
            want_online: true,
            properties: GroupProperties::default(),
            resources: vec!["Share".into()],
            owner: String::new(),
        };
        let v = group(&g, &GroupRecord::default(), "n1", 0, 3);
        assert_eq!(
            v.properties["FailoverThreshold"],
            PropertyValue::Text("nodes-1".into())
        );
        assert_eq!(v.state, "PartialOnline");
        assert_eq!(
            (v.failover_threshold, v.owner_state.as_str()),
            (2, "PartialOnline")
        );
    }

    #[test]
    fn a_group_owned_elsewhere_shows_its_owners_report_for_the_current_placement_only() {
        let g = GroupView {
            id: GroupId(1),
            name: "FS".into(),
            state: GroupState::Offline,
            want_online: true,
            properties: GroupProperties::default(),
            resources: vec![],
            owner: "n2".into(),
        };
        let mut record = GroupRecord {
            name: "FS".into(),
            owner: "n2".into(),
            ..GroupRecord::default()
        };
        record.placement.epoch = 4;
        record.placement.failovers = vec![1_000, 9_000];
        record.placement.owner_state = Some(keelson_types::OwnerState {
            node: "n2".into(),
            epoch: 4,
            state: "Online".into(),
            at_ms: 10,
        });
        let v = group(&g, &record, "n1", 10_000, 3);
        assert_eq!(
            (v.state.as_str(), v.owner_state.as_str()),
            ("Offline", "Online")
        );
        assert_eq!(v.failovers_in_period, 2);
        record.placement.epoch = 5; // a newer placement the owner has not reported on yet
        assert_eq!(group(&g, &record, "n1", 10_000, 3).owner_state, "");
        let other = ResourceView {
            group: "Web".into(),
            ..share(None)
        };
        let s = status_group(&g, &[share(Some(9)), other], "n1");
        assert_eq!(s.resources.len(), 1, "only the group's own resources");
        assert_eq!(s.resources[0].host_pid, Some(9));
    }

    #[test]
    fn the_database_says_why_it_is_unavailable() {
        let ok = database(None, 0);
        assert_eq!(
            (ok.state, ok.reason, ok.note),
            (view::DatabaseState::Ok, None, None)
        );
        let down = database(Some("disk full"), 3);
        assert_eq!(down.state, view::DatabaseState::Unavailable);
        assert_eq!(down.reason.as_deref(), Some("disk full"));
        assert_eq!(down.unsaved_changes, 3);
        assert!(down.note.is_some());
    }

    #[test]
    fn a_host_names_the_resources_it_knows() {
        let h = HostView {
            id: HostId(2),
            pid: Some(11),
            dedicated_to: Some(ResourceId(3)),
            resources: vec![ResourceId(3), ResourceId(99)],
        };
        let v = host(&h, |id| (id == ResourceId(3)).then(|| "Share".to_string()));
        assert_eq!((v.pid, v.separate), (Some(11), true));
        assert_eq!(v.resources, ["Share"]);
    }
}
