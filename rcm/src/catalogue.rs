//! The plugin catalogue: every plugin file rcm looked at and what its probe found (loaded with its
//! types, still being probed, hung, failed, or in conflict with another file over a type), and the
//! resolution of a resource type to the one file that provides it. It fills in as probes report, so
//! it also keeps the opens and creates that wait for a type still being probed. Not the probing
//! itself (probe.rs) and not hosting.

use crate::api::CoreRequest;
use keelson_engine::HostId;
use keelson_host::PendingOpen;
use keelson_types::{LogLevel, PluginInfo, ResourceProperties, ResourceTypeInfo, TypeDefaults};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What is known of one plugin file.
#[derive(Clone, Debug)]
pub enum FileState {
    /// Its probe has not reported yet.
    Probing,
    Loaded(PluginInfo),
    /// Its probe host did not answer the load within the probe deadline and was killed.
    Hung(String),
    /// It cannot be used (the loader's error, a dangling symlink, not a regular file, ...).
    Failed(String),
}

/// One file looked at: a `libkeelson_plugin_*.so` entry of a plugin directory, or a directory that
/// could not be read.
#[derive(Clone, Debug)]
pub struct PluginFile {
    pub path: String,
    pub state: FileState,
    /// How long its probe took.
    pub probe_ms: Option<u64>,
}

/// What a probe found, as reported to the core.
#[derive(Debug)]
pub struct ProbeReport {
    pub path: String,
    pub state: FileState,
    pub probe_ms: u64,
}

/// Where a resource type stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly one loaded file provides it.
    Found { plugin: String, path: String },
    /// No loaded file provides it yet, and some file is still being probed.
    Pending,
    /// It cannot be used: the reason, one line.
    Missing(String),
}

/// One row of `plugin list`.
#[derive(Clone, Debug, Serialize)]
pub struct PluginEntry {
    pub path: String,
    /// loaded, probing, hung, failed or conflict.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub types: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicting_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_ms: Option<u64>,
    /// Once loaded: each type's name and declaration (the view renders them).
    #[serde(skip)]
    pub schemas: Vec<(String, keelson_types::TypeSchema)>,
}

/// A type provided by more than one file: offered to nobody until all but one are removed.
#[derive(Clone, Debug, Serialize)]
pub struct Conflict {
    #[serde(rename = "type")]
    pub type_name: String,
    pub files: Vec<String>,
}

/// Every plugin file looked at, and what waits for them.
#[derive(Default)]
pub struct Catalogue {
    files: Vec<PluginFile>,
    probe_timeout: Duration,
    /// Opens of resources whose type is still pending, in arrival order.
    waiting_opens: Vec<(HostId, PendingOpen)>,
    /// `resource create` requests whose type is still pending, by ticket, with their type.
    parked: BTreeMap<u64, (String, CoreRequest)>,
    next_ticket: u64,
}

impl Catalogue {
    /// A catalogue of `files` (those still `Probing` fill in through [`Catalogue::record`]).
    pub fn new(files: Vec<PluginFile>, probe_timeout: Duration) -> Catalogue {
        Catalogue {
            files,
            probe_timeout,
            ..Catalogue::default()
        }
    }

    /// Every file looked at, in the order found.
    pub fn files(&self) -> &[PluginFile] {
        &self.files
    }

    pub fn probe_timeout(&self) -> Duration {
        self.probe_timeout
    }

    /// Whether every probe has reported.
    pub fn is_complete(&self) -> bool {
        self.probing().next().is_none()
    }

    fn probing(&self) -> impl Iterator<Item = &PluginFile> {
        self.files
            .iter()
            .filter(|f| matches!(f.state, FileState::Probing))
    }

    /// Files whose loaded plugin declares `type_name`.
    fn providers(&self, type_name: &str) -> Vec<&PluginFile> {
        self.files
            .iter()
            .filter(|f| match &f.state {
                FileState::Loaded(info) => info.types.iter().any(|t| t.name == type_name),
                _ => false,
            })
            .collect()
    }

    /// Where `type_name` stands now.
    pub fn resolve(&self, type_name: &str) -> Resolution {
        let providers = self.providers(type_name);
        match providers.as_slice() {
            [one] => {
                let FileState::Loaded(info) = &one.state else {
                    unreachable!("providers are loaded files")
                };
                Resolution::Found {
                    plugin: info.name.clone(),
                    path: one.path.clone(),
                }
            }
            [] if !self.is_complete() => Resolution::Pending,
            [] => Resolution::Missing(format!(
                "no plugin provides resource type '{type_name}'{}",
                self.known_and_problems()
            )),
            many => Resolution::Missing(conflict_message(type_name, many)),
        }
    }

