//! `keelson demo`: the main job for a newcomer. Starts a private single-node keelson-rcm in a
//! temporary data directory, brings a file-server group online (three healthy dummy resources and one
//! chaos "File Share"), makes the File Share hang in LOOKSALIVE with a short DeadlockTimeout, and
//! prints the timeline of what the node service does about it, in milliseconds. Then stops its rcm and
//! removes the directory (unless --keep). Not a test: it reports what happened and exits 0 only if the
//! whole recovery was seen.

use crate::client::Client;
use crate::node;
use anyhow::{bail, Context, Result};
use keelson_proto::view::{self, PropertyValue, Status};
use keelson_proto::{ControlReply, ControlRequest as R};
use keelson_types::{parse_iso_time, parse_log_line_time};
use serde_json::Value;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Arguments of `keelson demo`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    /// Keep the temporary data directory (cluster.log, events.jsonl, …) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// DeadlockTimeout of the hanging resource, in milliseconds.
    #[arg(long, default_value_t = 300, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub deadlock_timeout: u64,
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
}

/// `keelson demo` subcommands; without one, the single-node demo runs.
#[derive(clap::Subcommand, Debug)]
pub enum DemoCommand {
    /// As root: three nodes in network namespaces on two networks, a network cut that moves
    /// nothing, kill -9 of the group's owner and the failover timeline in milliseconds.
    Cluster(crate::demo_cluster::DemoClusterArgs),
}

const GROUP: &str = "FileServer";
const INNOCENTS: [&str; 3] = ["IP Address", "Network Name", "Disk"];
const OFFENDER: &str = "File Share";
const WAIT: Duration = Duration::from_secs(20);

