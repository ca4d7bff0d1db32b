//! The audit trail, `<data-dir>/audit.log` (0640, rotated like the cluster log): every mutating
//! control request, allowed or refused, as one JSON line with time, peer uid, gid and pid, the
//! request and its result. The request is described from its typed fields, with every private
//! parameter's value redacted (names are kept). Not authorisation (api.rs).

use crate::clusterlog::unix_ms;
use crate::logfile::{LogFile, WriteHealth};
use keelson_proto::{Assignments, ControlRequest};
use keelson_types::{escape_for_log, format_iso_time};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Shown instead of a private parameter's value.
pub const REDACTED: &str = "<redacted>";

/// One audit record.
#[derive(Serialize, Debug)]
struct Record<'a> {
    time: String,
    uid: u32,
    gid: u32,
    pid: Option<i32>,
    request: &'a str,
    /// Whether the peer was authorised at all.
    allowed: bool,
    /// `pending` (written before the request reaches the core), `done: …`, `refused: …` (bad
    /// input, nothing changed) or `denied: …` (not authorised).
    result: &'a str,
}

/// Who sent a request, as the kernel reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// The open audit log.
pub struct AuditLog {
    file: LogFile,
}

impl AuditLog {
    /// Opens (appending, creating 0640) `<dir>/audit.log`, rotated at `max_bytes` keeping `keep`.
    pub fn open(dir: &Path, max_bytes: u64, keep: u32) -> std::io::Result<AuditLog> {
        Ok(AuditLog {
            file: LogFile::open(dir, "audit.log", max_bytes, keep, 0)?,
        })
    }

    /// Appends one record, whole or not at all; an error means it is not in the file.
    pub fn record(
        &self,
        peer: Peer,
        request: &str,
        allowed: bool,
        result: &str,
    ) -> std::io::Result<()> {
        let result = escape_for_log(result);
        let rec = Record {
            time: format_iso_time(unix_ms()),
            uid: peer.uid,
            gid: peer.gid,
            pid: peer.pid,
            request,
            allowed,
            result: &result,
        };
        let line = serde_json::to_string(&rec).map_err(std::io::Error::other)?;
        self.file.append(&line)
    }

    /// Write failures and the last error.
    pub fn health(&self) -> WriteHealth {
        self.file.health()
    }
}

/// The request as the audit shows it: its kind and fields, names and common properties as given
/// (escaped), private parameters by name only.
pub fn describe(request: &ControlRequest) -> String {
    use ControlRequest as R;
    let mut out = String::new();
    let text = |s: &str| escape_for_log(s).into_owned();
    match request {
        R::Status => out.push_str("Status"),
        R::PluginList => out.push_str("PluginList"),
        R::GroupList => out.push_str("GroupList"),
        R::ResourceList => out.push_str("ResourceList"),
        R::NodeStop => out.push_str("NodeStop"),
        R::ClusterStatus => out.push_str("ClusterStatus"),
        R::NodeList => out.push_str("NodeList"),
        R::NetworkList => out.push_str("NetworkList"),
        R::Validate => out.push_str("Validate"),
        R::NodeEvict { name } => named(&mut out, "NodeEvict", name),
        R::NodePause { name, drain } => {
            let _ = write!(out, "NodePause name='{}' drain={drain}", text(name));
        }
        R::NodeResume { name } => named(&mut out, "NodeResume", name),
        R::NodeJoin {
            cluster,
            key_file,
            name,
        } => {
            let _ = write!(
                out,
                "NodeJoin cluster='{}' key_file='{}' name='{}'",
                text(cluster),
                text(key_file),
                text(name.as_deref().unwrap_or(""))
            );
        }
        R::ClusterCreate {
            name,
            nodes,
            virtual_subnet,
        } => {
            let nodes: Vec<String> = nodes
                .iter()
                .map(|(n, addrs)| format!("{}={}", text(n), text(&addrs.join(","))))
                .collect();
            let _ = write!(
                out,
                "ClusterCreate name='{}' nodes=[{}] virtual_subnet='{}'",
                text(name),
                nodes.join(", "),
                text(virtual_subnet.as_deref().unwrap_or("default"))
            );
        }
        R::ClusterGet { names } => {
            let names: Vec<String> = names.iter().map(|n| text(n)).collect();
            let _ = write!(out, "ClusterGet names=[{}]", names.join(", "));
        }
        R::ClusterSet { properties } => {
            out.push_str("ClusterSet");
            shown_pairs(&mut out, "properties", properties, false);
        }
        R::ClusterQuorum { witness: None } => out.push_str("ClusterQuorum"),
        R::ClusterQuorum {
            witness: Some(witness),
        } => {
            let _ = write!(out, "ClusterQuorum witness='{}'", text(witness));
        }
        R::GroupCreate { name, properties } => {
            let _ = write!(out, "GroupCreate name='{}'", text(name));
            shown_pairs(&mut out, "properties", properties, false);
        }
        R::GroupSet { name, properties } => {
            let _ = write!(out, "GroupSet name='{}'", text(name));
            shown_pairs(&mut out, "properties", properties, false);
        }
        R::GroupDelete { name } => named(&mut out, "GroupDelete", name),
        R::GroupOnline { name } => named(&mut out, "GroupOnline", name),
        R::GroupOffline { name } => named(&mut out, "GroupOffline", name),
        R::GroupMove { name, to } => {
            let _ = write!(
                out,
                "GroupMove name='{}' to='{}'",
                text(name),
                text(to.as_deref().unwrap_or(""))
            );
        }
        R::GroupGet { name } => named(&mut out, "GroupGet", name),
        R::ResourceCreate {
            name,
            type_name,
            group,
            params,
            properties,
        } => {
            let _ = write!(
                out,
                "ResourceCreate name='{}' type='{}' group='{}'",
                text(name),
                text(type_name),
                text(group)
            );
            shown_pairs(&mut out, "params", params, true);
            shown_pairs(&mut out, "properties", properties, false);
        }
        R::ResourceSet {
            name,
            properties,
            params,
            unset_params,
        } => {
            let _ = write!(out, "ResourceSet name='{}'", text(name));
            shown_pairs(&mut out, "properties", properties, false);
            shown_pairs(&mut out, "params", params, true);
            let keys: Vec<String> = unset_params.iter().map(|k| text(k)).collect();
            let _ = write!(out, " unset_params=[{}]", keys.join(", "));
        }
        R::ResourceGet { name } => named(&mut out, "ResourceGet", name),
        R::ResourceOnline { name } => named(&mut out, "ResourceOnline", name),
        R::ResourceOffline { name } => named(&mut out, "ResourceOffline", name),
        R::ResourceFail { name } => named(&mut out, "ResourceFail", name),
        R::ResourceDelete { name } => named(&mut out, "ResourceDelete", name),
        R::ResourceDepend { name, on } => {
            let _ = write!(
                out,
                "ResourceDepend name='{}' on='{}'",
                text(name),
                text(on)
            );
        }
        R::ResourceUndepend { name, on } => {
            let _ = write!(
                out,
                "ResourceUndepend name='{}' on='{}'",
                text(name),
                text(on)
            );
        }
        R::Log { lines, follow } => {
            let _ = write!(out, "Log lines={lines} follow={follow}");
        }
        R::Events { last, follow } => {
            let _ = write!(out, "Events last={last} follow={follow}");
        }
    }
    out
}

