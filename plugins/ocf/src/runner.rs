//! Runs one action of an OCF agent as Pacemaker does: the OCF environment (OCF_ROOT,
//! OCF_RESKEY_*, …), its own process group, a deadline after which the whole group is killed, and
//! its stdout/stderr captured (into an unlinked temporary file, so a daemon the agent leaves behind
//! holding it neither blocks us nor gets SIGPIPE). Not what an exit code means (exit.rs).

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most output kept from one action (the tail beyond it is dropped).
const OUTPUT_CAP: u64 = 16 * 1024;

/// How one action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Its exit code; None when it was killed at its deadline (or by a signal).
    pub code: Option<i32>,
    /// True when the deadline passed and the process group was killed.
    pub timed_out: bool,
    pub deadline: Duration,
    /// What it wrote to stdout and stderr, at most OUTPUT_CAP bytes.
    pub output: String,
}

/// An agent resolved on disk, with the environment every action gets.
#[derive(Debug, Clone)]
pub struct Runner {
    pub path: PathBuf,
    pub env: BTreeMap<String, String>,
}

impl Runner {
    /// Runs `action` (with OCF_CHECK_LEVEL `check_level`) and waits at most `deadline`.
    pub fn run(
        &self,
        action: &str,
        check_level: u32,
        deadline: Duration,
    ) -> Result<Outcome, String> {
        let capture =
            tempfile::tempfile().map_err(|e| format!("a capture file for {action}: {e}"))?;
        let stderr = capture
            .try_clone()
            .map_err(|e| format!("a capture file for {action}: {e}"))?;
        let mut cmd = Command::new(&self.path);
        cmd.arg(action)
            .env_clear()
            .envs(&self.env)
            .env("OCF_CHECK_LEVEL", check_level.to_string())
            .env(
                "OCF_RESKEY_CRM_meta_timeout",
                deadline.as_millis().to_string(),
            )
            .stdin(Stdio::null())
            .stdout(capture.try_clone().map_err(|e| format!("{action}: {e}"))?)
            .stderr(stderr)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {} {action}: {e}", self.path.display()))?;
        let exited = wait_until(&child, Instant::now() + deadline)?;
        if !exited {
            keelson_sys::process::kill_group(child.id(), keelson_sys::Signal::SIGKILL)
                .map_err(|e| format!("{action}: killing its process group: {e}"))?;
        }
        let status = child.wait().map_err(|e| format!("{action}: wait: {e}"))?;
        Ok(Outcome {
            code: status.code(),
            timed_out: !exited,
            deadline,
            output: read_capture(capture),
        })
    }
}

fn wait_until(child: &std::process::Child, deadline: Instant) -> Result<bool, String> {
    let pidfd = keelson_sys::pidfd::open(child.id()).map_err(|e| format!("pidfd_open: {e}"))?;
    keelson_sys::pidfd::wait_exit(&pidfd, deadline).map_err(|e| format!("waiting: {e}"))
}

fn read_capture(mut file: std::fs::File) -> String {
    let mut bytes = Vec::new();
    // The output only goes to the log; a capture that cannot be read is said so in its place.
    let read = file
        .rewind()
        .and_then(|()| file.take(OUTPUT_CAP).read_to_end(&mut bytes));
    match read {
        Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("(output unreadable: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> Runner {
        let path = dir.join("agent");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = BTreeMap::from([("OCF_RESKEY_word".to_string(), "hello".to_string())]);
        Runner { path, env }
    }

    /// `r.run`, again while exec fails ETXTBSY: another test thread's fork may hold the
    /// just-written agent open for a moment (bounded: 100 tries).
    fn run(r: &Runner, action: &str, level: u32, deadline: Duration) -> Outcome {
        for _ in 0..100 {
            match r.run(action, level, deadline) {
                Err(e) if e.contains("os error 26") => std::thread::yield_now(),
                other => return other.unwrap(),
            }
        }
        panic!("{} stayed busy (ETXTBSY)", r.path.display())
    }

    #[test]
    fn exit_code_output_and_environment_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let r = script(
            dir.path(),
            r#"echo "$1 $OCF_RESKEY_word $OCF_CHECK_LEVEL $OCF_RESKEY_CRM_meta_timeout"; echo oops >&2; exit 7"#,
        );
        let out = run(&r, "monitor", 10, Duration::from_secs(20));
        assert_eq!(out.code, Some(7));
        assert!(!out.timed_out);
        assert_eq!(out.output, "monitor hello 10 20000\noops\n");
    }

    #[test]
    fn a_hanging_action_and_its_children_are_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let r = script(
            dir.path(),
            &format!("sleep 60 & echo $! > {}; wait", pidfile.display()),
        );
        let started = Instant::now();
        let out = run(&r, "monitor", 0, Duration::from_millis(300));
        assert!(out.timed_out && out.code.is_none(), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let child: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while keelson_sys::process::is_alive(child) && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(
            !keelson_sys::process::is_alive(child),
            "the group's sleep survived"
        );
    }
}
