//! Starting one host process: fork and exec `keelson-rhs` with its control socket on fd 3, its
//! alarm pipe on fd 4 and, for a leased host, its lease socket on fd 5, the Hello exchange within a
//! deadline, and the supervisor and stderr tasks behind it. Not the handle (host.rs) nor what the supervisor does (supervisor.rs).

use crate::config::HostConfig;
use crate::error::HostError;
use crate::event::HostEvents;
use crate::link::Link;
use crate::shared::Shared;
use crate::supervisor;
use keelson_proto::{
    read_frame_async, write_frame_async, Hello, HostReply, HostRequest, PROTOCOL_VERSION,
};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

/// Starts a host and waits for its Hello (at most `config.hello_timeout`).
pub(crate) async fn spawn(config: &HostConfig) -> Result<(Arc<Link>, HostEvents), HostError> {
    let (mut child, control, alarm, lease) = start_process(config)?;
    let pid = child.id().unwrap_or(0);
    let (mut reader, mut writer) = control.into_split();
    if let Err(e) = hello(config, &mut reader, &mut writer).await {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(e);
    }
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        pid,
        watchdog_grace: config.watchdog_grace,
        death: watch::channel(None).0,
        pending: Mutex::new(HashMap::new()),
        names: Mutex::new(HashMap::new()),
        watchdog: Mutex::new(None),
        plugins: Mutex::new(crate::blame::PluginSlots::default()),
        events: events_tx,
        lease: lease.map(Arc::new),
    });
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(supervisor::forward_stderr(shared.clone(), stderr));
    }
    tokio::spawn(supervisor::supervise(shared.clone(), reader, child, alarm));
    Ok((Arc::new(Link::new(shared, writer)), events_rx))
}

/// The fd a leased host finds its lease socket on.
const LEASE_FD: i32 = 5;

/// Forks and execs the host with its control socket on fd 3, its alarm pipe on fd 4 and, with a
/// lease configured, its lease socket on fd 5 (rcm's end is returned, non-blocking).
fn start_process(
    config: &HostConfig,
) -> Result<
    (
        tokio::process::Child,
        tokio::net::UnixStream,
        std::io::PipeReader,
        Option<std::os::unix::net::UnixDatagram>,
    ),
    HostError,
> {
    let spawn_err = |source| HostError::Spawn {
        path: config.rhs_path.display().to_string(),
        source,
    };
    let (parent, child_end) = std::os::unix::net::UnixStream::pair().map_err(spawn_err)?;
    let (alarm_r, alarm_w) = std::io::pipe().map_err(spawn_err)?;
    let mut cmd = std::process::Command::new(&config.rhs_path);
    if config.log_stderr {
        cmd.arg("--log-stderr");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut fds = vec![(child_end.into(), 3), (alarm_w.into(), 4)];
    let lease = match config.lease {
        Some(_) => {
            let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().map_err(spawn_err)?;
            ours.set_nonblocking(true).map_err(spawn_err)?;
            cmd.arg("--lease-fd").arg(LEASE_FD.to_string());
            fds.push((theirs.into(), LEASE_FD));
            Some(ours)
        }
        None => None,
    };
    keelson_sys::child::prepare(&mut cmd, fds);
    let mut cmd = tokio::process::Command::from(cmd);
    let child = cmd.spawn().map_err(spawn_err)?;
    drop(cmd); // closes this process's copies of the child's ends
    parent.set_nonblocking(true).map_err(spawn_err)?;
    keelson_sys::process::set_nonblocking(&alarm_r).map_err(spawn_err)?;
    let control = tokio::net::UnixStream::from_std(parent).map_err(spawn_err)?;
    Ok((child, control, alarm_r, lease))
}

/// The Hello exchange: theirs within the deadline, then ours.
async fn hello(
    config: &HostConfig,
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
) -> Result<(), HostError> {
    let wait = config.hello_timeout;
    let first = tokio::time::timeout(wait, read_frame_async::<HostReply>(reader))
        .await
        .map_err(|_| HostError::HelloTimeout(wait.as_millis() as u64))?;
    match first {
        Ok(Some(HostReply::Hello(h))) if h.protocol_version == PROTOCOL_VERSION => {}
        Ok(Some(HostReply::Hello(h))) => {
            return Err(HostError::Version {
                found: h.protocol_version,
                expected: PROTOCOL_VERSION,
            })
        }
        Ok(Some(other)) => {
            return Err(HostError::Protocol(format!(
                "expected Hello, got {other:?}"
            )))
        }
        Ok(None) => {
            return Err(HostError::Protocol(
                "host exited before saying Hello".into(),
            ))
        }
        Err(e) => return Err(HostError::Protocol(format!("bad Hello: {e}"))),
    }
    let ours = HostRequest::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
    });
    write_frame_async(writer, &ours)
        .await
        .map_err(|e| HostError::Protocol(e.to_string()))
}
