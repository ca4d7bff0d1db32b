//! `keelson plugin describe TYPE [--json]`: one resource type's declaration, from the running node
//! service's plugin catalogue (the `plugin list` view): every parameter with its type (range,
//! options), whether it is required or secret, its default and description, and the type's own
//! poll and timeout defaults. Not loading the plugin (rcm's probes did) nor checking parameters.

use crate::client::Client;
use anyhow::{bail, Result};
use keelson_proto::view::{ParamView, PluginFile, PluginList, TypeSchemaView};
use keelson_proto::ControlRequest;
use keelson_types::escape_for_log;
use serde::Serialize;

/// Arguments of `keelson plugin describe`.
#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// The resource type, as `--type` takes it (see `keelson plugin list`).
    #[arg(value_name = "TYPE")]
    pub type_name: String,
    /// Print the declaration as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--json`: the type's declaration with the plugin file that provides it.
#[derive(Serialize)]
struct Description<'a> {
    path: &'a str,
    plugin: &'a str,
    #[serde(flatten)]
    schema: &'a TypeSchemaView,
}

pub async fn run(client: &Client, args: DescribeArgs) -> Result<()> {
    let list: PluginList = client.view(ControlRequest::PluginList).await?;
    let (file, schema) = find(&list, &args.type_name)?;
    if args.json {
        let description = Description {
            path: &file.path,
            plugin: file.name.as_deref().unwrap_or(""),
            schema,
        };
        return crate::output::emit_line(&serde_json::to_string_pretty(&description)?);
    }
    crate::output::emit(&render(file, schema))
}

/// The file and declaration of `type_name`; an error naming it when no loaded file has it.
fn find<'a>(list: &'a PluginList, type_name: &str) -> Result<(&'a PluginFile, &'a TypeSchemaView)> {
    let found = list.plugins.iter().find_map(|file| {
        file.schemas
            .iter()
            .find(|s| s.type_name == type_name)
            .map(|schema| (file, schema))
    });
    if let Some(found) = found {
        return Ok(found);
    }
    let mut known: Vec<&str> = list
        .plugins
        .iter()
        .flat_map(|f| f.schemas.iter().map(|s| s.type_name.as_str()))
        .collect();
    known.sort_unstable();
    known.dedup();
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    let probing = list
        .plugins
        .iter()
        .filter(|p| p.status == "probing")
        .count();
    if probing > 0 {
        bail!(
            "no loaded plugin provides resource type '{}' (types: {known}); {probing} plugin \
             file(s) are still being probed: try again",
            escape_for_log(type_name)
        );
    }
    bail!(
        "no plugin provides resource type '{}' (types: {known})",
        escape_for_log(type_name)
    )
}

/// The text form: a heading, the parameter table and the defaults.
fn render(file: &PluginFile, schema: &TypeSchemaView) -> String {
    let plugin = file.name.as_deref().unwrap_or("-");
    let mut out = format!(
        "type {} (plugin {}, {})\n",
        clean(&schema.type_name),
        clean(plugin),
        clean(&file.path)
    );
    out.push_str(&parameters(schema));
    out.push_str(&defaults(schema));
    out
}

fn parameters(schema: &TypeSchemaView) -> String {
    if !schema.declared {
        return "parameters: not declared (any are accepted; the type's own validate decides)\n"
            .to_string();
    }
    if schema.params.is_empty() {
        return "parameters: none (any parameter is refused)\n".to_string();
    }
    let rows: Vec<Vec<String>> = schema.params.iter().map(row).collect();
    let table = crate::render::table(
        &[
            "NAME",
            "TYPE",
            "REQUIRED",
            "DEFAULT",
            "SECRET",
            "DESCRIPTION",
        ],
        &rows,
    );
    let indented: String = table.lines().map(|l| format!("  {l}\n")).collect();
    format!("parameters (any other is refused):\n{indented}")
}

fn row(p: &ParamView) -> Vec<String> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    vec![
        clean(&p.name),
        kind(p),
        yes_no(p.required),
        p.default.as_deref().map_or("-".to_string(), clean),
        yes_no(p.secret),
        if p.description.is_empty() {
            "-".to_string()
        } else {
            clean(&p.description)
        },
    ]
}

/// `integer 1..=65535`, `integer 0..`, `enum fast|safe`, `path`.
fn kind(p: &ParamView) -> String {
    let range = match (p.min, p.max) {
        (Some(a), Some(b)) => format!(" {a}..={b}"),
        (Some(a), None) => format!(" {a}.."),
        (None, Some(b)) => format!(" ..={b}"),
        (None, None) => String::new(),
    };
    let options = if p.options.is_empty() {
        String::new()
    } else {
        format!(" {}", clean(&p.options.join("|")))
    };
    format!("{}{range}{options}", clean(&p.kind))
}

fn defaults(schema: &TypeSchemaView) -> String {
    if schema.defaults.is_empty() {
        return "type defaults: none (keelson's defaults apply)\n".to_string();
    }
    let set: Vec<String> = schema
        .defaults
        .iter()
        .map(|(name, ms)| format!("{name} {ms} ms"))
        .collect();
    format!(
        "type defaults (where a resource sets none): {}\n",
        set.join(", ")
    )
}

/// Text from a plugin, safe for a terminal: control and invisible characters escaped.
fn clean(text: &str) -> String {
    escape_for_log(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn list() -> PluginList {
        let port = ParamView {
            description: "TCP port".into(),
            max: Some(65535),
            min: Some(1),
            name: "port".into(),
            required: true,
            kind: "integer".into(),
            ..ParamView::default()
        };
        let mode = ParamView {
            default: Some("safe".into()),
            name: "mode".into(),
            options: vec!["fast".into(), "safe".into()],
            kind: "enum".into(),
            ..ParamView::default()
        };
        PluginList {
            plugins: vec![PluginFile {
                name: Some("web".into()),
                path: "/p/libkeelson_plugin_web.so".into(),
                status: "loaded".into(),
                types: vec!["web".into(), "old".into()],
                schemas: vec![
                    TypeSchemaView {
                        declared: true,
                        defaults: BTreeMap::from([("PendingTimeout".to_string(), 10000)]),
                        params: vec![port, mode],
                        type_name: "web".into(),
                    },
                    TypeSchemaView {
                        type_name: "old".into(),
                        ..TypeSchemaView::default()
                    },
                ],
                ..PluginFile::default()
            }],
            ..PluginList::default()
        }
    }

    #[test]
    fn every_parameter_and_default_is_shown() {
        let list = list();
        let (file, schema) = find(&list, "web").unwrap();
        let text = render(file, schema);
        assert_eq!(
            text,
            "type web (plugin web, /p/libkeelson_plugin_web.so)\n\
             parameters (any other is refused):\n\
             \x20 NAME  TYPE               REQUIRED  DEFAULT  SECRET  DESCRIPTION\n\
             \x20 port  integer 1..=65535  yes       -        no      TCP port\n\
             \x20 mode  enum fast|safe     no        safe     no      -\n\
             type defaults (where a resource sets none): PendingTimeout 10000 ms\n"
        );
        let (file, old) = find(&list, "old").unwrap();
        assert!(render(file, old).contains("parameters: not declared"));
    }

    #[test]
    fn an_unknown_type_is_one_error_naming_it() {
        let err = find(&list(), "nope").unwrap_err().to_string();
        assert_eq!(
            err,
            "no plugin provides resource type 'nope' (types: old, web)"
        );
    }
}
