//! Two nodes and a witness (a file-share witness, and a disk witness on a loop device) in one process: real openraft nodes over keelson-raft's redb
//! stores, joined by an in-memory network (the Router of crates/raft/tests/cluster.rs), each node
//! running a real `LeaseDriver` against the same witness directory. The cluster commits with both
//! nodes; the node hosting the witness voter is lost (crashed: no release); the other takes the lease
//! only after the lost node's lease and margin have run out, hosts the witness voter from
//! the witness (`<witness>/raft.redb`, or past the lease on the device) and commits again with 2 of 3
//! votes. Both ways round, for both kinds of witness. And the two drivers,
//! racing from a fresh witness and over a release, never host the witness at once.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::LoopDevice;
use keelson_netft::NetftSettings;
use keelson_quorum::{
    open_disk_witness_store, open_witness_store, raft_config, witness_raft_config, DiskWitness,
    FileWitness, HeldLease, HostedWitness, LeaseDriver, LeaseFence, LeaseMachine, LeaseStatus,
    LeaseStore, LeaseTimings, LogLevel, NodeVoter, QuorumInput, SystemClock, WitnessHooks,
    WitnessKey,
};
use keelson_raft::openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
};
use keelson_raft::openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use keelson_raft::openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use keelson_raft::openraft::{Config, Raft};
use keelson_raft::{ClusterNode, NodeId, Request, SharedState, TypeConfig};
use keelson_types::{GroupRecord, RecordChange};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, ClusterNode, E>>;

const WITNESS_ID: NodeId = 3;
const WAIT: Duration = Duration::from_secs(15);

/// Every running raft (the two nodes and, wherever it is hosted, the witness voter), by id.
#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>>,
}

impl Router {
    fn get(&self, id: NodeId) -> Result<Raft<TypeConfig>, NetworkError> {
        let nodes = self.nodes.lock().unwrap();
        nodes.get(&id).cloned().ok_or_else(|| {
            let e = std::io::Error::new(std::io::ErrorKind::NotFound, format!("no node {id}"));
            NetworkError::new(&e)
        })
    }

    fn insert(&self, id: NodeId, raft: Raft<TypeConfig>) {
        self.nodes.lock().unwrap().insert(id, raft);
    }

    fn remove(&self, id: NodeId) {
        self.nodes.lock().unwrap().remove(&id);
    }
}

struct Connection {
    target: NodeId,
    router: Router,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &ClusterNode) -> Connection {
        Connection {
            target,
            router: self.clone(),
        }
    }
}

impl Connection {
    async fn call<T, E, F, Fut>(&self, rpc: F) -> Rpc<T, E>
    where
        E: std::error::Error,
        F: FnOnce(Raft<TypeConfig>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let raft = self.router.get(self.target).map_err(RPCError::Network)?;
        rpc(raft)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        self.call(|raft| async move { raft.append_entries(rpc).await })
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(|raft| async move { raft.install_snapshot(rpc).await })
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        self.call(|raft| async move { raft.vote(rpc).await }).await
    }
}

/// NetFT at Delay 100 ms / Threshold 10 (test-only bounds): raft heartbeat 100 ms, election
/// 1000-1200 ms (the witness voter 2000-2400 ms); lease renew 100, give up 1000, lease 2000 (1 s to
/// close the witness voter's store), margin 100 ms: a takeover comes 2100 ms after the last renewal
/// is seen. (At give-up 200 ms a renewal's two fsyncs on this loaded VM sometimes took longer, and
/// the holder rightly gave the lease up.)
fn netft() -> NetftSettings {
    NetftSettings::test_only_override(100, 10).unwrap()
}

fn timings() -> LeaseTimings {
    LeaseTimings::from_netft(&netft())
}

fn node_config() -> Arc<Config> {
    raft_config("witness-test", &netft())
}

