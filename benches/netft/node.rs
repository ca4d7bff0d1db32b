//! One keelson-netft-node process of the benchmark: started with its JSON configuration, its
//! stdout read line by line on a thread of its own into the cluster's report channel (each line
//! stamped on arrival), its stderr kept in a file for the error message if it dies unasked. A dead
//! node is this process SIGKILLed. Killed and reaped on drop. Not the bookkeeping of what the
//! nodes report (cluster.rs).

use crate::cleanup::{self, Item};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a killed process may take to be reaped.
const REAP_LIMIT: Duration = Duration::from_secs(5);
/// Bound on the lines one node may print (a bound, not a target).
const MAX_LINES: usize = 10_000_000;

/// What a node's stdout said, and when it arrived.
#[derive(Debug)]
pub struct Report {
    pub index: usize,
    pub generation: u32,
    pub at: Instant,
    /// A JSON line, or `None` at end of output (the process is gone).
    pub line: Option<Value>,
}

pub struct NodeProcess {
    pub index: usize,
    pub generation: u32,
    pub pid: u32,
    child: Option<Child>,
    stderr_path: PathBuf,
}

impl NodeProcess {
    /// Starts `binary --config CONFIG --die-with-parent FLAGS`. Must be called from the main thread: the
    /// node asks for SIGKILL when the thread that started it ends.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        flags: &[&str],
        index: usize,
        generation: u32,
        reports: mpsc::Sender<Report>,
    ) -> Result<NodeProcess, String> {
        let stderr_path = config.with_extension("stderr");
        let stderr = std::fs::File::create(&stderr_path)
            .map_err(|e| format!("{}: {e}", stderr_path.display()))?;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .arg("--die-with-parent")
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let pid = child.id();
        cleanup::register(Item::Process(pid));
        let stdout = child.stdout.take().expect("stdout was piped");
        std::thread::Builder::new()
            .name(format!("node{index}-g{generation}"))
            .spawn(move || read_reports(stdout, index, generation, reports))
            .map_err(|e| format!("cannot start a reader thread: {e}"))?;
        Ok(NodeProcess {
            index,
            generation,
            pid,
            child: Some(child),
            stderr_path,
        })
    }

    /// SIGKILL, at once (reap later).
    pub fn kill(&self) -> Result<(), String> {
        keelson_sys::process::kill(self.pid, keelson_sys::Signal::SIGKILL)
            .map_err(|e| format!("kill -9 {}: {e}", self.pid))
    }

    pub fn signal_status(&self) -> Result<(), String> {
        keelson_sys::process::kill(self.pid, keelson_sys::Signal::SIGUSR1)
            .map_err(|e| format!("kill -USR1 {}: {e}", self.pid))
    }

    /// Waits (bounded) for the process to end; it must have been killed or have exited.
    pub fn reap(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + REAP_LIMIT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => {
                    cleanup::forget(&Item::Process(self.pid));
                    return Ok(());
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    return Err(format!(
                        "node {} (pid {}) was not reaped within {REAP_LIMIT:?}",
                        self.index, self.pid
                    ))
                }
                Err(e) => return Err(format!("waiting for pid {}: {e}", self.pid)),
            }
        }
    }

    /// What the process wrote on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path)
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.stderr_path.display()))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(e) = self.kill().and_then(|()| self.reap()) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

fn read_reports(
    stdout: std::process::ChildStdout,
    index: usize,
    generation: u32,
    reports: mpsc::Sender<Report>,
) {
    let report = |line| Report {
        index,
        generation,
        at: Instant::now(),
        line,
    };
    for line in BufReader::new(stdout).lines().take(MAX_LINES) {
        let Ok(line) = line else { break };
        let value = match serde_json::from_str::<Value>(&line) {
            Ok(value) => value,
            Err(e) => Value::String(format!("unparsable line {line:?}: {e}")),
        };
        if reports.send(report(Some(value))).is_err() {
            return;
        }
    }
    // The cluster may be gone already; then nobody needs to know.
    let _cluster_gone = reports.send(report(None));
}
