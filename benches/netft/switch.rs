//! Cuts and restores links from inside the switch namespace: a thread of its own enters it and
//! sets a bridge port down or up over rtnetlink, on request, so that the instant a cut is stamped
//! is within microseconds of the kernel taking the link down (no `ip` process to start). Taking
//! the switch-side end of a veth down is a cable pulled at the switch: the node's end loses
//! carrier, and its peers hear nothing more from it on that network. Not the namespaces (lab.rs).

use rtnetlink::LinkUnspec;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one netlink request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

struct Request {
    index: u32,
    up: bool,
    done: std_mpsc::Sender<Result<(), String>>,
}

/// The switch's link control; the thread ends when this is dropped.
pub struct Switch {
    requests: mpsc::Sender<Request>,
}

impl Switch {
    /// Starts the thread inside the namespace at `netns`.
    pub fn start(netns: PathBuf) -> Result<Switch, String> {
        let (requests, mut incoming) = mpsc::channel::<Request>(64);
        let (ready_tx, ready) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("switch".into())
            .spawn(move || {
                let setup = || -> Result<_, String> {
                    keelson_sys::netns::enter_netns(&netns).map_err(|e| e.to_string())?;
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("switch runtime: {e}"))
                };
                let runtime = match setup() {
                    Ok(runtime) => runtime,
                    Err(e) => return ready_tx.send(Err(e)).unwrap_or(()),
                };
                runtime.block_on(async move {
                    let (connection, handle, _) = match rtnetlink::new_connection() {
                        Ok(c) => c,
                        Err(e) => {
                            return ready_tx.send(Err(format!("rtnetlink: {e}"))).unwrap_or(())
                        }
                    };
                    tokio::spawn(connection);
                    if ready_tx.send(Ok(())).is_err() {
                        return;
                    }
                    while let Some(req) = incoming.recv().await {
                        let link = LinkUnspec::new_with_index(req.index);
                        let message = if req.up { link.up() } else { link.down() }.build();
                        let result = handle.link().set(message).execute().await.map_err(|e| {
                            format!(
                                "setting switch port {} {}: {e}",
                                req.index,
                                if req.up { "up" } else { "down" }
                            )
                        });
                        // The requester may have given up waiting; it reports that itself.
                        let _requester_gone = req.done.send(result);
                    }
                });
            })
            .map_err(|e| format!("cannot start the switch thread: {e}"))?;
        ready
            .recv_timeout(REQUEST_TIMEOUT)
            .map_err(|e| format!("the switch thread did not start: {e}"))??;
        Ok(Switch { requests })
    }

    /// Sets the switch port with ifindex `index` up or down and waits for the kernel's answer.
    pub fn set(&self, index: u32, up: bool) -> Result<(), String> {
        let (done, result) = std_mpsc::channel();
        self.requests
            .blocking_send(Request { index, up, done })
            .map_err(|_| "the switch thread is gone".to_string())?;
        result.recv_timeout(REQUEST_TIMEOUT).map_err(|e| {
            format!("no answer from the switch thread within {REQUEST_TIMEOUT:?}: {e}")
        })?
    }
}