fn key() -> WitnessKey {
    WitnessKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The witness the test runs against.
enum Witness {
    Share(tempfile::TempDir),
    Disk(LoopDevice),
}

impl Witness {
    fn path(&self) -> &Path {
        match self {
            Witness::Share(dir) => dir.path(),
            Witness::Disk(dev) => dev.path(),
        }
    }

    fn is_disk(&self) -> bool {
        matches!(self, Witness::Disk(_))
    }

    /// This witness's lease, as node `me` uses it.
    fn lease_store(&self, me: NodeId) -> Box<dyn LeaseStore> {
        match self {
            Witness::Share(dir) => Box::new(FileWitness::open(dir.path(), key(), me).unwrap()),
            Witness::Disk(dev) => {
                Box::new(DiskWitness::open(dev.path(), key(), me, &timings()).unwrap())
            }
        }
    }
}

/// How many nodes host the witness voter right now, across the whole test process.
#[derive(Clone, Default)]
struct HostCount(Arc<AtomicUsize>);

/// The witness voter hosted by one node, shared with the test so it can crash the node.
type HostedSlot = Arc<tokio::sync::Mutex<Option<HostedWitness>>>;

/// One node's hooks: host the witness voter from the witness directory, register it in the router.
struct TestHooks {
    me: NodeId,
    witness: PathBuf,
    disk: bool,
    router: Router,
    fence: LeaseFence,
    hosted: HostedSlot,
    count: HostCount,
    log: Arc<Mutex<Vec<String>>>,
}

impl WitnessHooks for TestHooks {
    async fn start_hosting(&mut self, lease: HeldLease) -> Result<(), String> {
        let before = self.count.0.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            before, 0,
            "node {} hosts the witness while another does",
            self.me
        );
        let config = witness_raft_config("witness-test", &netft());
        let store = if self.disk {
            open_disk_witness_store(&self.witness, &lease, &self.fence)
        } else {
            open_witness_store(&self.witness, &lease, &self.fence)
        };
        let started = match store {
            Ok(store) => HostedWitness::start(store, WITNESS_ID, config, self.router.clone()).await,
            Err(e) => Err(e),
        };
        let hosted = started.map_err(|e| {
            self.count.0.fetch_sub(1, Ordering::SeqCst);
            e.to_string()
        })?;
        self.router.insert(WITNESS_ID, hosted.raft().clone());
        *self.hosted.lock().await = Some(hosted);
        Ok(())
    }

    async fn stop_hosting(&mut self, _reason: String, within: Duration) -> Result<(), String> {
        let Some(hosted) = self.hosted.lock().await.take() else {
            return Ok(());
        };
        self.router.remove(WITNESS_ID);
        let stopped = hosted.stop(within).await.map_err(|e| e.to_string());
        self.count.0.fetch_sub(1, Ordering::SeqCst);
        stopped
    }

    fn log(&mut self, _level: LogLevel, line: String) {
        self.log
            .lock()
            .unwrap()
            .push(format!("node{}: {line}", self.me));
    }
}

/// One node: its raft and database view, and its lease driver.
struct Node {
    id: NodeId,
    raft: Raft<TypeConfig>,
    view: SharedState,
    _dir: tempfile::TempDir,
    driver: Option<Driver>,
}

struct Driver {
    task: JoinHandle<Result<(), keelson_quorum::DriverError>>,
    release: oneshot::Sender<()>,
    status: watch::Receiver<LeaseStatus>,
    hosted: HostedSlot,
}

fn member(id: NodeId) -> ClusterNode {
    let name = if id == WITNESS_ID {
        "witness".to_string()
    } else {
        format!("node{id}")
    };
    ClusterNode {
        name,
        // The witness voter has no fixed address: the router finds it where the lease holder put it.
        addr: if id == WITNESS_ID {
            "lease-holder".into()
        } else {
            format!("169.254.0.{id}:3344")
        },
    }
}

