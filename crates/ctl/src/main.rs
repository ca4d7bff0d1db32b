//! `keelson`, the command line. Parses arguments with clap and hands each command to its module;
//! every error ends as one line on stderr and a non-zero exit. Not any command's logic.

mod demo;
mod plugin_test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// keelson: a failover-cluster resource runtime for Linux.
#[derive(Parser, Debug)]
#[command(name = "keelson", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the guided demo: a private node service, a group, a deadlocking resource, the recovery.
    Demo(demo::DemoArgs),
    /// Work with resource plugins (shared libraries with the keelson C ABI).
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// Load a plugin in an isolated host and run the conformance sequence on each of its types.
    Test(plugin_test::TestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keelson: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plugin(PluginCommand::Test(args)) => plugin_test::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keelson: {e:#}");
            ExitCode::from(1)
        }
    }
}
