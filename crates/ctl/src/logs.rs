//! `keelson log` and `keelson events`: the last lines of the cluster log or the event stream from
//! the node service, then (with --follow) every new one until interrupted, as text or (--json) one
//! JSON object per line. Not reading the files directly: the node service may run as another user,
//! and it knows about rotation.

use crate::client::Client;
use crate::output::emit_line;
use anyhow::Result;
use clap::Args;
use keelson_proto::ControlRequest as R;

/// Arguments of `keelson log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// Keep printing new lines as the node service writes them.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print each line as a JSON object (one per line): time, pid, tid, level, component, message.
    #[arg(long)]
    pub json: bool,
    /// How many of the last lines to print first.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 50)]
    pub lines: u32,
}

/// Arguments of `keelson events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Keep printing new events as they are raised.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print each event as its JSON object (one per line) instead of `TIME LEVEL ID message`.
    #[arg(long)]
    pub json: bool,
    /// How many of the last events to print first.
    #[arg(short = 'n', long = "last", value_name = "N", default_value_t = 50)]
    pub last: u32,
}

/// `keelson log`: cluster-log lines as-is, or as JSON objects.
pub async fn log(client: &Client, args: LogArgs) -> Result<()> {
    let request = R::Log {
        lines: args.lines,
        follow: args.follow,
    };
    let json = args.json;
    client
        .stream(request, |line| {
            if json {
                emit_line(&crate::render::log_line_json(&line))
            } else {
                emit_line(&line)
            }
        })
        .await
}

/// `keelson events`: events as JSON lines or as `TIME LEVEL ID message`.
pub async fn events(client: &Client, args: EventsArgs) -> Result<()> {
    let request = R::Events {
        last: args.last,
        follow: args.follow,
    };
    let json = args.json;
    client
        .stream(request, |line| {
            if json {
                emit_line(&line)
            } else {
                emit_line(&crate::render::event_line(&line))
            }
        })
        .await
}
