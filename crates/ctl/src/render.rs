//! Human-readable text for the views the node service sends (the structs of
//! `keelson_proto::view`): aligned tables and `key: value` blocks, with `-` for what a view leaves
//! empty. Also `--json` pretty-printing and log and event lines. Not fetching anything and not
//! writing to stdout.

use keelson_proto::view::{
    self, DatabaseState, Group, GroupSummary, PluginFile, PluginList, Resource, ResourceSummary,
    Status,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Display;

/// A field as text: strings as-is, missing/null as `-`, arrays joined with `, `.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".to_string(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A name or a state: `-` when the view left it empty.
fn word(s: &str) -> String {
    match s {
        "" => "-".to_string(),
        s => s.to_string(),
    }
}

/// A list of names joined with `, `; `-` when empty.
fn names(items: &[String]) -> String {
    match items {
        [] => "-".to_string(),
        items => items.join(", "),
    }
}

/// A value that may be absent (a host pid, an error): `-` when it is.
fn maybe(v: Option<impl Display>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// `--json` output: the view pretty-printed with its keys unchanged (text that is not JSON as-is).
pub fn pretty_json(raw: &str) -> String {
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| raw.to_string()),
        Err(_) => raw.to_string(),
    }
}

/// Columns aligned on the widest cell, two spaces apart; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&head).chain(rows) {
        out.push_str(&line(row, &widths));
        out.push('\n');
    }
    out
}

fn line(cells: &[String], widths: &[usize]) -> String {
    let last = cells.len().min(widths.len()).saturating_sub(1);
    let mut s = String::new();
    for (i, cell) in cells.iter().enumerate().take(widths.len()) {
        if i == last {
            s.push_str(cell);
        } else {
            let pad = widths[i] - cell.chars().count();
            s.push_str(cell);
            s.push_str(&" ".repeat(pad + 2));
        }
    }
    s.trim_end().to_string()
}

/// A table indented by two spaces.
fn indented(table: &str) -> String {
    table.lines().map(|l| format!("  {l}\n")).collect()
}

/// `key: value` lines, aligned after the colon.
fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{:<w$} {v}\n", format!("{k}:"), w = width + 1))
        .collect()
}

/// A map's entries as indented `Name = value` lines, sorted by name; `  (none)` when empty.
fn entries(title: &str, map: &BTreeMap<String, impl Display>) -> String {
    let mut out = format!("{title}:\n");
    if map.is_empty() {
        out.push_str("  (none)\n");
        return out;
    }
    let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
    for (k, v) in map {
        out.push_str(&format!("  {k:<width$} = {v}\n"));
    }
    out
}

/// `resource list`: one row per resource.
pub fn resource_list(rows: &[ResourceSummary]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                word(&r.name),
                word(&r.type_name),
                word(&r.group),
                word(&r.state),
                maybe(r.host_pid),
            ]
        })
        .collect();
    table(&["NAME", "TYPE", "GROUP", "STATE", "HOST PID"], &rows)
}

/// `resource get`: identity, properties, parameters, each entry point's last error and call
/// statistics.
pub fn resource(r: &Resource) -> String {
    let mut out = fields(&[
        ("name", word(&r.name)),
        ("type", word(&r.type_name)),
        ("group", word(&r.group)),
        ("state", word(&r.state)),
        ("owner node", word(&r.owner_node)),
        ("host pid", maybe(r.host_pid)),
        ("depends on", names(&r.depends_on)),
    ]);
    out.push_str(&entries("properties", &r.properties));
    out.push_str(&entries("parameters", &r.parameters));
    out.push_str(&last_errors(&r.last_errors));
    out.push_str(&call_stats(&r.call_stats));
    out
}

/// The last error of each entry point that failed, or nothing at all when none ever did.
fn last_errors(errors: &BTreeMap<String, view::LastError>) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = errors
        .iter()
        .map(|(op, e)| {
            let message = e.message.replace(['\n', '\r'], " ");
            vec![op.clone(), word(&e.status), word(&e.at), word(&message)]
        })
        .collect();
    let t = table(&["OP", "STATUS", "AT", "MESSAGE"], &rows);
    format!("last errors:\n{}", indented(&t))
}

fn call_stats(stats: &BTreeMap<String, view::CallStats>) -> String {
    if stats.is_empty() {
        return "call stats: (none)\n".to_string();
    }
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|(op, s)| {
            let numbers = [s.count, s.p50_us, s.p99_us, s.max_us, s.last_us];
            std::iter::once(op.clone())
                .chain(numbers.iter().map(u64::to_string))
                .collect()
        })
        .collect();
    let t = table(
        &["OP", "COUNT", "P50 us", "P99 us", "MAX us", "LAST us"],
        &rows,
    );
    format!("call stats:\n{}", indented(&t))
}

