//! A real Knot DNS server for the tests, in a network namespace of the test's own: one zone that
//! accepts RFC 2136 updates signed with one HMAC-SHA256 TSIG key, a control socket, and a Drop that
//! stops it (SIGKILL, then wait) even when the test fails. Not a DNS client: tests query it with
//! their own code (or the plugin's).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test key's secret (32 bytes, base64): a documentation value, never a real one.
pub const TSIG_SECRET: &str = "a2VlbHNvbi10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=";
pub const TSIG_NAME: &str = "keelson-key";

/// A running knotd.
pub struct Knot {
    child: Option<Child>,
    pub dir: PathBuf,
    pub zone: String,
    pub listen: String,
    /// A key file in the `key "name" { algorithm hmac-sha256; secret "..."; };` format.
    pub key_file: PathBuf,
}

impl Knot {
    /// Starts knotd in namespace `netns` listening on `addr` (port 53), serving `zone` (no trailing
    /// dot) with an SOA, an NS and `ns.<zone>` at `addr`; waits (bounded) until it answers knotc.
    pub fn start(netns: &str, addr: &str, zone: &str, dir: &Path) -> Knot {
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("knot.conf");
        std::fs::write(&conf, config(dir, addr, zone)).unwrap();
        std::fs::write(
            dir.join(format!("{zone}.zone")),
            format!(
                "$ORIGIN {zone}.\n$TTL 60\n@ SOA ns.{zone}. admin.{zone}. 1 60 60 600 60\n@ NS ns\nns A {addr}\n"
            ),
        )
        .unwrap();
        let key_file = dir.join("tsig.key");
        std::fs::write(
            &key_file,
            format!("key \"{TSIG_NAME}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{TSIG_SECRET}\";\n}};\n"),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "knotd", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("knotd.log")).unwrap())
            .spawn()
            .expect("knotd (Debian package knot) must be installed");
        let knot = Knot {
            child: Some(child),
            dir: dir.to_path_buf(),
            zone: zone.to_string(),
            listen: addr.to_string(),
            key_file,
        };
        knot.wait_ready(Duration::from_secs(15));
        knot
    }

    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let ok = Command::new("knotc")
                .arg("-c")
                .arg(self.dir.join("knot.conf"))
                .args(["zone-status", &self.zone])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            let log = std::fs::read_to_string(self.dir.join("knotd.log")).unwrap_or_default();
            assert!(
                start.elapsed() < limit,
                "knotd not ready within {limit:?}: {log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The knotd process id (for SIGSTOP / SIGKILL tests).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

fn config(dir: &Path, addr: &str, zone: &str) -> String {
    let d = dir.display();
    format!(
        "server:\n    rundir: \"{d}\"\n    listen: {addr}@53\n\
         control:\n    listen: \"{d}/knot.sock\"\n\
         database:\n    storage: \"{d}\"\n\
         key:\n  - id: {TSIG_NAME}\n    algorithm: hmac-sha256\n    secret: {TSIG_SECRET}\n\
         acl:\n  - id: update\n    key: {TSIG_NAME}\n    action: update\n\
         zone:\n  - domain: {zone}\n    storage: \"{d}\"\n    file: \"{zone}.zone\"\n    acl: update\n    zonefile-sync: -1\n"
    )
}

impl Drop for Knot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `ip netns exec` execs knotd, so this is knotd itself.
            if let Err(e) = child.kill() {
                eprintln!("cleanup: kill knotd: {e}");
            }
            if let Err(e) = child.wait() {
                eprintln!("cleanup: wait for knotd: {e}");
            }
        }
    }
}
