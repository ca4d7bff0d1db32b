//! The failover measurement, the same for every contender: put the group on a node that is (or is
//! not) the leader, kill that node, poll a surviving node every POLL_PERIOD until it reports the
//! group Online on another node, and take the time from the kill to the end of that poll; then
//! bring the node back and let the cluster settle before the next run. Runs alternate between the
//! two cases. Also the summary (median, p90, max) and its table. Not any contender (pacemaker.rs).

use crate::contender::{Contender, Detection, Placement};
use std::time::{Duration, Instant, SystemTime};

/// The pause between the starts of two polls (a poll itself takes what it takes).
pub const POLL_PERIOD: Duration = Duration::from_millis(50);
/// A failover taking longer than this is a failure of the run, not a sample.
const FAILOVER_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    OwnerNotLeader,
    OwnerIsLeader,
}

impl Case {
    pub const ALL: [Case; 2] = [Case::OwnerNotLeader, Case::OwnerIsLeader];

    pub fn label(self, leader: &str) -> String {
        match self {
            Case::OwnerNotLeader => format!("owner is not the {leader}"),
            Case::OwnerIsLeader => format!("owner is the {leader}"),
        }
    }
}

/// One failover.
#[derive(Debug, Clone)]
pub struct Sample {
    pub case: Case,
    pub ms: f64,
    /// The poll's own duration, averaged over the run: the sample's resolution.
    pub mean_poll_ms: f64,
    /// From the kill to the observer's own log of the node gone, where the contender logs it.
    pub gone_ms: Option<f64>,
    /// From the kill to the new owner's own log of the group Online, where the contender logs it.
    pub online_ms: Option<f64>,
}

/// Measures `runs` failovers of each case, alternating; prints one line per run.
pub fn run_all(
    contender: &mut dyn Contender,
    runs: usize,
    leader: &str,
) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for run in 1..=runs {
        for case in Case::ALL {
            let sample = run_one(contender, case, leader)
                .map_err(|e| format!("run {run}, {}: {e}", case.label(leader)))?;
            println!(
                "  run {run}/{runs}, {}: {:.0} ms (polls of {:.0} ms on average)",
                case.label(leader),
                sample.ms,
                sample.mean_poll_ms
            );
            samples.push(sample);
        }
    }
    Ok(samples)
}

fn run_one(contender: &mut dyn Contender, case: Case, leader: &str) -> Result<Sample, String> {
    let placed = arrange(contender, case, leader)?;
    let owner = placed.owner;
    let observer = (1..=3).find(|n| *n != owner).expect("3 nodes");
    let death = contender.kill(owner)?;
    let seen = poll_until_elsewhere(contender, observer, owner)?;
    let logged = contender.logged(observer, owner, seen.on, death.wall)?;
    let since_kill = |at: Option<SystemTime>| {
        at.map(|at| match at.duration_since(death.wall) {
            Ok(later) => later.as_secs_f64() * 1e3,
            // A log's millisecond stamp rounds down to just before the kill.
            Err(_) => 0.0,
        })
    };
    let sample = Sample {
        case,
        ms: seen.at.duration_since(death.at).as_secs_f64() * 1e3,
        mean_poll_ms: seen.busy.as_secs_f64() * 1e3 / seen.polls as f64,
        gone_ms: since_kill(logged.gone),
        online_ms: since_kill(logged.online),
    };
    print_steps(&sample, placed, observer, &seen, &death.what, leader);
    contender.restore(owner)?;
    Ok(sample)
}

/// Puts the group where `case` wants it: on the leader, or on a node that is not the leader (where
/// it is, if it is not on the leader already).
fn arrange(contender: &mut dyn Contender, case: Case, leader: &str) -> Result<Placement, String> {
    let before = contender.placement()?;
    let owner = match case {
        Case::OwnerIsLeader => before.leader,
        Case::OwnerNotLeader if before.owner != before.leader => before.owner,
        Case::OwnerNotLeader => (1..=3).find(|n| *n != before.leader).expect("3 nodes"),
    };
    contender.place(owner)?;
    let placed = contender.placement()?;
    if placed.owner != owner || (placed.leader == owner) != (case == Case::OwnerIsLeader) {
        return Err(format!(
            "wanted the group on node{owner} ({}), have it on node{} with the {leader} node{}",
            case.label(leader),
            placed.owner,
            placed.leader
        ));
    }
    Ok(placed)
}

fn print_steps(
    sample: &Sample,
    placed: Placement,
    observer: usize,
    seen: &Seen,
    died: &str,
    leader: &str,
) {
    let shown = |ms: Option<f64>| ms.map_or("(not logged)".to_string(), |ms| format!("{ms:.0} ms"));
    println!(
        "    killed node{} ({leader}: node{}; died: {died}); node{observer} logged it gone at {}, node{} logged the group Online at {}, node{observer}'s poll {} saw it",
        placed.owner,
        placed.leader,
        shown(sample.gone_ms),
        seen.on,
        shown(sample.online_ms),
        seen.polls
    );
}

