//! The benchmark's cluster: one keelson-netft-node process per lab namespace (or the raw-UDP
//! baseline in each), their configuration files, and what each has reported so far — every route's
//! and peer's latest state with the node's own timestamp — plus waits on that with deadlines. Not
//! the measurements (main.rs) or the processes themselves (node.rs).

use crate::lab::{Lab, NETWORKS};
use crate::node::{NodeProcess, Report};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long all nodes may take to print `started`.
const START_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Netft,
    RawUdp,
}

/// A state a node reported, with its own CLOCK_REALTIME stamp and when the line arrived here.
#[derive(Debug, Clone)]
pub struct Transition {
    pub state: String,
    pub t_ns: u64,
    pub arrived: Instant,
}

/// What one node (its current process) has reported.
#[derive(Debug, Default)]
pub struct View {
    pub started: bool,
    pub routes: HashMap<(IpAddr, IpAddr), Transition>,
    pub nodes: HashMap<u64, Transition>,
    pub status: Option<(Instant, Value)>,
    /// The benchmark killed this process: its end is expected.
    pub killed: bool,
    /// How many times a route went Down.
    pub downs: usize,
}

impl View {
    pub fn route(&self, local: IpAddr, remote: IpAddr) -> Option<&Transition> {
        self.routes.get(&(local, remote))
    }
}

pub struct Cluster<'a> {
    lab: &'a Lab,
    binary: PathBuf,
    dir: PathBuf,
    key: PathBuf,
    pub delay_ms: u32,
    pub threshold: u32,
    mode: Mode,
    /// Index i-1 is node i.
    procs: Vec<NodeProcess>,
    views: Vec<View>,
    reports: mpsc::Receiver<Report>,
    sender: mpsc::Sender<Report>,
}

