//! `keelson`, the command line. Parses arguments with clap and hands each command to its module;
//! every error ends as one line `keelson: …` on stderr and a non-zero exit. Not any command's logic.
#![forbid(unsafe_code)]

mod assign;
mod client;
mod cluster;
mod datadir;
mod demo;
mod demo_cluster;
mod diagnostics;
mod group;
mod logs;
mod move_wait;
mod node;
mod output;
mod plugin_describe;
mod plugin_test;
mod render;
mod resource;
mod wait;

use anyhow::Result;
use clap::{Parser, Subcommand};
use client::Client;
use keelson_proto::ControlRequest as R;
use std::path::PathBuf;
use std::process::ExitCode;
use tracing::Instrument;

/// keelson: a failover-cluster resource runtime for Linux.
#[derive(Parser, Debug)]
#[command(name = "keelson", version, long_about = None)]
struct Cli {
    /// Data directory of the node to talk to (else $KEELSON_DATA_DIR, else /var/lib/keelson as
    /// root, else $XDG_DATA_HOME/keelson or ~/.local/share/keelson).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start or stop the node service (keelson-rcm) of the data directory; join, evict or list
    /// the cluster's nodes.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Create a cluster from this node, show it, and get or set its cluster-wide properties.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Show the cluster networks and every route's state.
    #[command(subcommand)]
    Network(cluster::NetworkCommand),
    /// Check the cluster's networks: fewer than two networks between two nodes (warning), a MAC
    /// address on two nodes or an interface another node cannot reach (errors). Exits 1 on errors.
    Validate {
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// Show the node: groups, their resources and states, and the resource hosts.
    Status {
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// Create, change, show and move resource groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Create, change, show and move resources.
    #[command(subcommand)]
    Resource(resource::ResourceCommand),
    /// Print the last lines of the cluster log (and follow it).
    Log(logs::LogArgs),
    /// Print the last cluster events (and follow them).
    Events(logs::EventsArgs),
    /// Work with resource plugins (shared libraries with the keelson C ABI).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run the guided demo: a private node service, a group, a deadlocking resource, the recovery.
    Demo(demo::DemoArgs),
}

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// List the plugins the node service found, with their resource types.
    List {
        /// Print the node service's JSON view.
        #[arg(long)]
        json: bool,
    },
    /// Load a plugin in an isolated host and run the conformance sequence on each of its types.
    Test(plugin_test::TestArgs),
    /// Show a resource type's parameters (type, range, required, default, secret, description)
    /// and its own poll and timeout defaults.
    Describe(plugin_describe::DescribeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Err(e) = diagnostics::install(&std::env::var("RUST_LOG").unwrap_or_default()) {
        eprintln!("keelson: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keelson: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) if e.is::<output::StdoutClosed>() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keelson: {}", format!("{e:#}").trim_end());
            ExitCode::from(1)
        }
    }
}

/// Help and version go to stdout as clap renders them; a usage error becomes one line, exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
        _ => {
            eprintln!("keelson: {}; try '--help'", clap_message(&e.to_string()));
            ExitCode::from(2)
        }
    }
}

