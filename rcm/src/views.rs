//! JSON views for the control API: status, resources, groups, hosts, plugins. Property values are
//! rendered as JSON numbers and booleans where they are ones. Not the CLI's tables (crates/ctl).

use crate::core::Core;
use keelson_engine::{GroupView, ResourceView};
use serde_json::{json, Map, Value};

/// "5000" -> 5000, "true" -> true, anything else stays text.
fn typed(value: &str) -> Value {
    if let Ok(n) = value.parse::<u64>() {
        return json!(n);
    }
    match value {
        "true" => json!(true),
        "false" => json!(false),
        _ => json!(value),
    }
}

impl Core {
    fn host_pid(&self, r: &ResourceView) -> Value {
        r.monitor_process_id.map(Value::from).unwrap_or(Value::Null)
    }

    fn resource_summary(&self, r: &ResourceView) -> Value {
        json!({
            "name": r.name,
            "type": r.type_name,
            "group": r.group,
            "state": r.state.to_string(),
            "host_pid": self.host_pid(r),
        })
    }

    pub fn resource_view(&self, name: &str) -> Result<Value, String> {
        let r = self
            .engine
            .resource(name)
            .ok_or(format!("no resource named '{name}'"))?;
        let mut properties: Map<String, Value> = r
            .properties
            .to_map()
            .iter()
            .map(|(k, v)| (k.clone(), typed(v)))
            .collect();
        properties.insert("MonitorProcessId".into(), self.host_pid(&r));
        // Secret values are the plugin's, not the reader's: shown as *** like in the logs.
        let parameters: Map<String, Value> = r
            .params
            .iter()
            .map(|(k, v)| match keelson_types::is_secret_param(k) {
                true => (k.clone(), json!("***")),
                false => (k.clone(), json!(v)),
            })
            .collect();
        let call_stats: Map<String, Value> = self
            .timings
            .get(&r.id)
            .map(|t| {
                t.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .summary()
                    .into_iter()
                    .map(|(op, s)| (op.upper().to_string(), json!(s)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!({
            "name": r.name,
            "type": r.type_name,
            "plugin": r.plugin,
            "group": r.group,
            "state": r.state.to_string(),
            "owner_node": self.node,
            "host_pid": self.host_pid(&r),
            "depends_on": r.depends_on,
            "properties": properties,
            "parameters": parameters,
            "call_stats": call_stats,
        }))
    }

    pub fn resource_list_view(&self) -> Value {
        Value::Array(
            self.engine
                .resources()
                .iter()
                .map(|r| self.resource_summary(r))
                .collect(),
        )
    }

    fn group_summary(&self, g: &GroupView) -> Value {
        json!({ "name": g.name, "state": g.state.to_string(), "owner_node": self.node, "resources": g.resources })
    }

    pub fn group_view(&self, name: &str) -> Result<Value, String> {
        let g = self
            .engine
            .group(name)
            .ok_or(format!("no group named '{name}'"))?;
        let properties: Map<String, Value> = g
            .properties
            .to_map()
            .iter()
            .map(|(k, v)| (k.clone(), typed(v)))
            .collect();
        let mut view = self.group_summary(&g);
        view["properties"] = Value::Object(properties);
        Ok(view)
    }

    pub fn group_list_view(&self) -> Value {
        Value::Array(
            self.engine
                .groups()
                .iter()
                .map(|g| self.group_summary(g))
                .collect(),
        )
    }

    pub fn status_view(&self) -> Value {
        let resources = self.engine.resources();
        let groups: Vec<Value> = self
            .engine
            .groups()
            .iter()
            .map(|g| {
                let members: Vec<Value> = resources
                    .iter()
                    .filter(|r| r.group == g.name)
                    .map(|r| json!({"name": r.name, "type": r.type_name, "state": r.state.to_string(), "host_pid": self.host_pid(r)}))
                    .collect();
                json!({"name": g.name, "state": g.state.to_string(), "owner_node": self.node, "resources": members})
            })
            .collect();
        let hosts: Vec<Value> = self
            .engine
            .hosts()
            .iter()
            .map(|h| {
                let names: Vec<String> = h
                    .resources
                    .iter()
                    .filter_map(|id| self.engine.resource_by_id(*id).map(|r| r.name))
                    .collect();
                json!({"pid": h.pid, "separate": h.dedicated_to.is_some(), "resources": names})
            })
            .collect();
        let totals: Map<String, Value> = self
            .call_totals
            .iter()
            .map(|(op, n)| (op.upper().to_string(), json!(n)))
            .collect();
        let database = match self.store.health() {
            None => json!({"state": "ok", "unsaved_changes": self.unsaved.len()}),
            Some(reason) => json!({
                "state": "unavailable",
                "reason": reason,
                "unsaved_changes": self.unsaved.len(),
                "note": "changes are refused until the cluster database can be reopened",
            }),
        };
        let logs = json!([self.log.health(), self.events.health(), self.audit.health()]);
        json!({"node": self.node, "pid": std::process::id(), "database": database, "logs": logs, "groups": groups, "hosts": hosts, "calls_completed": totals})
    }

    /// Every plugin file looked at with its status and problem, the conflicting types, and whether
    /// every probe has reported.
    pub fn plugin_view(&self) -> Value {
        json!({
            "complete": self.catalogue.is_complete(),
            "probe_timeout_ms": self.catalogue.probe_timeout().as_millis() as u64,
            "plugins": self.catalogue.entries(),
            "conflicts": self.catalogue.conflicts(),
        })
    }
}
