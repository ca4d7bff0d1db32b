//! The failover measurement, the same for every contender: put the group on a node that is (or is
//! not) the leader, kill that node, poll a surviving node every POLL_PERIOD until it reports the
//! group Online on another node, and take the time from the kill to the end of that poll; then
//! bring the node back and let the cluster settle before the next run. Runs alternate between the
//! two cases. Also the summary (median, p90, max) and its table. Not any contender (pacemaker.rs).

use crate::contender::{Contender, Detection};
use std::time::{Duration, Instant};

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
    pub detected_ms: Option<f64>,
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
    let observer = (1..=3).find(|n| *n != owner).expect("3 nodes");
    let death = contender.kill(owner)?;
    let (seen_at, polls, poll_time) = poll_until_elsewhere(contender, observer, owner)?;
    let ms = seen_at.duration_since(death.at).as_secs_f64() * 1e3;
    let detected_ms = contender
        .detected_at(observer, owner, death.wall)?
        .map(|at| match at.duration_since(death.wall) {
            Ok(later) => later.as_secs_f64() * 1e3,
            // The log's millisecond stamp rounds down to just before the kill.
            Err(_) => 0.0,
        });
    let detected = detected_ms.map_or("not logged".to_string(), |d| format!("{d:.0} ms"));
    println!(
        "    killed node{owner} ({leader}: node{}; died: {}); node{observer} logged it gone after {detected} and saw the group Online elsewhere at poll {polls}",
        placed.leader, death.what
    );
    contender.restore(owner)?;
    Ok(Sample {
        case,
        ms,
        mean_poll_ms: poll_time.as_secs_f64() * 1e3 / polls as f64,
        detected_ms,
    })
}

/// Polls `observer` until it reports the group Online on a node other than `dead`: the end of
/// that poll, how many polls it took and their total time.
fn poll_until_elsewhere(
    contender: &mut dyn Contender,
    observer: usize,
    dead: usize,
) -> Result<(Instant, usize, Duration), String> {
    let deadline = Instant::now() + FAILOVER_LIMIT;
    let (mut polls, mut busy) = (0usize, Duration::ZERO);
    loop {
        let started = Instant::now();
        let answer = contender.online_on(observer);
        let ended = Instant::now();
        polls += 1;
        busy += ended - started;
        let last = match answer {
            Ok(on) if !on.is_empty() && !on.contains(&dead) => return Ok((ended, polls, busy)),
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
    /// Medians of the observed detection and of the time after it, over the runs that logged it.
    pub detected: Option<f64>,
    pub after_detection: Option<f64>,
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
        detected: median(chosen.iter().filter_map(|s| s.detected_ms).collect()),
        after_detection: median(
            chosen
                .iter()
                .filter_map(|s| Some(s.ms - s.detected_ms?))
                .collect(),
        ),
    })
}

/// The table: one row per case, with the time less the configured detection.
pub fn print_table(name: &str, samples: &[Sample], detection: &Detection, leader: &str) {
    println!("\n== {name}: node loss (SIGKILL of every process of the owner) -> Started on another node ==");
    println!(
        "detection configured: {:.0} ms = {}",
        detection.ms, detection.how
    );
    println!(
        "{:<26} {:>4} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11}",
        "case", "runs", "median", "p90", "max", "min", "- config.", "observed", "after obs."
    );
    for case in Case::ALL {
        let Some(s) = summarize(samples, case) else {
            continue;
        };
        let or_dash = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        println!(
            "{:<26} {:>4} {:>6.0} ms {:>6.0} ms {:>6.0} ms {:>6.0} ms {:>8.0} ms {:>11} {:>11}",
            case.label(leader),
            s.runs,
            s.median,
            s.p90,
            s.max,
            s.min,
            s.median - detection.ms,
            or_dash(s.detected),
            or_dash(s.after_detection),
        );
    }
    let polls: Vec<f64> = Case::ALL
        .iter()
        .filter_map(|c| summarize(samples, *c))
        .map(|s| s.poll_ms)
        .collect();
    println!("(- config.: the median less the configured detection; observed: the median time from the kill to the observer's own log of the node gone; after obs.: the median of each run's time after that)");
    println!(
        "(each sample ends with the first poll that saw it; a poll took {:.0} ms on average, one every {} ms at most)",
        polls.iter().sum::<f64>() / polls.len().max(1) as f64,
        POLL_PERIOD.as_millis()
    );
}