async fn start_node(id: NodeId, router: &Router) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (log, sm) = keelson_raft::open(dir.path()).unwrap();
    let view = sm.view();
    let raft = Raft::new(id, node_config(), router.clone(), log, sm)
        .await
        .unwrap();
    router.insert(id, raft.clone());
    Node {
        id,
        raft,
        view,
        _dir: dir,
        driver: None,
    }
}

fn start_driver(
    me: NodeId,
    witness: &Witness,
    router: &Router,
    count: &HostCount,
    log: &Arc<Mutex<Vec<String>>>,
) -> Driver {
    let clock = SystemClock::default();
    let fence = clock.fence();
    let hosted: HostedSlot = Arc::default();
    let hooks = TestHooks {
        me,
        witness: witness.path().to_path_buf(),
        disk: witness.is_disk(),
        router: router.clone(),
        fence: fence.clone(),
        hosted: hosted.clone(),
        count: count.clone(),
        log: log.clone(),
    };
    let store = witness.lease_store(me);
    let machine = LeaseMachine::new(me, timings());
    let driver =
        LeaseDriver::new(machine, store, hooks, clock, Duration::from_millis(10)).with_fence(fence);
    let status = driver.status();
    let (release, rx) = oneshot::channel();
    Driver {
        task: tokio::spawn(driver.run(rx)),
        release,
        status,
        hosted,
    }
}

async fn wait_status(
    driver: &mut Driver,
    what: &str,
    ok: impl Fn(&LeaseStatus) -> bool,
) -> LeaseStatus {
    let got = tokio::time::timeout(WAIT, driver.status.wait_for(|s| ok(s)))
        .await
        .unwrap_or_else(|_| panic!("{what} within {WAIT:?}"))
        .unwrap()
        .clone();
    got
}

fn is_held(s: &LeaseStatus) -> bool {
    matches!(s, LeaseStatus::Held { .. })
}

fn group(name: &str) -> Request {
    Request::Changes(vec![RecordChange::PutGroup(GroupRecord {
        name: name.into(),
        want_online: true,
        ..Default::default()
    })])
}

/// Waits for a leader other than `not`, as `observer` sees it.
async fn leader(observer: &Raft<TypeConfig>, not: Option<NodeId>) -> NodeId {
    let m = observer
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some() && m.current_leader != not,
            "a leader is elected",
        )
        .await
        .unwrap();
    m.current_leader.unwrap()
}

/// Writes through whoever leads (retrying once a new leader is known), returns the entry's index.
async fn commit(
    router: &Router,
    observer: &Raft<TypeConfig>,
    not: Option<NodeId>,
    name: &str,
) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let id = leader(observer, not).await;
        let raft = router.get(id).expect("the leader is in the router");
        match raft.client_write(group(name)).await {
            Ok(written) => return written.log_id.index,
            Err(e) if Instant::now() < deadline => {
                eprintln!("write via {id} refused ({e}); asking again");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot commit {name}: {e}"),
        }
    }
}

async fn wait_applied(raft: &Raft<TypeConfig>, index: u64, what: &str) {
    raft.wait(Some(WAIT))
        .applied_index_at_least(Some(index), what)
        .await
        .unwrap();
}

fn verdict(this: NodeId, reachable: &[NodeId], witness: bool) -> keelson_quorum::QuorumVerdict {
    QuorumInput {
        this_node: this,
        nodes: [1, 2]
            .map(|id| NodeVoter {
                id,
                name: format!("node{id}"),
            })
            .to_vec(),
        has_witness: true,
        reachable: reachable.iter().copied().collect(),
        witness_reachable: witness,
    }
    .count()
}