/// `group list`: one row per group.
pub fn group_list(rows: &[GroupSummary]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|g| {
            vec![
                word(&g.name),
                word(&g.state),
                word(&g.owner_node),
                names(&g.resources),
            ]
        })
        .collect();
    table(&["NAME", "STATE", "OWNER", "RESOURCES"], &rows)
}

/// `group get`: identity, members and properties.
pub fn group(g: &Group) -> String {
    let mut rows = vec![
        ("name", word(&g.name)),
        ("state", word(&g.state)),
        ("owner node", word(&g.owner_node)),
    ];
    rows.extend(placement_rows(g));
    rows.push(("resources", names(&g.resources)));
    let mut out = fields(&rows);
    out.push_str(&entries("properties", &g.properties));
    out
}

/// What a cluster adds to `group get`, each only when it says something: the state on its owner
/// when it is not the state here, the preferred owners, a hand-off in progress, the failover
/// count, the last move, and a group the cluster left Failed.
fn placement_rows(g: &Group) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if !g.owner_state.is_empty() && g.owner_state != g.state {
        rows.push(("on owner", word(&g.owner_state)));
    }
    if !g.preferred_owners.is_empty() {
        rows.push(("preferred", names(&g.preferred_owners)));
    }
    if !g.releasing_from.is_empty() {
        rows.push(("moving from", word(&g.releasing_from)));
    }
    if let Some(m) = &g.last_move {
        let from = if m.from.is_empty() { "(none)" } else { &m.from };
        rows.push((
            "last move",
            format!(
                "{} -> {} ({}) at {}",
                word(from),
                word(&m.to),
                m.reason,
                m.at
            ),
        ));
        rows.push((
            "failovers",
            format!(
                "{} in the period (threshold {})",
                g.failovers_in_period, g.failover_threshold
            ),
        ));
    }
    if g.left_failed {
        rows.push((
            "left failed",
            "yes: move it or bring it online to try again".to_string(),
        ));
    }
    rows
}

/// `status`: the node, what is failing (log writes, the database), each group with its resources,
/// then the hosts.
pub fn status(v: &Status) -> String {
    let mut out = format!("node {}\n", word(&v.node));
    for log in v.logs.iter().filter(|l| l.write_failures > 0) {
        out.push_str(&format!(
            "LOG WRITE FAILURES: {}: {} lines not written (last error: {})\n",
            word(&log.file),
            log.write_failures,
            maybe(log.last_error.as_ref())
        ));
    }
    if v.database.state == DatabaseState::Unavailable {
        out.push_str(&format!(
            "DATABASE UNAVAILABLE: {} ({})\n",
            maybe(v.database.reason.as_ref()),
            maybe(v.database.note.as_ref())
        ));
    }
    if v.groups.is_empty() {
        out.push_str("\nno groups\n");
    }
    for g in &v.groups {
        out.push_str(&format!(
            "\ngroup {}: {} (owner {})\n",
            word(&g.name),
            word(&g.state),
            word(&g.owner_node)
        ));
        let rows: Vec<Vec<String>> = g
            .resources
            .iter()
            .map(|r| {
                vec![
                    word(&r.name),
                    word(&r.type_name),
                    word(&r.state),
                    maybe(r.host_pid),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&indented(&table(
                &["RESOURCE", "TYPE", "STATE", "HOST PID"],
                &rows,
            )));
        }
    }
    out.push_str(&hosts(&v.hosts));
    out
}

fn hosts(hosts: &[view::Host]) -> String {
    if hosts.is_empty() {
        return "\nno resource hosts\n".to_string();
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let kind = if h.separate { "separate" } else { "shared" };
            vec![maybe(h.pid), kind.to_string(), names(&h.resources)]
        })
        .collect();
    format!(
        "\nresource hosts:\n{}",
        indented(&table(&["PID", "MONITOR", "RESOURCES"], &rows))
    )
}

/// `plugin list`: one row per file looked at; in place of its types, a file that could not be used
/// shows its problem (failed, hung at load, still being probed), and a type two files declare is
/// marked as a conflict naming the other file. A note follows while probes are still running.
pub fn plugin_list(v: &PluginList) -> String {
    let rows: Vec<Vec<String>> = v
        .plugins
        .iter()
        .map(|p| vec![maybe(p.name.as_ref()), plugin_types(p), word(&p.path)])
        .collect();
    if rows.is_empty() {
        return "no plugins found\n".to_string();
    }
    let mut out = table(&["PLUGIN", "TYPES", "PATH"], &rows);
    out.push_str(&type_parameters(v));
    let probing = v.plugins.iter().filter(|p| p.status == "probing").count();
    if !v.complete {
        out.push_str(&format!(
            "\n{probing} plugin file(s) still being probed (each has {} ms); run again to see them\n",
            v.probe_timeout_ms
        ));
    }
    out
}

