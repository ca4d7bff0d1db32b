//! The control-socket link to one host: the writing half (frames, and frames with a descriptor
//! attached) and the shared state, held by the host handle and by every resource handle, so the host
//! lives while any of them does: when the last one drops, the socket closes and the host exits. Not
//! reading the socket (supervisor.rs).

use crate::error::HostError;
use crate::shared::Shared;
use keelson_proto::{encode, write_frame_async, HostRequest};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;

pub(crate) struct Link {
    pub(crate) shared: Arc<Shared>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    next_req: AtomicU64,
}

impl Link {
    pub(crate) fn new(shared: Arc<Shared>, writer: OwnedWriteHalf) -> Link {
        Link {
            shared,
            writer: tokio::sync::Mutex::new(writer),
            next_req: AtomicU64::new(1),
        }
    }

    /// A fresh request number (for answers matched by number, like PluginLoaded).
    pub(crate) fn next_req(&self) -> u64 {
        self.next_req.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) async fn send(&self, request: &HostRequest) -> Result<(), HostError> {
        let mut writer = self.writer.lock().await;
        match write_frame_async(&mut *writer, request).await {
            Ok(()) => Ok(()),
            Err(_) => Err(HostError::Died(self.shared.died().await)),
        }
    }

    /// Sends a frame with a descriptor attached to its first byte.
    pub(crate) async fn send_with_fd(
        &self,
        request: &HostRequest,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), HostError> {
        let frame = encode(request).map_err(|e| HostError::Protocol(e.to_string()))?;
        let mut writer = self.writer.lock().await;
        let sock = writer.as_ref().as_fd();
        let sent = writer
            .as_ref()
            .async_io(tokio::io::Interest::WRITABLE, || {
                keelson_sys::fdpass::send_with_fd(sock, &frame, fd)
            })
            .await;
        let result = match sent {
            Ok(n) => writer.write_all(&frame[n..]).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(()),
            Err(_) => {
                drop(writer);
                Err(HostError::Died(self.shared.died().await))
            }
        }
    }
}
