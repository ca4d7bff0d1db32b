//! One fence attempt: the cluster's FenceAgent run against a lost member the way Debian's
//! fence-agents are run by a cluster manager when given no arguments: `key=value` lines on stdin
//! (`action=off`, `plug=NODE`, `port=NODE` (the old name), `nodename=NODE`, then the
//! FenceAgentOptions), stdin closed, exit status 0 meaning fenced. The agent runs in a process
//! group of its own, is waited for with a deadline (FenceTimeout; past it the whole group is
//! killed) and its output is kept, bounded, for the log. Blocking: the core runs it off its thread.
//! Not when to fence or retry (fence/ledger.rs), nor the properties (fence/config.rs).

pub mod config;
pub mod ledger;

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most bytes of each output stream kept (the end of it).
const KEEP_BYTES: usize = 8 * 1024;
/// Longest wait for the output pipes to close once the agent has exited (a child it left behind
/// may hold them).
const PIPES_GRACE: Duration = Duration::from_millis(500);
/// Longest wait for a killed agent to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(5);
/// Longest pause between two looks at whether the agent exited.
const POLL_MAX: Duration = Duration::from_millis(10);

/// One fence attempt's inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceRequest {
    /// The agent's absolute path and its arguments.
    pub command: Vec<String>,
    /// Extra `key=value` lines after keelson's own.
    pub options: Vec<(String, String)>,
    /// The member to fence (its node name).
    pub node: String,
    pub timeout: Duration,
}

/// How one attempt went: Ok with the agent's last output line, or why it failed (exit status,
/// signal, timeout or start failure, with the last output line).
pub type FenceResult = Result<String, String>;

impl FenceRequest {
    /// What the agent reads on stdin.
    pub fn stdin_text(&self) -> String {
        let node = &self.node;
        let mut text = format!("action=off\nplug={node}\nport={node}\nnodename={node}\n");
        for (k, v) in &self.options {
            text.push_str(&format!("{k}={v}\n"));
        }
        text
    }

    /// Runs the attempt to its end (at most the timeout plus the reaping grace).
    pub fn run(&self) -> FenceResult {
        let Some((program, args)) = self.command.split_first() else {
            return Err("no FenceAgent is set".into());
        };
        let mut child = Command::new(program)
            .args(args)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start '{program}': {e}"))?;
        let feeder = feed(&mut child, self.stdin_text());
        let outputs = [capture(child.stdout.take()), capture(child.stderr.take())];
        let status = wait_for(&mut child, self.timeout);
        // A feeder still blocked means the agent never read its stdin; the pipe is closed now.
        drop(feeder);
        let last = last_line(
            &outputs,
            matches!(&status, Waited::Exited(s) if s.success()),
        );
        match status {
            Waited::Exited(status) if status.success() => Ok(last.unwrap_or_default()),
            Waited::Exited(status) => Err(format!("{}{}", describe(status), shown(last))),
            Waited::TimedOut { reaped } => Err(format!(
                "no answer within {} ms: its process group was killed{}{}",
                self.timeout.as_millis(),
                if reaped { "" } else { " (not reaped yet)" },
                shown(last)
            )),
            Waited::Lost(e) => Err(format!("cannot wait for it: {e}{}", shown(last))),
        }
    }
}

/// Writes `text` on the child's stdin and closes it, on a thread of its own (an agent that does not
/// read must not block the attempt).
fn feed(child: &mut Child, text: String) -> Option<std::thread::JoinHandle<()>> {
    let mut stdin = child.stdin.take()?;
    Some(std::thread::spawn(move || {
        // An agent that exits without reading its stdin is judged by its exit status.
        let _ = stdin.write_all(text.as_bytes());
    }))
}

/// The end of one output stream, filled by a reader thread until the pipe closes.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    closed: bool,
}

type Shared = Arc<Mutex<Tail>>;

fn capture(pipe: Option<impl Read + Send + 'static>) -> Shared {
    let tail: Shared = Arc::default();
    let Some(mut pipe) = pipe else {
        return tail;
    };
    let filling = tail.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            let n = pipe.read(&mut chunk).unwrap_or(0);
            let mut t = filling.lock().unwrap_or_else(|p| p.into_inner());
            if n == 0 {
                t.closed = true;
                return;
            }
            t.bytes.extend_from_slice(&chunk[..n]);
            let excess = t.bytes.len().saturating_sub(KEEP_BYTES);
            t.bytes.drain(..excess);
        }
    });
    tail
}

/// How the wait ended.
enum Waited {
    Exited(ExitStatus),
    TimedOut { reaped: bool },
    Lost(std::io::Error),
}

