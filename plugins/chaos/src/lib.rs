//! The `chaos` resource type: misbehaves on command so tests can prove isolation. Parameters: `entry`
//! (which entry point misbehaves: open, online, offline, looks_alive, is_alive, terminate, close,
//! validate), `fault` (hang, segv, segv_thread, bus, ill, fpe, abort, panic, exit, slow, error),
//! `slow_ms` (for slow, default 1000), `thread_delay_ms` (for segv_thread: how long after the call
//! the plugin's own thread segfaults, default 100), `after` (the fault fires on call N+1 of that
//! entry point and every later one; default 0), `exit_code` (for exit, default 3) and `armed_by` (a
//! file path: the fault fires only while that file exists, so a test can disarm a fault that must
//! not follow the resource into its next host), and `leak_password` (a careless plugin's secret:
//! written into its log at open and into every error it returns, so tests can prove the node
//! service keeps secrets out of its logs and events). Without `entry`/`fault` it is healthy. Every
//! fault is real: a hang blocks forever, a segv is a real invalid memory write, and so on. Not for
//! production, obviously.

mod fault;

use fault::Fault;
use keelson_plugin::{export_plugin, Host, Params, Resource};
use keelson_types::Op;
use std::sync::atomic::{AtomicU64, Ordering};

const KNOWN: [&str; 8] = [
    "entry",
    "fault",
    "slow_ms",
    "thread_delay_ms",
    "after",
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
    fn enter(&mut self, op: Op) -> Result<(), String> {
        let count = &mut self.calls[op as usize];
        *count += 1;
        let n = *count;
        fire(self.plan.as_ref(), op, n).map_err(|e| match &self.leak {
            Some(secret) => format!("{e} (my password is {secret})"),
            None => e,
        })
    }
}

/// Fires the planned fault if `op` is its entry point and this is call number `n` past `after`.
fn fire(plan: Option<&Plan>, op: Op, n: u64) -> Result<(), String> {
    match plan {
        Some(p) if p.entry == op && n > p.after && armed(p) => p.fault.strike(op),
        _ => Ok(()),
    }
}

/// Whether the plan's `armed_by` file (if any) exists. (`Option::is_none_or` needs Rust 1.82.)
fn armed(plan: &Plan) -> bool {
    match &plan.armed_by {
        Some(file) => file.exists(),
        None => true,
    }
}

impl Resource for Chaos {
    const TYPE_NAME: &'static std::ffi::CStr = c"chaos";

    fn validate(params: &Params) -> Result<(), String> {
        let plan = plan(params)?;
        fire(
            plan.as_ref(),
            Op::Validate,
            VALIDATE_CALLS.fetch_add(1, Ordering::SeqCst) + 1,
        )
        .map_err(|e| match params.str("leak_password") {
            Some(secret) => format!("{e} (my password is {secret})"),
            None => e,
        })
    }

    fn open(params: &Params, host: Host) -> Result<Self, String> {
        let plan = plan(params)?;
        fire(
            plan.as_ref(),
            Op::Open,
            OPEN_CALLS.fetch_add(1, Ordering::SeqCst) + 1,
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

    fn online(&mut self) -> Result<(), String> {
        self.enter(Op::Online)?;
        self.host.info("chaos resource online");
        Ok(())
    }

    fn offline(&mut self) -> Result<(), String> {
        self.enter(Op::Offline)
    }

    fn looks_alive(&mut self) -> Result<(), String> {
        self.enter(Op::LooksAlive)
    }

    fn is_alive(&mut self) -> Result<(), String> {
        self.enter(Op::IsAlive)
    }

    fn terminate(&mut self) -> Result<(), String> {
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
