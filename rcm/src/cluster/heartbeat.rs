//! The node's heartbeat network (crates/netft) as rcm runs it: the topology derived from the
//! cluster's node entries (one cluster network per subnet, numbered in address order, Priority in
//! that order), the shell started on rcm's runtime and restarted when the topology changes, its
//! incarnation counted up durably on every start, the virtual adapter (`keelson0`) on the shell's
//! data plane with raft's connections moved onto the peers' virtual addresses while it runs, and
//! what it reports sent to the core as `Notice`s. Not the failure detector (crates/netft) nor what
//! node states mean for quorum (core/cluster_gate.rs).

use super::virtual_net::{AdapterPlan, ROUTING_LAYER};
use keelson_netft::topology::network_address;
use keelson_netft::{Adapter, AdapterHandle, AdapterLog};
use keelson_netft::{
    ClusterKey, DetectorConfig, InterfaceSpec, NetftEvent, NetftSettings, NetftSink, NetworkSpec,
    NodeSpec, NodeState, RouteKey, RouteState, Shell, StatusHandle, Topology,
};
use keelson_raft::{ClusterInfo, Routing};
use keelson_types::LogLevel;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// File holding the last incarnation this node's heartbeats carried.
const INCARNATION_FILE: &str = "netft.incarnation";

/// What the heartbeat network tells the core.
#[derive(Debug)]
pub enum Notice {
    Log {
        level: LogLevel,
        component: String,
        message: String,
    },
    Event(NetftEvent),
    Node {
        id: u64,
        state: NodeState,
    },
    /// Whether member `id` hears this node changed.
    HearsUs {
        id: u64,
        hears: bool,
    },
    /// Member `id` came into or went out of contact (the contact lease).
    Contact {
        id: u64,
        in_contact: bool,
    },
    /// The shell could not start or stopped: the reason.
    Stopped(String),
    /// Raft's membership or leader changed (cluster.rs watches it).
    Membership,
    /// Member `id`, Down since `down_at`, has waited out its quorum lease (placement_gate.rs).
    LeaseExpired {
        id: u64,
        down_at: std::time::Instant,
    },
    /// A minute passed: the local hour may have changed (failback windows, placement_gate.rs).
    Clock,
    /// Time to stand for raft election: its leader `old_leader` is Down (election_nudge.rs).
    Elect {
        old_leader: u64,
        attempt: u32,
    },
    /// A fence attempt ended or its retry is due (core/fence_gate.rs).
    Fence(super::fence::ledger::FenceInput),
    /// Try again to catch up with the cluster after regaining quorum (placement_gate.rs).
    CatchUp,
}

/// The running heartbeat network of this node.
pub struct Heartbeat {
    topology: String,
    task: JoinHandle<()>,
    status: Slot<StatusHandle>,
    adapter: Slot<AdapterHandle>,
}

/// Where a running shell or adapter leaves the handle on its status.
type Slot<T> = Arc<Mutex<Option<T>>>;

/// What the heartbeat network runs: its topology and settings, and the virtual adapter beside it.
pub struct Plan {
    pub topology: Topology,
    pub settings: NetftSettings,
    pub adapter: Option<AdapterPlan>,
    /// The contact lease the takeover timing calls for (cluster/takeover.rs), if any.
    pub contact: Option<keelson_netft::ContactLease>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        // Its sockets close with the task.
        self.task.abort();
    }
}

