//! The benchmark's network: one namespace per node and a "switch" namespace of the benchmark's
//! own holding two bridges, one per cluster network. Node i gets veth `cl1` (192.0.2.i/24, net1)
//! and `cl2` (198.51.100.i/24, net2), whose other ends `s<i>a`/`s<i>b` are ports of bridges br1 and
//! br2. Names carry the benchmark's pid; everything is removed on drop and registered with
//! cleanup.rs in case the run is interrupted. Not the nodes (nodes.rs) or the link cuts (switch.rs).

use crate::cleanup::{self, Item, NETNS_PREFIX};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;

/// The two cluster networks: name, node-side adapter, subnet prefix (documentation ranges only).
pub const NETWORKS: [(&str, &str, [u8; 3]); 2] = [
    ("net1", "cl1", [192, 0, 2]),
    ("net2", "cl2", [198, 51, 100]),
];

/// Runs `ip ARGS`; the error names the command and quotes ip's complaint.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// The namespaces and links; removed on drop.
pub struct Lab {
    pub nodes: usize,
    pub switch: String,
    node_names: Vec<String>,
}

impl Lab {
    /// Builds `nodes` node namespaces on two bridged networks (at most 250 nodes).
    pub fn create(nodes: usize) -> Result<Lab, String> {
        assert!((2..=250).contains(&nodes), "2..=250 nodes");
        let pid = std::process::id();
        let mut lab = Lab {
            nodes,
            switch: format!("{NETNS_PREFIX}{pid}sw"),
            node_names: Vec::new(),
        };
        lab.add_netns(lab.switch.clone())?;
        for (k, _) in NETWORKS.iter().enumerate() {
            let bridge = format!("br{}", k + 1);
            ip(&["-n", &lab.switch, "link", "add", &bridge, "type", "bridge"])?;
            ip(&["-n", &lab.switch, "link", "set", &bridge, "up"])?;
        }
        for i in 1..=nodes {
            lab.add_node(i)?;
        }
        Ok(lab)
    }

    fn add_netns(&mut self, name: String) -> Result<(), String> {
        ip(&["netns", "add", &name])?;
        cleanup::register(Item::Netns(name.clone()));
        self.node_names.push(name);
        Ok(())
    }

    fn add_node(&mut self, i: usize) -> Result<(), String> {
        let ns = self.netns(i);
        self.add_netns(ns.clone())?;
        for (k, (_, adapter, _)) in NETWORKS.iter().enumerate() {
            let port = Self::switch_port(i, k);
            // Explicit, distinct ifindexes: the kernel passes a veth's carrier change on at once
            // only when its ifindex differs from its peer's (linkwatch's "urgent" test).
            let (node_index, port_index) = (10 + k as u32, Self::switch_port_index(i, k));
            ip(&[
                "link",
                "add",
                adapter,
                "index",
                &node_index.to_string(),
                "netns",
                &ns,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "index",
                &port_index.to_string(),
                "netns",
                &self.switch,
            ])?;
            let bridge = format!("br{}", k + 1);
            ip(&["-n", &self.switch, "link", "set", &port, "master", &bridge])?;
            ip(&["-n", &self.switch, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", Self::addr(i, k));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", adapter])?;
            ip(&["-n", &ns, "link", "set", adapter, "up"])?;
        }
        Ok(())
    }

    /// Node i's namespace name.
    pub fn netns(&self, i: usize) -> String {
        format!("{NETNS_PREFIX}{}n{i}", std::process::id())
    }

    pub fn netns_path(&self, i: usize) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.netns(i)))
    }

    pub fn switch_path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.switch))
    }

    /// Node i's address on network k (0 or 1).
    pub fn addr(i: usize, k: usize) -> IpAddr {
        let [a, b, c] = NETWORKS[k].2;
        IpAddr::V4(Ipv4Addr::new(a, b, c, i as u8))
    }

    /// The switch-side end of node i's link on network k.
    pub fn switch_port(i: usize, k: usize) -> String {
        format!("s{i}{}", if k == 0 { 'a' } else { 'b' })
    }

    /// Its ifindex inside the switch namespace.
    pub fn switch_port_index(i: usize, k: usize) -> u32 {
        1000 + 10 * i as u32 + k as u32
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth ends inside it, and with them the pairs.
        for name in self.node_names.drain(..).rev() {
            cleanup::remove(&Item::Netns(name));
        }
    }
}
