//! One keelson node of the benchmark: a data directory of its own (kept across boots, like a
//! disk) and, while it runs, its keelson-rcm in the node's network namespace (`ip netns exec`,
//! which execs it: the child is rcm itself), started from the release binaries with the plugins
//! of the same target directory; requests over its control socket with a deadline each. A node
//! death is SIGKILL of its rcm: its keelson-rhs hosts die with it (their parent-death signal),
//! and the kill checks that none is left. Not the cluster (keelson.rs) or the timing (measure.rs).

use crate::cleanup::{self, Item};
use keelson_client::Client;
use keelson_proto::{view, ControlReply, ControlRequest as R};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long rcm may take to answer after its start, and a killed node's processes to go.
const PROCESS_LIMIT: Duration = Duration::from_secs(20);
/// How long one request may wait for its answer.
const REQUEST_LIMIT: Duration = Duration::from_secs(15);
/// The pause between two looks while a process starts or goes.
const PROC_POLL: Duration = Duration::from_millis(2);

/// What a node death did.
#[derive(Debug)]
pub struct Killed {
    pub at: Instant,
    pub wall: SystemTime,
    /// The processes that died with the node, e.g. "keelson-rcm (123)".
    pub processes: Vec<String>,
}

pub struct KeelsonNode {
    pub name: String,
    pub data: PathBuf,
    netns: String,
    target: PathBuf,
    /// rcm.out of every boot, appended.
    out: PathBuf,
    /// More keelson-rcm arguments (the host lease and fence budget).
    extra_args: Vec<String>,
    rcm: Option<Child>,
    rt: tokio::runtime::Runtime,
}