    /// The type as the one loaded file that provides it declares it, with that file's path (None
    /// unless the type resolves to exactly one file).
    pub fn type_info(&self, type_name: &str) -> Option<(&ResourceTypeInfo, &str)> {
        let providers = self.providers(type_name);
        let [one] = providers.as_slice() else {
            return None;
        };
        let FileState::Loaded(info) = &one.state else {
            return None;
        };
        let t = info.types.iter().find(|t| t.name == type_name)?;
        Some((t, one.path.as_str()))
    }

    /// Whether parameter `name` of a resource of `type_name` is secret: declared so by the type,
    /// or named like a secret (also while the type is not known).
    pub fn is_secret(&self, type_name: &str, name: &str) -> bool {
        match self.type_info(type_name) {
            Some((t, _)) => t.schema.is_secret(name),
            None => keelson_types::is_secret_param(name),
        }
    }

    /// The properties a new resource of `type_name` starts from: keelson's defaults, with the type's
    /// own poll intervals and timeouts where it declares them (WSFC's resource-type properties).
    pub fn properties_for(&self, type_name: &str) -> ResourceProperties {
        let defaults = self
            .type_info(type_name)
            .map(|(t, _)| t.schema.defaults)
            .unwrap_or_default();
        with_type_defaults(ResourceProperties::default(), &defaults)
    }

    /// The plugin name to record for a new resource of `type_name`, or why it cannot be created.
    pub fn plugin_for_create(&self, type_name: &str) -> Result<String, String> {
        match self.resolve(type_name) {
            Resolution::Found { plugin, .. } => Ok(plugin),
            Resolution::Pending => Err(self.pending_reason(type_name)),
            Resolution::Missing(_) if self.providers(type_name).len() > 1 => {
                Err(conflict_message(type_name, &self.providers(type_name)))
            }
            Resolution::Missing(_) => Err(format!(
                "unknown resource type '{type_name}'{}",
                self.known_and_problems()
            )),
        }
    }

    /// Why `type_name` is not known yet, one line.
    fn pending_reason(&self, type_name: &str) -> String {
        format!(
            "resource type '{type_name}' is not known yet: {}; try again when `keelson plugin list` \
             shows them done",
            self.still_probing()
        )
    }

    /// "plugin X is still being probed" or "plugin files still being probed: X, Y".
    pub fn still_probing(&self) -> String {
        let paths: Vec<&str> = self.probing().map(|f| f.path.as_str()).collect();
        match paths.as_slice() {
            [one] => format!("plugin {one} is still being probed"),
            many => format!("plugin files still being probed: {}", many.join(", ")),
        }
    }

