//! `keelson plugin test`: loads a plugin in a throwaway keelson-rhs (the load step, held to
//! --deadlock-timeout like every call, so a library initialiser that never returns fails it), then
//! runs the conformance sequence in a fresh host per resource type (open, validate, online,
//! looks_alive, is_alive, offline, online again, terminate, close, deadline), reporting each step
//! with its duration. A hang or crash is reported as the step that caused it; this process never
//! loads plugin code, so it survives both.

use anyhow::{bail, Context, Result};
use keelson_host::{
    CallError, DeathCause, Host, HostConfig, HostDied, HostError, OpenSpec, ResourceHandle,
};
use keelson_types::{signal_name, Op, PluginInfo, ResourceId};
use serde::Serialize;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `keelson plugin test`.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Path of the plugin library (e.g. target/debug/libkeelson_plugin_dummy.so).
    pub path: String,
    /// Test only this resource type (default: every type the plugin has).
    #[arg(long = "type", value_name = "T")]
    pub type_name: Option<String>,
    /// A private parameter for the resource, repeatable: --param online_delay_ms=20.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// DeadlockTimeout for every call, in milliseconds: a call that runs longer fails its step.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub deadlock_timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Outcome of one step.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Serialize, Debug)]
struct StepReport {
    step: &'static str,
    /// The entry point the step calls; None for the closing deadline check.
    op: Option<&'static str>,
    result: Outcome,
    duration_ms: f64,
    message: String,
}

#[derive(Serialize, Debug)]
struct TypeReport {
    #[serde(rename = "type")]
    type_name: String,
    host_pid: u32,
    deadlock_timeout_ms: u64,
    steps: Vec<StepReport>,
}

#[derive(Serialize, Debug)]
struct Report {
    /// The file tested (canonical path).
    path: String,
    /// What the plugin offers; None when it could not be loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<PluginInfo>,
    passed: bool,
    /// Loading the library in a throwaway host, within DeadlockTimeout.
    load: StepReport,
    types: Vec<TypeReport>,
}

/// The conformance sequence after OPEN: (step name, entry point).
const SEQUENCE: [(&str, Op); 8] = [
    ("validate", Op::Validate),
    ("online", Op::Online),
    ("looks_alive", Op::LooksAlive),
    ("is_alive", Op::IsAlive),
    ("offline", Op::Offline),
    ("online_again", Op::Online),
    ("terminate", Op::Terminate),
    ("close", Op::Close),
];

pub async fn run(args: TestArgs) -> Result<ExitCode> {
    let params = params_json(&args.params)?;
    let path = std::fs::canonicalize(&args.path)
        .with_context(|| format!("plugin {}", args.path))?
        .display()
        .to_string();
    let config = HostConfig::from_env();
    let deadline = Duration::from_millis(args.deadlock_timeout);
    let (load, info) = load_step(&config, &path, deadline).await?;
    if !args.json {
        println!("load {path} (DeadlockTimeout {} ms)", deadline.as_millis());
        print_step(&load);
    }
    let Some(info) = info else {
        let report = Report {
            path,
            plugin: None,
            passed: false,
            load,
            types: Vec::new(),
        };
        return finish(&report, args.json);
    };
    let types: Vec<String> = match &args.type_name {
        Some(t) if info.types.iter().any(|x| &x.name == t) => vec![t.clone()],
        Some(t) => bail!(
            "plugin {path} has no resource type '{t}' (it has: {})",
            type_names(&info)
        ),
        None => info.types.iter().map(|t| t.name.clone()).collect(),
    };
    let mut reports = Vec::new();
    for type_name in &types {
        let report = test_type(&config, &path, type_name, &params, deadline).await?;
        if !args.json {
            print_type(&report);
        }
        reports.push(report);
    }
    let passed = reports
        .iter()
        .all(|r| r.steps.iter().all(|s| s.result == Outcome::Pass));
    let report = Report {
        path,
        plugin: Some(info),
        passed,
        load,
        types: reports,
    };
    finish(&report, args.json)
}

/// Prints the report (or its summary line after the steps) and picks the exit status.
fn finish(report: &Report, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print_summary(report);
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `k=v` pairs as a JSON object of strings.
fn params_json(pairs: &[String]) -> Result<String> {
    let mut map = serde_json::Map::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--param '{pair}': expected KEY=VALUE");
        };
        if k.is_empty() {
            bail!("--param '{pair}': the key is empty");
        }
        map.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    Ok(serde_json::Value::Object(map).to_string())
}

