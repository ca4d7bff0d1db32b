//! The `journal` resource type, for partition tests: every online, offline and terminate call
//! appends its instant (CLOCK_MONOTONIC, shared by every network namespace on one machine), the
//! host's network namespace and pid and the resource's label to one journal file under `flock`;
//! while it may be online (from the start of online to the end of offline or terminate) a thread
//! appends an `alive` line every `alive_ms`, so an interval cut short by a killed process still ends
//! in the journal within one period. A checker reads the file alone to prove that no label was ever
//! online on two nodes at once. Parameters: `journal` (absolute path), `label` (letters, digits,
//! `.`, `_`, `-`), `alive_ms` (10..=1000, default 50) and, for failure tests, `fail_when` (absolute
//! path): while that file exists and is empty or lists this host's network namespace inode on a
//! line of its own (one node), LooksAlive and IsAlive fail and say so in the journal (`unhealthy`).
//! `check` reads a journal back. Not a real service: it serves nothing.
#![forbid(unsafe_code)]

pub mod check;

use keelson_plugin::{export_plugin, Error, Host, Params, Resource};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const KNOWN: [&str; 4] = ["journal", "label", "alive_ms", "fail_when"];
const ALIVE_MS: (u64, u64, u64) = (10, 50, 1000);

/// Parsed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    journal: PathBuf,
    label: String,
    alive: Duration,
    fail_when: Option<PathBuf>,
}

impl Config {
    fn parse(params: &Params) -> Result<Config, String> {
        params.reject_unknown(&KNOWN)?;
        let journal = PathBuf::from(params.str("journal").ok_or("journal: required")?);
        if !journal.is_absolute() {
            return Err(format!(
                "journal '{}': not an absolute path",
                journal.display()
            ));
        }
        let label = params.str("label").ok_or("label: required")?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if label.is_empty() || !label.chars().all(allowed) {
            return Err(format!(
                "label '{label}': only letters, digits, '.', '_' and '-'"
            ));
        }
        let (low, default, high) = ALIVE_MS;
        let alive_ms = params.u64_or("alive_ms", default)?;
        if !(low..=high).contains(&alive_ms) {
            return Err(format!("alive_ms {alive_ms}: it must be {low}..={high}"));
        }
        let fail_when = params.str("fail_when").map(PathBuf::from);
        if let Some(path) = fail_when.as_ref().filter(|p| !p.is_absolute()) {
            return Err(format!(
                "fail_when '{}': not an absolute path",
                path.display()
            ));
        }
        Ok(Config {
            journal,
            label,
            alive: Duration::from_millis(alive_ms),
            fail_when,
        })
    }
}

/// One journal line's identity: where it comes from.
#[derive(Debug, Clone)]
struct Origin {
    journal: PathBuf,
    label: String,
    netns: u64,
    pid: u32,
}

impl Origin {
    fn append(&self, event: &str) -> Result<(), String> {
        let line = format!(
            "{} {event} {} {} {}",
            keelson_sys::journal::monotonic_ns(),
            self.netns,
            self.pid,
            self.label
        );
        keelson_sys::journal::append_locked(&self.journal, &line)
            .map_err(|e| format!("journal {}: {e}", self.journal.display()))
    }
}

/// The failure switch: a file whose existence (empty: every node; else the network namespace
/// inodes it lists, one a line) makes the health checks fail.
#[derive(Debug, Clone)]
struct FailWhen {
    path: PathBuf,
    netns: u64,
}

impl FailWhen {
    /// Why the resource must fail now, or None while it is healthy.
    fn failing(&self) -> Option<String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return Some(format!("fail_when {}: {e}", self.path.display())),
        };
        let here = self.netns.to_string();
        let listed = text.lines().map(str::trim).any(|l| l == here);
        (text.trim().is_empty() || listed).then(|| {
            format!(
                "fail_when {} exists and names this node (netns {here})",
                self.path.display()
            )
        })
    }
}

/// The thread appending `alive` lines while the resource may be online; stopping it wakes it.
struct Heartbeat {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Heartbeat {
    fn start(origin: Origin, every: Duration) -> Heartbeat {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            let (stopped, wake) = &*halt;
            let mut stopped = stopped.lock().unwrap_or_else(|p| p.into_inner());
            // Each line says "still possibly online"; the wait is the period, cut short by stop.
            while !*stopped {
                if origin.append("alive").is_err() {
                    return;
                }
                stopped = wake
                    .wait_timeout(stopped, every)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        });
        Heartbeat { stop, thread }
    }

    fn stop(self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        let _ = self.thread.join();
    }
}

/// One journal resource.
pub struct Journal {
    origin: Origin,
    alive: Duration,
    heartbeat: Option<Heartbeat>,
    fail_when: Option<FailWhen>,
    host: Host,
}

impl Journal {
    /// The health check: fails (journalled as `unhealthy`) while `fail_when` says so.
    fn check_health(&mut self) -> Result<(), String> {
        let Some(reason) = self.fail_when.as_ref().and_then(FailWhen::failing) else {
            return Ok(());
        };
        self.origin.append("unhealthy")?;
        Err(reason)
    }

    fn stop_heartbeat(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
        }
    }
}

