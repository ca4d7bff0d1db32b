//! `keelson group …`: create, delete, bring online or offline (optionally waiting), show, list and
//! set properties of resource groups. Each maps to one control request. Not the group state machine
//! (the node service runs that).

use crate::client::Client;
use crate::output::{confirm, emit_line, show};
use crate::wait::{self, Kind, Target};
use anyhow::Result;
use clap::{Args, Subcommand};
use keelson_proto::view::GroupSummary;
use keelson_proto::ControlRequest as R;
use std::time::Duration;

/// `keelson group` subcommands.
#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create an empty group, optionally setting common properties (Prop=Value).
    Create {
        /// Name of the new group.
        name: String,
        /// Common properties, e.g. FailoverThreshold=2.
        #[arg(value_name = "Prop=Value")]
        properties: Vec<String>,
    },
    /// Delete a group (it must be empty).
    Delete {
        /// Name of the group.
        name: String,
    },
    /// Bring every resource of a group online, in dependency order.
    Online(StateChange),
    /// Take every resource of a group offline, in reverse dependency order.
    Offline(StateChange),
    /// Show a group: state, owner node, members and properties.
    Get {
        /// Name of the group.
        name: String,
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// List every group with its state and members.
    List {
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// Move a group to another node of the cluster: offline on its owner first, then online on
    /// the new one (the best other node unless --to names one).
    Move {
        /// Name of the group.
        name: String,
        /// The node to move it to.
        #[arg(long, value_name = "NODE")]
        to: Option<String>,
        /// Return only once it is in its state again (Online, or Offline) on the new owner; fails
        /// if it goes Failed there.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 60_000, requires = "wait")]
        timeout: u64,
    },
    /// Set common properties of a group.
    Set {
        /// Name of the group.
        name: String,
        /// Common properties to set, e.g. FailoverThreshold=2.
        #[arg(value_name = "Prop=Value", required = true)]
        properties: Vec<String>,
    },
}

/// A name and the `--wait` options, for `online` and `offline`.
#[derive(Args, Debug)]
pub struct StateChange {
    /// Name of the group or resource.
    pub name: String,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `--wait` and its `--timeout`.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Return only once the state is reached (fails if it goes Failed on the way online).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 60_000, requires = "wait")]
    pub timeout: u64,
}

/// Sends the online/offline request, then waits if asked.
pub async fn change_state(
    client: &Client,
    kind: Kind,
    request: R,
    change: &StateChange,
    target: Target,
) -> Result<()> {
    confirm(client, request).await?;
    if !change.wait.wait {
        return Ok(());
    }
    let timeout = Duration::from_millis(change.wait.timeout);
    let took = wait::until(client, kind, &change.name, target, timeout).await?;
    emit_line(&format!(
        "{} '{}' is {} (after {} ms)",
        kind.noun(),
        change.name,
        target.state(),
        took.as_millis()
    ))
}

/// Runs one `keelson group` command.
pub async fn run(client: &Client, command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::Create { name, properties } => {
            let properties = crate::assign::properties(&properties)?;
            confirm(client, R::GroupCreate { name, properties }).await
        }
        GroupCommand::Delete { name } => confirm(client, R::GroupDelete { name }).await,
        GroupCommand::Online(c) => {
            let request = R::GroupOnline {
                name: c.name.clone(),
            };
            change_state(client, Kind::Group, request, &c, Target::Online).await
        }
        GroupCommand::Offline(c) => {
            let request = R::GroupOffline {
                name: c.name.clone(),
            };
            change_state(client, Kind::Group, request, &c, Target::Offline).await
        }
        GroupCommand::Get { name, json } => {
            show(client, R::GroupGet { name }, json, crate::render::group).await
        }
        GroupCommand::List { json } => {
            let render = |v: &Vec<GroupSummary>| crate::render::group_list(v);
            show(client, R::GroupList, json, render).await
        }
        GroupCommand::Set { name, properties } => {
            let properties = crate::assign::properties(&properties)?;
            confirm(client, R::GroupSet { name, properties }).await
        }
        GroupCommand::Move {
            name,
            to,
            wait,
            timeout,
        } => move_group(client, name, to, wait, timeout).await,
    }
}

/// `group move G [--to N] [--wait]`.
async fn move_group(
    client: &Client,
    name: String,
    to: Option<String>,
    wait: bool,
    timeout: u64,
) -> Result<()> {
    let before = match wait {
        true => Some(crate::move_wait::Before::fetch(client, &name).await?),
        false => None,
    };
    confirm(client, R::GroupMove { name, to }).await?;
    let Some(before) = before else {
        return Ok(());
    };
    let timeout = Duration::from_millis(timeout);
    let (views, took) = crate::move_wait::settle(client, &[before], timeout).await?;
    for g in views {
        emit_line(&format!(
            "group '{}' is {} on node '{}' (after {} ms)",
            g.name,
            g.owner_state,
            g.owner_node,
            took.as_millis()
        ))?;
    }
    Ok(())
}
