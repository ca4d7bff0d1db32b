//! A resource type's declaration as `plugin list --json` and `plugin describe --json` show it: each
//! parameter as `{"name","type","min","max","options","required","default","secret",
//! "description"}` with absent fields left out, and the type's own defaults by property name. Not
//! the declaration itself (`keelson_types::TypeSchema`, which travels in postcard frames and keeps
//! plain derives) nor the check.

use keelson_types::{ParamKind, ParamSpec, TypeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One resource type's declaration. Fields in alphabetical order (see the module doc of `view`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TypeSchemaView {
    /// False: the type declares nothing, accepts any parameters, and its own validate decides.
    pub declared: bool,
    /// The type's own defaults for these resource properties (ms), only those it sets.
    pub defaults: BTreeMap<String, u64>,
    pub params: Vec<ParamView>,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// One declared parameter. Fields in alphabetical order; the optional ones are left out when
/// absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ParamView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    pub required: bool,
    pub secret: bool,
    /// string, integer, boolean, enum, path or address: text, so that a CLI shows a kind it does
    /// not know.
    #[serde(rename = "type")]
    pub kind: String,
}

impl TypeSchemaView {
    /// The view of type `type_name`'s declaration.
    pub fn of(type_name: &str, schema: &TypeSchema) -> TypeSchemaView {
        let d = &schema.defaults;
        let defaults = [
            ("LooksAlivePollInterval", d.looks_alive_poll_interval_ms),
            ("IsAlivePollInterval", d.is_alive_poll_interval_ms),
            ("PendingTimeout", d.pending_timeout_ms),
            ("DeadlockTimeout", d.deadlock_timeout_ms),
        ]
        .into_iter()
        .filter_map(|(name, ms)| ms.map(|ms| (name.to_string(), ms)))
        .collect();
        TypeSchemaView {
            declared: schema.declared,
            defaults,
            params: schema.params.iter().map(ParamView::of).collect(),
            type_name: type_name.to_string(),
        }
    }
}

impl ParamView {
    /// The view of one declared parameter.
    pub fn of(p: &ParamSpec) -> ParamView {
        let (min, max, options) = match &p.kind {
            ParamKind::Integer { min, max } => (*min, *max, Vec::new()),
            ParamKind::Enum { options } => (None, None, options.clone()),
            _ => (None, None, Vec::new()),
        };
        ParamView {
            default: p.default.clone(),
            description: p.description.clone(),
            max,
            min,
            name: p.name.clone(),
            options,
            required: p.required,
            secret: p.secret,
            kind: p.kind.name().to_string(),
        }
    }
}