impl Resource for Journal {
    const TYPE_NAME: &'static std::ffi::CStr = c"journal";

    fn validate(params: &Params) -> Result<(), Error> {
        Config::parse(params).map(|_| ()).map_err(Error::from)
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        let config = Config::parse(params)?;
        let netns = keelson_sys::journal::netns_inode()
            .map_err(|e| format!("cannot read this host's network namespace: {e}"))?;
        Ok(Journal {
            origin: Origin {
                journal: config.journal,
                label: config.label,
                netns,
                pid: std::process::id(),
            },
            alive: config.alive,
            heartbeat: None,
            fail_when: config.fail_when.map(|path| FailWhen { path, netns }),
            host,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        self.origin.append("online-begin")?;
        if self.heartbeat.is_none() {
            self.heartbeat = Some(Heartbeat::start(self.origin.clone(), self.alive));
        }
        self.origin.append("online")?;
        self.host.info("journal resource online");
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        // Heartbeats stop first, so the interval's lines end offline-begin, offline.
        self.stop_heartbeat();
        self.origin.append("offline-begin")?;
        Ok(self.origin.append("offline")?)
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        Ok(self.check_health()?)
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        Ok(self.check_health()?)
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.stop_heartbeat();
        Ok(self.origin.append("terminate")?)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

export_plugin!(name: c"journal", types: [Journal]);

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        Params::parse(json).unwrap()
    }

    #[test]
    fn parameters_are_checked_by_name() {
        let ok = r#"{"journal":"/tmp/j","label":"g1"}"#;
        assert!(Journal::validate(&params(ok)).is_ok());
        for (json, want) in [
            (r#"{"label":"g1"}"#, "journal: required"),
            (r#"{"journal":"j","label":"g1"}"#, "not an absolute path"),
            (r#"{"journal":"/tmp/j"}"#, "label: required"),
            (r#"{"journal":"/tmp/j","label":"a b"}"#, "label 'a b'"),
            (
                r#"{"journal":"/tmp/j","label":"g","alive_ms":"5"}"#,
                "alive_ms 5",
            ),
            (
                r#"{"journal":"/tmp/j","label":"g","colour":"red"}"#,
                "'colour'",
            ),
            (
                r#"{"journal":"/tmp/j","label":"g","fail_when":"f"}"#,
                "fail_when 'f': not an absolute path",
            ),
        ] {
            let e = Journal::validate(&params(json)).unwrap_err();
            assert!(e.contains(want), "{e} (wanted {want})");
        }
    }

    #[test]
    fn an_online_interval_is_journalled_with_heartbeats_in_between() {
        let dir =
            std::env::temp_dir().join(format!("keelson-journal-plugin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal");
        let json = format!(
            r#"{{"journal":"{}","label":"web","alive_ms":"10"}}"#,
            path.display()
        );
        let mut r = Journal::open(&params(&json), Host::detached()).unwrap();
        r.online().unwrap();
        let start = std::time::Instant::now();
        while std::fs::read_to_string(&path)
            .unwrap()
            .matches(" alive ")
            .count()
            < 3
        {
            assert!(start.elapsed() < Duration::from_secs(10), "no heartbeats");
            std::thread::sleep(Duration::from_millis(5));
        }
        r.offline().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let events: Vec<&str> = text.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
        assert_eq!(events.first(), Some(&"online-begin"));
        assert_eq!(&events[events.len() - 2..], ["offline-begin", "offline"]);
        let instants: Vec<u64> = text
            .lines()
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(instants.windows(2).all(|w| w[0] <= w[1]), "{text}");
        assert!(text.lines().all(|l| l.ends_with(" web")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fail_when_fails_the_health_checks_on_the_nodes_it_names() {
        let dir = std::env::temp_dir().join(format!("keelson-journal-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, switch) = (dir.join("journal"), dir.join("fail"));
        let json = format!(
            r#"{{"journal":"{}","label":"web","fail_when":"{}"}}"#,
            path.display(),
            switch.display()
        );
        let mut r = Journal::open(&params(&json), Host::detached()).unwrap();
        r.online().unwrap();
        assert!(
            r.looks_alive().is_ok() && r.is_alive().is_ok(),
            "no file: healthy"
        );
        let here = keelson_sys::journal::netns_inode().unwrap();
        std::fs::write(&switch, format!("{}\n", here + 1)).unwrap();
        assert!(r.is_alive().is_ok(), "another node named: healthy here");
        std::fs::write(&switch, format!("{}\n{here}\n", here + 1)).unwrap();
        let e = r.is_alive().unwrap_err();
        assert!(
            e.contains("fail_when") && e.contains(&here.to_string()),
            "{e}"
        );
        assert!(r.looks_alive().is_err());
        std::fs::write(&switch, "").unwrap();
        assert!(r.is_alive().is_err(), "an empty file: every node");
        std::fs::remove_file(&switch).unwrap();
        assert!(r.is_alive().is_ok(), "removed: healthy again");
        r.offline().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(" unhealthy ").count(), 3, "{text}");
        let lines = check::parse(&text).unwrap();
        let iv = check::intervals(&lines, 50_000_000);
        assert_eq!(iv.len(), 1, "one interval, unhealthy lines inside: {iv:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