/// Waits for the agent until `timeout`; past it kills its whole process group (the agent is not
/// reaped yet then, so its pid, the group's id, cannot have been reused) and reaps it.
fn wait_for(child: &mut Child, timeout: Duration) -> Waited {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Waited::Exited(status),
            Ok(None) => {}
            Err(e) => return Waited::Lost(e),
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(POLL_MAX);
    }
    if let Err(e) = keelson_sys::process::kill_group(child.id(), keelson_sys::Signal::SIGKILL) {
        tracing::error!(
            component = "FENCE",
            "cannot kill the fence agent's process group {}: {e}",
            child.id()
        );
    }
    let reaped_by = Instant::now() + REAP_GRACE;
    while Instant::now() < reaped_by {
        if let Ok(Some(_)) = child.try_wait() {
            return Waited::TimedOut { reaped: true };
        }
        std::thread::sleep(POLL_MAX);
    }
    Waited::TimedOut { reaped: false }
}

/// The last non-empty line of stdout (after a success) or stderr (after a failure), else of the
/// other, once both pipes closed (or the grace ran out).
fn last_line(outputs: &[Shared; 2], success: bool) -> Option<String> {
    let until = Instant::now() + PIPES_GRACE;
    while Instant::now() < until && !outputs.iter().all(|t| lock(t).closed) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let [stdout, stderr] = outputs;
    let order = if success {
        [stdout, stderr]
    } else {
        [stderr, stdout]
    };
    order.into_iter().find_map(|t| {
        let text = String::from_utf8_lossy(&lock(t).bytes).into_owned();
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| keelson_types::escape_for_log(l).into_owned())
    })
}

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Tail> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("ended with {status}"),
    }
}

fn shown(last: Option<String>) -> String {
    match last {
        Some(line) => format!("; its last line: '{line}'"),
        None => "; it printed nothing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn agent(dir: &Path, body: &str) -> String {
        let path = dir.join("fence_test");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn request(command: Vec<String>, timeout_ms: u64) -> FenceRequest {
        FenceRequest {
            command,
            options: vec![("ipaddr".into(), "10.0.0.9".into())],
            node: "n2".into(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[test]
    fn the_agent_reads_fence_agents_stdin_and_success_is_exit_zero() {
        let dir = tempfile::tempdir().unwrap();
        let seen = dir.path().join("stdin");
        let path = agent(
            dir.path(),
            &format!(
                "cat > {}; echo 'Success: Powered OFF'; echo 'a warning' >&2",
                seen.display()
            ),
        );
        let out = request(vec![path], 5_000).run();
        assert_eq!(out, Ok("Success: Powered OFF".into()));
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap(),
            "action=off\nplug=n2\nport=n2\nnodename=n2\nipaddr=10.0.0.9\n"
        );
    }

    #[test]
    fn a_failure_names_the_exit_status_or_signal_and_the_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = agent(
            dir.path(),
            "echo out; echo 'Failed: Unable to obtain correct plug status' >&2; exit 1",
        );
        let e = request(vec![path], 5_000).run().unwrap_err();
        assert_eq!(
            e,
            "exit status 1; its last line: 'Failed: Unable to obtain correct plug status'"
        );
        let path = agent(dir.path(), "kill -TERM $$");
        let e = request(vec![path], 5_000).run().unwrap_err();
        assert_eq!(e, "killed by signal 15; it printed nothing");
        let e = request(vec!["/nonexistent/fence_x".into()], 5_000)
            .run()
            .unwrap_err();
        assert!(
            e.starts_with("cannot start '/nonexistent/fence_x': "),
            "{e}"
        );
    }

    #[test]
    fn an_agent_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // The agent and a child of it both hang, holding the output pipes.
        let path = agent(
            dir.path(),
            &format!(
                "echo trying; sleep 30 & echo $! > {p}; echo $$ >> {p}; wait",
                p = pids.display()
            ),
        );
        let start = Instant::now();
        let e = request(vec![path, "-v".into()], 300).run().unwrap_err();
        let took = start.elapsed();
        assert_eq!(
            e,
            "no answer within 300 ms: its process group was killed; its last line: 'trying'"
        );
        assert!(
            took < Duration::from_millis(300) + PIPES_GRACE + Duration::from_millis(500),
            "{took:?}"
        );
        for pid in std::fs::read_to_string(&pids).unwrap().split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie of a reaper we are not.
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            assert!(
                matches!(state, None | Some("Z")),
                "pid {pid} still runs: {stat}"
            );
        }
    }

    #[test]
    fn only_the_end_of_a_long_output_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = agent(
            dir.path(),
            "i=0; while [ $i -lt 5000 ]; do echo line $i; i=$((i+1)); done; exit 3",
        );
        let e = request(vec![path], 10_000).run().unwrap_err();
        assert_eq!(e, "exit status 3; its last line: 'line 4999'");
    }
}
