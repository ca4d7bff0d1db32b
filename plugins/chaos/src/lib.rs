//! The `chaos` resource type: misbehaves on command so tests can prove isolation. Parameters: `entry`
//! (which entry point misbehaves: open, online, offline, looks_alive, is_alive, terminate, close,
//! validate), `fault` (hang, segv, segv_thread, bus, ill, fpe, abort, panic, exit, slow, error, and
//! misconfigured, not_installed, not_running, report: see fault.rs),
//! `slow_ms` (for slow, default 1000), `thread_delay_ms` (for segv_thread: how long after the call
//! the plugin's own thread segfaults, or for report, reports the failure, default 100), `after` (the
//! fault fires on call N+1 of that entry point and every later one; default 0), `times` (it fires at
//! most this many times; default: no limit), `netns` (a network namespace inode: the fault fires only
//! in a host running in that namespace, so on one node of a lab cluster), `exit_code` (for exit,
//! default 3) and `armed_by` (a
//! file path: the fault fires only while that file exists, so a test can disarm a fault that must
//! not follow the resource into its next host), and `leak_password` (a careless plugin's secret:
//! written into its log at open and into every error it returns, so tests can prove the node
//! service keeps secrets out of its logs and events). Without `entry`/`fault` it is healthy. Every
//! fault is real: a hang blocks forever, a segv is a real invalid memory write, and so on. Not for
//! production, obviously.

mod fault;

use fault::Fault;
use keelson_plugin::{export_plugin, Error, Host, Params, Resource};
use keelson_types::Op;
use std::sync::atomic::{AtomicU64, Ordering};

const KNOWN: [&str; 10] = [
    "netns",
    "entry",
    "fault",
    "slow_ms",
    "thread_delay_ms",
    "after",
    "times",
    "exit_code",
    "armed_by",
    "leak_password",
];

/// Calls of entry points that have no resource instance (open, validate), per process.
static OPEN_CALLS: AtomicU64 = AtomicU64::new(0);
static VALIDATE_CALLS: AtomicU64 = AtomicU64::new(0);

/// What to break, when and how.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    entry: Op,
    fault: Fault,
    after: u64,
    /// Fires at most this many times (None: every time past `after`).
    times: Option<u64>,
    /// Fires only in a host in this network namespace (its inode), if given.
    netns: Option<u64>,
    armed_by: Option<std::path::PathBuf>,
}

/// Parses the parameters; `None` means healthy.
fn plan(params: &Params) -> Result<Option<Plan>, String> {
    params.reject_unknown(&KNOWN)?;
    let entry = params.str("entry");
    let fault = params.str("fault");
    let (entry, fault) = match (entry, fault) {
        (None, None) => return Ok(None),
        (Some(e), Some(f)) => (e, f),
        (Some(_), None) => return Err("parameter 'entry' needs 'fault' too".into()),
        (None, Some(_)) => return Err("parameter 'fault' needs 'entry' too".into()),
    };
    let entry: Op = entry
        .parse()
        .map_err(|e| format!("parameter entry={entry:?}: {e}"))?;
    let fault = Fault::parse(&fault, params)?;
    let armed_by = params.str("armed_by").map(std::path::PathBuf::from);
    Ok(Some(Plan {
        entry,
        fault,
        after: params.u64_or("after", 0)?,
        times: match params.str("times") {
            Some(_) => Some(params.u64_or("times", 0)?),
            None => None,
        },
        netns: match params.str("netns") {
            Some(_) => Some(params.u64_or("netns", 0)?),
            None => None,
        },
        armed_by,
    }))
}

/// One chaos resource.
pub struct Chaos {
    plan: Option<Plan>,
    calls: [u64; 9],
    host: Host,
    /// `leak_password`, echoed in logs and errors.
    leak: Option<String>,
}

impl Chaos {
    /// Counts a call of `op` and fires the fault if it is due.
    fn enter(&mut self, op: Op) -> Result<(), Error> {
        let count = &mut self.calls[op as usize];
        *count += 1;
        let n = *count;
        fire(self.plan.as_ref(), op, n, self.host).map_err(|e| match &self.leak {
            Some(secret) => Error::with_kind(e.kind(), format!("{e} (my password is {secret})")),
            None => e,
        })
    }
}

/// Fires the planned fault if `op` is its entry point and this is call number `n` past `after`
/// (and not past `after + times`).
fn fire(plan: Option<&Plan>, op: Op, n: u64, host: Host) -> Result<(), Error> {
    match plan {
        Some(p) if p.entry == op && n > p.after && within_times(p, n) && armed(p) => {
            p.fault.strike(op, host)
        }
        _ => Ok(()),
    }
}

/// Whether call number `n` is still within the plan's `times`.
fn within_times(plan: &Plan, n: u64) -> bool {
    match plan.times {
        Some(times) => n <= plan.after.saturating_add(times),
        None => true,
    }
}

/// Whether the plan's `armed_by` file (if any) exists and this host is in its `netns` (if any).
/// (`Option::is_none_or` needs Rust 1.82.)
fn armed(plan: &Plan) -> bool {
    let file = match &plan.armed_by {
        Some(file) => file.exists(),
        None => true,
    };
    let netns = match plan.netns {
        Some(inode) => this_netns() == Some(inode),
        None => true,
    };
    file && netns
}

/// The inode of this process's network namespace (`/proc/self/ns/net` reads `net:[N]`).
fn this_netns() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/net").ok()?;
    let text = link.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

impl Resource for Chaos {
    const TYPE_NAME: &'static std::ffi::CStr = c"chaos";