/// The whole scenario, losing node `lost` (which hosts the witness when it is lost).
async fn lose_the_witness_host(lost: NodeId, witness: Witness) {
    let survivor = 3 - lost;
    let router = Router::default();
    let count = HostCount::default();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut nodes: BTreeMap<NodeId, Node> = BTreeMap::new();
    for id in [1, 2] {
        nodes.insert(id, start_node(id, &router).await);
    }

    // The node to be lost starts its driver first, so it takes the fresh witness's lease.
    let mut first = start_driver(lost, &witness, &router, &count, &log);
    wait_status(&mut first, "the first node takes the lease", is_held).await;
    nodes.get_mut(&lost).unwrap().driver = Some(first);
    let second = start_driver(survivor, &witness, &router, &count, &log);
    nodes.get_mut(&survivor).unwrap().driver = Some(second);

    let members: BTreeMap<NodeId, ClusterNode> = [1, 2, WITNESS_ID]
        .map(|id| (id, member(id)))
        .into_iter()
        .collect();
    nodes[&1].raft.initialize(members).await.unwrap();

    // Both nodes up: a commit reaches both nodes and the witness voter (on the lost node).
    let index = commit(&router, &nodes[&1].raft, None, "before").await;
    for node in nodes.values() {
        wait_applied(&node.raft, index, "the first write is applied").await;
        assert!(node.view.read().unwrap().groups.contains_key("before"));
    }
    let witness_raft = router
        .get(WITNESS_ID)
        .unwrap_or_else(|e| panic!("{e}; lease log:\n{}", log.lock().unwrap().join("\n")));
    wait_applied(
        &witness_raft,
        index,
        "the witness voter applied the first write",
    )
    .await;
    assert!(verdict(survivor, &[lost], false).in_quorum());

    let mut reader = witness.lease_store(99);
    let held = reader.read().unwrap().expect("a lease record");
    assert_eq!(held.holder, lost);

    // Lose the node: its driver dies mid-flight (no release, no stop), its processes go away (the
    // witness voter's store is closed as the kernel would close it), and it leaves the network.
    let mut gone = nodes.remove(&lost).unwrap();
    let driver = gone.driver.take().unwrap();
    driver.task.abort();
    let lost_at = Instant::now();
    router.remove(WITNESS_ID);
    router.remove(lost);
    if let Some(hosted) = driver.hosted.lock().await.take() {
        hosted.stop(WAIT).await.unwrap();
        count.0.fetch_sub(1, Ordering::SeqCst);
    }
    gone.raft.shutdown().await.unwrap();
    let last = reader.read().unwrap().unwrap();
    assert_eq!(
        (last.holder, last.generation),
        (held.holder, held.generation)
    );

    // The survivor alone: 1 of 3 votes, administrator changes refused with one line.
    let alone = verdict(survivor, &[], false);
    assert_eq!(
        alone.refusal().unwrap(),
        format!(
            "no quorum: 1 of 3 votes (node{lost}, witness unreachable), 2 needed; administrator changes are refused"
        )
    );

    // It takes the lease, but only once the lost node's lease plus the margin have run out.
    let node = nodes.get_mut(&survivor).unwrap();
    let driver = node.driver.as_mut().unwrap();
    wait_status(driver, "the survivor takes the lease", is_held).await;
    let took_after = lost_at.elapsed();
    let taken = reader.read().unwrap().unwrap();
    assert_eq!(
        (taken.holder, taken.generation),
        (survivor, last.generation + 1)
    );
    let claimed_wall = taken.expiry_ms - timings().lease_ms;
    assert!(
        claimed_wall >= last.expiry_ms + timings().margin_ms,
        "claimed at {claimed_wall}, the lost node's lease ran to {} (+{} margin)",
        last.expiry_ms,
        timings().margin_ms
    );
    assert!(claimed_wall <= wall_ms());
    eprintln!(
        "node {survivor} took the witness ({}) {} ms after node {lost} was lost",
        reader.describe(),
        took_after.as_millis()
    );
    assert!(verdict(survivor, &[], true).in_quorum(), "2 of 3 votes");

    // And the cluster commits again, with the survivor and the witness voter.
    let survivor_raft = nodes[&survivor].raft.clone();
    let index = commit(&router, &survivor_raft, Some(lost), "after").await;
    wait_applied(&survivor_raft, index, "the second write is applied").await;
    let state = nodes[&survivor].view.read().unwrap().clone();
    assert!(state.groups.contains_key("before") && state.groups.contains_key("after"));
    let witness_raft = router.get(WITNESS_ID).unwrap();
    wait_applied(
        &witness_raft,
        index,
        "the witness voter applied the second write",
    )
    .await;

    // Shut down in order: the survivor releases the lease (stopping the witness voter first).
    let node = nodes.remove(&survivor).unwrap();
    let driver = node.driver.unwrap();
    driver.release.send(()).unwrap();
    tokio::time::timeout(WAIT, driver.task)
        .await
        .expect("the driver finishes after release")
        .unwrap()
        .unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    let released = reader.read().unwrap().unwrap();
    assert!(released.released && released.holder == survivor);
    node.raft.shutdown().await.unwrap();
    assert_eq!(node.id, survivor);
    let lines = log.lock().unwrap().join("\n");
    assert!(
        lines.contains(&format!(
            "node{survivor}: Took the witness lease (generation {})",
            taken.generation
        )),
        "{lines}"
    );
}

