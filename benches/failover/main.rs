//! Failover measured on real namespaces and processes (run as root: `cargo bench --bench
//! failover`): node loss to the group Online on another node, on 3 nodes, each in a network
//! namespace of its own, on two networks (two bridges in a switch namespace of the bench's own;
//! 192.0.2.0/24 and 198.51.100.0/24, benches/netft's lab). A node's loss is SIGKILL of every one of
//! its processes at once; the time runs from the kill to the first poll of a surviving node that
//! reports the group started elsewhere, in both cases: the owner is not the leader, and the owner
//! is the leader. Printed: median, p90, max, and the median less the detection time the
//! contender is configured with.
//!
//! Contenders, in this order: Pacemaker 2.1.5 + corosync 3.1.7 from Debian's packages
//! (pacemaker.rs; installed with apt-get when missing); keelson at its defaults (keelson.rs, the
//! release binaries: `cargo build --release --workspace` first); keelson with its heartbeat Delay
//! set so that its detection equals Pacemaker's as measured before it in the same run.
//! KEELSON_FAILOVER_CONTENDERS=a,b (default pacemaker,keelson,keelson-matched) picks some;
//! keelson-matched needs pacemaker before it. KEELSON_FAILOVER_RUNS=N (default 7) runs per case;
//! KEELSON_FAILOVER_TOKEN_MS=N (default 1000) corosync's configured token. Needs root: without it
//! the run fails, naming what it needs. Everything it creates (namespaces, daemons, its temporary
//! directory) is removed at the end, on a panic and on Ctrl-C (netft's cleanup.rs). Not the
//! measurement itself (measure.rs).

#[allow(dead_code)]
#[path = "../netft/cleanup.rs"]
mod cleanup;
#[allow(dead_code)]
#[path = "../netft/lab.rs"]
mod lab;

mod contender;
mod crm_status;
mod keelson;
mod keelson_node;
mod measure;
mod pacemaker;
mod packages;
mod pcmk_node;

use cleanup::Item;
use contender::{Contender, Detection};
use lab::Lab;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The prefix of the bench's temporary directory: `keelson-failover-bench-<pid>`.
const TEMP_PREFIX: &str = "keelson-failover-bench-";

struct Options {
    runs: usize,
    token_ms: u32,
    contenders: Vec<String>,
}

fn number_from_env<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    default: T,
    (low, high): (T, T),
) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .trim()
            .parse::<T>()
            .ok()
            .filter(|n| *n >= low && *n <= high)
            .ok_or(format!("{name}={v}: expected a number {low}..={high}")),
    }
}

fn options_from_env() -> Result<Options, String> {
    Ok(Options {
        runs: number_from_env("KEELSON_FAILOVER_RUNS", 7, (1, 1000))?,
        token_ms: number_from_env("KEELSON_FAILOVER_TOKEN_MS", 1000, (100, 60_000))?,
        contenders: contenders_from_env()?,
    })
}

fn contenders_from_env() -> Result<Vec<String>, String> {
    let all: Vec<&str> = CONTENDERS.iter().map(|(name, _)| *name).collect();
    let Ok(list) = std::env::var("KEELSON_FAILOVER_CONTENDERS") else {
        return Ok(all.iter().map(|n| n.to_string()).collect());
    };
    let chosen: Vec<String> = list.split(',').map(|n| n.trim().to_string()).collect();
    match chosen.iter().find(|n| !all.contains(&n.as_str())) {
        Some(bad) => Err(format!(
            "KEELSON_FAILOVER_CONTENDERS: unknown contender '{bad}' (known: {})",
            all.join(", ")
        )),
        None => Ok(chosen),
    }
}

/// What the contenders measured so far in this run, for those that match another's settings.
#[derive(Default)]
struct Measured {
    pacemaker_detection: Option<Detection>,
}

/// How to build each contender's cluster on the lab, in the order they run.
type Start = fn(&Lab, &Path, &Options, &Measured) -> Result<Box<dyn Contender>, String>;
const CONTENDERS: &[(&str, Start)] = &[
    ("pacemaker", start_pacemaker),
    ("keelson", start_keelson_defaults),
    ("keelson-matched", start_keelson_matched),
];

