//! The plugin catalogue: every `libkeelson_plugin_*.so` in the plugin directories, probed in a
//! throwaway keelson-rhs (rcm never dlopens plugin code), mapped from resource type to plugin. Plugins
//! that fail to load are kept with their error so `keelson plugin list` can show why. Not hosting.

use keelson_host::{Host, HostConfig};
use keelson_types::PluginInfo;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One plugin file and what probing it found.
#[derive(Clone, Debug, Serialize)]
pub struct PluginEntry {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Resource type -> the plugin that implements it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Catalogue {
    pub plugins: Vec<PluginEntry>,
    #[serde(skip)]
    by_type: BTreeMap<String, (String, String)>,
}

impl Catalogue {
    /// Probes every plugin file in `dirs` with one probe host.
    pub async fn probe(
        config: &HostConfig,
        dirs: &[PathBuf],
    ) -> anyhow::Result<(Catalogue, Vec<String>)> {
        let files = plugin_files(dirs);
        let mut catalogue = Catalogue::default();
        let mut warnings = Vec::new();
        if files.is_empty() {
            return Ok((catalogue, warnings));
        }
        let (mut host, _events) = Host::spawn(config).await?;
        for file in files {
            let path = file.display().to_string();
            match host.load_plugin(&path).await {
                Ok(info) => warnings.extend(catalogue.add(info)),
                Err(e) => {
                    warnings.push(e.to_string());
                    catalogue.plugins.push(PluginEntry {
                        path,
                        name: None,
                        types: vec![],
                        error: Some(e.to_string()),
                    });
                    if host.death().is_some() {
                        host = Host::spawn(config).await?.0;
                    }
                }
            }
        }
        host.shutdown().await;
        Ok((catalogue, warnings))
    }

    /// Adds a probed plugin; returns a warning per type already provided by another plugin.
    fn add(&mut self, info: PluginInfo) -> Vec<String> {
        let mut warnings = Vec::new();
        for t in &info.types {
            if let Some((other, _)) = self.by_type.get(&t.name) {
                warnings.push(format!(
                    "resource type '{}' of {} is already provided by plugin '{other}'; ignored",
                    t.name, info.path
                ));
                continue;
            }
            self.by_type
                .insert(t.name.clone(), (info.name.clone(), info.path.clone()));
        }
        self.plugins.push(PluginEntry {
            path: info.path.clone(),
            name: Some(info.name.clone()),
            types: info.types.iter().map(|t| t.name.clone()).collect(),
            error: None,
        });
        warnings
    }

    /// (plugin name, plugin path) implementing `type_name`.
    pub fn lookup(&self, type_name: &str) -> Option<(&str, &str)> {
        self.by_type
            .get(type_name)
            .map(|(n, p)| (n.as_str(), p.as_str()))
    }

    /// Every known type name.
    pub fn type_names(&self) -> Vec<&str> {
        self.by_type.keys().map(String::as_str).collect()
    }
}

/// `libkeelson_plugin_*.so` files in `dirs`, sorted, first directory first.
fn plugin_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_plugin_file(p))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

fn is_plugin_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("libkeelson_plugin_") && name.ends_with(".so") && path.is_file()
}