    fn validate(params: &Params) -> Result<(), Error> {
        let plan = plan(params)?;
        fire(
            plan.as_ref(),
            Op::Validate,
            VALIDATE_CALLS.fetch_add(1, Ordering::SeqCst) + 1,
            Host::detached(),
        )
        .map_err(|e| match params.str("leak_password") {
            Some(secret) => format!("{e} (my password is {secret})").into(),
            None => e,
        })
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        let plan = plan(params)?;
        fire(
            plan.as_ref(),
            Op::Open,
            OPEN_CALLS.fetch_add(1, Ordering::SeqCst) + 1,
            host,
        )?;
        let leak = params.str("leak_password");
        if let Some(secret) = &leak {
            host.info(&format!("chaos: opened; my password is {secret}"));
        }
        Ok(Chaos {
            plan,
            calls: [0; 9],
            host,
            leak,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        self.enter(Op::Online)?;
        self.host.info(&format!(
            "chaos resource online at unix_us={}",
            fault::unix_us()
        ));
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        self.enter(Op::Offline)
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        self.enter(Op::LooksAlive)
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        self.enter(Op::IsAlive)
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.enter(Op::Terminate)
    }

    fn close(mut self) {
        // close cannot report an error; a non-crashing fault there is just ignored.
        let _ = self.enter(Op::Close);
    }
}

export_plugin!(name: c"chaos", types: [Chaos]);

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        Params::parse(json).unwrap()
    }

    #[test]
    fn plans_parse_and_bad_ones_name_the_value() {
        assert_eq!(plan(&params("{}")).unwrap(), None);
        let p = plan(&params(
            r#"{"entry":"looks_alive","fault":"hang","after":"2"}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (p.entry, p.fault, p.after),
            (Op::LooksAlive, Fault::Hang, 2)
        );
        assert!(plan(&params(r#"{"entry":"sideways","fault":"hang"}"#))
            .unwrap_err()
            .contains("sideways"));
        assert!(plan(&params(r#"{"entry":"online","fault":"melt"}"#))
            .unwrap_err()
            .contains("melt"));
        assert!(plan(&params(
            r#"{"entry":"online","fault":"slow","slow_ms":"x"}"#
        ))
        .unwrap_err()
        .contains("slow_ms"));
        assert!(plan(&params(r#"{"entry":"online"}"#)).is_err());
        assert!(plan(&params(r#"{"blast":"1"}"#))
            .unwrap_err()
            .contains("'blast'"));
    }

    #[test]
    fn faults_fire_after_n_calls_of_their_entry_only() {
        let mut c = Chaos::open(
            &params(r#"{"entry":"is_alive","fault":"error","after":"1"}"#),
            Host::detached(),
        )
        .unwrap();
        assert!(c.looks_alive().is_ok());
        assert!(c.is_alive().is_ok(), "first call is spared");
        assert_eq!(
            c.is_alive().unwrap_err(),
            "chaos: injected failure in is_alive"
        );
        assert!(c.is_alive().is_err(), "and every later one fails");
        assert!(c.online().is_ok());
    }

    #[test]
    fn status_faults_return_their_kind_and_times_limits_them() {
        use keelson_plugin::ErrorKind;
        let mut c = Chaos::open(
            &params(r#"{"entry":"online","fault":"misconfigured","after":"1","times":"1"}"#),
            Host::detached(),
        )
        .unwrap();
        assert!(c.online().is_ok(), "first call is spared");
        let e = c.online().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Misconfigured);
        assert_eq!(e, "chaos: injected misconfiguration in online");
        assert!(c.online().is_ok(), "fired once only");
        for (fault, kind) in [
            ("not_installed", ErrorKind::NotInstalled),
            ("not_running", ErrorKind::NotRunning),
        ] {
            let json = format!(r#"{{"entry":"is_alive","fault":"{fault}"}}"#);
            let mut c = Chaos::open(&params(&json), Host::detached()).unwrap();
            assert_eq!(c.is_alive().unwrap_err().kind(), kind);
        }
        let mut r = Chaos::open(
            &params(r#"{"entry":"online","fault":"report","thread_delay_ms":"1"}"#),
            Host::detached(),
        )
        .unwrap();
        assert!(r.online().is_ok(), "the report comes later, from a thread");
    }

    #[test]
    fn netns_arms_the_fault_in_that_namespace_only() {
        let here = this_netns().expect("a network namespace");
        for (inode, fires) in [(here, true), (here + 1, false)] {
            let json = format!(r#"{{"entry":"online","fault":"error","netns":"{inode}"}}"#);
            let mut c = Chaos::open(&params(&json), Host::detached()).unwrap();
            assert_eq!(c.online().is_err(), fires, "netns {inode} (here {here})");
        }
    }

    #[test]
    fn armed_by_disarms_when_the_file_goes() {
        let file = std::env::temp_dir().join(format!("keelson-chaos-arm-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let json = format!(
            r#"{{"entry":"looks_alive","fault":"error","armed_by":{:?}}}"#,
            file.display().to_string()
        );
        let mut c = Chaos::open(&params(&json), Host::detached()).unwrap();
        assert!(c.looks_alive().is_err());
        std::fs::remove_file(&file).unwrap();
        assert!(c.looks_alive().is_ok());
    }

    #[test]
    fn panic_and_slow_behave() {
        let mut c = Chaos::open(
            &params(r#"{"entry":"online","fault":"panic"}"#),
            Host::detached(),
        )
        .unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.online()));
        assert!(caught.is_err());
        let mut s = Chaos::open(
            &params(r#"{"entry":"offline","fault":"slow","slow_ms":"20"}"#),
            Host::detached(),
        )
        .unwrap();
        let start = std::time::Instant::now();
        assert!(s.offline().is_ok());
        assert!(start.elapsed() >= std::time::Duration::from_millis(20));
    }
}