fn start_pacemaker(
    lab: &Lab,
    dir: &Path,
    options: &Options,
    _: &Measured,
) -> Result<Box<dyn Contender>, String> {
    packages::ensure_installed()?;
    let versions = packages::versions()?.join(", ");
    let cluster = pacemaker::Pacemaker::start(lab, dir, options.token_ms, versions)?;
    Ok(Box::new(cluster))
}

fn start_keelson_defaults(
    lab: &Lab,
    dir: &Path,
    _: &Options,
    _: &Measured,
) -> Result<Box<dyn Contender>, String> {
    let timing = keelson::Timing::defaults();
    Ok(Box::new(keelson::Keelson::start(
        lab, dir, timing, "defaults",
    )?))
}

/// keelson with the Delay (at its default Threshold) whose detection equals Pacemaker's.
fn start_keelson_matched(
    lab: &Lab,
    dir: &Path,
    _: &Options,
    measured: &Measured,
) -> Result<Box<dyn Contender>, String> {
    let pacemaker = measured.pacemaker_detection.as_ref().ok_or(
        "keelson-matched matches Pacemaker's detection as measured in the same run: run pacemaker before it (KEELSON_FAILOVER_CONTENDERS)",
    )?;
    let timing = keelson::Timing::matching(pacemaker.ms);
    println!(
        "\nkeelson at Pacemaker's detection: Pacemaker's is {:.0} ms ({}); chosen: Same/CrossSubnetDelay {} ms, Threshold {}: {} x {} + {} / 2 = {} ms",
        pacemaker.ms,
        pacemaker.how,
        timing.delay_ms,
        timing.threshold,
        timing.delay_ms,
        timing.threshold,
        timing.delay_ms,
        timing.detection_ms()
    );
    Ok(Box::new(keelson::Keelson::start(
        lab,
        dir,
        timing,
        "detection matched to Pacemaker's",
    )?))
}

fn main() {
    let result = run();
    cleanup::everything();
    if let Err(e) = result {
        eprintln!("failover bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    if keelson_sys::process::geteuid() != 0 {
        return Err("needs root to create network, mount and pid namespaces and to run corosync, pacemaker and keelson-rcm in them; run it as root (e.g. sudo -E cargo bench --bench failover)".into());
    }
    let options = options_from_env()?;
    lab::ip(&["-V"]).map_err(|e| format!("needs iproute2's ip: {e}"))?;
    cleanup::on_signal_remove_everything();
    cleanup::remove_stale();
    remove_stale_dirs();
    let began = Instant::now();
    println!(
        "keelson failover benchmark: {} nodes in namespaces on 2 networks, {} runs per case, {} CPUs",
        pacemaker::NODES,
        options.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let lab = Lab::create(pacemaker::NODES)?;
    let mut measured = Measured::default();
    for (name, start) in CONTENDERS {
        if !options.contenders.iter().any(|c| c == name) {
            continue;
        }
        let dir = TempDir::create(name)?;
        let mut contender = start(&lab, &dir.0, &options, &measured)?;
        let detection = measure_contender(contender.as_mut(), &options)?;
        if *name == "pacemaker" {
            measured.pacemaker_detection = Some(detection);
        }
        drop(contender);
    }
    println!("\nwhole run: {:.0} s", began.elapsed().as_secs_f64());
    Ok(())
}

fn measure_contender(
    contender: &mut dyn Contender,
    options: &Options,
) -> Result<Detection, String> {
    let name = contender.name();
    let leader = contender.leader_word();
    println!("\n{name}\n  {}", contender.settings());
    let detection = contender.detection()?;
    let samples = measure::run_all(contender, options.runs, leader)?;
    measure::print_table(&name, &samples, &detection, leader);
    Ok(detection)
}

/// A contender's temporary directory (its nodes' directories, logs, configuration); removed on
/// drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create(contender: &str) -> Result<TempDir, String> {
        let name = format!("{TEMP_PREFIX}{}-{contender}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        cleanup::register(Item::Dir(path.clone()));
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        cleanup::remove(&Item::Dir(self.0.clone()));
    }
}

/// Removes `keelson-failover-bench-<pid>…` directories whose run (pid) is gone (netft's
/// remove_stale does the same for the namespaces).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !keelson_sys::process::is_alive(pid) {
            println!(
                "removing {} left behind by an earlier run (pid {pid})",
                entry.path().display()
            );
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                eprintln!("cleanup: rm -r {}: {e}", entry.path().display());
            }
        }
    }
}
