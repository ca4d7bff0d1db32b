//! keelson-netft-node: one NetFT node as a process of its own, for benchmarks and system tests.
//! It reads a JSON configuration (see config.rs), enters the network namespace it names, runs the
//! NetFT shell on a single-threaded runtime and prints every route, node and incarnation change,
//! every event and log line as a JSON line on stdout stamped with CLOCK_REALTIME (see output.rs).
//! SIGUSR1 prints a `status` line with the detector's counters. `--raw-udp` runs the benchmark
//! baseline instead (raw.rs). A dead node is this process killed with SIGKILL. Not the node
//! service: no rcm, no cluster database, no virtual adapter.
//!
//! Usage: `keelson-netft-node --config FILE [--raw-udp] [--die-with-parent]`. Exit status 2 for a
//! bad command line or configuration (one line on stderr naming the thing), 1 when the node fails
//! while running, 3 when stdout is gone.

mod config;
mod output;
mod raw;

use keelson_netft::{RouteState, Shell, StatusHandle};
use output::{emit, JsonLines};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: keelson-netft-node --config FILE [--raw-udp] [--die-with-parent]";

struct Args {
    config: PathBuf,
    raw_udp: bool,
    die_with_parent: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut config = None;
    let (mut raw_udp, mut die_with_parent) = (false, false);
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--config") => {
                let value = args.next().ok_or("--config needs a file")?;
                config = Some(PathBuf::from(value));
            }
            Some("--raw-udp") => raw_udp = true,
            Some("--die-with-parent") => die_with_parent = true,
            _ => return Err(format!("unknown argument {arg:?}; {USAGE}")),
        }
    }
    let config = config.ok_or_else(|| format!("--config is required; {USAGE}"))?;
    Ok(Args {
        config,
        raw_udp,
        die_with_parent,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => return fail(2, &e),
    };
    let node = match config::load(&args.config) {
        Ok(node) => node,
        Err(e) => return fail(2, &e),
    };
    if args.die_with_parent {
        if let Err(e) = keelson_sys::process::set_parent_death_kill() {
            return fail(1, &format!("cannot ask for SIGKILL on parent death: {e}"));
        }
    }
    // Only the calling thread moves: enter before the runtime exists, so its thread (the only
    // one) and any it starts are inside the namespace.
    if let Some(path) = &node.netns {
        if let Err(e) = keelson_sys::netns::enter_netns(path) {
            return fail(2, &e.to_string());
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(1, &format!("cannot build the runtime: {e}")),
    };
    let result = if args.raw_udp {
        runtime.block_on(raw::run(node.detector))
    } else {
        runtime.block_on(run_netft(node.detector))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, &e),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("keelson-netft-node: {message}");
    ExitCode::from(code)
}

/// Runs the shell until it fails; SIGUSR1 prints its status.
async fn run_netft(config: keelson_netft::DetectorConfig) -> Result<(), String> {
    let (node, incarnation) = (config.topology.local, config.incarnation);
    // Before `started`: whoever waits for that line may signal at once.
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(|e| format!("SIGUSR1: {e}"))?;
    let shell = Shell::start(config, JsonLines)
        .await
        .map_err(|e| e.to_string())?;
    let status = shell.status();
    emit(
        "started",
        json!({
            "pid": std::process::id(),
            "mode": "netft",
            "node": node.0,
            "incarnation": incarnation,
            "routes": status.get().routes.len(),
        }),
    );
    let run = shell.run();
    tokio::pin!(run);
    loop {
        tokio::select! {
            result = &mut run => return result.map_err(|e| e.to_string()),
            _ = usr1.recv() => print_status(&status),
        }
    }
}

fn print_status(status: &StatusHandle) {
    let now = status.get();
    let c = now.counters;
    let up = now
        .routes
        .iter()
        .filter(|r| r.state == RouteState::Up)
        .count();
    emit(
        "status",
        json!({
            // How old the shell's snapshot is (it is refreshed on ticks and state changes).
            "age_ms": now.taken_at.elapsed().as_secs_f64() * 1e3,
            "routes": now.routes.len(),
            "routes_up": up,
            "received": now.routes.iter().map(|r| r.received).sum::<u64>(),
            "lost": now.routes.iter().map(|r| r.lost).sum::<u64>(),
            "accepted": c.accepted,
            "forged": c.forged,
            "replayed": c.replayed,
            "malformed": c.malformed,
            "unknown_sender": c.unknown_sender,
            "send_failures": c.send_failures,
        }),
    );
}
