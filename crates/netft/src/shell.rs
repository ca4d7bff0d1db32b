//! The thin async shell around the detector on tokio: binds one UDP socket per local interface
//! address, starts the netlink watcher, feeds the detector received datagrams, link changes and
//! ticks at the deadlines it asks for, and performs its actions — sends on the sockets, everything
//! else through `NetftSink`, which the rcm implements (cluster.log, events.jsonl, its node table).
//! Datagrams of the frame kind are set aside for the virtual adapter (`take_data_plane`), which
//! also sees every route state change. Not policy: every decision is the detector's.

use crate::action::{Action, NetftEvent, NodeState, RouteState};
use crate::data_plane::{self, DataPlane, FrameTap, InboundFrame};
use crate::detector::{Counters, Detector, DetectorConfig, Event, RouteStatus};
use crate::frame;
use crate::netlink;
use crate::path::Candidate;
use crate::socket::HeartbeatSocket;
use crate::topology::{NodeId, RouteKey};
use keelson_types::LogLevel;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{mpsc, watch};

/// Where the detector's actions other than sends go.
pub trait NetftSink {
    /// One cluster.log line.
    fn log(&mut self, level: LogLevel, component: &str, message: &str);
    /// One numbered event.
    fn raise(&mut self, event: &NetftEvent);
    /// A route changed state.
    fn route_state(&mut self, route: RouteKey, state: RouteState);
    /// A peer node changed state.
    fn node_state(&mut self, node: NodeId, state: NodeState);
    /// A peer's incarnation became known or went up (it restarted).
    fn node_incarnation(&mut self, node: NodeId, incarnation: u64);
    /// Whether a peer hears this node changed (a one-way cut shows here first).
    fn peer_hears_us(&mut self, _node: NodeId, _hears: bool) {}
    /// A peer came into or went out of contact under the contact lease.
    fn peer_contact(&mut self, _node: NodeId, _in_contact: bool) {}
}

/// What `keelson network list` shows, as of `taken_at` (refreshed every heartbeat interval and on
/// every state change).
#[derive(Debug, Clone)]
pub struct NetftStatus {
    pub taken_at: Instant,
    pub routes: Vec<RouteStatus>,
    pub counters: Counters,
}

/// A shared view of a running shell's latest `NetftStatus`.
#[derive(Debug, Clone)]
pub struct StatusHandle(Arc<Mutex<NetftStatus>>);

impl StatusHandle {
    /// The latest status.
    pub fn get(&self) -> NetftStatus {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, status: NetftStatus) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

/// Why the shell could not start or stopped.
#[derive(Debug, Error)]
pub enum ShellError {
    #[error("{0}")]
    Bind(io::Error),
    #[error("{0}")]
    Netlink(io::Error),
    #[error("receiving on NetFT socket {local}: {error}")]
    Receive { local: IpAddr, error: io::Error },
}

/// What the receive and netlink tasks hand to the main loop.
enum Input {
    Event(Event),
    ReceiveFailed(IpAddr, io::Error),
}

/// How many events in a row one wake-up may process (sends that fail feed events back).
const MAX_EVENTS_PER_WAKE: usize = 10_000;
/// The queue between the receive/netlink tasks and the detector.
const QUEUE: usize = 4096;

/// A running NetFT node: the detector, its sockets and its sink.
pub struct Shell<S: NetftSink> {
    detector: Detector,
    sockets: BTreeMap<IpAddr, Arc<HeartbeatSocket>>,
    sink: S,
    base: Instant,
    inputs: mpsc::Receiver<Input>,
    status: StatusHandle,
    /// Every route's state for the virtual adapter, and the adapter's share until it is taken.
    routes: watch::Sender<Vec<Candidate>>,
    data_plane: Option<DataPlane>,
    /// Kept so the queue stays open even when no task holds a sender.
    _inputs_tx: mpsc::Sender<Input>,
}

impl<S: NetftSink> Shell<S> {
    /// Binds a socket on every local interface address, starts receiving and watching netlink,
    /// and logs the routes. Must run inside a tokio runtime, in the node's network namespace.
    pub async fn start(config: DetectorConfig, sink: S) -> Result<Self, ShellError> {
        let port = config.port;
        let (tx, inputs) = mpsc::channel(QUEUE);
        let mut sockets = BTreeMap::new();
        for iface in &config.topology.local_node().interfaces {
            let socket = HeartbeatSocket::bind(iface.addr, port)
                .await
                .map_err(ShellError::Bind)?;
            sockets.insert(iface.addr, Arc::new(socket));
        }
        let (events_tx, events_rx) = mpsc::channel(QUEUE);
        let initial = netlink::watch(events_tx)
            .await
            .map_err(ShellError::Netlink)?;
        tokio::spawn(forward_events(events_rx, tx.clone()));
        let (tap, frames, queue_full) = data_plane::frame_queue(QUEUE);
        for socket in sockets.values() {
            tokio::spawn(receive(socket.clone(), tx.clone(), tap.clone()));
        }
        let base = Instant::now();
        let (local_node, incarnation, key) = (
            config.topology.local,
            config.incarnation,
            config.key.clone(),
        );
        let local_interfaces = config.topology.local_node().interfaces.clone();
        let (detector, actions) = Detector::new(config, 0);
        let (routes, routes_rx) = watch::channel(candidates(&detector.routes(0)));
        let data_plane = Some(DataPlane {
            local_node,
            incarnation,
            key,
            port,
            local_interfaces,
            sockets: sockets.clone(),
            frames,
            routes: routes_rx,
            queue_full,
        });
        let status = StatusHandle(Arc::new(Mutex::new(NetftStatus {
            taken_at: base,
            routes: detector.routes(0),
            counters: detector.counters(),
        })));
        let mut shell = Shell {
            detector,
            sockets,
            sink,
            base,
            inputs,
            status,
            routes,
            data_plane,
            _inputs_tx: tx,
        };
        shell.perform(actions);
        for event in initial {
            shell.step(event);
        }
        Ok(shell)
    }