impl Heartbeat {
    /// Starts the heartbeat network for `topology` on the current runtime, once `previous` (if
    /// any) has stopped and released its sockets; notices go to `tx`.
    pub fn start(
        previous: Option<Heartbeat>,
        dir: &Path,
        plan: Plan,
        key: &[u8],
        port: u16,
        routing: Routing,
        tx: mpsc::UnboundedSender<Notice>,
    ) -> Result<Heartbeat, String> {
        let key = ClusterKey::new(key).map_err(|e| format!("cluster key for NetFT: {e}"))?;
        let incarnation = next_incarnation(dir)?;
        let shown = describe(&plan);
        let config = DetectorConfig {
            topology: plan.topology,
            settings: plan.settings,
            key,
            incarnation,
            port,
            contact: plan.contact,
        };
        let status = Arc::new(Mutex::new(None));
        let adapter = Arc::new(Mutex::new(None));
        let slots = (status.clone(), adapter.clone());
        let runtime = netft_runtime()?;
        let previous = previous.map(|p| p.stop(&runtime));
        let adapter_plan = plan.adapter;
        let task = runtime.spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            match start_shell(config, &tx).await {
                Ok(shell) => run_network(shell, adapter_plan, routing, slots, &tx).await,
                Err(e) => {
                    let _ = tx.send(Notice::Stopped(e.to_string()));
                }
            }
        });
        Ok(Heartbeat {
            topology: shown,
            task,
            status,
            adapter,
        })
    }

    /// Stops the shell; the handle resolves once its task is gone.
    fn stop(mut self, runtime: &tokio::runtime::Handle) -> JoinHandle<()> {
        self.task.abort();
        let idle = runtime.spawn(async {});
        std::mem::replace(&mut self.task, idle)
    }

    /// True when this heartbeat network runs `plan`.
    pub fn runs(&self, plan: &Plan) -> bool {
        self.topology == describe(plan)
    }

    /// The virtual adapter's latest status, while it runs.
    pub fn adapter_status(&self) -> Option<keelson_netft::AdapterStatus> {
        let slot = self.adapter.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(AdapterHandle::get)
    }

    /// The routes' latest status, once the shell is up.
    pub fn status(&self) -> Option<keelson_netft::NetftStatus> {
        let slot = self.status.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(StatusHandle::get)
    }
}

/// The runtime the heartbeat network and the virtual adapter run on: a thread of their own, so
/// that neither heartbeats nor the packets of raft and forwarded requests wait while the core waits
/// for a commit (which itself travels through the adapter).
fn netft_runtime() -> Result<tokio::runtime::Handle, String> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    if let Some(handle) = RUNTIME.get() {
        return Ok(handle.clone());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the heartbeat network's runtime: {e}"))?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("netft".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the heartbeat network's thread: {e}"))?;
    Ok(RUNTIME.get_or_init(|| handle).clone())
}

/// How long a new shell keeps trying to bind while the previous one's sockets close.
const REBIND_FOR: std::time::Duration = std::time::Duration::from_secs(3);
const REBIND_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Starts a shell; an address still held by the previous shell's closing sockets is retried for
/// REBIND_FOR.
async fn start_shell(
    config: DetectorConfig,
    tx: &mpsc::UnboundedSender<Notice>,
) -> Result<Shell<CoreSink>, keelson_netft::ShellError> {
    let deadline = tokio::time::Instant::now() + REBIND_FOR;
    loop {
        match Shell::start(config.clone(), CoreSink(tx.clone())).await {
            Err(keelson_netft::ShellError::Bind(e))
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(REBIND_PAUSE).await
            }
            other => return other,
        }
    }
}

