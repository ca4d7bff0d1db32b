//! Echoing the cluster log on stderr while keelson-rcm runs in the foreground (`--foreground`, or
//! stderr is a terminal), so a terminal shows what the node service does. Written from a thread of
//! its own: a stalled terminal delays only the echo (which then skips lines), never the service.
//! Not the cluster log itself (clusterlog.rs).

use std::io::{IsTerminal, Write};
use tokio::sync::broadcast::{self, error::RecvError};

/// Whether to echo: asked for, or stderr is a terminal.
pub fn wanted(foreground: bool) -> bool {
    foreground || std::io::stderr().is_terminal()
}

/// Starts echoing every line `lines` receives; stops when stderr cannot be written or the log ends.
pub fn start(lines: broadcast::Receiver<String>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("log-echo".into())
        .spawn(move || echo(lines))
        .map(drop)
}

fn echo(mut lines: broadcast::Receiver<String>) {
    let mut stderr = std::io::stderr();
    loop {
        let text = match lines.blocking_recv() {
            Ok(line) => line,
            Err(RecvError::Lagged(n)) => format!("... {n} cluster-log lines not shown here ..."),
            Err(RecvError::Closed) => return,
        };
        if writeln!(stderr, "{text}").is_err() {
            return;
        }
    }
}