impl KeelsonNode {
    /// Node `index` (1..) in `netns`, its data under `dir`; not started.
    pub fn prepare(
        dir: &Path,
        index: usize,
        netns: String,
        target: &Path,
        extra_args: Vec<String>,
    ) -> Result<Self, String> {
        let data = dir.join(format!("n{index}"));
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("a tokio runtime for n{index}'s requests: {e}"))?;
        Ok(KeelsonNode {
            name: format!("n{index}"),
            data,
            netns,
            target: target.to_path_buf(),
            out: dir.join(format!("n{index}.out")),
            extra_args,
            rcm: None,
            rt,
        })
    }

    pub fn is_up(&self) -> bool {
        self.rcm.is_some()
    }

    /// Starts rcm on the node's data directory and waits (bounded) until it answers.
    pub fn boot(&mut self) -> Result<(), String> {
        if self.rcm.is_some() {
            return Err(format!("{} is already running", self.name));
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.out)
            .map_err(|e| format!("{}: {e}", self.out.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", self.out.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(self.target.join("keelson-rcm"))
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--plugin-dir")
            .arg(&self.target)
            .args(["--node-name", &self.name])
            .args(&self.extra_args)
            .env("KEELSON_RHS", self.target.join("keelson-rhs"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: cannot start keelson-rcm: {e}", self.name))?;
        cleanup::register(Item::Process(child.id()));
        self.rcm = Some(child);
        let deadline = Instant::now() + PROCESS_LIMIT;
        loop {
            match self.ask(R::Status) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "{}: rcm did not answer within {PROCESS_LIMIT:?} ({e}); its output: {}",
                        self.name,
                        self.out.display()
                    ))
                }
                Err(_) => self.exited_early()?,
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn exited_early(&mut self) -> Result<(), String> {
        let child = self.rcm.as_mut().expect("booting");
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                cleanup::forget(&Item::Process(child.id()));
                self.rcm = None;
                Err(format!(
                    "{}: keelson-rcm exited at start ({status}); see {}",
                    self.name,
                    self.out.display()
                ))
            }
            Err(e) => Err(format!("{}: waiting for keelson-rcm: {e}", self.name)),
        }
    }

    /// One request, answered within REQUEST_LIMIT.
    pub fn ask(&self, request: R) -> Result<ControlReply, String> {
        let client = Client::for_data_dir(&self.data).with_reply_timeout(REQUEST_LIMIT);
        self.rt
            .block_on(client.call(request))
            .map_err(|e| format!("{}: {e}", self.name))
    }

    /// A request answered with a view: its JSON text.
    fn view_text(&self, request: R) -> Result<String, String> {
        match self.ask(request)? {
            ControlReply::Json(text) => Ok(text),
            other => Err(format!("{}: {other:?}", self.name)),
        }
    }

    fn unexpected(&self, e: serde_json::Error, text: &str) -> String {
        format!("{}: unexpected view ({e}): {text}", self.name)
    }

    pub fn group(&self, name: &str) -> Result<view::Group, String> {
        let text = self.view_text(R::GroupGet { name: name.into() })?;
        serde_json::from_str(&text).map_err(|e| self.unexpected(e, &text))
    }

    pub fn node_list(&self) -> Result<view::NodeList, String> {
        let text = self.view_text(R::NodeList)?;
        serde_json::from_str(&text).map_err(|e| self.unexpected(e, &text))
    }

    pub fn cluster_status(&self) -> Result<view::ClusterStatus, String> {
        let text = self.view_text(R::ClusterStatus)?;
        serde_json::from_str(&text).map_err(|e| self.unexpected(e, &text))
    }

    fn host_pids(&self) -> Result<Vec<u32>, String> {
        let text = self.view_text(R::Status)?;
        let status: view::Status =
            serde_json::from_str(&text).map_err(|e| self.unexpected(e, &text))?;
        Ok(status.hosts.iter().filter_map(|h| h.pid).collect())
    }

    /// A change, accepted.
    pub fn change(&self, request: R) -> Result<String, String> {
        let shown = format!("{request:?}");
        match self.ask(request)? {
            ControlReply::Done { message } => Ok(message),
            other => Err(format!("{}: {shown}: {other:?}", self.name)),
        }
    }

    /// The node dies: SIGKILL of its rcm, stamped just before. Waits (bounded) until rcm is reaped
    /// and every host it had is gone.
    pub fn kill(&mut self) -> Result<Killed, String> {
        let hosts = self.host_pids()?;
        let mut child = self
            .rcm
            .take()
            .ok_or(format!("{} is already down", self.name))?;
        let pid = child.id();
        let (at, wall) = (Instant::now(), SystemTime::now());
        keelson_sys::process::kill(pid, keelson_sys::Signal::SIGKILL)
            .map_err(|e| format!("kill -9 {pid} ({}'s keelson-rcm): {e}", self.name))?;
        reap(&mut child, &self.name)?;
        let deadline = Instant::now() + PROCESS_LIMIT;
        while hosts.iter().any(|h| keelson_sys::process::is_alive(*h)) {
            if Instant::now() >= deadline {
                let left: Vec<u32> = hosts
                    .iter()
                    .copied()
                    .filter(|h| keelson_sys::process::is_alive(*h))
                    .collect();
                return Err(format!(
                    "{}'s rcm was killed but its hosts {left:?} live on after {PROCESS_LIMIT:?}",
                    self.name
                ));
            }
            std::thread::sleep(PROC_POLL);
        }
        let mut processes = vec![format!("keelson-rcm ({pid})")];
        processes.extend(hosts.iter().map(|h| format!("keelson-rhs ({h})")));
        Ok(Killed {
            at,
            wall,
            processes,
        })
    }

    pub fn cluster_log_text(&self) -> Result<String, String> {
        let path = self.data.join("cluster.log");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn events_text(&self) -> Result<String, String> {
        let path = self.data.join("events.jsonl");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Waits (bounded) for a killed rcm to be reaped and forgets it in the clean-up registry.
fn reap(child: &mut Child, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + PROCESS_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => {
                cleanup::forget(&Item::Process(child.id()));
                return Ok(());
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(PROC_POLL),
            Ok(None) => {
                return Err(format!(
                    "{name}'s keelson-rcm (pid {}) was not reaped within {PROCESS_LIMIT:?}",
                    child.id()
                ))
            }
            Err(e) => return Err(format!("{name}: waiting for keelson-rcm: {e}")),
        }
    }
}

impl Drop for KeelsonNode {
    /// Kills a running node (its hosts go with it); the data directory is the run's to remove.
    fn drop(&mut self) {
        let Some(mut child) = self.rcm.take() else {
            return;
        };
        if let Err(e) = keelson_sys::process::kill(child.id(), keelson_sys::Signal::SIGKILL) {
            eprintln!(
                "cleanup: kill -9 {} ({}'s keelson-rcm): {e}",
                child.id(),
                self.name
            );
        }
        if let Err(e) = reap(&mut child, &self.name) {
            eprintln!("cleanup: {e}");
        }
    }
}