fn named(out: &mut String, kind: &str, name: &str) {
    let _ = write!(out, "{kind} name='{}'", escape_for_log(name));
}

/// ` label=[K=V, …]`, with every value replaced by [`REDACTED`] when `redact` is set.
fn shown_pairs(out: &mut String, label: &str, pairs: &Assignments, redact: bool) {
    let shown: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let value = if redact {
                REDACTED.into()
            } else {
                escape_for_log(v)
            };
            format!("{}={value}", escape_for_log(k))
        })
        .collect();
    let _ = write!(out, " {label}=[{}]", shown.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_values_are_redacted_and_names_kept() {
        let create = ControlRequest::ResourceCreate {
            name: "db".into(),
            type_name: "dummy".into(),
            group: "g".into(),
            params: vec![
                ("password".into(), "hunter2".into()),
                ("path".into(), "/srv/db".into()),
            ],
            properties: vec![("DeadlockTimeout".into(), "abc".into())],
        };
        let text = describe(&create);
        assert_eq!(
            text,
            "ResourceCreate name='db' type='dummy' group='g' params=[password=<redacted>, \
             path=<redacted>] properties=[DeadlockTimeout=abc]"
        );
        let set = ControlRequest::ResourceSet {
            name: "db".into(),
            properties: vec![],
            params: vec![("token\n".into(), "s3cr3t".into())],
            unset_params: vec!["old".into()],
        };
        let text = describe(&set);
        assert!(!text.contains("s3cr3t") && !text.contains('\n'), "{text}");
        assert!(
            text.contains("params=[token\\n=<redacted>] unset_params=[old]"),
            "{text}"
        );
    }

    #[test]
    fn cluster_properties_are_shown_with_their_values() {
        let set = ControlRequest::ClusterSet {
            properties: vec![("SameSubnetDelay".into(), "2000\n".into())],
        };
        assert_eq!(
            describe(&set),
            "ClusterSet properties=[SameSubnetDelay=2000\\n]"
        );
        let get = ControlRequest::ClusterGet {
            names: vec!["SameSubnetDelay".into(), "CrossSubnetDelay".into()],
        };
        assert_eq!(
            describe(&get),
            "ClusterGet names=[SameSubnetDelay, CrossSubnetDelay]"
        );
    }

    #[test]
    fn a_witness_path_is_shown_escaped() {
        let set = ControlRequest::ClusterQuorum {
            witness: Some("/srv/w\n".into()),
        };
        assert_eq!(describe(&set), "ClusterQuorum witness='/srv/w\\n'");
        let show = ControlRequest::ClusterQuorum { witness: None };
        assert_eq!(describe(&show), "ClusterQuorum");
    }

    #[test]
    fn a_record_is_one_json_line_with_every_field() {
        let dir = std::env::temp_dir().join(format!("keelson-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let audit = AuditLog::open(&dir, 1 << 20, 1).unwrap();
        let peer = Peer {
            uid: 5,
            gid: 6,
            pid: Some(7),
        };
        audit
            .record(peer, "GroupCreate name='g'", true, "done: ok\nforged")
            .unwrap();
        let text = std::fs::read_to_string(dir.join("audit.log")).unwrap();
        assert_eq!(text.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["uid"], 5);
        assert_eq!(v["gid"], 6);
        assert_eq!(v["pid"], 7);
        assert_eq!(v["allowed"], true);
        assert_eq!(v["result"], "done: ok\\nforged");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
