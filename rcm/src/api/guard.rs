//! What keeps the control socket's cost bounded whatever clients do: a cap on concurrent
//! connections, a budget of request bytes buffered across all of them (a frame whose claimed length
//! does not fit is refused before any of it is read, through proto's `read_frame_admitted`), and a
//! rate limit on the cluster-log lines that bad traffic causes. Not authorisation or request
//! handling (api.rs), not framing (crates/proto).

use keelson_proto::{read_frame_admitted, ControlEnvelope, ProtoError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UnixStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Control connections served at once; the next one is told so and closed.
pub const MAX_CONNECTIONS: usize = 128;
/// Request bytes buffered across every connection at once.
pub const MAX_BUFFERED_BYTES: usize = 16 << 20;
/// Frames this small are read without drawing on the budget (the connection cap bounds them to
/// 512 KiB in all), so `status` and the like are answered however full the budget is.
pub const SMALL_FRAME: usize = 4096;
/// Largest frame read from a peer that is not authorised (enough to audit what it asked for).
pub const UNAUTHORISED_FRAME: usize = 64 * 1024;
/// Lines about bad traffic from one uid: at most one per this window.
pub const NOISE_WINDOW: Duration = Duration::from_secs(10);
/// Uids tracked by the noise limit before stale ones are forgotten.
const NOISE_UIDS: usize = 4096;

/// The shared limits of one control socket.
pub struct Limits {
    connections: Arc<Semaphore>,
    budget: Semaphore,
    pub noise: NoiseLimit,
}

/// Why a request frame was not read.
#[derive(Debug)]
pub enum FrameError {
    Proto(ProtoError),
    OverBudget { len: usize, max: usize },
    TooLargeForPeer { len: usize, max: usize },
}

impl From<ProtoError> for FrameError {
    fn from(e: ProtoError) -> FrameError {
        FrameError::Proto(e)
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Proto(e) => write!(f, "{e}"),
            FrameError::OverBudget { len, max } => write!(
                f,
                "request of {len} bytes refused: the node service is already buffering up to \
                 {max} bytes of requests; try again"
            ),
            FrameError::TooLargeForPeer { len, max } => write!(
                f,
                "request of {len} bytes is over the {max}-byte limit for this peer"
            ),
        }
    }
}

impl Limits {
    pub fn new(connections: usize, buffered_bytes: usize) -> Limits {
        Limits {
            connections: Arc::new(Semaphore::new(connections)),
            budget: Semaphore::new(buffered_bytes),
            noise: NoiseLimit::default(),
        }
    }

    /// A connection slot, or None when every slot is taken.
    pub fn connection_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.connections.clone().try_acquire_owned().ok()
    }

    /// Reads one request frame of at most `max_len` bytes, drawing on the byte budget for anything
    /// bigger than [`SMALL_FRAME`] before reading its payload. `Ok(None)` when the peer closes
    /// without sending anything.
    pub async fn read_request(
        self: &Arc<Limits>,
        stream: &mut UnixStream,
        max_len: usize,
    ) -> Result<Option<(ControlEnvelope, Option<OwnedBudget>)>, FrameError> {
        read_frame_admitted(stream, |len| {
            if len > max_len {
                Err(FrameError::TooLargeForPeer { len, max: max_len })
            } else if len > SMALL_FRAME {
                self.take_budget(len).map(Some)
            } else {
                Ok(None)
            }
        })
        .await
    }

    fn take_budget(self: &Arc<Limits>, len: usize) -> Result<OwnedBudget, FrameError> {
        match self.budget.try_acquire_many(len as u32) {
            Ok(permit) => {
                permit.forget();
                Ok(OwnedBudget {
                    limits: self.clone(),
                    bytes: len,
                })
            }
            Err(_) => Err(FrameError::OverBudget {
                len,
                max: MAX_BUFFERED_BYTES,
            }),
        }
    }
}

/// Bytes of the request budget held by one request; given back on drop.
pub struct OwnedBudget {
    limits: Arc<Limits>,
    bytes: usize,
}

impl Drop for OwnedBudget {
    fn drop(&mut self) {
        self.limits.budget.add_permits(self.bytes);
    }
}

/// At most one line per uid per [`NOISE_WINDOW`] about bad traffic, and a count of the rest.
#[derive(Default)]
pub struct NoiseLimit {
    windows: Mutex<HashMap<u32, Window>>,
}

struct Window {
    opened: Instant,
    suppressed: u64,
}

impl NoiseLimit {
    /// Whether a line about `uid` may be written at `now`: `Some(n)` with the number of lines
    /// suppressed since the last one, or `None` (counted) while its window is open.
    pub fn admit(&self, uid: u32, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= NOISE_UIDS {
            windows.retain(|_, w| now.duration_since(w.opened) < NOISE_WINDOW);
        }
        let fresh = Window {
            opened: now,
            suppressed: 0,
        };
        match windows.get_mut(&uid) {
            Some(w) if now.duration_since(w.opened) < NOISE_WINDOW => {
                w.suppressed += 1;
                None
            }
            Some(w) => Some(std::mem::replace(w, fresh).suppressed),
            None => {
                windows.insert(uid, fresh);
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_one_line_per_uid_per_window_with_a_count() {
        let noise = NoiseLimit::default();
        let t0 = Instant::now();
        assert_eq!(noise.admit(1000, t0), Some(0));
        assert_eq!(noise.admit(1000, t0 + Duration::from_secs(1)), None);
        assert_eq!(noise.admit(1000, t0 + Duration::from_secs(9)), None);
        assert_eq!(
            noise.admit(2000, t0 + Duration::from_secs(9)),
            Some(0),
            "per uid"
        );
        assert_eq!(noise.admit(1000, t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(noise.admit(1000, t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn budget_is_taken_for_big_frames_and_given_back() {
        let limits = Arc::new(Limits::new(2, 10_000));
        let a = limits.take_budget(6000).unwrap();
        assert!(matches!(
            limits.take_budget(6000),
            Err(FrameError::OverBudget { len: 6000, .. })
        ));
        drop(a);
        assert!(limits.take_budget(6000).is_ok());
        let _one = limits.connection_slot().unwrap();
        let _two = limits.connection_slot().unwrap();
        assert!(limits.connection_slot().is_none());
    }
}