    /// " (known: a, b); plugin files that cannot be used: X (hung at load), ..." for error messages.
    fn known_and_problems(&self) -> String {
        let known = self.offered();
        let problems: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| match &f.state {
                FileState::Hung(_) => Some(format!("{} (hung at load)", f.path)),
                FileState::Failed(_) => Some(format!("{} (failed to load)", f.path)),
                _ => None,
            })
            .collect();
        let mut out = format!(" (known: {known})");
        if !problems.is_empty() {
            out.push_str(&format!(
                "; plugin files that cannot be used: {} (see `keelson plugin list`)",
                problems.join(", ")
            ));
        }
        out
    }

    /// Every type offered: provided by exactly one loaded file.
    pub fn type_names(&self) -> Vec<String> {
        self.declared_types()
            .into_iter()
            .filter(|t| self.providers(t).len() == 1)
            .collect()
    }

    /// The offered types as text: "a, b", or "none".
    fn offered(&self) -> String {
        match self.type_names() {
            names if names.is_empty() => "none".to_string(),
            names => names.join(", "),
        }
    }

    /// Every type some loaded file declares, sorted, once each.
    fn declared_types(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| match &f.state {
                FileState::Loaded(info) => Some(info.types.iter().map(|t| t.name.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Types provided by more than one loaded file, with those files.
    pub fn conflicts(&self) -> Vec<Conflict> {
        self.declared_types()
            .into_iter()
            .filter_map(|t| {
                let files: Vec<String> =
                    self.providers(&t).iter().map(|f| f.path.clone()).collect();
                (files.len() > 1).then_some(Conflict {
                    type_name: t,
                    files,
                })
            })
            .collect()
    }

    /// Records a probe's result; returns the cluster-log lines it calls for.
    pub fn record(&mut self, report: ProbeReport) -> Vec<(LogLevel, String)> {
        let before: Vec<String> = self.conflicts().into_iter().map(|c| c.type_name).collect();
        let Some(file) = self.files.iter_mut().find(|f| f.path == report.path) else {
            return vec![(
                LogLevel::Err,
                format!(
                    "a probe reported on {}, which was never listed",
                    report.path
                ),
            )];
        };
        file.state = report.state;
        file.probe_ms = Some(report.probe_ms);
        let mut lines = vec![probe_line(file)];
        for conflict in self.conflicts() {
            if !before.contains(&conflict.type_name) {
                lines.push((
                    LogLevel::Err,
                    conflict_message(&conflict.type_name, &self.providers(&conflict.type_name)),
                ));
            }
        }
        if self.is_complete() {
            lines.push(self.complete_line());
        }
        lines
    }

    /// The line that says the catalogue is complete, with what it offers and how many files failed.
    pub fn complete_line(&self) -> (LogLevel, String) {
        let unusable = self
            .entries()
            .iter()
            .filter(|e| e.status != "loaded")
            .count();
        let level = if unusable == 0 {
            LogLevel::Info
        } else {
            LogLevel::Warn
        };
        (
            level,
            format!(
                "plugin catalogue complete: {} file(s) looked at, types: {}; {unusable} with a problem (see \
                 `keelson plugin list`)",
                self.files.len(),
                self.offered()
            ),
        )
    }

    /// One row per file looked at, in the order they were found.
    pub fn entries(&self) -> Vec<PluginEntry> {
        self.files.iter().map(|f| self.entry(f)).collect()
    }

    fn entry(&self, file: &PluginFile) -> PluginEntry {
        let mut entry = PluginEntry {
            path: file.path.clone(),
            status: "loaded",
            name: None,
            types: Vec::new(),
            conflicting_types: Vec::new(),
            error: None,
            probe_ms: file.probe_ms,
            schemas: Vec::new(),
        };
        match &file.state {
            FileState::Probing => entry.status = "probing",
            FileState::Hung(e) => (entry.status, entry.error) = ("hung", Some(e.clone())),
            FileState::Failed(e) => (entry.status, entry.error) = ("failed", Some(e.clone())),
            FileState::Loaded(info) => {
                entry.name = Some(info.name.clone());
                entry.types = info.types.iter().map(|t| t.name.clone()).collect();
                let schemas = info
                    .types
                    .iter()
                    .map(|t| (t.name.clone(), t.schema.clone()));
                entry.schemas = schemas.collect();
                entry.conflicting_types = entry
                    .types
                    .iter()
                    .filter(|t| self.providers(t).len() > 1)
                    .cloned()
                    .collect();
                if !entry.conflicting_types.is_empty() {
                    entry.status = "conflict";
                    entry.error = Some(self.conflict_note(file, &entry.conflicting_types));
                }
            }
        }
        entry
    }

    /// "type 'x' is also provided by B; ..." for one file of a conflict.
    fn conflict_note(&self, file: &PluginFile, types: &[String]) -> String {
        types
            .iter()
            .map(|t| {
                let others: Vec<&str> = self
                    .providers(t)
                    .iter()
                    .filter(|f| f.path != file.path)
                    .map(|f| f.path.as_str())
                    .collect();
                format!(
                    "type '{t}' is also provided by {}; not offered until one is removed",
                    others.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps an open until its type is resolved (found, or known to be missing).
    pub fn wait_for_type(&mut self, host: HostId, open: PendingOpen) {
        self.waiting_opens.push((host, open));
    }

    /// The waiting opens whose type is no longer pending, in arrival order.
    pub fn take_resolved_opens(&mut self) -> Vec<(HostId, PendingOpen)> {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting_opens)
            .into_iter()
            .partition(|(_, open)| self.resolve(&open.type_name) != Resolution::Pending);
        self.waiting_opens = waiting;
        ready
    }

    /// Keeps a create request until its type is resolved; returns its ticket.
    pub fn park(&mut self, type_name: String, request: CoreRequest) -> u64 {
        self.next_ticket += 1;
        self.parked.insert(self.next_ticket, (type_name, request));
        self.next_ticket
    }

    /// The parked request with this ticket, if it is still parked.
    pub fn unpark(&mut self, ticket: u64) -> Option<CoreRequest> {
        self.parked.remove(&ticket).map(|(_, request)| request)
    }

    /// The parked requests whose type is no longer pending, oldest first.
    pub fn take_resolved_parked(&mut self) -> Vec<CoreRequest> {
        let ready: Vec<u64> = self
            .parked
            .iter()
            .filter(|(_, (t, _))| self.resolve(t) != Resolution::Pending)
            .map(|(ticket, _)| *ticket)
            .collect();
        ready.into_iter().filter_map(|t| self.unpark(t)).collect()
    }
}

/// `props` with each of the type's declared defaults in place of the property of the same name. A
/// default the property itself would refuse (zero) is not used: keelson's stays.
pub fn with_type_defaults(mut props: ResourceProperties, d: &TypeDefaults) -> ResourceProperties {
    let pairs = [
        ("LooksAlivePollInterval", d.looks_alive_poll_interval_ms),
        ("IsAlivePollInterval", d.is_alive_poll_interval_ms),
        ("PendingTimeout", d.pending_timeout_ms),
        ("DeadlockTimeout", d.deadlock_timeout_ms),
    ];
    for (name, default) in pairs {
        if let Some(ms) = default {
            // On a refusal `set` changes nothing, which is what is wanted.
            let _keelson_default_stays = props.set(name, &ms.to_string());
        }
    }
    props
}

/// "resource type 'x' is provided by more than one plugin file (A, B): ..."
fn conflict_message(type_name: &str, providers: &[&PluginFile]) -> String {
    let paths: Vec<&str> = providers.iter().map(|f| f.path.as_str()).collect();
    format!(
        "resource type '{type_name}' is provided by more than one plugin file ({}): it is not \
         offered until all but one are removed and keelson-rcm is restarted",
        paths.join(", ")
    )
}

/// The cluster-log line for one probe result.
fn probe_line(file: &PluginFile) -> (LogLevel, String) {
    let ms = file.probe_ms.unwrap_or(0);
    match &file.state {
        FileState::Loaded(info) => (
            LogLevel::Info,
            format!(
                "plugin '{}' loaded from {} in {ms} ms: types {}",
                info.name,
                file.path,
                info.types
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        FileState::Hung(e) => (LogLevel::Err, format!("plugin file {}: {e}", file.path)),
        FileState::Failed(e) => (
            LogLevel::Err,
            format!("plugin file {} cannot be used: {e}", file.path),
        ),
        FileState::Probing => (
            LogLevel::Warn,
            format!("plugin file {} is still being probed", file.path),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(path: &str, name: &str, types: &[&str]) -> ProbeReport {
        ProbeReport {
            path: path.into(),
            state: FileState::Loaded(PluginInfo {
                name: name.into(),
                path: path.into(),
                types: types
                    .iter()
                    .map(|t| ResourceTypeInfo {
                        name: t.to_string(),
                        has_validate: false,
                        schema: keelson_types::TypeSchema::default(),
                    })
                    .collect(),
            }),
            probe_ms: 3,
        }
    }

    fn probing(paths: &[&str]) -> Catalogue {
        let files = paths
            .iter()
            .map(|p| PluginFile {
                path: p.to_string(),
                state: FileState::Probing,
                probe_ms: None,
            })
            .collect();
        Catalogue::new(files, Duration::from_millis(500))
    }

    #[test]
    fn a_type_is_pending_until_its_file_reports_and_missing_once_all_have() {
        let mut c = probing(&["/p/a.so", "/p/b.so"]);
        assert_eq!(c.resolve("a"), Resolution::Pending);
        let err = c.plugin_for_create("a").unwrap_err();
        assert!(
            err.contains("plugin files still being probed: /p/a.so, /p/b.so"),
            "{err}"
        );
        c.record(loaded("/p/a.so", "pa", &["a"]));
        assert_eq!(
            c.resolve("a"),
            Resolution::Found {
                plugin: "pa".into(),
                path: "/p/a.so".into()
            }
        );
        assert_eq!(c.resolve("zz"), Resolution::Pending);
        assert_eq!(
            c.plugin_for_create("zz").unwrap_err(),
            "resource type 'zz' is not known yet: plugin /p/b.so is still being probed; try \
             again when `keelson plugin list` shows them done"
        );
        let lines = c.record(ProbeReport {
            path: "/p/b.so".into(),
            state: FileState::Hung("hung at load: not loaded within 500 ms".into()),
            probe_ms: 500,
        });
        assert!(c.is_complete());
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].0, LogLevel::Err);
        assert!(lines[1].1.contains("1 with a problem"), "{lines:?}");
        let err = c.plugin_for_create("zz").unwrap_err();
        assert_eq!(
            err,
            "unknown resource type 'zz' (known: a); plugin files that cannot be used: /p/b.so \
             (hung at load) (see `keelson plugin list`)"
        );
        let e = c.entries();
        assert_eq!((e[0].status, e[1].status), ("loaded", "hung"));
    }

    #[test]
    fn a_type_of_two_files_is_a_conflict_named_in_both_and_not_offered() {
        let mut c = probing(&["/p/a.so", "/p/b.so"]);
        c.record(loaded("/p/a.so", "pa", &["x", "a"]));
        let lines = c.record(loaded("/p/b.so", "pb", &["x"]));
        assert!(
            lines.iter().any(|(level, l)| *level == LogLevel::Err
                && l.contains("'x' is provided by more than one plugin file (/p/a.so, /p/b.so)")),
            "{lines:?}"
        );
        assert_eq!(c.type_names(), ["a"]);
        assert!(matches!(c.resolve("x"), Resolution::Missing(m) if m.contains("/p/b.so")));
        let err = c.plugin_for_create("x").unwrap_err();
        assert!(err.contains("more than one plugin file"), "{err}");
        let e = c.entries();
        assert_eq!((e[0].status, e[1].status), ("conflict", "conflict"));
        assert_eq!(e[0].conflicting_types, ["x"]);
        assert_eq!(
            e[0].error.as_deref(),
            Some("type 'x' is also provided by /p/b.so; not offered until one is removed")
        );
        let conflicts = c.conflicts();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].files, ["/p/a.so", "/p/b.so"]);
    }

    #[test]
    fn a_type_s_own_defaults_and_secrets_come_from_its_schema() {
        let mut c = probing(&["/p/web.so"]);
        let mut report = loaded("/p/web.so", "pw", &["web", "plain"]);
        let FileState::Loaded(info) = &mut report.state else {
            unreachable!()
        };
        info.types[0].has_validate = true;
        info.types[0].schema = keelson_types::TypeSchema {
            declared: true,
            params: vec![keelson_types::ParamSpec {
                name: "pin".into(),
                kind: keelson_types::ParamKind::String,
                required: false,
                default: None,
                secret: true,
                description: "the door's pin".into(),
            }],
            defaults: TypeDefaults {
                looks_alive_poll_interval_ms: Some(1_000),
                is_alive_poll_interval_ms: None,
                pending_timeout_ms: Some(0),
                deadlock_timeout_ms: Some(7_000),
            },
        };
        assert_eq!(c.properties_for("web"), ResourceProperties::default());
        c.record(report);
        let (t, path) = c.type_info("web").unwrap();
        assert!(t.has_validate && path == "/p/web.so");
        let props = c.properties_for("web");
        let keelson = ResourceProperties::default();
        assert_eq!(props.looks_alive_poll_interval_ms, 1_000);
        assert_eq!(props.deadlock_timeout_ms, 7_000);
        assert_eq!(
            props.is_alive_poll_interval_ms, keelson.is_alive_poll_interval_ms,
            "not declared: keelson's"
        );
        assert_eq!(
            props.pending_timeout_ms, keelson.pending_timeout_ms,
            "zero is refused: keelson's"
        );
        assert_eq!(c.properties_for("plain"), keelson);
        assert!(c.is_secret("web", "pin") && !c.is_secret("plain", "pin"));
        assert!(c.is_secret("plain", "password") && c.is_secret("unknown", "token"));
        assert!(c.type_info("unknown").is_none());
    }

    #[test]
    fn waiting_opens_are_released_once_their_type_is_no_longer_pending() {
        let mut c = probing(&["/p/a.so", "/p/b.so"]);
        let open = |id: u64, t: &str| PendingOpen {
            resource: keelson_types::ResourceId(id),
            name: format!("r{id}"),
            type_name: t.into(),
            params: Default::default(),
            seq: id,
            deadline_ms: 300_000,
        };
        c.wait_for_type(HostId(1), open(1, "a"));
        c.wait_for_type(HostId(1), open(2, "b"));
        assert!(c.take_resolved_opens().is_empty());
        c.record(loaded("/p/a.so", "pa", &["a"]));
        let ready = c.take_resolved_opens();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].1.name, "r1");
        c.record(ProbeReport {
            path: "/p/b.so".into(),
            state: FileState::Failed("bad".into()),
            probe_ms: 1,
        });
        let ready = c.take_resolved_opens();
        assert_eq!(ready.len(), 1);
        assert!(matches!(c.resolve("b"), Resolution::Missing(_)));
    }
}
