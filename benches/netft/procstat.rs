//! What a node process costs, read from /proc: CPU time (utime+stime from /proc/PID/stat, and the
//! nanosecond run time of every thread from /proc/PID/task/*/schedstat) and the UDP datagrams and
//! interface packets of its network namespace (/proc/PID/net/snmp and /proc/PID/net/dev show the
//! namespace of PID). Not what the figures mean (main.rs compares them).

use std::time::{Duration, Instant};

/// One sample of one process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    /// utime + stime (clock-tick resolution).
    pub stat_cpu: Duration,
    /// Sum of the threads' run time (nanosecond resolution).
    pub run_ns: u64,
    pub udp_in: u64,
    pub udp_out: u64,
    /// Packets on every interface but lo.
    pub dev_rx: u64,
    pub dev_tx: u64,
}

/// Per-second rates and CPU share between two samples.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Percent of one core, from the threads' run time.
    pub cpu_percent: f64,
    /// Percent of one core, from utime+stime.
    pub stat_cpu_percent: f64,
    pub udp_in: f64,
    pub udp_out: f64,
    pub dev_rx: f64,
    pub dev_tx: f64,
}

pub fn sample(pid: u32) -> Result<Sample, String> {
    let named = |what: &str, e: std::io::Error| format!("/proc/{pid}/{what}: {e}");
    let stat_cpu = keelson_sys::process::cpu_time(pid).map_err(|e| named("stat", e))?;
    let run_ns = run_ns(pid)?;
    let snmp = std::fs::read_to_string(format!("/proc/{pid}/net/snmp"))
        .map_err(|e| named("net/snmp", e))?;
    let dev =
        std::fs::read_to_string(format!("/proc/{pid}/net/dev")).map_err(|e| named("net/dev", e))?;
    let udp = |field| {
        snmp_field(&snmp, "Udp:", field).ok_or(format!("/proc/{pid}/net/snmp: no Udp {field}"))
    };
    let (dev_rx, dev_tx) = dev_packets(&dev);
    Ok(Sample {
        at: Instant::now(),
        stat_cpu,
        run_ns,
        udp_in: udp("InDatagrams")?,
        udp_out: udp("OutDatagrams")?,
        dev_rx,
        dev_tx,
    })
}

fn run_ns(pid: u32) -> Result<u64, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    let mut total = 0;
    for task in tasks.flatten() {
        let path = task.path().join("schedstat");
        // A thread that ended since the listing has no schedstat: it no longer runs.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let ns = text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok());
        total += ns.ok_or(format!("{}: unreadable: {text:?}", path.display()))?;
    }
    Ok(total)
}

/// `field` of the `prefix` table in /proc/net/snmp (a header line, then a values line).
fn snmp_field(snmp: &str, prefix: &str, field: &str) -> Option<u64> {
    let mut lines = snmp.lines().filter(|l| l.starts_with(prefix));
    let (header, values) = (lines.next()?, lines.next()?);
    let at = header.split_whitespace().position(|h| h == field)?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Received and sent packets summed over every interface but lo.
fn dev_packets(dev: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for line in dev.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if fields.len() >= 10 {
            rx += fields[1];
            tx += fields[9];
        }
    }
    (rx, tx)
}

pub fn rates(before: &Sample, after: &Sample) -> Rates {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    let per_s = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    Rates {
        cpu_percent: after.run_ns.saturating_sub(before.run_ns) as f64 / 1e9 / secs * 100.0,
        stat_cpu_percent: after.stat_cpu.saturating_sub(before.stat_cpu).as_secs_f64() / secs
            * 100.0,
        udp_in: per_s(before.udp_in, after.udp_in),
        udp_out: per_s(before.udp_out, after.udp_out),
        dev_rx: per_s(before.dev_rx, after.dev_rx),
        dev_tx: per_s(before.dev_tx, after.dev_tx),
    }
}