/// The poll that first saw the group Online elsewhere: when it ended, the node it named, and how
/// many polls it took in how much time.
struct Seen {
    at: Instant,
    on: usize,
    polls: usize,
    busy: Duration,
}

/// Polls `observer` until it reports the group Online on a node other than `dead`.
fn poll_until_elsewhere(
    contender: &mut dyn Contender,
    observer: usize,
    dead: usize,
) -> Result<Seen, String> {
    let deadline = Instant::now() + FAILOVER_LIMIT;
    let (mut polls, mut busy) = (0usize, Duration::ZERO);
    loop {
        let started = Instant::now();
        let answer = contender.online_on(observer);
        let ended = Instant::now();
        polls += 1;
        busy += ended - started;
        let last = match answer {
            Ok(on) if !on.is_empty() && !on.contains(&dead) => {
                return Ok(Seen {
                    at: ended,
                    on: on[0],
                    polls,
                    busy,
                })
            }
            Ok(on) => format!("Online on {on:?}"),
            Err(e) => e,
        };
        if ended >= deadline {
            return Err(format!(
                "node{observer} did not report the group Online on another node within {FAILOVER_LIMIT:?} of node{dead}'s death ({polls} polls; last: {last})"
            ));
        }
        std::thread::sleep((started + POLL_PERIOD).saturating_duration_since(Instant::now()));
    }
}

/// Median, p90 (nearest rank), min and max of some samples in ms.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub runs: usize,
    pub median: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
    pub poll_ms: f64,
    /// Medians over the runs whose logs had them: kill to logged gone (the detection seen), logged
    /// gone to logged Online (the failover after detection), logged Online to the poll's end.
    pub gone: Option<f64>,
    pub after_gone: Option<f64>,
    pub poll_lag: Option<f64>,
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

pub fn summarize(samples: &[Sample], case: Case) -> Option<Summary> {
    let chosen: Vec<&Sample> = samples.iter().filter(|s| s.case == case).collect();
    if chosen.is_empty() {
        return None;
    }
    let mut ms: Vec<f64> = chosen.iter().map(|s| s.ms).collect();
    ms.sort_by(f64::total_cmp);
    let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    let n = ms.len();
    Some(Summary {
        runs: n,
        median: median(ms.clone())?,
        p90: rank(0.90),
        min: ms[0],
        max: ms[n - 1],
        poll_ms: chosen.iter().map(|s| s.mean_poll_ms).sum::<f64>() / n as f64,
        gone: median(chosen.iter().filter_map(|s| s.gone_ms).collect()),
        after_gone: median(
            chosen
                .iter()
                .filter_map(|s| Some(s.online_ms? - s.gone_ms?))
                .collect(),
        ),
        poll_lag: median(
            chosen
                .iter()
                .filter_map(|s| Some(s.ms - s.online_ms?))
                .collect(),
        ),
    })
}

/// The table: one row per case, with the time less the configured detection and the medians of
/// the logged steps.
pub fn print_table(name: &str, samples: &[Sample], detection: &Detection, leader: &str) {
    println!("\n== {name}: node loss (SIGKILL of every process of the owner) -> Online on another node ==");
    println!(
        "detection configured: {:.0} ms = {}",
        detection.ms, detection.how
    );
    println!(
        "{:<24} {:>4} {:>9} {:>9} {:>9} {:>9} {:>10} | {:>9} {:>9} {:>9}",
        "case", "runs", "median", "p90", "max", "min", "- config.", "gone", "->Online", "poll lag"
    );
    let or_dash = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
    for case in Case::ALL {
        let Some(s) = summarize(samples, case) else {
            continue;
        };
        println!(
            "{:<24} {:>4} {:>6.0} ms {:>6.0} ms {:>6.0} ms {:>6.0} ms {:>7.0} ms | {:>9} {:>9} {:>9}",
            case.label(leader),
            s.runs,
            s.median,
            s.p90,
            s.max,
            s.min,
            s.median - detection.ms,
            or_dash(s.gone),
            or_dash(s.after_gone),
            or_dash(s.poll_lag),
        );
    }
    let polls: Vec<f64> = Case::ALL
        .iter()
        .filter_map(|c| summarize(samples, *c))
        .map(|s| s.poll_ms)
        .collect();
    println!("median..min: kill -> the first poll of a survivor that saw the group Online elsewhere; - config.: the median less the configured detection.");
    println!("From the contender's own logs (medians): gone: kill -> the observer logged the node gone; ->Online: from that to the new owner logging the group Online; poll lag: from that to the poll's end.");
    println!(
        "A poll took {:.0} ms on average, one started every {} ms at most.",
        polls.iter().sum::<f64>() / polls.len().max(1) as f64,
        POLL_PERIOD.as_millis()
    );
}
