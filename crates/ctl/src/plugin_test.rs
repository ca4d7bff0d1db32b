//! `keelson plugin test`: loads a plugin in a throwaway keelson-rhs (the load step, held to
//! --deadlock-timeout like every call, so a library initialiser that never returns fails it), then
//! runs the conformance sequence of each resource type in a fresh host (plugin_test/
//! conformance.rs: validate first, the lifecycle with its idempotency and health rules, reopen, two
//! resources at once, deadlines and the looks_alive budget), reporting each step with its entry
//! point, result, duration and, on failure, the rule it broke. A hang or crash is reported as the
//! step that caused it; this process never loads plugin code, so it survives both.

mod conformance;
mod failure;
mod limits;
mod params;
mod report;

use anyhow::{bail, Context, Result};
use conformance::{Conformance, Plan};
use failure::{load_failure, ms};
use keelson_host::{Host, HostConfig};
use keelson_types::{PluginInfo, DEFAULT_PENDING_TIMEOUT_MS};
use limits::Limits;
use params::{Pair, ParamSet};
use report::{Report, StepReport};
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
    /// A case validate must refuse, repeatable: the --params with K set to V.
    #[arg(long = "expect-invalid", value_name = "K=V")]
    pub expect_invalid: Vec<String>,
    /// A parameter of the second of two resources opened at once, over the --params (for a type
    /// whose resources cannot share a value, e.g. a port), repeatable.
    #[arg(long = "second-param", value_name = "K=V")]
    pub second_params: Vec<String>,
    /// DeadlockTimeout for every call but online and offline, in milliseconds: a call that runs
    /// longer kills the host and fails its step.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub deadlock_timeout: u64,
    /// PendingTimeout for online and offline, in milliseconds (default: keelson's).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_PENDING_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub pending_timeout: u64,
    /// The most a looks_alive may take inside the plugin, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub looks_alive_budget: u64,
    /// A type that cannot tell it is offline: health checks that pass after offline are warnings.
    #[arg(long)]
    pub allow_alive_after_offline: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The parsed parameter flags.
struct Inputs {
    params: ParamSet,
    expect_invalid: Vec<Pair>,
    second: Vec<Pair>,
}

impl Inputs {
    fn parse(args: &TestArgs) -> Result<Inputs> {
        Ok(Inputs {
            params: ParamSet::from_pairs(&Pair::parse_all("param", &args.params)?),
            expect_invalid: Pair::parse_all("expect-invalid", &args.expect_invalid)?,
            second: Pair::parse_all("second-param", &args.second_params)?,
        })
    }
}

pub async fn run(args: TestArgs) -> Result<ExitCode> {
    let inputs = Inputs::parse(&args)?;
    let limits = Limits {
        deadlock: Duration::from_millis(args.deadlock_timeout),
        pending: Duration::from_millis(args.pending_timeout),
        looks_alive_budget: Duration::from_millis(args.looks_alive_budget),
    };
    let path = std::fs::canonicalize(&args.path)
        .with_context(|| format!("plugin {}", args.path))?
        .display()
        .to_string();
    let config = HostConfig::from_env();
    let (load, info) = load_step(&config, &path, &limits).await?;
    if !args.json {
        println!("load {path} (DeadlockTimeout {} ms)", args.deadlock_timeout);
        load.print();
    }
    let Some(info) = info else {
        return finish(&Report::new(path, None, load, Vec::new()), args.json);
    };
    let mut reports = Vec::new();
    for type_name in &types_to_test(&info, &args.type_name, &path)? {
        let plan = Plan {
            path: &path,
            type_name,
            params: &inputs.params,
            expect_invalid: &inputs.expect_invalid,
            second: &inputs.second,
            limits,
            allow_alive_after_offline: args.allow_alive_after_offline,
        };
        let report = Conformance::run(&config, plan).await?;
        if !args.json {
            report.print();
        }
        reports.push(report);
    }
    finish(&Report::new(path, Some(info), load, reports), args.json)
}

/// `--type T` (which must exist) or every type of the plugin.
fn types_to_test(info: &PluginInfo, wanted: &Option<String>, path: &str) -> Result<Vec<String>> {
    Ok(match wanted {
        Some(t) if info.types.iter().any(|x| &x.name == t) => vec![t.clone()],
        Some(t) => bail!(
            "plugin {path} has no resource type '{t}' (it has: {})",
            type_names(info)
        ),
        None => info.types.iter().map(|t| t.name.clone()).collect(),
    })
}

/// Prints the report (or its summary line after the steps) and picks the exit status.
fn finish(report: &Report, json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        report.print_summary();
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn type_names(info: &PluginInfo) -> String {
    info.types
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads the plugin in a throwaway host, within DeadlockTimeout, to learn its types: the load
/// step, and what the plugin offers if it passed. Only failing to start keelson-rhs is an error.
async fn load_step(
    config: &HostConfig,
    path: &str,
    limits: &Limits,
) -> Result<(StepReport, Option<PluginInfo>)> {
    let (host, _events) = Host::spawn(config)
        .await
        .context("cannot start keelson-rhs")?;
    let start = Instant::now();
    let loaded = host.load_plugin_within(path, limits.deadlock).await;
    let mut load = StepReport::new("load", None);
    load.duration_ms = ms(start.elapsed());
    load.deadline = Some(format!(
        "DeadlockTimeout {} ms",
        limits.deadlock.as_millis()
    ));
    host.shutdown().await;
    Ok(match loaded {
        Ok(info) => {
            load.message = format!("plugin {}, types: {}", info.name, type_names(&info));
            (load, Some(info))
        }
        Err(e) => {
            let rule =
                "the library must load, exporting keelson_plugin_v1 with a descriptor the host \
                        accepts, within DeadlockTimeout"
                    .to_string();
            (load.failed(load_failure(&e, limits), rule), None)
        }
    })
}
