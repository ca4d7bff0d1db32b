//! IsAlive's probes beyond "the process lives": the HealthCommand (run like the app, as its user,
//! in its directory, with its environment, output to <state_dir>/health.log; exit status 0 within
//! HealthTimeoutMs passes) and the TCP probe (a connect to HealthTcpHost:HealthTcpPort within
//! HealthTimeoutMs). Not the process check (app.rs).

use crate::app;
use crate::config::{CommandLine, Config, TcpProbe};
use keelson_plugin::Error;
use keelson_sys::detached::pidfd::{Exit, Woke};
use keelson_sys::detached::{self, Launch};
use keelson_sys::Signal;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

/// Runs every probe the configuration sets; the first failure is the verdict.
pub fn probe(config: &Config, state_dir: &Path, resource: &str) -> Result<(), Error> {
    if let Some(tcp) = &config.health_tcp {
        connect(tcp, config.health_timeout)?;
    }
    if let Some(command) = &config.health_command {
        run_command(config, command, state_dir, resource)?;
    }
    Ok(())
}

pub fn has_probe(config: &Config) -> bool {
    config.health_tcp.is_some() || config.health_command.is_some()
}

fn connect(tcp: &TcpProbe, timeout: Duration) -> Result<(), Error> {
    let failed = |what: String| {
        Error::new(format!(
            "HealthTcpPort {}: {}:{} {what}",
            tcp.port, tcp.host, tcp.port
        ))
    };
    let address: SocketAddr = (tcp.host.as_str(), tcp.port)
        .to_socket_addrs()
        .map_err(|e| failed(format!("is no address: {e}")))?
        .next()
        .ok_or_else(|| failed("is no address".into()))?;
    TcpStream::connect_timeout(&address, timeout)
        .map(drop)
        .map_err(|e| {
            failed(format!(
                "did not accept a connection within {} ms: {e}",
                timeout.as_millis()
            ))
        })
}

fn run_command(
    config: &Config,
    command: &CommandLine,
    state_dir: &Path,
    resource: &str,
) -> Result<(), Error> {
    let identity = config.identity()?;
    let env = config.environment_for(&identity, resource);
    let program = config.program(command, &env, "HealthCommand")?;
    let log = state_dir.join("health.log");
    let output = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o640)
        .open(&log)
        .map_err(|e| Error::new(format!("{}: {e}", log.display())))?;
    let launch = Launch {
        program,
        args: command.words.clone(),
        env,
        working_dir: config.working_dir.clone(),
        identity: config.user.is_some().then_some(identity),
        output,
        cgroup_procs: None,
    };
    let named = |what: String| Error::new(format!("HealthCommand '{}': {what}", command.line));
    let launched =
        detached::launch(&launch, config.health_timeout).map_err(|e| named(e.to_string()))?;
    let pid = launched.pidfd.pid();
    match launched.pidfd.wait_exit(config.health_timeout) {
        Ok(Woke::Exited) => {}
        Ok(_) => {
            let killed = launched.pidfd.signal_group(Signal::SIGKILL);
            return Err(named(format!(
                "did not finish within HealthTimeoutMs ({} ms){}",
                config.health_timeout.as_millis(),
                killed
                    .err()
                    .map(|e| format!("; SIGKILL to {pid} failed: {e}"))
                    .unwrap_or_default()
            )));
        }
        Err(e) => return Err(named(format!("process {pid}: {e}"))),
    }
    match launched.pidfd.exit_status() {
        Ok(Some(Exit::Code(0))) => Ok(()),
        Ok(Some(exit)) => {
            let said = std::fs::read_to_string(&log)
                .ok()
                .and_then(|t| {
                    t.lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .map(str::to_string)
                })
                .map(|l| format!(": {}", l.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            Err(named(format!("exited with {exit}{said}")))
        }
        Ok(None) => Err(named("still running after its exit".into())),
        Err(e) => Err(named(format!("process {pid}: {e}"))),
    }
}

/// Used by online's wait for the first passing probe: the log's last line as context.
pub fn context(state_dir: &Path) -> String {
    app::last_log_line(state_dir)
        .map(|l| {
            format!(
                " (last line of {}: {l})",
                app::log_path(state_dir).display()
            )
        })
        .unwrap_or_default()
}