    /// A handle on the running shell's status, for `keelson network list`.
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// The virtual adapter's share: sockets, frames, route states (once; None after).
    pub fn take_data_plane(&mut self) -> Option<DataPlane> {
        self.data_plane.take()
    }

    fn publish_status(&self) {
        let now = self.now_ms();
        let routes = self.detector.routes(now);
        let latest = candidates(&routes);
        self.routes.send_if_modified(|current| {
            let changed = *current != latest;
            *current = latest;
            changed
        });
        self.status.set(NetftStatus {
            taken_at: Instant::now(),
            routes,
            counters: self.detector.counters(),
        });
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Runs until a socket fails; drop the future (or its runtime) to stop the node.
    pub async fn run(mut self) -> Result<(), ShellError> {
        self.step(Event::Tick);
        loop {
            let deadline = self
                .detector
                .next_deadline_ms()
                .map(|ms| self.base + Duration::from_millis(ms))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let input = tokio::select! {
                input = self.inputs.recv() => input,
                _ = tokio::time::sleep_until(deadline.into()) => Some(Input::Event(Event::Tick)),
            };
            match input {
                Some(Input::Event(event)) => self.step(event),
                Some(Input::ReceiveFailed(local, error)) => {
                    return Err(ShellError::Receive { local, error })
                }
                None => return Ok(()),
            }
        }
    }

    /// Feeds one event and everything it causes (failed sends come back as events).
    fn step(&mut self, event: Event) {
        let mut publish = event == Event::Tick;
        let mut pending = VecDeque::from([event]);
        let mut handled = 0;
        while let Some(event) = pending.pop_front() {
            handled += 1;
            if handled > MAX_EVENTS_PER_WAKE {
                break;
            }
            let now = self.now_ms();
            let actions = self.detector.handle(now, event);
            publish |= actions
                .iter()
                .any(|a| matches!(a, Action::RouteState { .. } | Action::NodeState { .. }));
            pending.extend(self.perform(actions));
        }
        if publish {
            self.publish_status();
        }
    }

    /// Performs actions; returns the events that failed sends produce.
    fn perform(&mut self, actions: Vec<Action>) -> Vec<Event> {
        let mut failures = Vec::new();
        for action in actions {
            match action {
                Action::Send {
                    local,
                    remote,
                    datagram,
                } => {
                    let result = match self.sockets.get(&local) {
                        Some(socket) => socket.send_now(&datagram, remote),
                        None => Err(io::Error::other(format!(
                            "no NetFT socket is bound to {local}"
                        ))),
                    };
                    if let Err(error) = result {
                        failures.push(Event::SendFailed {
                            local,
                            remote,
                            error: error.to_string(),
                        });
                    }
                }
                Action::Log {
                    level,
                    component,
                    message,
                } => self.sink.log(level, component, &message),
                Action::Event(event) => self.sink.raise(&event),
                Action::RouteState { route, state } => self.sink.route_state(route, state),
                Action::NodeState { node, state } => self.sink.node_state(node, state),
                Action::NodeIncarnation { node, incarnation } => {
                    self.sink.node_incarnation(node, incarnation)
                }
                Action::PeerHearsUs { node, hears } => self.sink.peer_hears_us(node, hears),
                Action::PeerContact { node, in_contact } => {
                    self.sink.peer_contact(node, in_contact)
                }
            }
        }
        failures
    }
}

fn candidates(routes: &[RouteStatus]) -> Vec<Candidate> {
    routes.iter().map(Candidate::from).collect()
}

async fn receive(socket: Arc<HeartbeatSocket>, tx: mpsc::Sender<Input>, frames: FrameTap) {
    loop {
        // A stopped shell (its queue closed) ends this task at once, which closes the socket, so
        // a new shell can bind the same address and port.
        let received = tokio::select! {
            received = socket.receive() => received,
            () = tx.closed() => return,
        };
        let input = match received {
            Ok((datagram, from)) if frame::is_frame(&datagram) => {
                let local = socket.local;
                frames.offer(InboundFrame {
                    local,
                    from,
                    datagram,
                });
                continue;
            }
            Ok((bytes, from)) => Input::Event(Event::Datagram {
                local: socket.local,
                from,
                bytes,
            }),
            Err(error) => Input::ReceiveFailed(socket.local, error),
        };
        let failed = matches!(input, Input::ReceiveFailed(..));
        if tx.send(input).await.is_err() || failed {
            return;
        }
    }
}

async fn forward_events(mut events: mpsc::Receiver<Event>, tx: mpsc::Sender<Input>) {
    while let Some(event) = events.recv().await {
        if tx.send(Input::Event(event)).await.is_err() {
            return;
        }
    }
}
