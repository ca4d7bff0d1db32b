//! The node's stdout: one JSON object per line, each with `t_unix_ns` (CLOCK_REALTIME, shared by
//! every namespace on the machine) and a `kind` — `started`, `route`, `node`, `incarnation`,
//! `event`, `log`, `status` — written and flushed as it happens. Also the `NetftSink` that turns
//! the shell's reports into such lines. Not what the reports mean (the detector decides).

use crate::config::wall_clock_ns;
use keelson_netft::{NetftEvent, NetftSink, NodeId, NodeState, RouteKey, RouteState};
use keelson_types::LogLevel;
use serde_json::{json, Value};
use std::io::Write;

/// Exit status when stdout is gone: a node that cannot report must not run on unobserved.
const EXIT_STDOUT_GONE: i32 = 3;

/// Writes one line `{"t_unix_ns": …, "kind": kind, …fields}` and flushes it. If stdout is gone
/// (the reader died), the node exits: nobody would hear what it reports.
pub fn emit(kind: &str, fields: Value) {
    let mut line = json!({ "t_unix_ns": wall_clock_ns().unwrap_or(0), "kind": kind });
    if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
        line.extend(fields);
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        eprintln!("keelson-netft-node: stdout is gone; exiting");
        std::process::exit(EXIT_STDOUT_GONE);
    }
}

pub fn route_state_name(state: RouteState) -> &'static str {
    match state {
        RouteState::Unknown => "Unknown",
        RouteState::Up => "Up",
        RouteState::Down => "Down",
    }
}

fn node_state_name(state: NodeState) -> &'static str {
    match state {
        NodeState::Unknown => "Unknown",
        NodeState::Up => "Up",
        NodeState::Down => "Down",
    }
}

/// The sink that prints every report as a JSON line.
#[derive(Debug, Default)]
pub struct JsonLines;

impl NetftSink for JsonLines {
    fn log(&mut self, level: LogLevel, component: &str, message: &str) {
        emit(
            "log",
            json!({ "level": level.to_string(), "component": component, "message": message }),
        );
    }

    fn raise(&mut self, event: &NetftEvent) {
        emit(
            "event",
            json!({
                "id": event.id,
                "level": format!("{:?}", event.level),
                "message": event.message,
                "node": event.node,
                "network": event.network,
                "interface": event.interface,
            }),
        );
    }

    fn route_state(&mut self, route: RouteKey, state: RouteState) {
        emit(
            "route",
            json!({
                "local": route.local.to_string(),
                "remote": route.remote.to_string(),
                "state": route_state_name(state),
            }),
        );
    }

    fn node_state(&mut self, node: NodeId, state: NodeState) {
        emit(
            "node",
            json!({ "node": node.0, "state": node_state_name(state) }),
        );
    }

    fn node_incarnation(&mut self, node: NodeId, incarnation: u64) {
        emit(
            "incarnation",
            json!({ "node": node.0, "incarnation": incarnation }),
        );
    }
}