/// A clap error as one line: its first line without the `error: ` prefix, followed by the detail
/// clap indents right under it (which arguments are missing), joined with commas.
fn clap_message(rendered: &str) -> String {
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or("bad arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let detail: Vec<&str> = lines
        .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    if detail.is_empty() {
        first.to_string()
    } else {
        format!("{first} {}", detail.join(", "))
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let span = tracing::info_span!("command", command = cli.command.name());
    let started = std::time::Instant::now();
    let result = run(cli).instrument(span.clone()).await;
    span.in_scope(|| match &result {
        Ok(code) => tracing::debug!(elapsed = ?started.elapsed(), "finished: {code:?}"),
        Err(e) => tracing::debug!(elapsed = ?started.elapsed(), "failed: {e:#}"),
    });
    result
}

impl Command {
    /// The command's name as typed (the first word after `keelson`), for diagnostics.
    fn name(&self) -> &'static str {
        match self {
            Command::Node(_) => "node",
            Command::Cluster(_) => "cluster",
            Command::Network(_) => "network",
            Command::Validate { .. } => "validate",
            Command::Status { .. } => "status",
            Command::Group(_) => "group",
            Command::Resource(_) => "resource",
            Command::Log(_) => "log",
            Command::Events(_) => "events",
            Command::Plugin(_) => "plugin",
            Command::Demo(_) => "demo",
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    tracing::debug!(data_dir = ?cli.data_dir, "dispatching");
    let ok = |r: Result<()>| r.map(|()| ExitCode::SUCCESS);
    let data_dir = cli.data_dir;
    let client = || datadir::resolve(data_dir.clone()).map(|d| Client::new(&d));
    match cli.command {
        Command::Node(node::NodeCommand::List { json }) => {
            ok(cluster::node_list(&client()?, json).await)
        }
        Command::Node(node::NodeCommand::Evict { name }) => {
            ok(output::confirm(&client()?, R::NodeEvict { name }).await)
        }
        Command::Node(node::NodeCommand::Pause {
            name,
            drain,
            timeout,
        }) => ok(cluster::node_pause(&client()?, name, drain, timeout).await),
        Command::Node(node::NodeCommand::Resume { name }) => {
            ok(output::confirm(&client()?, R::NodeResume { name }).await)
        }
        Command::Node(node::NodeCommand::Join { cluster, key, name }) => {
            ok(cluster::node_join(&client()?, cluster, &key, name).await)
        }
        Command::Node(cmd) => node::run(&datadir::resolve(data_dir.clone())?, cmd).await,
        Command::Cluster(cmd) => ok(cluster::run(&client()?, cmd).await),
        Command::Network(cmd) => ok(cluster::network(&client()?, cmd).await),
        Command::Validate { json } => ok(cluster::validate(&client()?, json).await),
        Command::Status { json } => {
            ok(output::show(&client()?, R::Status, json, render::status).await)
        }
        Command::Group(cmd) => ok(group::run(&client()?, cmd).await),
        Command::Resource(cmd) => ok(resource::run(&client()?, cmd).await),
        Command::Log(args) => ok(logs::log(&client()?, args).await),
        Command::Events(args) => ok(logs::events(&client()?, args).await),
        Command::Plugin(PluginCommand::List { json }) => {
            ok(output::show(&client()?, R::PluginList, json, render::plugin_list).await)
        }
        Command::Plugin(PluginCommand::Test(args)) => plugin_test::run(args).await,
        Command::Plugin(PluginCommand::Describe(args)) => {
            ok(plugin_describe::run(&client()?, args).await)
        }
        Command::Demo(args) => demo::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("keelson").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn data_dir_is_global() {
        let cli = parse(&["status", "--data-dir", "/tmp/n1", "--json"]).unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/n1")));
        assert!(matches!(cli.command, Command::Status { json: true }));
        let cli = parse(&["--data-dir", "/tmp/n2", "group", "list"]).unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/n2")));
    }

    #[test]
    fn node_start_takes_repeated_plugin_dirs() {
        let cli = parse(&[
            "node",
            "start",
            "--foreground",
            "--plugin-dir",
            "/a",
            "--plugin-dir",
            "/b",
        ])
        .unwrap();
        let Command::Node(node::NodeCommand::Start(a)) = cli.command else {
            panic!("not node start");
        };
        assert!(a.foreground);
        assert_eq!(a.plugin_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(a.timeout, 15_000);
    }

    #[test]
    fn resource_create_collects_params_and_properties() {
        let cli = parse(&[
            "resource",
            "create",
            "Disk",
            "--type",
            "dummy",
            "--group",
            "FS",
            "--param",
            "a=1",
            "RestartAction=Restart",
            "--param",
            "b=2",
            "DeadlockTimeout=500",
        ])
        .unwrap();
        let Command::Resource(resource::ResourceCommand::Create {
            name,
            type_name,
            group,
            params,
            properties,
        }) = cli.command
        else {
            panic!("not resource create");
        };
        assert_eq!(
            (name.as_str(), type_name.as_str(), group.as_str()),
            ("Disk", "dummy", "FS")
        );
        assert_eq!(params, ["a=1", "b=2"]);
        assert_eq!(properties, ["RestartAction=Restart", "DeadlockTimeout=500"]);
    }

    #[test]
    fn resource_create_needs_type_and_group() {
        assert!(parse(&["resource", "create", "Disk", "--group", "FS"]).is_err());
        assert!(parse(&["resource", "create", "Disk", "--type", "dummy"]).is_err());
    }

    #[test]
    fn wait_and_timeout_on_online_and_offline() {
        let cli = parse(&["group", "online", "FS", "--wait", "--timeout", "500"]).unwrap();
        let Command::Group(group::GroupCommand::Online(c)) = cli.command else {
            panic!("not group online");
        };
        assert_eq!(
            (c.name.as_str(), c.wait.wait, c.wait.timeout),
            ("FS", true, 500)
        );
        let cli = parse(&["resource", "offline", "Disk"]).unwrap();
        let Command::Resource(resource::ResourceCommand::Offline(c)) = cli.command else {
            panic!("not resource offline");
        };
        assert_eq!((c.wait.wait, c.wait.timeout), (false, 60_000));
        assert!(parse(&["resource", "online", "Disk", "--timeout", "5"]).is_err());
    }

    #[test]
    fn group_set_needs_a_property() {
        assert!(parse(&["group", "set", "FS"]).is_err());
        assert!(parse(&["group", "set", "FS", "FailoverThreshold=2"]).is_ok());
    }

    #[test]
    fn log_and_events_defaults() {
        let cli = parse(&["log"]).unwrap();
        let Command::Log(a) = cli.command else {
            panic!("not log")
        };
        assert_eq!((a.follow, a.lines), (false, 50));
        let cli = parse(&["events", "-f", "--json", "-n", "7"]).unwrap();
        let Command::Events(a) = cli.command else {
            panic!("not events")
        };
        assert_eq!((a.follow, a.json, a.last), (true, true, 7));
        assert!(parse(&["log", "-n", "-3"]).is_err());
    }

    #[test]
    fn depend_needs_on() {
        let cli = parse(&["resource", "depend", "Share", "--on", "Disk"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Resource(resource::ResourceCommand::Depend { .. })
        ));
        assert!(parse(&["resource", "depend", "Share"]).is_err());
    }

    #[test]
    fn plugin_test_still_parses() {
        let cli = parse(&["plugin", "test", "/x.so", "--type", "dummy"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Plugin(PluginCommand::Test(_))
        ));
    }

    #[test]
    fn a_missing_argument_is_named() {
        let e = parse(&["resource", "create", "Disk"]).unwrap_err();
        assert_eq!(
            clap_message(&e.to_string()),
            "the following required arguments were not provided: --type <T>, --group <G>"
        );
        let e = parse(&["group", "online", "FS", "--timeout", "5"]).unwrap_err();
        assert_eq!(
            clap_message(&e.to_string()),
            "the following required arguments were not provided: --wait"
        );
        let e = parse(&["log", "-n", "x"]).unwrap_err();
        assert_eq!(
            clap_message(&e.to_string()),
            "invalid value 'x' for '--lines <N>': invalid digit found in string"
        );
    }

    #[test]
    fn clap_errors_become_one_line() {
        let e = parse(&["status", "--bogus"]).unwrap_err();
        let m = clap_message(&e.to_string());
        assert!(
            !m.contains('\n') && m.contains("--bogus") && !m.starts_with("error:"),
            "{m}"
        );
    }
}