/// Runs the shell and, beside it, the virtual adapter on its data plane; raft reaches the peers at
/// their virtual addresses only while the adapter runs.
async fn run_network(
    mut shell: Shell<CoreSink>,
    plan: Option<AdapterPlan>,
    routing: Routing,
    (status, adapter_slot): (Slot<StatusHandle>, Slot<AdapterHandle>),
    tx: &mpsc::UnboundedSender<Notice>,
) {
    *status.lock().unwrap_or_else(|p| p.into_inner()) = Some(shell.status());
    let adapter = match (plan, shell.take_data_plane()) {
        (Some(plan), Some(data_plane)) => {
            match Adapter::start(plan.config, data_plane, CoreSink(tx.clone())).await {
                Ok(adapter) => {
                    *adapter_slot.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(adapter.status());
                    Some((adapter, RoutesOverAdapter::set(routing, plan.raft_routes)))
                }
                Err(e) => {
                    log(
                        tx,
                        LogLevel::Err,
                        &format!("{e}; cluster traffic keeps to the nodes' cluster addresses"),
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let shell_run = shell.run();
    tokio::pin!(shell_run);
    if let Some((adapter, routes)) = adapter {
        tokio::select! {
            ended = &mut shell_run => return report(ended, tx),
            ended = adapter.run() => {
                drop(routes);
                *adapter_slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
                if let Err(e) = ended {
                    log(tx, LogLevel::Err, &format!("{e}; the virtual adapter stopped, cluster traffic keeps to the nodes' cluster addresses"));
                }
            }
        }
    }
    report(shell_run.await, tx)
}

fn report(ended: Result<(), keelson_netft::ShellError>, tx: &mpsc::UnboundedSender<Notice>) {
    if let Err(e) = ended {
        let _ = tx.send(Notice::Stopped(e.to_string()));
    }
}

fn log(tx: &mpsc::UnboundedSender<Notice>, level: LogLevel, message: &str) {
    let _ = tx.send(Notice::Log {
        level,
        component: "NETFT".into(),
        message: message.into(),
    });
}

/// Raft's routes onto the virtual addresses, in force while this lives (also when its task is
/// aborted).
struct RoutesOverAdapter(Routing);

impl RoutesOverAdapter {
    fn set(routing: Routing, routes: BTreeMap<String, String>) -> RoutesOverAdapter {
        routing.set_overrides(ROUTING_LAYER, routes);
        RoutesOverAdapter(routing)
    }
}

impl Drop for RoutesOverAdapter {
    fn drop(&mut self) {
        self.0.set_overrides(ROUTING_LAYER, BTreeMap::new());
    }
}

/// A plan's identity, to tell whether it changed.
fn describe(plan: &Plan) -> String {
    let t = &plan.topology;
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        t.local, t.nodes, t.networks, plan.settings, plan.adapter, plan.contact
    )
}

/// Counts the incarnation up durably: every start of this node's heartbeats carries a higher one.
fn next_incarnation(dir: &Path) -> Result<u64, String> {
    let path = dir.join(INCARNATION_FILE);
    let last = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{} is damaged: {text:?}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let next = last + 1;
    keelson_store::marker::write_durably(&path, format!("{next}\n").as_bytes(), 0o640)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(next)
}

/// The heartbeat topology of the cluster as node `me` sees it: every member that reported its
/// interfaces, one network per subnet. None while this node is the only such member.
pub fn topology_of(info: &ClusterInfo, me: &str) -> Result<Option<Topology>, String> {
    let members: Vec<_> = info
        .nodes
        .values()
        .filter(|n| n.id.is_some() && !n.interfaces.is_empty())
        .collect();
    let Some(local) = members.iter().find(|n| n.name == me).and_then(|n| n.id) else {
        return Ok(None);
    };
    if members.len() < 2 {
        return Ok(None);
    }
    let subnets: BTreeSet<(IpAddr, u8)> = members
        .iter()
        .flat_map(|n| n.interfaces.iter())
        .map(|i| (network_address(i.addr, i.prefix_len), i.prefix_len))
        .collect();
    let name_of = |addr: IpAddr, prefix: u8| {
        let key = (network_address(addr, prefix), prefix);
        let n = subnets
            .iter()
            .position(|s| *s == key)
            .expect("collected above");
        format!("Cluster Network {}", n + 1)
    };
    let networks = (0..subnets.len())
        .map(|n| NetworkSpec {
            name: format!("Cluster Network {}", n + 1),
            priority: n as u32 + 1,
        })
        .collect();
    let nodes = members
        .iter()
        .map(|n| NodeSpec {
            id: netft_id(n.id.expect("members have ids")),
            name: n.name.clone(),
            interfaces: n
                .interfaces
                .iter()
                .map(|i| InterfaceSpec {
                    adapter: i.adapter.clone(),
                    addr: i.addr,
                    prefix_len: i.prefix_len,
                    network: name_of(i.addr, i.prefix_len),
                })
                .collect(),
        })
        .collect();
    Topology::new(netft_id(local), nodes, networks)
        .map(Some)
        .map_err(|e| format!("the cluster's heartbeat topology: {e}"))
}

/// NetFT's node id for a raft id (ids are small and never reused).
pub fn netft_id(id: u64) -> keelson_netft::NodeId {
    keelson_netft::NodeId(u32::try_from(id).unwrap_or(u32::MAX))
}

/// Forwards what the shell reports to the core.
struct CoreSink(mpsc::UnboundedSender<Notice>);

impl NetftSink for CoreSink {
    fn log(&mut self, level: LogLevel, component: &str, message: &str) {
        let _ = self.0.send(Notice::Log {
            level,
            component: component.to_string(),
            message: message.to_string(),
        });
    }

    fn raise(&mut self, event: &NetftEvent) {
        let _ = self.0.send(Notice::Event(event.clone()));
    }

    fn route_state(&mut self, _route: RouteKey, _state: RouteState) {}

    fn node_state(&mut self, node: keelson_netft::NodeId, state: NodeState) {
        let _ = self.0.send(Notice::Node {
            id: u64::from(node.0),
            state,
        });
    }

    fn node_incarnation(&mut self, _node: keelson_netft::NodeId, _incarnation: u64) {}

    fn peer_hears_us(&mut self, node: keelson_netft::NodeId, hears: bool) {
        let _ = self.0.send(Notice::HearsUs {
            id: u64::from(node.0),
            hears,
        });
    }

    fn peer_contact(&mut self, node: keelson_netft::NodeId, in_contact: bool) {
        let _ = self.0.send(Notice::Contact {
            id: u64::from(node.0),
            in_contact,
        });
    }
}

impl AdapterLog for CoreSink {
    fn log(&mut self, level: LogLevel, component: &str, message: &str) {
        NetftSink::log(self, level, component, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_raft::{InterfaceRecord, NodeEntry};

    fn node(name: &str, id: Option<u64>, addrs: &[(&str, u8)]) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            addrs: addrs.iter().map(|(a, _)| a.to_string()).collect(),
            id,
            interfaces: addrs
                .iter()
                .enumerate()
                .map(|(i, (a, p))| InterfaceRecord {
                    adapter: format!("eth{}", i + 1),
                    index: i as u32 + 2,
                    mac: String::new(),
                    addr: a.parse().unwrap(),
                    prefix_len: *p,
                })
                .filter(|_| id.is_some())
                .collect(),
            raft_addr: String::new(),
            paused: false,
        }
    }

    fn info(nodes: Vec<NodeEntry>) -> ClusterInfo {
        ClusterInfo {
            name: "lab".into(),
            nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            netft_port: 3343,
            virtual_subnet: keelson_raft::DEFAULT_VIRTUAL_SUBNET.into(),
            properties: Default::default(),
            witness: None,
        }
    }

    #[test]
    fn networks_are_subnets_numbered_in_address_order() {
        let two = [("192.0.2.1", 24), ("198.51.100.1", 24)];
        let two_b = [("192.0.2.2", 24), ("198.51.100.2", 24)];
        let c = info(vec![
            node("n1", Some(1), &two),
            node("n2", Some(2), &two_b),
            node("n3", None, &[("192.0.2.3", 24)]),
        ]);
        let t = topology_of(&c, "n2").unwrap().unwrap();
        assert_eq!(t.local, netft_id(2));
        assert_eq!(
            t.nodes.len(),
            2,
            "a listed node that has not joined has no routes"
        );
        let names: Vec<_> = t
            .networks
            .iter()
            .map(|n| (n.name.as_str(), n.priority))
            .collect();
        assert_eq!(names, [("Cluster Network 1", 1), ("Cluster Network 2", 2)]);
        let n1 = &t.nodes[0];
        assert_eq!(n1.interfaces[0].network, "Cluster Network 1");
        assert_eq!(n1.interfaces[1].network, "Cluster Network 2");
    }

    #[test]
    fn no_heartbeats_until_a_second_member_reports_its_interfaces() {
        let c = info(vec![
            node("n1", Some(1), &[("192.0.2.1", 24)]),
            node("n2", None, &[("192.0.2.2", 24)]),
        ]);
        assert!(topology_of(&c, "n1").unwrap().is_none());
        assert!(topology_of(&c, "n2").unwrap().is_none(), "not a member yet");
    }
}
