//! A cluster lab for system tests, as root: a switch namespace of the test's own with two bridges
//! (net1 192.0.2.0/24, net2 198.51.100.0/24) and N node namespaces, node i (from 1) at 192.0.2.i
//! on eth1 and 198.51.100.i on eth2; links cut and healed from inside a node; everything removed
//! in Drop, even when the test fails. Names carry the pid, so parallel runs never collide. Not the
//! rcm processes (rcm.rs) nor what a test asserts.

use super::rcm::Rcm;
use std::path::PathBuf;
use std::process::Command;

/// The two cluster networks: (interface in a node, subnet prefix).
pub const NETWORKS: [(&str, &str); 2] = [("eth1", "192.0.2"), ("eth2", "198.51.100")];

/// True when this process runs as root (uid 0), read from /proc.
pub fn have_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Skips (false) a root-only test locally without root; fails it in CI, which runs as root.
pub fn root_or_skip(test: &str) -> bool {
    if have_root() {
        return true;
    }
    assert!(
        !super::in_ci(),
        "{test} needs root (network namespaces) and CI runs as root"
    );
    eprintln!("skipped: {test} needs root for network namespaces");
    false
}

/// Runs `ip ARGS`, failing the test with its stderr.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// The switch namespace with its two bridges, and the node namespaces.
pub struct Lab {
    pub switch: String,
    pub nodes: Vec<String>,
}

impl Lab {
    /// `count` node namespaces named `<tag><pid>n<i>` on both networks.
    pub fn create(tag: &str, count: usize) -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            switch: format!("{tag}{pid}sw"),
            nodes: (1..=count).map(|i| format!("{tag}{pid}n{i}")).collect(),
        };
        ip(&["netns", "add", &lab.switch]);
        for net in 1..=NETWORKS.len() {
            let br = format!("br{net}");
            ip(&["-n", &lab.switch, "link", "add", &br, "type", "bridge"]);
            ip(&["-n", &lab.switch, "link", "set", &br, "up"]);
        }
        for (i, ns) in lab.nodes.iter().enumerate() {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            for (net, (inner, subnet)) in NETWORKS.iter().enumerate() {
                let outer = format!("p{}n{}", i + 1, net + 1);
                ip(&[
                    "link",
                    "add",
                    inner,
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &outer,
                    "netns",
                    &lab.switch,
                ]);
                let addr = format!("{subnet}.{}/24", i + 1);
                ip(&["-n", ns, "addr", "add", &addr, "dev", inner]);
                ip(&["-n", ns, "link", "set", inner, "up"]);
                let br = format!("br{}", net + 1);
                ip(&["-n", &lab.switch, "link", "set", &outer, "master", &br]);
                ip(&["-n", &lab.switch, "link", "set", &outer, "up"]);
            }
        }
        lab
    }

    /// Node `i`'s (from 0) name `n<i+1>` and its addresses on both networks.
    pub fn node_spec(i: usize) -> (String, Vec<String>) {
        (
            format!("n{}", i + 1),
            NETWORKS
                .iter()
                .map(|(_, subnet)| format!("{subnet}.{}", i + 1))
                .collect(),
        )
    }

    /// Starts keelson-rcm as node `n<i+1>` in node `i`'s namespace on `dir`.
    pub fn boot(&self, i: usize, dir: PathBuf) -> Rcm {
        self.boot_with(i, dir, &[])
    }

    /// As `boot`, with more keelson-rcm arguments.
    pub fn boot_with(&self, i: usize, dir: PathBuf, args: &[&str]) -> Rcm {
        let name = format!("n{}", i + 1);
        let mut all = vec!["--node-name", name.as_str()];
        all.extend_from_slice(args);
        Rcm::start_in_netns(dir, &self.nodes[i], &all)
    }

    /// Sets node `i`'s `links` (eth1, eth2) down or up, from inside its namespace.
    pub fn set_links(&self, i: usize, links: &[&str], up: bool) {
        for link in links {
            let state = if up { "up" } else { "down" };
            ip(&["-n", &self.nodes[i], "link", "set", link, state]);
        }
    }

    /// Boots a cluster `lab` of all the lab's nodes (data dirs tagged `tag`): n1 creates it with
    /// the virtual subnet 203.0.113.0/24, the others join, heartbeats go every `delay_ms`
    /// (TestOnlyLowerLimits), and it returns once raft follows that Delay on every node and every
    /// node sees every node Up.
    pub fn boot_cluster(&self, tag: &str, delay_ms: u64, limit: std::time::Duration) -> Vec<Rcm> {
        self.boot_cluster_with(tag, delay_ms, limit, &[], &[])
    }

    /// As `boot_cluster`, with the cluster properties `properties` set with the Delay and the
    /// keelson-rcm arguments `args` on every node.
    pub fn boot_cluster_with(
        &self,
        tag: &str,
        delay_ms: u64,
        limit: std::time::Duration,
        properties: &[(&str, &str)],
        args: &[&str],
    ) -> Vec<Rcm> {
        use keelson_proto::ControlRequest as R;
        let count = self.nodes.len();
        let first = self.boot_with(0, Rcm::new_dir(&format!("{tag}-n1")), args);
        first.ok(R::ClusterCreate {
            name: "lab".into(),
            nodes: (0..count).map(Lab::node_spec).collect(),
            virtual_subnet: Some("203.0.113.0/24".into()),
        });
        let key = first.dir.join("cluster.key").to_string_lossy().into_owned();
        let mut nodes = vec![first];
        for i in 1..count {
            let n = self.boot_with(i, Rcm::new_dir(&format!("{tag}-n{}", i + 1)), args);
            n.ok(R::NodeJoin {
                cluster: "192.0.2.1".into(),
                key_file: key.clone(),
                name: None,
            });
            nodes.push(n);
        }
        let delay = delay_ms.to_string();
        nodes[0].ok(R::ClusterSet {
            properties: [
                ("TestOnlyLowerLimits", "1"),
                ("SameSubnetDelay", delay.as_str()),
                ("CrossSubnetDelay", delay.as_str()),
            ]
            .iter()
            .chain(properties)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        });
        let start = std::time::Instant::now();
        for n in &nodes {
            // Raft follows the new Delay on every node (heartbeats every Delay / 2) ...
            let heartbeat = serde_json::json!(delay_ms / 2);
            while n.ok(R::ClusterStatus)["raft_heartbeat_ms"] != heartbeat {
                assert!(
                    start.elapsed() < limit,
                    "raft on {} did not take Delay {delay_ms} within {limit:?}",
                    n.dir.display()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // ... and every node sees every node Up.
            for peer in (0..count).map(|i| format!("n{}", i + 1)) {
                while n.node_state(&peer) != "Up" {
                    assert!(
                        start.elapsed() < limit,
                        "{peer} not Up on {} within {limit:?}",
                        n.dir.display()
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
        nodes
    }

    /// `/var/run/netns/<node i>`, for entering it from a thread.
    pub fn netns_path(&self, i: usize) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.nodes[i]))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain([&self.switch]) {
            let status = Command::new("ip").args(["netns", "del", ns]).status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("cleanup: ip netns del {ns} failed: {status:?}");
            }
        }
    }
}