pub async fn run(mut args: DemoArgs) -> Result<ExitCode> {
    if let Some(DemoCommand::Cluster(cluster)) = args.command.take() {
        return crate::demo_cluster::run(cluster).await;
    }
    let dir = std::env::temp_dir().join(format!("keelson-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut rcm = start_rcm(&dir).await?;
    let outcome = scenario(&dir, &args).await;
    let _ = ask(&dir, R::NodeStop).await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), rcm.wait())
        .await
        .is_ok();
    if !stopped {
        let _ = rcm.start_kill();
        let _ = rcm.wait().await;
    }
    if args.keep {
        println!("\ndata directory kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome.map(|()| ExitCode::SUCCESS)
}

async fn start_rcm(dir: &Path) -> Result<tokio::process::Child> {
    let plugins = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let out = std::fs::File::create(dir.join("rcm.out"))?;
    let rcm = node::rcm_binary()?;
    let mut cmd = node::rcm_command(&rcm, dir, &[plugins]);
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // The demo's rcm dies with the demo.
    keelson_sys::child::prepare(&mut cmd, vec![]);
    let child = tokio::process::Command::from(cmd)
        .spawn()
        .with_context(|| format!("cannot start {}", rcm.display()))?;
    let start = Instant::now();
    while !Client::new(dir).answers().await {
        if start.elapsed() > WAIT {
            let out = std::fs::read_to_string(dir.join("rcm.out")).unwrap_or_default();
            bail!(
                "keelson-rcm did not answer within {} s:\n{out}",
                WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(child)
}

/// One control request; the reply (Done/Json), or the rcm's error.
async fn ask(dir: &Path, request: R) -> Result<ControlReply> {
    Client::new(dir).call(request).await
}

async fn resource(dir: &Path, name: &str) -> Result<view::Resource> {
    Client::new(dir)
        .view(R::ResourceGet { name: s(name) })
        .await
}

/// Polls `cond` every 5 ms for at most WAIT.
async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while !cond().await? {
        if start.elapsed() > WAIT {
            bail!("gave up waiting for {what} after {} s", WAIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn s(v: &str) -> String {
    v.to_string()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn scenario(dir: &Path, args: &DemoArgs) -> Result<()> {
    let arm = dir.join("arm-file-share-hang");
    let arm_text = arm.display().to_string();
    println!(
        "keelson demo: a private node service in {}\n",
        dir.display()
    );
    ask(
        dir,
        R::GroupCreate {
            name: s(GROUP),
            properties: vec![],
        },
    )
    .await?;
    for name in INNOCENTS {
        let req = R::ResourceCreate {
            name: s(name),
            type_name: s("dummy"),
            group: s(GROUP),
            params: vec![],
            properties: vec![],
        };
        ask(dir, req).await?;
    }
    let params = vec![
        (s("entry"), s("looks_alive")),
        (s("fault"), s("hang")),
        (s("armed_by"), arm_text),
    ];
    let properties = vec![
        (s("LooksAlivePollInterval"), s("100")),
        (s("DeadlockTimeout"), args.deadlock_timeout.to_string()),
    ];
    ask(
        dir,
        R::ResourceCreate {
            name: s(OFFENDER),
            type_name: s("chaos"),
            group: s(GROUP),
            params,
            properties,
        },
    )
    .await?;
    ask(
        dir,
        R::ResourceDepend {
            name: s("Network Name"),
            on: s("IP Address"),
        },
    )
    .await?;
    ask(
        dir,
        R::ResourceDepend {
            name: s(OFFENDER),
            on: s("Disk"),
        },
    )
    .await?;
    ask(
        dir,
        R::ResourceDepend {
            name: s(OFFENDER),
            on: s("Network Name"),
        },
    )
    .await?;

    let t0 = unix_ms();
    ask(dir, R::GroupOnline { name: s(GROUP) }).await?;
    wait_for("the group to come online", async || {
        Ok(group_state(dir).await? == "Online")
    })
    .await?;
    let first_host = resource(dir, "Disk").await?.host_pid;

    let armed = unix_ms();
    std::fs::write(&arm, b"")?;
    wait_for("the deadlock", async || {
        Ok(log_text(dir).contains("handling deadlock"))
    })
    .await?;
    std::fs::remove_file(&arm)?; // the File Share is healthy again in its own host
    wait_for("the recovery", async || recovered(dir, first_host).await).await?;

    print_timeline(dir, t0, armed, args.deadlock_timeout)?;
    print_hosts(dir).await
}

async fn group_state(dir: &Path) -> Result<String> {
    let group: view::Group = Client::new(dir)
        .view(R::GroupGet { name: s(GROUP) })
        .await?;
    Ok(group.state)
}

fn log_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("cluster.log")).unwrap_or_default()
}

/// Everyone Online again, the offender separately monitored in a host of its own.
async fn recovered(dir: &Path, first_host: Option<u32>) -> Result<bool> {
    let share = resource(dir, OFFENDER).await?;
    let separate = share.properties.get("SeparateMonitor") == Some(&PropertyValue::Flag(true));
    if share.state != "Online" || !separate {
        return Ok(false);
    }
    for name in INNOCENTS {
        let r = resource(dir, name).await?;
        if r.state != "Online" || r.host_pid == first_host || r.host_pid == share.host_pid {
            return Ok(false);
        }
    }
    Ok(group_state(dir).await? == "Online")
}

/// The cluster-log lines and events worth showing, with their time since the group online request.
fn print_timeline(dir: &Path, t0: u64, armed: u64, deadline: u64) -> Result<()> {
    let mut rows: Vec<(u64, String)> = vec![
        (
            t0,
            format!("group '{GROUP}' online requested (3 dummy resources, 1 chaos '{OFFENDER}')"),
        ),
        (
            armed,
            format!("'{OFFENDER}' armed to hang in LOOKSALIVE (DeadlockTimeout {deadline} ms)"),
        ),
    ];
    const SHOWN: [&str; 7] = [
        "state Pending -> Online",
        "RhsCall::DeadlockMonitor",
        "handling deadlock",
        "HandleMonitorReply",
        "marking it to run in a separate monitor",
        "state OnlinePending -> Online",
        "will be restarted",
    ];
    let log = log_text(dir);
    for line in log.lines() {
        let Some(at) = parse_log_line_time(line) else {
            continue;
        };
        if at >= t0 && SHOWN.iter().any(|k| line.contains(k)) {
            let text = line
                .split_once("::")
                .map(|(_, rest)| &rest[24..])
                .unwrap_or(line);
            rows.push((at, text.to_string()));
        }
    }
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    for e in events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let at = e["time"].as_str().and_then(parse_iso_time).unwrap_or(t0);
        rows.push((
            at,
            format!(
                "event {} ({}): {}",
                e["id"],
                e["level"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            ),
        ));
    }
    rows.sort_by_key(|(at, _)| *at);
    println!("timeline (ms since the online request):");
    for (at, text) in &rows {
        println!("  {:>6} ms  {text}", at.saturating_sub(t0));
    }
    let find = |needle: &str| {
        rows.iter()
            .find(|(_, t)| t.contains(needle))
            .map(|(at, _)| *at)
    };
    if let (Some(found), Some(died)) = (find("RhsCall::DeadlockMonitor"), find("handling deadlock"))
    {
        let back = INNOCENTS
            .iter()
            .filter_map(|n| {
                rows.iter()
                    .filter(|(at, t)| {
                        *at >= died
                            && t.contains(&format!("Resource '{n}' state OnlinePending -> Online"))
                    })
                    .map(|(at, _)| *at)
                    .next()
            })
            .max()
            .unwrap_or(died);
        println!(
            "\nthe hang was found {} ms after it was armed; the innocent resources were Online again {} ms after their host died",
            found.saturating_sub(armed),
            back.saturating_sub(died)
        );
    }
    Ok(())
}

async fn print_hosts(dir: &Path) -> Result<()> {
    let status: Status = Client::new(dir).view(R::Status).await?;
    println!("\nhosts now:");
    for h in &status.hosts {
        let kind = if h.separate {
            "separate monitor"
        } else {
            "default host"
        };
        let pid = h.pid.map_or_else(|| "null".to_string(), |p| p.to_string());
        println!("  pid {pid:<8} {kind:<17} {}", h.resources.join(", "));
    }
    let share = resource(dir, OFFENDER).await?;
    let property = |name: &str| {
        share
            .properties
            .get(name)
            .map_or_else(|| "null".to_string(), shown)
    };
    println!(
        "\n'{OFFENDER}': SeparateMonitor={} MonitorProcessId={}; group '{GROUP}' is {}",
        property("SeparateMonitor"),
        property("MonitorProcessId"),
        group_state(dir).await?
    );
    Ok(())
}

/// A property as the demo always printed it: as JSON (`true`, `4242`, `null`, `"text"`).
fn shown(value: &PropertyValue) -> String {
    match value {
        PropertyValue::Unset => "null".to_string(),
        PropertyValue::Text(t) => Value::from(t.as_str()).to_string(),
        other => other.to_string(),
    }
}