/// Below the plugin table, one row per declared type: its parameters, `*` marking the required
/// ones and `=V` the defaults (`keelson plugin describe TYPE` has the rest). Empty when no loaded
/// file declares any.
fn type_parameters(v: &PluginList) -> String {
    let rows: Vec<Vec<String>> = v
        .plugins
        .iter()
        .flat_map(|p| p.schemas.iter())
        .filter(|s| s.declared)
        .map(|s| vec![s.type_name.clone(), parameter_names(&s.params)])
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!("\n{}", table(&["TYPE", "PARAMETERS"], &rows))
}

fn parameter_names(params: &[keelson_proto::view::ParamView]) -> String {
    if params.is_empty() {
        return "(none)".to_string();
    }
    let one = |p: &keelson_proto::view::ParamView| match (&p.default, p.required) {
        (Some(d), _) if !p.secret => format!("{}={d}", p.name),
        (_, true) => format!("{}*", p.name),
        _ => p.name.clone(),
    };
    params.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// The TYPES cell of one plugin file: its types, or its problem.
fn plugin_types(p: &PluginFile) -> String {
    match (p.status.as_str(), &p.error) {
        ("probing", _) => "probing (no answer yet)".to_string(),
        ("hung", e) => maybe(e.as_ref()),
        ("conflict", e) => format!("{} (conflict: {})", names(&p.types), maybe(e.as_ref())),
        (_, None) => names(&p.types),
        (_, Some(e)) => format!("error: {e}"),
    }
}

/// A cluster-log line as one JSON object for `keelson log --json`: `{time, pid, tid, level,
/// component, message, line}` (time in ISO 8601 UTC like events, pid and tid as numbers, `line` the
/// line as written); a line not in the cluster-log format (a "lines dropped" note) is `{line}` only.
pub fn log_line_json(raw: &str) -> String {
    let object = match parse_log_line(raw) {
        Some(p) => serde_json::json!({
            "time": p.time,
            "pid": p.pid,
            "tid": p.tid,
            "level": p.level,
            "component": p.component,
            "message": p.message,
            "line": raw,
        }),
        None => serde_json::json!({ "line": raw }),
    };
    object.to_string()
}

/// The fields of one `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm LEVEL [COMPONENT] message` line.
struct LogLine<'a> {
    time: String,
    pid: u32,
    tid: u32,
    level: &'a str,
    component: &'a str,
    message: &'a str,
}

fn parse_log_line(raw: &str) -> Option<LogLine<'_>> {
    let (ids, rest) = raw.split_once("::")?;
    let (pid, tid) = ids.split_once('.')?;
    let pid = u32::from_str_radix(pid, 16).ok()?;
    let tid = u32::from_str_radix(tid, 16).ok()?;
    let unix_ms = keelson_types::parse_log_line_time(raw)?;
    let rest = rest.get(23..)?.strip_prefix(' ')?;
    let (level, rest) = rest.split_once(' ')?;
    let (component, message) = rest.strip_prefix('[')?.split_once(']')?;
    Some(LogLine {
        time: keelson_types::format_iso_time(unix_ms),
        pid,
        tid,
        level,
        component,
        message: message.strip_prefix(' ').unwrap_or(message),
    })
}

