//! The `plugin list` view: every plugin file rcm looked at with what its probe found, the types two
//! files both declare, and whether every probe has reported. Not the probing or the catalogue
//! itself (rcm).

use serde::{Deserialize, Serialize};

/// `plugin list`. Fields in alphabetical order (see the module doc of `view`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginList {
    /// Whether every probe has reported (taken as true when a view does not say).
    #[serde(default = "said_complete")]
    pub complete: bool,
    pub conflicts: Vec<Conflict>,
    /// In the order the files were found.
    pub plugins: Vec<PluginFile>,
    /// How long each probe may take.
    pub probe_timeout_ms: u64,
}

fn said_complete() -> bool {
    true
}

/// One file looked at. Fields in alphabetical order; the optional ones are left out when empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginFile {
    /// Only for `conflict`: its types that another file also declares.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicting_types: Vec<String>,
    /// Its problem, one line (hung, failed, conflict).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The plugin's name, once loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub path: String,
    /// How long its probe took, once it reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_ms: Option<u64>,
    /// Once loaded: what each of its types declares (parameters and defaults).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<super::TypeSchemaView>,
    /// `loaded`, `probing`, `hung`, `failed` or `conflict`: text, so that a CLI shows a status it
    /// does not know rather than refusing the whole view.
    pub status: String,
    /// The resource types it declares.
    pub types: Vec<String>,
}

/// A type declared by more than one file: offered to nobody until all but one are removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conflict {
    pub files: Vec<String>,
    #[serde(rename = "type")]
    pub type_name: String,
}
