//! The client of `keelson demo cluster`: a thread inside the client's network namespace that, every
//! 20 ms, connects to the demo service's port on every node's address and records which nodes
//! answer and with which instance line (the service's host pid and Online instant), by its own
//! clock (ms since the Unix epoch). Only changes are kept, each with the time of the round before
//! it, so an outage as the client saw it runs from its last answer to its next one. Not the
//! service (plugins/demo-service) and not a judge: the scenario reads what it saw.

use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ROUND: Duration = Duration::from_millis(20);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
const READ_TIMEOUT: Duration = Duration::from_millis(200);
/// The thread stops by itself after this long, whatever happens to the demo.
const MAX_RUN: Duration = Duration::from_secs(15 * 60);

/// One node's service address.
#[derive(Debug, Clone)]
pub struct Target {
    pub node: String,
    pub addr: SocketAddr,
}

/// Who answered, from one round on: node name -> the line it answered.
pub type Serving = BTreeMap<String, String>;

/// A change in who answers: at `at_ms`; the round before (the old answer's last) at `before_ms`.
#[derive(Debug, Clone)]
pub struct Change {
    pub at_ms: u64,
    pub before_ms: u64,
    pub serving: Serving,
}

/// What the client saw so far.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub changes: Vec<Change>,
    pub rounds: u64,
    pub last_round_ms: u64,
}

impl Seen {
    /// Who answered in the latest round.
    pub fn serving(&self) -> Serving {
        self.changes
            .last()
            .map(|c| c.serving.clone())
            .unwrap_or_default()
    }

    /// The changes after `ms`.
    pub fn changes_after(&self, ms: u64) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.at_ms > ms)
    }

    /// The silences after `ms` as (last answer, next answer), the second None while it lasts.
    pub fn silences_after(&self, ms: u64) -> Vec<(u64, Option<u64>)> {
        let mut out = Vec::new();
        let mut open: Option<u64> = None;
        for c in self.changes_after(ms) {
            match (c.serving.is_empty(), open) {
                (true, None) => open = Some(c.before_ms),
                (false, Some(start)) => {
                    out.push((start, Some(c.at_ms)));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            out.push((start, None));
        }
        out
    }
}

/// The running client thread; stopped and joined on drop.
#[derive(Debug)]
pub struct Prober {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Prober {
    /// Starts the thread in the namespace at `netns` (it must enter it before its first round).
    pub fn start(netns: PathBuf, targets: Vec<Target>) -> Result<Prober> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (entered_tx, entered_rx) = mpsc::channel();
        let (record, halt) = (seen.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("demo-client".into())
            .spawn(move || {
                let entered = keelson_sys::netns::enter_netns(&netns);
                let ok = entered.is_ok();
                // The receiver waits for this; if it went away, nobody reads the rounds either.
                let _told = entered_tx.send(entered);
                if ok {
                    poll(&targets, &record, &halt);
                }
            })
            .context("cannot start the client thread")?;
        entered_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|e| anyhow!("the client thread did not start: {e}"))?
            .context("the client cannot enter its namespace")?;
        Ok(Prober {
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// What the client has seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // A panicked client thread has stopped polling either way.
            let _joined = thread.join();
        }
    }
}

fn poll(targets: &[Target], seen: &Mutex<Seen>, stop: &AtomicBool) {
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) && started.elapsed() < MAX_RUN {
        let round_start = Instant::now();
        let at_ms = super::unix_ms();
        let serving: Serving = targets
            .iter()
            .filter_map(|t| ask(t.addr).map(|line| (t.node.clone(), line)))
            .collect();
        record(seen, at_ms, serving);
        std::thread::sleep(ROUND.saturating_sub(round_start.elapsed()));
    }
}

fn record(seen: &Mutex<Seen>, at_ms: u64, serving: Serving) {
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let changed = seen.changes.last().is_none_or(|c| c.serving != serving);
    if changed {
        let before_ms = seen.last_round_ms;
        seen.changes.push(Change {
            at_ms,
            before_ms,
            serving,
        });
    }
    seen.rounds += 1;
    seen.last_round_ms = at_ms;
}

/// The service's line at `addr`, or None when nothing answers there.
fn ask(addr: SocketAddr) -> Option<String> {
    let conn = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok()?;
    conn.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).ok()?;
    let line = line.trim_end();
    (!line.is_empty()).then(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at_ms: u64, before_ms: u64, who: &[&str]) -> Change {
        Change {
            at_ms,
            before_ms,
            serving: who
                .iter()
                .map(|n| (n.to_string(), format!("{n} line")))
                .collect(),
        }
    }

    #[test]
    fn a_silence_runs_from_the_last_answer_to_the_next() {
        let seen = Seen {
            changes: vec![
                change(100, 0, &["n2"]),
                change(5_000, 4_980, &[]),
                change(9_020, 9_000, &["n3"]),
                change(12_000, 11_980, &[]),
            ],
            rounds: 600,
            last_round_ms: 12_500,
        };
        assert_eq!(
            seen.silences_after(1_000),
            vec![(4_980, Some(9_020)), (11_980, None)]
        );
        assert_eq!(seen.silences_after(10_000), vec![(11_980, None)]);
        assert_eq!(seen.changes_after(9_020).count(), 1);
        assert!(seen.serving().is_empty());
    }
}
