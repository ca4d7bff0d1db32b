//! A real keelson-rcm process for system tests: a private data directory, the freshly built plugins,
//! a small typed client for its control socket, and bounded waits on resource and group states. Not
//! the CLI (tests that are about the CLI run the real `keelson` binary).

use keelson_client::Client;
use keelson_proto::{ControlReply, ControlRequest};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running node service in a temporary data directory (removed on drop).
pub struct Rcm {
    pub dir: PathBuf,
    pub child: Option<Child>,
    keep_dir: bool,
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Rcm {
    /// A fresh data directory (not started yet).
    pub fn new_dir(tag: &str) -> PathBuf {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("keelson-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts keelson-rcm on a fresh data directory and waits until it answers.
    pub fn start(tag: &str) -> Rcm {
        Rcm::start_in(Rcm::new_dir(tag))
    }

    /// Starts keelson-rcm on `dir` (e.g. again after a kill) and waits until it answers.
    pub fn start_in(dir: PathBuf) -> Rcm {
        Rcm::start_with(dir, &super::target_dir(), &[], &[])
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("rcm.out")).unwrap_or_default()
    }

    pub fn cluster_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("cluster.log")).unwrap_or_default()
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// SIGKILLs the service (no clean-up of its own) and reaps it; keeps the data directory.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Keeps the data directory after drop (to restart on it).
    pub fn keep_dir(mut self) -> PathBuf {
        self.keep_dir = true;
        self.dir.clone()
    }

    fn try_request(&self, request: ControlRequest) -> Result<Vec<ControlReply>, String> {
        request_at(&self.dir.join("rcm.sock"), request)
    }

    /// Sends a request; the replies (one, or a stream ending with End).
    pub fn request(&self, request: ControlRequest) -> Vec<ControlReply> {
        self.try_request(request)
            .unwrap_or_else(|e| panic!("control request failed: {e}\nrcm.out:\n{}", self.output()))
    }

    /// Sends a request that must succeed; its Done message or JSON view.
    pub fn ok(&self, request: ControlRequest) -> Value {
        let shown = format!("{request:?}");
        match self.request(request).into_iter().next() {
            Some(ControlReply::Json(text)) => serde_json::from_str(&text).unwrap(),
            Some(ControlReply::Done { message }) => Value::String(message),
            other => panic!("{shown} failed: {other:?}"),
        }
    }

    /// Sends a request that must be refused; its error message.
    pub fn refused(&self, request: ControlRequest) -> String {
        let shown = format!("{request:?}");
        match self.request(request).into_iter().next() {
            Some(ControlReply::Error { message }) => message,
            other => panic!("{shown} should have been refused, got {other:?}"),
        }
    }

    pub fn resource(&self, name: &str) -> Value {
        self.ok(ControlRequest::ResourceGet { name: name.into() })
    }

    pub fn group_state(&self, name: &str) -> String {
        self.ok(ControlRequest::GroupGet { name: name.into() })["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (bounded) until `cond` holds on the resource's view; returns the view.
    pub fn wait_resource(
        &self,
        name: &str,
        limit: Duration,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let view = self.resource(name);
            if cond(&view) {
                return view;
            }
            assert!(
                start.elapsed() < limit,
                "resource '{name}' never became {what}: {view:#}\nlog:\n{}",
                self.cluster_log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn wait_state(&self, name: &str, state: &str, limit: Duration) -> Value {
        self.wait_resource(name, limit, state, |v| v["state"] == state)
    }

    pub fn wait_group(&self, name: &str, state: &str, limit: Duration) {
        let start = Instant::now();
        while self.group_state(name) != state {
            assert!(
                start.elapsed() < limit,
                "group '{name}' never became {state} (is {})\nlog:\n{}",
                self.group_state(name),
                self.cluster_log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Rcm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = request_at(&self.dir.join("rcm.sock"), ControlRequest::NodeStop);
            let stopped = super::wait_until(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if !self.keep_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One request over the control socket (the shared client, crates/client), on a private
/// single-threaded runtime: every reply, each within 30 s.
pub fn request_at(socket: &Path, request: ControlRequest) -> Result<Vec<ControlReply>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = Client::new(socket).with_reply_timeout(Duration::from_secs(30));
    rt.block_on(client.replies(request))
        .map_err(|e| e.to_string())
}

impl Rcm {
    /// Starts keelson-rcm on `dir` with extra arguments (e.g. `--log-max-bytes 600`) and waits until
    /// it answers.
    pub fn start_in_with_args(dir: PathBuf, extra: &[&str]) -> Rcm {
        Rcm::start_with(dir, &super::target_dir(), extra, &[])
    }

    /// Starts keelson-rcm on `dir` with `plugin_dir` as its only plugin directory, `args` appended
    /// and `env` added to its environment (its hosts inherit it), and waits until it answers status.
    pub fn start_with(
        dir: PathBuf,
        plugin_dir: &Path,
        args: &[&str],
        env: &[(&str, &Path)],
    ) -> Rcm {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("rcm.out"))
            .unwrap();
        let mut cmd = Command::new(super::artefact("keelson-rcm"));
        cmd.arg("--data-dir")
            .arg(&dir)
            .arg("--plugin-dir")
            .arg(plugin_dir)
            .args(args)
            .env("KEELSON_RHS", super::artefact("keelson-rhs"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let rcm = Rcm {
            dir,
            child: Some(cmd.spawn().expect("keelson-rcm starts")),
            keep_dir: false,
        };
        let ready = super::wait_until(Duration::from_secs(20), || {
            rcm.try_request(ControlRequest::Status).is_ok()
        });
        assert!(
            ready,
            "keelson-rcm did not answer; rcm.out:\n{}",
            rcm.output()
        );
        rcm
    }

    /// The `plugin list` view.
    pub fn plugins(&self) -> Value {
        self.ok(ControlRequest::PluginList)
    }
}

impl Rcm {
    /// Starts keelson-rcm on `dir` inside network namespace `netns` (`ip netns exec`, which execs
    /// it, so the child is rcm itself) with `args` appended, and waits until it answers status. Its
    /// control socket is a path, so the test reaches it from any namespace.
    pub fn start_in_netns(dir: PathBuf, netns: &str, args: &[&str]) -> Rcm {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("rcm.out"))
            .unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(super::artefact("keelson-rcm"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("--plugin-dir")
            .arg(super::target_dir())
            .args(args)
            .env("KEELSON_RHS", super::artefact("keelson-rhs"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let rcm = Rcm {
            dir,
            child: Some(cmd.spawn().expect("ip netns exec keelson-rcm starts")),
            keep_dir: false,
        };
        let ready = super::wait_until(Duration::from_secs(20), || {
            rcm.try_request(ControlRequest::Status).is_ok()
        });
        assert!(
            ready,
            "keelson-rcm did not answer; rcm.out:\n{}",
            rcm.output()
        );
        rcm
    }
}

impl Rcm {
    /// Sends a request that must succeed and may take up to `limit` to answer (longer than the
    /// 30 s of `ok`); its Done message or JSON view.
    pub fn ok_within(&self, request: ControlRequest, limit: Duration) -> Value {
        let shown = format!("{request:?}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = Client::new(self.dir.join("rcm.sock")).with_reply_timeout(limit);
        let replies = rt
            .block_on(client.replies(request))
            .unwrap_or_else(|e| panic!("{shown}: {e}\nrcm.out:\n{}", self.output()));
        match replies.into_iter().next() {
            Some(ControlReply::Json(text)) => serde_json::from_str(&text).unwrap(),
            Some(ControlReply::Done { message }) => Value::String(message),
            other => panic!("{shown} failed: {other:?}"),
        }
    }
}

impl Rcm {
    /// Cluster member `node`'s state as this node's `node list` shows it (empty when unlisted).
    pub fn node_state(&self, node: &str) -> String {
        let list = self.ok(ControlRequest::NodeList);
        list["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node)
            .map(|n| n["state"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }
}

impl Rcm {
    /// `keelson --data-dir DIR ARGS...` against this node service: (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new(super::artefact("keelson"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .env_remove("KEELSON_DATA_DIR")
            .output()
            .expect("keelson runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `group get NAME` as JSON, or Null while this node does not know the group.
    pub fn group_json(&self, name: &str) -> Value {
        match self
            .request(ControlRequest::GroupGet { name: name.into() })
            .first()
        {
            Some(ControlReply::Json(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

/// Waits until `ok` holds, polling every 20 ms, at most `limit`; fails the test naming `what`.
/// Returns how long it took.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// Checks that `ok` keeps holding for all of `span` (every 20 ms); fails the test naming `what`
/// with the elapsed time at the first check that does not hold.
pub fn holds_for(what: &str, span: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < span {
        assert!(ok(), "{what}: broken after {:?}", start.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Rcm {
    /// Group `name` as this node shows it: (owner, state), or None while it does not know it.
    pub fn group_owner_state(&self, name: &str) -> Option<(String, String)> {
        let Ok(replies) = self.try_request(ControlRequest::GroupGet { name: name.into() }) else {
            return None;
        };
        let Some(ControlReply::Json(text)) = replies.first() else {
            return None;
        };
        let v: Value = serde_json::from_str(text).ok()?;
        Some((
            v["owner_node"].as_str()?.to_string(),
            v["state"].as_str()?.to_string(),
        ))
    }

    /// This node's events numbered `id` about group `group`.
    pub fn group_events(&self, id: u64, group: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["id"] == id && e["group"] == group)
            .collect()
    }

    /// SIGSTOPs (`freeze`) or SIGCONTs the service process.
    pub fn freeze(&self, freeze: bool) {
        let signal = match freeze {
            true => keelson_sys::Signal::SIGSTOP,
            false => keelson_sys::Signal::SIGCONT,
        };
        keelson_sys::process::kill(self.pid(), signal)
            .unwrap_or_else(|e| panic!("{signal:?} to rcm {}: {e}", self.pid()));
    }
}

impl Rcm {
    /// Creates group `group` with one `journal` resource `<group>-app` (label `group`, alive
    /// lines every 20 ms) writing to `journal`, and brings the group online.
    pub fn journal_group(&self, group: &str, journal: &Path) {
        self.ok(ControlRequest::GroupCreate {
            name: group.into(),
            properties: vec![],
        });
        self.ok(ControlRequest::ResourceCreate {
            name: format!("{group}-app"),
            type_name: "journal".into(),
            group: group.into(),
            params: vec![
                ("journal".into(), journal.to_string_lossy().into_owned()),
                ("label".into(), group.into()),
                ("alive_ms".into(), "20".into()),
            ],
            properties: vec![],
        });
        self.ok(ControlRequest::GroupOnline { name: group.into() });
    }
}