impl<'a> Cluster<'a> {
    /// Starts a node in every lab namespace and waits until each has said `started`.
    pub fn start(
        lab: &'a Lab,
        binary: &Path,
        dir: &Path,
        key: &Path,
        (delay_ms, threshold): (u32, u32),
        mode: Mode,
    ) -> Result<Cluster<'a>, String> {
        let (sender, reports) = mpsc::channel();
        let mut cluster = Cluster {
            lab,
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            key: key.to_path_buf(),
            delay_ms,
            threshold,
            mode,
            procs: Vec::new(),
            views: (0..lab.nodes).map(|_| View::default()).collect(),
            reports,
            sender,
        };
        for i in 1..=lab.nodes {
            let node = cluster.spawn(i, 1)?;
            cluster.procs.push(node);
        }
        cluster.wait_until(START_LIMIT, "every node started", |views| {
            views.iter().all(|v| v.started)
        })?;
        Ok(cluster)
    }

    fn spawn(&self, i: usize, generation: u32) -> Result<NodeProcess, String> {
        let config = self.dir.join(format!("n{i}-g{generation}.json"));
        let text = serde_json::to_string_pretty(&self.config(i, generation)).expect("json");
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        // The same file either way; the flag picks the baseline.
        let flags: &[&str] = match self.mode {
            Mode::Netft => &[],
            Mode::RawUdp => &["--raw-udp"],
        };
        NodeProcess::spawn(
            &self.binary,
            &config,
            flags,
            i,
            generation,
            self.sender.clone(),
        )
    }

    /// Node i's configuration: the whole topology, the settings, its namespace, incarnation =
    /// generation (higher on every restart).
    fn config(&self, i: usize, generation: u32) -> Value {
        let nodes: Vec<Value> = (1..=self.lab.nodes)
            .map(|n| {
                let interfaces: Vec<Value> = NETWORKS
                    .iter()
                    .enumerate()
                    .map(|(k, (network, adapter, _))| {
                        json!({"adapter": adapter, "addr": Lab::addr(n, k).to_string(), "prefix_len": 24, "network": network})
                    })
                    .collect();
                json!({"id": n, "name": format!("n{n}"), "interfaces": interfaces})
            })
            .collect();
        let networks: Vec<Value> = NETWORKS
            .iter()
            .enumerate()
            .map(|(k, (name, _, _))| json!({"name": name, "priority": k + 1}))
            .collect();
        let (d, t) = (self.delay_ms, self.threshold);
        json!({
            "netns": self.lab.netns_path(i),
            "local": i,
            "key_file": self.key,
            "incarnation": generation,
            "settings": {
                "SameSubnetDelay": d, "SameSubnetThreshold": t,
                "CrossSubnetDelay": d, "CrossSubnetThreshold": t,
                "TestOnlyLowerLimits": d < 250 || t < 3,
            },
            "networks": networks,
            "nodes": nodes,
        })
    }

    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.pid).collect()
    }

    pub fn view(&self, i: usize) -> &View {
        &self.views[i - 1]
    }

    /// SIGKILLs node i (the caller stamps the instant first).
    pub fn kill(&mut self, i: usize) -> Result<(), String> {
        self.views[i - 1].killed = true;
        self.procs[i - 1].kill()
    }

    /// Reaps node i's killed process and starts a new one with a higher incarnation.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.procs[i - 1].reap()?;
        let generation = self.procs[i - 1].generation + 1;
        let node = self.spawn(i, generation)?;
        self.procs[i - 1] = node;
        self.views[i - 1] = View::default();
        Ok(())
    }

    /// Asks every node for a status line and waits for all of them.
    pub fn statuses(&mut self, limit: Duration) -> Result<Vec<(Instant, Value)>, String> {
        let asked = Instant::now();
        for p in &self.procs {
            p.signal_status()?;
        }
        self.wait_until(limit, "a status line from every node", |views| {
            views
                .iter()
                .all(|v| v.status.as_ref().is_some_and(|(at, _)| *at >= asked))
        })?;
        Ok(self
            .views
            .iter()
            .map(|v| v.status.clone().expect("waited"))
            .collect())
    }

    /// Whether every node has reported every peer Up.
    pub fn all_up(views: &[View]) -> bool {
        let n = views.len() as u64;
        views.iter().enumerate().all(|(at, v)| {
            v.started
                && (1..=n)
                    .filter(|peer| *peer != at as u64 + 1)
                    .all(|peer| v.nodes.get(&peer).is_some_and(|t| t.state == "Up"))
        })
    }

    /// Takes in reports until `pred` holds, or fails naming `what` after `limit`. A node that ends
    /// without being killed is an error with its stderr.
    pub fn wait_until(
        &mut self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&[View]) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            while let Ok(report) = self.reports.try_recv() {
                self.apply(report)?;
            }
            if pred(&self.views) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(report) => self.apply(report)?,
                Err(_) => return Err(format!("no {what} within {limit:?}")),
            }
        }
    }

    fn apply(&mut self, report: Report) -> Result<(), String> {
        let Some(proc) = self.procs.get(report.index - 1) else {
            return Err(format!("a report from unknown node {}", report.index));
        };
        // A late line from a killed predecessor.
        if proc.generation != report.generation {
            return Ok(());
        }
        let view = &mut self.views[report.index - 1];
        let Some(line) = report.line else {
            if view.killed {
                return Ok(());
            }
            return Err(format!(
                "node {} (pid {}) ended unasked: {}",
                proc.index,
                proc.pid,
                proc.stderr().trim()
            ));
        };
        let kind = line["kind"].as_str().unwrap_or("");
        let transition = |state: &Value| Transition {
            state: state.as_str().unwrap_or("?").to_string(),
            t_ns: line["t_unix_ns"].as_u64().unwrap_or(0),
            arrived: report.at,
        };
        match kind {
            "started" => view.started = true,
            "route" => {
                let addr = |f: &str| line[f].as_str().and_then(|s| s.parse::<IpAddr>().ok());
                if let (Some(local), Some(remote)) = (addr("local"), addr("remote")) {
                    view.downs += usize::from(line["state"] == "Down");
                    view.routes
                        .insert((local, remote), transition(&line["state"]));
                }
            }
            "node" => {
                if let Some(node) = line["node"].as_u64() {
                    view.nodes.insert(node, transition(&line["state"]));
                }
            }
            "status" => view.status = Some((report.at, line.clone())),
            "event" | "log" | "incarnation" => {}
            _ => return Err(format!("node {}: unexpected output {line}", report.index)),
        }
        Ok(())
    }
}
