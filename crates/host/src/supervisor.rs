//! The supervisor task of one host: forwards its control frames until the socket closes, then reaps
//! the process (SIGKILL past a grace period), reads the alarm pipe and reports the death; and the
//! task that turns its stderr into events. Not the classification itself (classify.rs).

use crate::classify::Exit;
use crate::death::HostDied;
use crate::event::HostEvent;
use crate::shared::Shared;
use keelson_proto::{read_frame_async, FrameBuf, HostAlarm, HostReply};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::net::unix::OwnedReadHalf;

/// How long a host whose control socket closed may take to exit before it is SIGKILLed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Forwards control frames until the socket closes, then reaps the process and reports its death.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    mut reader: OwnedReadHalf,
    mut child: tokio::process::Child,
    alarm: std::io::PipeReader,
) {
    while let Ok(Some(reply)) = read_frame_async::<HostReply>(&mut reader).await {
        shared.dispatch(reply);
    }
    let status = match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    };
    let died = HostDied {
        pid: shared.pid,
        cause: shared.death_cause(Exit::from_status(status), read_alarms(alarm)),
    };
    shared.report_death(died);
}

/// Every complete alarm frame in the (non-blocking) alarm pipe.
fn read_alarms(mut alarm: std::io::PipeReader) -> Vec<HostAlarm> {
    let mut frames = FrameBuf::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = alarm.read(&mut buf) {
        if n == 0 {
            break;
        }
        frames.push(&buf[..n]);
    }
    let mut alarms = Vec::new();
    while let Ok(Some(alarm)) = frames.next_frame::<HostAlarm>() {
        alarms.push(alarm);
    }
    alarms
}

/// Turns the host's stderr into events, line by line.
pub(crate) async fn forward_stderr(shared: Arc<Shared>, stderr: tokio::process::ChildStderr) {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        shared.emit(HostEvent::Stderr {
            pid: shared.pid,
            line,
        });
    }
}
