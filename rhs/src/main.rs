//! `keelson-rhs`, the resource host: a worker process that rcm spawns. It loads plugins, runs each
//! open resource on a thread of its own, times every call and dies loudly (naming the resource and
//! the call) on a deadlock or a crash. Not policy: what to do about a death is rcm's decision.
//!
//! File descriptors at start: 3 = control socket, 4 = alarm pipe (write end), and with --lease-fd the
//! lease socket: the host then holds a lease from rcm and, when rcm stops renewing it, terminates its
//! resources and exits (fence.rs). See crates/proto.

mod callbacks;
mod control;
mod crash;
mod declared;
mod fence;
mod gate;
mod lease;
mod lease_watch;
mod log;
mod monitor;
mod params;
mod plugins;
mod polling;
mod resource;
mod scan;
mod stats;
mod status;

use std::process::ExitCode;

const USAGE: &str = "\
keelson-rhs: keelson resource host (started by keelson-rcm or `keelson plugin test`, not by hand)

Usage: keelson-rhs [--control-fd N] [--alarm-fd N] [--lease-fd N] [--core-dumps] [--log-stderr]

  --control-fd N   control socket inherited from the parent (default 3)
  --alarm-fd N     alarm pipe inherited from the parent (default 4)
  --lease-fd N     lease socket inherited from the parent (default: none, no lease, never fences)
  --core-dumps     keep core dumps enabled when plugin code crashes (default: off)
  --log-stderr     also print every log line to stderr in cluster-log format
  -h, --help       this text
  -V, --version    version
";

/// Exit status after a detected deadlock (the alarm pipe says which call).
pub const EXIT_DEADLOCK: i32 = 86;
/// Exit status after a protocol failure with the parent.
pub const EXIT_PROTOCOL: i32 = 2;

/// Command-line options.
#[derive(Debug)]
pub struct Options {
    pub control_fd: i32,
    pub alarm_fd: i32,
    /// The lease socket, if the parent gave one.
    pub lease_fd: Option<i32>,
    pub core_dumps: bool,
    pub log_stderr: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut opts = Options {
        control_fd: 3,
        alarm_fd: 4,
        lease_fd: None,
        core_dumps: false,
        log_stderr: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<i32, String> {
            let v = inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))?;
            v.parse::<i32>()
                .map_err(|_| format!("{name}: '{v}' is not a file descriptor number"))
        };
        match flag.as_str() {
            "--control-fd" => opts.control_fd = value("--control-fd")?,
            "--alarm-fd" => opts.alarm_fd = value("--alarm-fd")?,
            "--lease-fd" => opts.lease_fd = Some(value("--lease-fd")?),
            "--core-dumps" => opts.core_dumps = true,
            "--log-stderr" => opts.log_stderr = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("keelson-rhs {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    Ok(Some(opts))
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keelson-rhs: {e}");
            return ExitCode::from(2);
        }
    };
    match control::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keelson-rhs: {e}");
            ExitCode::from(EXIT_PROTOCOL as u8)
        }
    }
}