fn type_names(info: &PluginInfo) -> String {
    info.types
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads the plugin in a throwaway host, within `deadline`, to learn its types: the load step, and
/// what the plugin offers if it passed. Only failing to start keelson-rhs at all is an error.
async fn load_step(
    config: &HostConfig,
    path: &str,
    deadline: Duration,
) -> Result<(StepReport, Option<PluginInfo>)> {
    let (host, _events) = Host::spawn(config)
        .await
        .context("cannot start keelson-rhs")?;
    let start = Instant::now();
    let loaded = host.load_plugin_within(path, deadline).await;
    let elapsed = ms(start.elapsed());
    host.shutdown().await;
    let load = |result, message| StepReport {
        step: "load",
        op: None,
        result,
        duration_ms: elapsed,
        message,
    };
    Ok(match loaded {
        Ok(info) => {
            let message = format!("plugin {}, types: {}", info.name, type_names(&info));
            (load(Outcome::Pass, message), Some(info))
        }
        Err(e) => (load(Outcome::Fail, load_failure(&e, deadline)), None),
    })
}

/// Says why the library could not be loaded.
fn load_failure(e: &HostError, deadline: Duration) -> String {
    match e {
        HostError::LoadHung { limit_ms, pid, .. } => format!(
            "hung: the library did not finish loading within DeadlockTimeout {limit_ms} ms (a \
             library initialiser never returned); host {pid} was killed"
        ),
        HostError::Died(died) => format!(
            "the host died while loading the library: {}",
            death_message(died, deadline)
        ),
        other => other.to_string(),
    }
}

/// Runs the whole sequence for one type in a fresh host.
async fn test_type(
    config: &HostConfig,
    path: &str,
    type_name: &str,
    params: &str,
    deadline: Duration,
) -> Result<TypeReport> {
    let (host, _events) = Host::spawn(config)
        .await
        .context("cannot start keelson-rhs")?;
    let mut report = TypeReport {
        type_name: type_name.to_string(),
        host_pid: host.pid(),
        deadlock_timeout_ms: deadline.as_millis() as u64,
        steps: Vec::new(),
    };
    let spec = OpenSpec::new(
        ResourceId(1),
        &format!("conformance-{type_name}"),
        path,
        type_name,
    )
    .params(params)
    .deadlock_timeout(deadline);
    let start = Instant::now();
    let opened = host.open(spec).await;
    let open_ms = ms(start.elapsed());
    let resource = match opened {
        Ok(resource) => {
            report.steps.push(step(
                "open",
                Op::Open,
                Outcome::Pass,
                open_ms,
                String::new(),
            ));
            resource
        }
        Err(e) => {
            report.steps.push(step(
                "open",
                Op::Open,
                Outcome::Fail,
                open_ms,
                open_failure(&e, deadline),
            ));
            skip_rest(&mut report, 0, "open failed");
            return Ok(report);
        }
    };
    run_sequence(&resource, &mut report, deadline).await;
    host.shutdown().await;
    Ok(report)
}

/// Runs every step after OPEN; after a host death the rest are skipped.
async fn run_sequence(resource: &ResourceHandle, report: &mut TypeReport, deadline: Duration) {
    for (i, (name, op)) in SEQUENCE.iter().enumerate() {
        let start = Instant::now();
        let result = resource.call(*op).await;
        let elapsed = ms(start.elapsed());
        match result {
            Ok(done) if done.status == 0 => {
                report
                    .steps
                    .push(step(name, *op, Outcome::Pass, elapsed, done.message))
            }
            Ok(done) => {
                let msg = format!("status {}: {}", done.status, done.message);
                report
                    .steps
                    .push(step(name, *op, Outcome::Fail, elapsed, msg));
            }
            Err(e) => {
                report.steps.push(step(
                    name,
                    *op,
                    Outcome::Fail,
                    elapsed,
                    call_failure(&e, deadline),
                ));
                skip_rest(report, i + 1, "host died");
                return;
            }
        }
    }
    report.steps.push(deadline_step(resource, deadline));
}

/// The final step: every call finished inside DeadlockTimeout.
fn deadline_step(resource: &ResourceHandle, deadline: Duration) -> StepReport {
    let stats = resource.call_stats();
    let slowest = stats.iter().max_by_key(|(_, s)| s.max_us);
    let limit_us = deadline.as_micros() as u64;
    match slowest {
        Some((op, s)) if s.max_us < limit_us => deadline_report(
            Outcome::Pass,
            format!(
                "every call returned within DeadlockTimeout {} ms (slowest: {} {:.2} ms)",
                deadline.as_millis(),
                op.upper(),
                s.max_us as f64 / 1000.0
            ),
        ),
        Some((op, s)) => deadline_report(
            Outcome::Fail,
            format!(
                "{} took {:.2} ms, over DeadlockTimeout {} ms",
                op.upper(),
                s.max_us as f64 / 1000.0,
                deadline.as_millis()
            ),
        ),
        None => deadline_report(Outcome::Skip, "no calls were made".into()),
    }
}

fn step(
    name: &'static str,
    op: Op,
    result: Outcome,
    duration_ms: f64,
    message: String,
) -> StepReport {
    StepReport {
        step: name,
        op: Some(op.upper()),
        result,
        duration_ms,
        message,
    }
}

/// The closing step, which calls nothing and checks the timings of all the others.
fn deadline_report(result: Outcome, message: String) -> StepReport {
    StepReport {
        step: "deadline",
        op: None,
        result,
        duration_ms: 0.0,
        message,
    }
}

fn skip_rest(report: &mut TypeReport, from: usize, why: &str) {
    for (name, op) in SEQUENCE.iter().skip(from) {
        report
            .steps
            .push(step(name, *op, Outcome::Skip, 0.0, why.to_string()));
    }
    report
        .steps
        .push(deadline_report(Outcome::Skip, why.to_string()));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn open_failure(e: &HostError, deadline: Duration) -> String {
    match e {
        HostError::Died(died) => death_message(died, deadline),
        other => other.to_string(),
    }
}

fn call_failure(e: &CallError, deadline: Duration) -> String {
    match e {
        CallError::HostDied(died) => death_message(died, deadline),
        other => other.to_string(),
    }
}

/// Says what happened to the host in the words a plugin author needs.
fn death_message(died: &HostDied, deadline: Duration) -> String {
    match &died.cause {
        DeathCause::Deadlock {
            op, by_watchdog, ..
        } => format!(
            "hung: {} did not return within DeadlockTimeout {} ms; host {} was ended by {}",
            op.upper(),
            deadline.as_millis(),
            died.pid,
            if *by_watchdog {
                "the watchdog"
            } else {
                "its deadlock monitor"
            }
        ),
        DeathCause::Crash { op, signal, .. } => format!(
            "crashed: {} ({}) in {}; host {} died",
            signal_name(*signal),
            signal,
            op.map(Op::upper).unwrap_or("a plugin thread"),
            died.pid
        ),
        DeathCause::PluginCrash { .. } => {
            format!("crashed on a thread of the plugin's own: {died}")
        }
        DeathCause::Fenced { .. } => died.to_string(),
        DeathCause::Exit { status } => {
            format!("plugin ended the host process: exit status {status}")
        }
        DeathCause::Killed { signal } => {
            format!("host {} was killed by {}", died.pid, signal_name(*signal))
        }
    }
}

fn print_type(report: &TypeReport) {
    println!(
        "type {} (host pid {}, DeadlockTimeout {} ms)",
        report.type_name, report.host_pid, report.deadlock_timeout_ms
    );
    for s in &report.steps {
        print_step(s);
    }
}

fn print_step(s: &StepReport) {
    let tag = match s.result {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::Skip => "SKIP",
    };
    let dur = if s.result == Outcome::Skip || s.step == "deadline" {
        String::new()
    } else {
        format!("{:9.2} ms", s.duration_ms)
    };
    println!("  {tag}  {:<13}{dur:>12}  {}", s.step, s.message);
}

fn print_summary(report: &Report) {
    let count = |o: Outcome| {
        std::iter::once(&report.load)
            .chain(report.types.iter().flat_map(|t| &t.steps))
            .filter(|s| s.result == o)
            .count()
    };
    let plugin = match &report.plugin {
        Some(info) => format!("plugin {}", info.name),
        None => "plugin file".to_string(),
    };
    println!(
        "{plugin} ({}): {} ({} passed, {} failed, {} skipped)",
        report.path,
        if report.passed { "PASS" } else { "FAIL" },
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skip)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_become_a_json_object_and_bad_pairs_are_named() {
        assert_eq!(
            params_json(&["a=1".into(), "b=x=y".into()]).unwrap(),
            r#"{"a":"1","b":"x=y"}"#
        );
        assert_eq!(params_json(&[]).unwrap(), "{}");
        assert_eq!(
            params_json(&["oops".into()]).unwrap_err().to_string(),
            "--param 'oops': expected KEY=VALUE"
        );
        assert!(params_json(&["=v".into()])
            .unwrap_err()
            .to_string()
            .contains("key is empty"));
    }
}