fn share() -> Option<Witness> {
    Some(Witness::Share(tempfile::tempdir().unwrap()))
}

fn disk() -> Option<Witness> {
    LoopDevice::create(64 << 20).map(Witness::Disk)
}

async fn scenario(lost: NodeId, witness: Option<Witness>) {
    let Some(witness) = witness else {
        return;
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        lose_the_witness_host(lost, witness),
    )
    .await
    .expect("the scenario finishes within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_node_1_leaves_node_2_and_a_file_share_witness_in_quorum() {
    scenario(1, share()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_node_2_leaves_node_1_and_a_file_share_witness_in_quorum() {
    scenario(2, share()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_node_1_leaves_node_2_and_a_disk_witness_in_quorum() {
    scenario(1, disk()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_node_2_leaves_node_1_and_a_disk_witness_in_quorum() {
    scenario(2, disk()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_drivers_racing_for_a_fresh_witness_and_a_released_one_never_both_host() {
    tokio::time::timeout(Duration::from_secs(60), async {
        for _round in 0..3 {
            let witness = share().unwrap();
            let router = Router::default();
            let count = HostCount::default();
            let log = Arc::new(Mutex::new(Vec::new()));
            let mut drivers: Vec<Driver> = [1, 2]
                .map(|id| start_driver(id, &witness, &router, &count, &log))
                .into_iter()
                .collect();
            // One of them takes the fresh lease (the hooks assert nobody else hosts meanwhile).
            let (one, two) = drivers.split_at_mut(1);
            let holder = tokio::select! {
                _ = wait_status(&mut one[0], "node 1 holds", is_held) => 0,
                _ = wait_status(&mut two[0], "node 2 holds", is_held) => 1,
            };
            let other = 1 - holder;
            assert!(!is_held(&drivers[other].status.borrow()));
            // The holder releases; the other takes the released lease at once.
            let d = drivers.remove(holder);
            let released_at = Instant::now();
            d.release.send(()).unwrap();
            d.task.await.unwrap().unwrap();
            let o = &mut drivers[0];
            wait_status(o, "the other node takes the released lease", is_held).await;
            assert!(
                released_at.elapsed() < Duration::from_millis(timings().takeover_after_ms()),
                "a released lease needs no takeover wait ({:?})",
                released_at.elapsed()
            );
            let d = drivers.remove(0);
            d.release.send(()).unwrap();
            d.task.await.unwrap().unwrap();
            assert_eq!(count.0.load(Ordering::SeqCst), 0);
        }
    })
    .await
    .expect("the race rounds finish within 60 s");
}
