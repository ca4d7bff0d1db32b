//! What a running shell hands the virtual adapter so that frames share the heartbeat sockets and
//! port: the sockets to send on, the frames its receive tasks set aside (told apart from
//! heartbeats by their kind byte), the routes' states as they change, and the node's identity and
//! key. Not what the adapter does with them (adapter.rs).

use crate::packet::ClusterKey;
use crate::path::Candidate;
use crate::socket::HeartbeatSocket;
use crate::topology::{InterfaceSpec, NodeId};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// One datagram of the frame kind, as it arrived on the socket bound to `local`.
#[derive(Debug)]
pub struct InboundFrame {
    pub local: IpAddr,
    pub from: SocketAddr,
    pub datagram: Vec<u8>,
}

/// The receive tasks' end of the frame queue: never waits (a full queue drops, and counts).
#[derive(Debug, Clone)]
pub(crate) struct FrameTap {
    tx: mpsc::Sender<InboundFrame>,
    dropped: Arc<AtomicU64>,
}

impl FrameTap {
    /// Hands a frame to the adapter, or drops it if the adapter is behind or was never started.
    pub(crate) fn offer(&self, frame: InboundFrame) {
        if self.tx.try_send(frame).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Everything the adapter needs from the shell; `Shell::take_data_plane` gives it out once.
#[derive(Debug)]
pub struct DataPlane {
    pub local_node: NodeId,
    pub incarnation: u64,
    pub key: ClusterKey,
    /// The NetFT port frames go to.
    pub port: u16,
    pub local_interfaces: Vec<InterfaceSpec>,
    /// The shell's sockets, by the local interface address each is bound to.
    pub sockets: BTreeMap<IpAddr, Arc<HeartbeatSocket>>,
    pub frames: mpsc::Receiver<InboundFrame>,
    /// Every route's state; changes whenever one does.
    pub routes: watch::Receiver<Vec<Candidate>>,
    /// Frames dropped because the queue was full.
    pub queue_full: Arc<AtomicU64>,
}

/// A frame queue of `capacity`: the tap for the receive tasks and the receiving end.
pub(crate) fn frame_queue(
    capacity: usize,
) -> (FrameTap, mpsc::Receiver<InboundFrame>, Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    let tap = FrameTap {
        tx,
        dropped: dropped.clone(),
    };
    (tap, rx, dropped)
}
