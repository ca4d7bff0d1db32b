//! `keelson demo cluster`: the cluster's main job for a newcomer, as root. Three private keelson-rcm
//! nodes in network namespaces on two networks (lab.rs), one group whose resource is a small TCP
//! service (plugins/demo-service) and a client in a namespace of its own polling every node for it
//! (prober.rs). It cuts one network under the group's owner and shows that nothing moves and
//! nothing restarts; then it kills the owner's rcm with SIGKILL and prints the millisecond timeline
//! of detection, quorum lease expiry, the move (event 1641), the group Online on the new owner and
//! the client's outage; then it restarts the killed node, shows that it rejoins and the group stays
//! put, and removes everything (on an error and on Ctrl-C too). Not a test and not a benchmark: it
//! reports what it saw and exits 0 only if the whole scenario was seen.

mod cut;
mod failover;
mod lab;
mod node;
mod prober;
mod timeline;

use anyhow::{anyhow, bail, Context, Result};
use keelson_proto::ControlRequest as R;
use lab::Lab;
use node::DemoNode;
use prober::{Prober, Seen, Target};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use timeline::{event_rows, log_rows, Timeline};

/// Arguments of `keelson demo cluster`.
#[derive(clap::Args, Debug)]
pub struct DemoClusterArgs {
    /// Keep the nodes' data directories (cluster.log, events.jsonl, …) and print where they are.
    #[arg(long)]
    pub keep: bool,
    /// Print the timelines and the facts checked as one JSON document on stdout (progress on stderr).
    #[arg(long)]
    pub json: bool,
    /// The heartbeat Delay (SameSubnetDelay and CrossSubnetDelay) in ms; below WSFC's 250 ms floor
    /// the demo sets TestOnlyLowerLimits=1, as tests do. 1000 is keelson's default.
    #[arg(long, default_value_t = 200, value_name = "MS", value_parser = clap::value_parser!(u64).range(50..=2000))]
    pub heartbeat_delay: u64,
}

/// The line a user without root gets.
pub const ROOT_REFUSAL: &str = "demo cluster needs root: it creates network namespaces and veth links with ip(8), which only root may do; run it as root, or run 'keelson demo', the single-node demo, which needs no root";

const NODES: usize = 3;
const GROUP: &str = "web";
const RESOURCE: &str = "web-service";
const PORT: u16 = 7070;
/// SameSubnetThreshold: the cluster's default, which the demo keeps.
const THRESHOLD: u64 = 5;
/// The longest any one wait of the scenario may take.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);
/// The network the demo cuts (net1) and the one the client uses (net2).
const CUT_NET: usize = 0;
const PLUGIN_FILE: &str = "libkeelson_plugin_demo_service.so";

pub async fn run(args: DemoClusterArgs) -> Result<ExitCode> {
    if keelson_sys::process::geteuid() != 0 {
        bail!(ROOT_REFUSAL);
    }
    let (rcm, plugins) = binaries()?;
    let mut signals = Signals::install()?;
    let say = Say::new(args.json);
    let leftovers = lab::remove_leftovers()?;
    if !leftovers.is_empty() {
        say.line(&format!(
            "removed namespaces an earlier, killed run left behind: {}",
            leftovers.join(", ")
        ));
    }
    let work = std::env::temp_dir().join(format!("keelson-demo-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let outcome = match Lab::create(NODES) {
        Ok(mut lab) => {
            let outcome = tokio::select! {
                r = scenario(&lab, &work, &rcm, &plugins, &args, &say) => r,
                why = signals.next() => Err(anyhow!("{why}: stopped the nodes and removed everything")),
            };
            // The scenario's nodes are stopped (or killed, when it was cut short) by now.
            let names = lab.names();
            let left = lab.remove();
            outcome.map(|report| (report, names, left))
        }
        Err(e) => Err(e),
    };
    if args.keep {
        say.line(&format!("data directories kept: {}", work.display()));
    } else if let Err(e) = std::fs::remove_dir_all(&work) {
        eprintln!(
            "keelson demo cluster: cannot remove {}: {e}",
            work.display()
        );
    }
    let (report, names, left) = outcome?;
    finish(report, &names, left?, &args, &say)
}

/// keelson-rcm (as `keelson node start` finds it) and the directory of this executable, which must
/// hold the demo-service plugin (rcm finds keelson-rhs next to itself).
fn binaries() -> Result<(PathBuf, PathBuf)> {
    let rcm = crate::node::rcm_binary()?;
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let dir = exe
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("{} has no directory", exe.display()))?;
    if !dir.join(PLUGIN_FILE).is_file() {
        bail!(
            "cannot find {PLUGIN_FILE} next to {}: build the workspace (cargo build --workspace)",
            exe.display()
        );
    }
    Ok((rcm, dir))
}

