//! `keelson resource …`: create, set, show, list, bring online/offline (optionally waiting),
//! inject a failure, delete, and add or remove dependencies. Each maps to one control request. Not validating
//! types, values or dependencies: the node service refuses bad ones with an error we print.

use crate::client::Client;
use crate::group::{change_state, StateChange};
use crate::output::{confirm, show};
use crate::wait::{Kind, Target};
use anyhow::{bail, Result};
use clap::Subcommand;
use keelson_proto::view::ResourceSummary;
use keelson_proto::ControlRequest as R;

/// `keelson resource` subcommands.
#[derive(Subcommand, Debug)]
pub enum ResourceCommand {
    /// Create a resource of a plugin type in a group (it starts Offline).
    Create {
        /// Name of the new resource.
        name: String,
        /// Resource type, as listed by 'keelson plugin list'.
        #[arg(long = "type", value_name = "T")]
        type_name: String,
        /// The group the resource belongs to.
        #[arg(long, value_name = "G")]
        group: String,
        /// A private parameter for the plugin, repeatable: --param path=/srv/data.
        #[arg(long = "param", value_name = "K=V")]
        params: Vec<String>,
        /// Common properties, e.g. RestartAction=Restart DeadlockTimeout=5000.
        #[arg(value_name = "Prop=Value")]
        properties: Vec<String>,
    },
    /// Set common properties and/or private parameters of a resource.
    Set {
        /// Name of the resource.
        name: String,
        /// Common properties to set, e.g. SeparateMonitor=true.
        #[arg(value_name = "Prop=Value")]
        properties: Vec<String>,
        /// A private parameter to set, repeatable: --param path=/srv/data.
        #[arg(long = "param", value_name = "K=V")]
        params: Vec<String>,
        /// A private parameter to remove, repeatable: --unset-param path.
        #[arg(long = "unset-param", value_name = "K")]
        unset_params: Vec<String>,
    },
    /// Show a resource: state, host, properties, parameters and call statistics.
    Get {
        /// Name of the resource.
        name: String,
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// List every resource with its type, group, state and host.
    List {
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// Bring a resource online (and what it depends on).
    Online(StateChange),
    /// Take a resource offline (and what depends on it).
    Offline(StateChange),
    /// Inject a failure through the restart policy, like WSFC's "simulate failure".
    Fail {
        /// Name of the resource.
        name: String,
    },
    /// Delete a resource (it must be Offline or Failed).
    Delete {
        /// Name of the resource.
        name: String,
    },
    /// Make a resource depend on another one of the same group.
    Depend {
        /// The resource that gets the dependency.
        name: String,
        /// The resource it depends on (must be Online before NAME comes online).
        #[arg(long, value_name = "OTHER")]
        on: String,
    },
    /// Remove a dependency added with 'keelson resource depend'.
    Undepend {
        /// The resource that has the dependency.
        name: String,
        /// The resource it no longer depends on.
        #[arg(long, value_name = "OTHER")]
        on: String,
    },
}

/// Runs one `keelson resource` command.
pub async fn run(client: &Client, command: ResourceCommand) -> Result<()> {
    match command {
        ResourceCommand::Create {
            name,
            type_name,
            group,
            params,
            properties,
        } => {
            let request = R::ResourceCreate {
                name,
                type_name,
                group,
                params: crate::assign::params(&params)?,
                properties: crate::assign::properties(&properties)?,
            };
            confirm(client, request).await
        }
        ResourceCommand::Set {
            name,
            properties,
            params,
            unset_params,
        } => set(client, name, &properties, &params, &unset_params).await,
        ResourceCommand::Get { name, json } => {
            show(
                client,
                R::ResourceGet { name },
                json,
                crate::render::resource,
            )
            .await
        }
        ResourceCommand::List { json } => {
            let render = |v: &Vec<ResourceSummary>| crate::render::resource_list(v);
            show(client, R::ResourceList, json, render).await
        }
        ResourceCommand::Online(c) => {
            let request = R::ResourceOnline {
                name: c.name.clone(),
            };
            change_state(client, Kind::Resource, request, &c, Target::Online).await
        }
        ResourceCommand::Offline(c) => {
            let request = R::ResourceOffline {
                name: c.name.clone(),
            };
            change_state(client, Kind::Resource, request, &c, Target::Offline).await
        }
        ResourceCommand::Fail { name } => confirm(client, R::ResourceFail { name }).await,
        ResourceCommand::Delete { name } => confirm(client, R::ResourceDelete { name }).await,
        ResourceCommand::Depend { name, on } => {
            confirm(client, R::ResourceDepend { name, on }).await
        }
        ResourceCommand::Undepend { name, on } => {
            confirm(client, R::ResourceUndepend { name, on }).await
        }
    }
}

async fn set(
    client: &Client,
    name: String,
    properties: &[String],
    params: &[String],
    unset_params: &[String],
) -> Result<()> {
    if properties.is_empty() && params.is_empty() && unset_params.is_empty() {
        bail!("nothing to set on resource '{name}': give Prop=Value arguments, --param K=V and/or --unset-param K");
    }
    let params = crate::assign::params(params)?;
    let unset_params = crate::assign::unset_params(unset_params, &params)?;
    let request = R::ResourceSet {
        name,
        properties: crate::assign::properties(properties)?,
        params,
        unset_params,
    };
    confirm(client, request).await
}
