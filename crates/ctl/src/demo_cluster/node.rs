//! One node of `keelson demo cluster`: a data directory of its own (kept across the node's boots,
//! like a disk) and, while it runs, its keelson-rcm inside the node's network namespace (`ip netns
//! exec`, which execs rcm: the child is rcm itself, and it dies with the demo), with requests over
//! its control socket, each answered within a deadline. A node death is `kill -9` of its rcm (its
//! hosts follow through their parent-death signal). Not the network (lab.rs) or the scenario.

use anyhow::{anyhow, bail, Context, Result};
use keelson_client::Client;
use keelson_proto::{view, ControlRequest as R};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started rcm may take to answer, and a stopped one to exit.
const PROCESS_LIMIT: Duration = Duration::from_secs(20);
/// How long one request may wait for its answer.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug)]
pub struct DemoNode {
    pub name: String,
    pub dir: PathBuf,
    netns: String,
    rcm: PathBuf,
    plugins: PathBuf,
    child: Option<Child>,
}

impl DemoNode {
    /// Node `name` in `netns` on data directory `dir` (created), not started.
    pub fn prepare(
        name: &str,
        netns: &str,
        dir: PathBuf,
        rcm: &Path,
        plugins: &Path,
    ) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(DemoNode {
            name: name.to_string(),
            dir,
            netns: netns.to_string(),
            rcm: rcm.to_path_buf(),
            plugins: plugins.to_path_buf(),
            child: None,
        })
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts rcm in the node's namespace and waits (bounded) until it answers.
    pub async fn boot(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("{} is already running", self.name);
        }
        let out_path = self.dir.join("rcm.out");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .with_context(|| format!("cannot open {}", out_path.display()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns])
            .arg(&self.rcm)
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--plugin-dir")
            .arg(&self.plugins)
            .args(["--node-name", &self.name])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // The node's rcm dies with the demo, even a SIGKILLed one.
        keelson_sys::child::prepare(&mut cmd, vec![]);
        let child = cmd
            .spawn()
            .with_context(|| format!("{}: cannot start {}", self.name, self.rcm.display()))?;
        self.child = Some(child);
        self.wait_answering(&out_path).await
    }

    async fn wait_answering(&mut self, out_path: &Path) -> Result<()> {
        let start = Instant::now();
        while !self.client().answers().await {
            let child = self.child.as_mut().ok_or_else(|| anyhow!("not started"))?;
            if let Some(status) = child.try_wait()? {
                self.child = None;
                bail!(
                    "{}: keelson-rcm exited at start ({status}): {}",
                    self.name,
                    tail(out_path)
                );
            }
            if start.elapsed() > PROCESS_LIMIT {
                bail!(
                    "{}: keelson-rcm did not answer within {} s: {}",
                    self.name,
                    PROCESS_LIMIT.as_secs(),
                    tail(out_path)
                );
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    fn client(&self) -> Client {
        Client::for_data_dir(&self.dir).with_reply_timeout(REQUEST_LIMIT)
    }

    /// A change, accepted; its message.
    pub async fn change(&self, request: R) -> Result<String> {
        let shown = format!("{request:?}");
        self.client()
            .done(request)
            .await
            .map_err(|e| anyhow!("{}: {shown}: {e}", self.name))
    }

    /// A view, parsed.
    pub async fn view<T: DeserializeOwned>(&self, request: R) -> Result<T> {
        self.client()
            .view(request)
            .await
            .map_err(|e| anyhow!("{}: {e}", self.name))
    }

    pub async fn group(&self, name: &str) -> Result<view::Group> {
        self.view(R::GroupGet { name: name.into() }).await
    }

    pub async fn resource(&self, name: &str) -> Result<view::Resource> {
        self.view(R::ResourceGet { name: name.into() }).await
    }

    pub async fn node_list(&self) -> Result<view::NodeList> {
        self.view(R::NodeList).await
    }

    pub async fn cluster_status(&self) -> Result<view::ClusterStatus> {
        self.view(R::ClusterStatus).await
    }

    pub async fn routes(&self) -> Result<Vec<view::Route>> {
        let list: view::NetworkList = self.view(R::NetworkList).await?;
        Ok(list.routes)
    }

    /// `kill -9` of the node's rcm, then reaped (bounded); its hosts go with it.
    pub async fn kill9(&mut self) -> Result<()> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("{} is not running", self.name))?;
        keelson_sys::process::kill(child.id(), keelson_sys::Signal::SIGKILL)
            .with_context(|| format!("kill -9 {} ({}'s keelson-rcm)", child.id(), self.name))?;
        reap(&mut child, &self.name).await
    }

    /// Stops rcm as `keelson node stop` does, and kills it if it has not gone within the limit.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Err(e) = self.client().call(R::NodeStop).await {
            eprintln!("keelson demo cluster: {}: node stop: {e}", self.name);
        }
        if reap(&mut child, &self.name).await.is_err() {
            keelson_sys::process::kill(child.id(), keelson_sys::Signal::SIGKILL)?;
            reap(&mut child, &self.name).await?;
        }
        Ok(())
    }

    pub fn cluster_log(&self) -> Result<String> {
        read(&self.dir.join("cluster.log"))
    }

    pub fn events(&self) -> Result<String> {
        read(&self.dir.join("events.jsonl"))
    }
}

/// A log the demo reads for its timeline: one not written yet holds nothing; any other failure is
/// an error naming the file (a timeline with holes would prove nothing).
fn read(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// The last lines of rcm.out, for an error.
fn tail(path: &Path) -> String {
    let text = read(path).unwrap_or_else(|e| format!("{e:#}"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

async fn reap(child: &mut Child, name: &str) -> Result<()> {
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > PROCESS_LIMIT {
            bail!(
                "{name}'s keelson-rcm (pid {}) has not exited after {} s",
                child.id(),
                PROCESS_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

impl Drop for DemoNode {
    /// A node still running when the demo ends early (an error, Ctrl-C) is killed and reaped.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Err(e) = child.kill() {
            eprintln!("keelson demo cluster: cleanup: kill {}: {e}", self.name);
        }
        if let Err(e) = child.wait() {
            eprintln!("keelson demo cluster: cleanup: wait {}: {e}", self.name);
        }
    }
}