/// The report: JSON on stdout with --json, and the exit status: 0 only if every fact held and
/// every namespace went.
fn finish(
    mut report: Report,
    names: &[String],
    left: Vec<String>,
    args: &DemoClusterArgs,
    say: &Say,
) -> Result<ExitCode> {
    report.check(
        &format!(
            "every namespace the demo made is gone ({})",
            names.join(", ")
        ),
        left.is_empty(),
    );
    say.line(&format!(
        "removed: the {} namespaces, the nodes' processes{}",
        names.len(),
        if args.keep {
            ""
        } else {
            " and data directories"
        }
    ));
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| what.as_str())
        .collect();
    let ok = failed.is_empty();
    report.fields.insert("namespaces".into(), json!(names));
    report.fields.insert("namespaces_left".into(), json!(left));
    report.fields.insert("steps".into(), say.steps_json());
    report.fields.insert(
        "checks".into(),
        Value::Array(
            report
                .checks
                .iter()
                .map(|(what, ok)| json!({"what": what, "ok": ok}))
                .collect(),
        ),
    );
    report.fields.insert("ok".into(), json!(ok));
    if args.json {
        println!("{}", Value::Object(report.fields.clone()));
    }
    if ok {
        say.line("\nthe whole scenario was seen");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("keelson demo cluster: not seen: {}", failed.join("; "));
        Ok(ExitCode::from(1))
    }
}

/// SIGINT and SIGTERM, caught from before the namespaces exist, so either ends the demo through
/// its clean-up.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted (SIGINT)",
            _ = self.terminate.recv() => "terminated (SIGTERM)",
        }
    }
}

/// Progress lines, each with ms since the demo's start: stdout, or stderr under --json.
struct Say {
    start: Instant,
    json: bool,
    steps: RefCell<Vec<(u64, String)>>,
}

impl Say {
    fn new(json: bool) -> Say {
        Say {
            start: Instant::now(),
            json,
            steps: RefCell::new(Vec::new()),
        }
    }

    fn line(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// A step of the scenario, recorded for the JSON too.
    fn step(&self, text: &str) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.line(&format!("[{ms:>6} ms] {text}"));
        self.steps.borrow_mut().push((ms, text.to_string()));
    }

    fn steps_json(&self) -> Value {
        Value::Array(
            self.steps
                .borrow()
                .iter()
                .map(|(ms, text)| json!({"at_ms": ms, "step": text}))
                .collect(),
        )
    }
}

/// What the scenario found: JSON fields and the facts checked, each held or not.
#[derive(Default)]
struct Report {
    fields: Map<String, Value>,
    checks: Vec<(String, bool)>,
}

impl Report {
    fn check(&mut self, what: &str, ok: bool) {
        self.checks.push((what.to_string(), ok));
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

fn index_of(name: &str) -> Option<usize> {
    let n: usize = name.strip_prefix('n')?.parse().ok()?;
    (1..=NODES).contains(&n).then(|| n - 1)
}

async fn scenario(
    lab: &Lab,
    work: &Path,
    rcm: &Path,
    plugins: &Path,
    args: &DemoClusterArgs,
    say: &Say,
) -> Result<Report> {
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let dir = work.join(node_name(i));
        nodes.push(DemoNode::prepare(
            &node_name(i),
            &lab.nodes[i],
            dir,
            rcm,
            plugins,
        )?);
    }
    let mut demo = Demo {
        lab,
        nodes,
        say,
        delay: args.heartbeat_delay,
        report: Report::default(),
    };
    demo.describe();
    demo.form().await?;
    let owner = demo.place_group().await?;
    let prober = demo.start_client()?;
    demo.wait_client_sees(&prober, owner).await?;
    demo.cut_network(&prober, owner).await?;
    let new_owner = demo.kill_owner(&prober, owner).await?;
    demo.rejoin(&prober, owner, new_owner).await?;
    drop(prober);
    for node in &mut demo.nodes {
        node.stop().await?;
    }
    say.step("stopped the three nodes");
    Ok(demo.report)
}

/// The scenario's state: the lab, the nodes, the report so far.
struct Demo<'a> {
    lab: &'a Lab,
    nodes: Vec<DemoNode>,
    say: &'a Say,
    delay: u64,
    report: Report,
}