/// An event line without `--json`: `TIME LEVEL ID message`; a line that is not JSON as-is.
pub fn event_line(raw: &str) -> String {
    match serde_json::from_str::<Value>(raw) {
        Ok(e) if e.is_object() => format!(
            "{} {} {} {}",
            text(&e["time"]),
            text(&e["level"]),
            text(&e["id"]),
            text(&e["message"])
        ),
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A view as the CLI reads it from the node service's JSON.
    fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("the JSON is a view")
    }

    #[test]
    fn tables_align_on_the_widest_cell() {
        let t = table(
            &["NAME", "STATE"],
            &[
                vec!["IP Address".into(), "Online".into()],
                vec!["Disk".into(), "Failed".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME        STATE\nIP Address  Online\nDisk        Failed\n"
        );
    }

    #[test]
    fn resource_list_tolerates_missing_fields() {
        let v = json!([
            {"name": "Disk", "type": "dummy", "group": "FS", "state": "Online", "host_pid": 4242},
            {"name": "Share", "state": "Offline", "host_pid": null}
        ]);
        let t = resource_list(&from::<Vec<ResourceSummary>>(v));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "NAME   TYPE   GROUP  STATE    HOST PID");
        assert_eq!(lines[1], "Disk   dummy  FS     Online   4242");
        assert_eq!(lines[2], "Share  -      -      Offline  -");
        assert_eq!(resource_list(&[]), "NAME  TYPE  GROUP  STATE  HOST PID\n");
    }

    #[test]
    fn resource_view_shows_properties_parameters_and_stats() {
        let v = json!({
            "name": "Disk", "type": "dummy", "group": "FS", "state": "Online",
            "owner_node": "n1", "host_pid": 77,
            "properties": {"SeparateMonitor": true, "DeadlockTimeout": 300000},
            "parameters": {"path": "/srv"},
            "call_stats": {"LOOKSALIVE": {"count": 12, "p50_us": 40, "p99_us": 90, "max_us": 95, "last_us": 41}}
        });
        let t = resource(&from(v));
        assert!(t.contains("name:       Disk\n"), "{t}");
        assert!(t.contains("host pid:   77\n"), "{t}");
        assert!(
            t.contains("  DeadlockTimeout = 300000\n  SeparateMonitor = true\n"),
            "{t}"
        );
        assert!(t.contains("parameters:\n  path = /srv\n"), "{t}");
        assert!(
            t.contains("  OP          COUNT  P50 us  P99 us  MAX us  LAST us\n"),
            "{t}"
        );
        assert!(
            t.contains("  LOOKSALIVE  12     40      90      95      41\n"),
            "{t}"
        );
        assert!(!t.contains("last errors"), "none failed: {t}");
    }

    #[test]
    fn resource_view_shows_each_ops_last_error_with_its_kind_and_time() {
        let v = json!({
            "name": "Web",
            "last_errors": {
                "ONLINE": {"at": "2026-12-01T19:00:00.000Z", "message": "port=0", "status": "misconfigured"},
                "ISALIVE": {"at": "2026-12-01T19:05:00.250Z", "message": "gone\naway", "status": "reported"}
            }
        });
        let t = resource(&from(v));
        assert!(
            t.contains(
                "last errors:\n  OP       STATUS         AT                        MESSAGE\n  \
                 ISALIVE  reported       2026-12-01T19:05:00.250Z  gone away\n  \
                 ONLINE   misconfigured  2026-12-01T19:00:00.000Z  port=0\n"
            ),
            "{t}"
        );
        assert!(t.ends_with("call stats: (none)\n"), "{t}");
    }

    #[test]
    fn resource_view_of_an_almost_empty_object() {
        let t = resource(&from(json!({"name": "x"})));
        assert!(t.contains("state:      -\n"), "{t}");
        assert!(t.contains("properties:\n  (none)\n"), "{t}");
        assert!(t.ends_with("call stats: (none)\n"), "{t}");
    }

    #[test]
    fn group_views() {
        let list = json!([{"name": "FS", "state": "PartialOnline", "owner_node": "n1", "resources": ["Disk", "Share"]}]);
        assert_eq!(
            group_list(&from::<Vec<GroupSummary>>(list)),
            "NAME  STATE          OWNER  RESOURCES\nFS    PartialOnline  n1     Disk, Share\n"
        );
        let g = json!({"name": "FS", "state": "Online", "owner_node": "n1", "properties": {"FailoverThreshold": 2}, "resources": []});
        let t = group(&from(g));
        assert!(t.contains("resources:  -\n"), "{t}");
        assert!(t.contains("properties:\n  FailoverThreshold = 2\n"), "{t}");
    }

    #[test]
    fn status_shows_groups_resources_and_hosts() {
        let v = json!({
            "node": "n1",
            "groups": [{"name": "FS", "state": "Online", "owner_node": "n1",
                        "resources": [{"name": "Disk", "type": "dummy", "state": "Online", "host_pid": 10}]}],
            "hosts": [{"pid": 10, "separate": false, "resources": ["Disk"]},
                      {"pid": 11, "separate": true, "resources": ["Share"]}]
        });
        let t = status(&from(v));
        assert!(
            t.starts_with("node n1\n\ngroup FS: Online (owner n1)\n"),
            "{t}"
        );
        assert!(
            t.contains("  RESOURCE  TYPE   STATE   HOST PID\n  Disk      dummy  Online  10\n"),
            "{t}"
        );
        assert!(
            t.contains("  10   shared    Disk\n  11   separate  Share\n"),
            "{t}"
        );
        let empty = status(&from(json!({"node": "n1"})));
        assert_eq!(empty, "node n1\n\nno groups\n\nno resource hosts\n");
    }

    #[test]
    fn plugin_list_shows_errors_in_place_of_types() {
        let v = json!({"plugins": [
            {"path": "/p/libkeelson_plugin_dummy.so", "name": "dummy", "types": ["dummy"]},
            {"path": "/p/libkeelson_plugin_bad.so", "types": [], "error": "ABI mismatch"}
        ]});
        let t = plugin_list(&from(v));
        assert!(
            t.contains("dummy   dummy                /p/libkeelson_plugin_dummy.so\n"),
            "{t}"
        );
        assert!(
            t.contains("-       error: ABI mismatch  /p/libkeelson_plugin_bad.so\n"),
            "{t}"
        );
        assert_eq!(
            plugin_list(&from(json!({"plugins": []}))),
            "no plugins found\n"
        );
    }

    #[test]
    fn plugin_list_shows_each_declared_types_parameters() {
        let v = json!({"plugins": [
            {"path": "/p/libkeelson_plugin_ip_address.so", "name": "ip-address",
             "status": "loaded", "types": ["ip-address"],
             "schemas": [{"type": "ip-address", "declared": true, "defaults": {}, "params": [
                {"name": "Address", "type": "address", "required": true, "secret": false},
                {"name": "PrefixLength", "type": "integer", "required": false, "secret": false,
                 "default": "24"},
                {"name": "Key", "type": "string", "required": false, "secret": true,
                 "default": "hunter2"}]}]},
            {"path": "/p/libold.so", "name": "old", "status": "loaded", "types": ["old"],
             "schemas": [{"type": "old", "declared": false, "defaults": {}, "params": []}]}
        ]});
        let t = plugin_list(&from(v));
        assert!(
            t.contains("\nTYPE        PARAMETERS\nip-address  Address* PrefixLength=24 Key\n"),
            "{t}"
        );
        assert!(!t.contains("hunter2"), "a secret default is not shown: {t}");
        let section = t.split("PARAMETERS\n").nth(1).unwrap();
        assert!(
            !section.contains("old"),
            "an undeclared type has no row: {t}"
        );
    }

    #[test]
    fn log_lines_as_json_objects() {
        let raw = "0000758e.0000758b::2026/11/25-08:06:48.173 ERR [RHS] Resource share handling deadlock.";
        let v: Value = serde_json::from_str(&log_line_json(raw)).unwrap();
        assert_eq!(
            v,
            json!({
                "time": "2026-11-25T08:06:48.173Z", "pid": 0x758e, "tid": 0x758b, "level": "ERR",
                "component": "RHS", "message": "Resource share handling deadlock.", "line": raw
            })
        );
        let v: Value = serde_json::from_str(&log_line_json("... 3 lines dropped ...")).unwrap();
        assert_eq!(v, json!({"line": "... 3 lines dropped ..."}));
        assert!(!log_line_json(raw).contains('\n'), "one line per object");
    }

    #[test]
    fn plugin_list_shows_hung_probing_and_conflicting_files() {
        let v = json!({"complete": false, "probe_timeout_ms": 500, "plugins": [
            {"path": "/p/a.so", "status": "conflict", "name": "a", "types": ["x", "y"],
             "conflicting_types": ["x"], "error": "type 'x' is also provided by /p/b.so"},
            {"path": "/p/h.so", "status": "hung", "types": [], "error": "hung at load: 500 ms"},
            {"path": "/p/l.so", "status": "probing", "types": []},
            {"path": "/p/d.so", "status": "failed", "types": [], "error": "/p/d.so -> /x: no such file"}
        ]});
        let t = plugin_list(&from(v));
        assert!(
            t.contains("a       x, y (conflict: type 'x' is also provided by /p/b.so)  /p/a.so\n"),
            "{t}"
        );
        assert!(t.contains("-       hung at load: 500 ms"), "{t}");
        assert!(t.contains("-       probing (no answer yet)"), "{t}");
        assert!(
            t.contains("-       error: /p/d.so -> /x: no such file"),
            "{t}"
        );
        assert!(
            t.ends_with(
                "\n1 plugin file(s) still being probed (each has 500 ms); run again to see them\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn event_lines_and_pretty_json() {
        let raw = r#"{"id":1146,"time":"2024-05-01T10:00:00.123Z","level":"Error","source":"RCM","message":"boom","resource":"Share"}"#;
        assert_eq!(event_line(raw), "2024-05-01T10:00:00.123Z Error 1146 boom");
        assert_eq!(event_line("not json"), "not json");
        assert_eq!(pretty_json(r#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(pretty_json("oops"), "oops");
    }
}