impl Demo<'_> {
    /// A route is Down once heartbeat Threshold is half a Delay late.
    fn detection_ms(&self) -> u64 {
        self.delay * THRESHOLD + self.delay / 2
    }

    fn describe(&mut self) {
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let addrs: Vec<String> = (0..2).map(|net| Lab::node_addr(i, net)).collect();
            nodes.push(
                json!({"name": node_name(i), "netns": self.lab.nodes[i], "addresses": addrs}),
            );
        }
        self.say.step(&format!(
            "lab: nodes n1, n2, n3 in namespaces {} on net1 (192.0.2.0/24) and net2 (198.51.100.0/24), bridged in {}; the client in {} at {} on net2",
            self.lab.nodes.join(", "),
            self.lab.switch,
            self.lab.client,
            Lab::client_addr()
        ));
        let detection_ms = self.detection_ms();
        let fields = &mut self.report.fields;
        fields.insert("nodes".into(), Value::Array(nodes));
        fields.insert(
            "client".into(),
            json!({"netns": self.lab.client, "address": Lab::client_addr()}),
        );
        fields.insert(
            "heartbeat".into(),
            json!({"delay_ms": self.delay, "threshold": THRESHOLD, "detection_ms": detection_ms}),
        );
        fields.insert("group".into(), json!(GROUP));
        fields.insert("resource".into(), json!(RESOURCE));
    }

    /// Boots the nodes, creates the cluster on n1, joins n2 and n3, sets the heartbeat timing and
    /// waits until every node sees all three Up, in quorum, with a leader.
    async fn form(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            node.boot().await?;
        }
        self.say
            .step("three keelson-rcm nodes started, one per namespace");
        let spec = (0..NODES)
            .map(|i| (node_name(i), (0..2).map(|n| Lab::node_addr(i, n)).collect()))
            .collect();
        self.nodes[0]
            .change(R::ClusterCreate {
                name: "demo".into(),
                nodes: spec,
                virtual_subnet: Some("203.0.113.0/24".into()),
            })
            .await?;
        let key = self.nodes[0].dir.join("cluster.key");
        for node in &self.nodes[1..] {
            node.change(R::NodeJoin {
                cluster: Lab::node_addr(0, 0),
                key_file: key.to_string_lossy().into_owned(),
                name: None,
            })
            .await?;
        }
        self.set_timing().await?;
        wait_for("all three nodes Up on every node, in quorum", async || {
            self.all_up().await
        })
        .await?;
        let status = self.nodes[0].cluster_status().await?;
        let quorum: keelson_proto::view::Quorum = self.nodes[0]
            .view(R::ClusterQuorum { witness: None })
            .await?;
        self.say.step(&format!(
            "cluster 'demo' up: n1, n2, n3 Up on every node, {} ({}), raft leader {} (heartbeat every {} ms, Threshold {THRESHOLD}: a lost route is Down after about {} ms)",
            quorum.model,
            quorum.verdict,
            status.leader,
            self.delay,
            self.detection_ms()
        ));
        Ok(())
    }

    async fn set_timing(&self) -> Result<()> {
        if self.delay == 1000 {
            return Ok(());
        }
        let d = self.delay.to_string();
        let mut properties = vec![
            ("SameSubnetDelay", d.as_str()),
            ("CrossSubnetDelay", d.as_str()),
        ];
        if self.delay < 250 {
            properties.insert(0, ("TestOnlyLowerLimits", "1"));
        }
        let properties = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.nodes[0].change(R::ClusterSet { properties }).await?;
        Ok(())
    }

    /// Every running node lists every node Up, counts every vote and knows a leader.
    async fn all_up(&self) -> Result<bool> {
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let list = node.node_list().await?;
            if list.nodes.len() != NODES || list.nodes.iter().any(|n| n.state != "Up") {
                return Ok(false);
            }
            let status = node.cluster_status().await?;
            let quorum: keelson_proto::view::Quorum =
                node.view(R::ClusterQuorum { witness: None }).await?;
            if !quorum.quorum_ok || quorum.votes != NODES as u64 || status.leader.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Creates the group on a node that is not the raft leader (so the kill below is a node loss,
    /// not also a raft election) and brings it Online there; returns that node.
    async fn place_group(&mut self) -> Result<usize> {
        let leader = self.nodes[0].cluster_status().await?.leader;
        let owner = (0..NODES)
            .find(|i| node_name(*i) != leader)
            .ok_or_else(|| anyhow!("no node other than the leader"))?;
        let node = &self.nodes[owner];
        node.change(R::GroupCreate {
            name: GROUP.into(),
            properties: vec![],
        })
        .await?;
        node.change(R::ResourceCreate {
            name: RESOURCE.into(),
            type_name: "demo-service".into(),
            group: GROUP.into(),
            params: vec![("port".into(), PORT.to_string())],
            properties: vec![],
        })
        .await?;
        node.change(R::GroupOnline { name: GROUP.into() }).await?;
        let name = node_name(owner);
        wait_for(&format!("group '{GROUP}' Online on {name}"), async || {
            self.online_on(owner).await
        })
        .await?;
        self.say.step(&format!(
            "group '{GROUP}' Online on {name} (not the raft leader, {leader}): resource '{RESOURCE}' (type demo-service) listens on TCP port {PORT} there; AutoFailbackType Prevent (the default)"
        ));
        self.report.fields.insert("first_owner".into(), json!(name));
        Ok(owner)
    }

    /// Node `i` runs the group Online and every running node names it the owner.
    async fn online_on(&self, i: usize) -> Result<bool> {
        let name = node_name(i);
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            if node.group(GROUP).await?.owner_node != name {
                return Ok(false);
            }
        }
        Ok(self.nodes[i].group(GROUP).await?.state == "Online")
    }

    fn start_client(&self) -> Result<Prober> {
        let targets = (0..NODES)
            .map(|i| {
                let addr: SocketAddr = format!("{}:{PORT}", Lab::node_addr(i, 1)).parse()?;
                Ok(Target {
                    node: node_name(i),
                    addr,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Prober::start(
            PathBuf::from(format!("/var/run/netns/{}", self.lab.client)),
            targets,
        )
    }

    async fn wait_client_sees(&self, prober: &Prober, owner: usize) -> Result<()> {
        let name = node_name(owner);
        wait_for(
            &format!("the client to reach the service on {name}"),
            async || Ok(prober.seen().serving().contains_key(&name)),
        )
        .await?;
        let line = prober.seen().serving()[&name].clone();
        self.say.step(&format!(
            "the client polls port {PORT} on 198.51.100.1-3 every 20 ms; {name} answers: \"{line}\""
        ));
        Ok(())
    }

    /// The resource on `owner` as it stands: (host pid, ONLINE calls so far).
    async fn resource_marks(&self, owner: usize) -> Result<(Option<u32>, u64)> {
        let r = self.nodes[owner].resource(RESOURCE).await?;
        let onlines = r.call_stats.get("ONLINE").map_or(0, |s| s.count);
        Ok((r.host_pid, onlines))
    }
}

/// Polls `cond` every POLL for at most WAIT; an error counts as not yet (the cluster is changing)
/// and the last one is quoted if time runs out.
async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    let mut last_error = None;
    loop {
        match cond().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_error = Some(format!("{e:#}")),
        }
        if start.elapsed() > WAIT {
            bail!(
                "gave up waiting for {what} after {} s (last error: {})",
                WAIT.as_secs(),
                last_error.as_deref().unwrap_or("none")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The client's view as one line per change after `since_ms`.
fn client_rows(seen: &Seen, since_ms: u64) -> Vec<timeline::Row> {
    let mut rows = Vec::new();
    for c in seen.changes_after(since_ms) {
        let text = if c.serving.is_empty() {
            "no node answers".to_string()
        } else {
            let who: Vec<String> = c
                .serving
                .iter()
                .map(|(n, l)| format!("{n}: \"{l}\""))
                .collect();
            format!("answered by {}", who.join(", "))
        };
        if c.serving.is_empty() {
            rows.push(timeline::Row {
                at_ms: c.before_ms,
                source: "client".into(),
                text: "last answer before the outage".into(),
            });
        }
        rows.push(timeline::Row {
            at_ms: c.at_ms,
            source: "client".into(),
            text,
        });
    }
    rows
}
