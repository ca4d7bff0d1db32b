//! The network of `keelson demo cluster`, built with iproute2 (`ip`): a switch namespace with two
//! bridges (net1 192.0.2.0/24, net2 198.51.100.0/24), three node namespaces on both networks (node
//! i at 192.0.2.i on eth1 and 198.51.100.i on eth2) and a client namespace on net2 only
//! (198.51.100.100). Names carry the demo's pid, so two runs never collide, and everything is
//! removed by `remove` or, failing that, on drop; namespaces a killed earlier run left behind are
//! removed by the next one. Not the processes that run inside (node.rs).

use anyhow::{bail, Context, Result};
use std::process::Command;

/// The two cluster networks: (name, interface inside a node, /24 prefix).
pub const NETWORKS: [(&str, &str, &str); 2] =
    [("net1", "eth1", "192.0.2"), ("net2", "eth2", "198.51.100")];
/// The client's host number on net2.
const CLIENT_HOST: u8 = 100;
/// Every namespace name this demo makes starts with this, then the pid.
const PREFIX: &str = "kdemo";

/// The namespaces of one run; removed on drop unless `remove` did it.
#[derive(Debug)]
pub struct Lab {
    pub switch: String,
    pub nodes: Vec<String>,
    pub client: String,
    /// Every namespace created so far, in creation order.
    created: Vec<String>,
}

impl Lab {
    /// Builds the switch, `count` nodes and the client. A failure part-way removes what was made
    /// (the drop of the partial lab).
    pub fn create(count: usize) -> Result<Lab> {
        let base = format!("{PREFIX}{}", std::process::id());
        let mut lab = Lab {
            switch: format!("{base}sw"),
            nodes: (1..=count).map(|i| format!("{base}n{i}")).collect(),
            client: format!("{base}cl"),
            created: Vec::new(),
        };
        lab.add_switch()?;
        for i in 0..count {
            lab.add_node(i)?;
        }
        lab.add_client()?;
        Ok(lab)
    }

    fn add_namespace(&mut self, name: &str) -> Result<()> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"])
    }

    fn add_switch(&mut self) -> Result<()> {
        let sw = self.switch.clone();
        self.add_namespace(&sw)?;
        for net in 1..=NETWORKS.len() {
            let br = format!("br{net}");
            ip(&["-n", &sw, "link", "add", &br, "type", "bridge"])?;
            ip(&["-n", &sw, "link", "set", &br, "up"])?;
        }
        Ok(())
    }

    fn add_node(&mut self, i: usize) -> Result<()> {
        let ns = self.nodes[i].clone();
        self.add_namespace(&ns)?;
        for (net, (_, inner, _)) in NETWORKS.iter().enumerate() {
            let addr = Lab::node_addr(i, net);
            self.plug(&ns, inner, &Lab::port(i, net), net, &addr)?;
        }
        Ok(())
    }

    fn add_client(&mut self) -> Result<()> {
        let ns = self.client.clone();
        self.add_namespace(&ns)?;
        self.plug(&ns, "eth2", "pcln2", 1, &Lab::client_addr())
    }

    /// A veth pair from `inner` in `ns` to `outer` on bridge `net` of the switch, `addr`/24 inside.
    fn plug(&self, ns: &str, inner: &str, outer: &str, net: usize, addr: &str) -> Result<()> {
        let sw = self.switch.as_str();
        ip(&[
            "link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", sw,
        ])?;
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", inner])?;
        ip(&["-n", ns, "link", "set", inner, "up"])?;
        let br = format!("br{}", net + 1);
        ip(&["-n", sw, "link", "set", outer, "master", &br])?;
        ip(&["-n", sw, "link", "set", outer, "up"])
    }

    /// Node `i`'s (from 0) address on network `net` (from 0).
    pub fn node_addr(i: usize, net: usize) -> String {
        format!("{}.{}", NETWORKS[net].2, i + 1)
    }

    pub fn client_addr() -> String {
        format!("{}.{CLIENT_HOST}", NETWORKS[1].2)
    }

    /// The switch-side end of node `i`'s link to network `net`.
    pub fn port(i: usize, net: usize) -> String {
        format!("p{}n{}", i + 1, net + 1)
    }

    /// Sets node `i`'s port on network `net` down or up at the switch, like a cable pulled and
    /// plugged back: the node's own end loses its carrier.
    pub fn set_port(&self, i: usize, net: usize, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.switch, "link", "set", &Lab::port(i, net), state])
    }

    /// Every namespace of this run.
    pub fn names(&self) -> Vec<String> {
        self.created.clone()
    }

    /// Deletes every namespace (a failure is printed), then checks with `ip netns list` that none
    /// is left; returns the names still listed (empty when all went).
    pub fn remove(&mut self) -> Result<Vec<String>> {
        let names = std::mem::take(&mut self.created);
        delete_all(&names);
        let listed = netns_list()?;
        Ok(names.into_iter().filter(|n| listed.contains(n)).collect())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        delete_all(&self.created);
    }
}

/// `ip netns del` of each, last created first; a failure is printed and the rest still go.
fn delete_all(names: &[String]) {
    for ns in names.iter().rev() {
        if let Err(e) = ip(&["netns", "del", ns]) {
            eprintln!("keelson demo cluster: cleanup: {e:#}");
        }
    }
}

/// Runs `ip ARGS`; an error names the command and quotes ip's stderr.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("cannot run ip {} (is iproute2 installed?)", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The names `ip netns list` shows.
pub fn netns_list() -> Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("cannot run ip netns list")?;
    if !out.status.success() {
        bail!(
            "ip netns list failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// The pid in a name this demo made (`kdemo<pid>…`), if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let suffix = &rest[digits.len()..];
    let ours = ["sw", "cl"].contains(&suffix)
        || suffix
            .strip_prefix('n')
            .is_some_and(|n| n.parse::<u8>().is_ok());
    if ours {
        digits.parse().ok()
    } else {
        None
    }
}

/// Removes the namespaces of earlier runs whose process is gone (a SIGKILLed demo cannot clean
/// up after itself); returns their names.
pub fn remove_leftovers() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in netns_list()? {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid != std::process::id() && !keelson_sys::process::is_alive(pid) {
            ip(&["netns", "del", &name])?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_demos_names_carry_a_pid() {
        assert_eq!(owner_pid("kdemo123sw"), Some(123));
        assert_eq!(owner_pid("kdemo123n2"), Some(123));
        assert_eq!(owner_pid("kdemo123cl"), Some(123));
        assert_eq!(owner_pid("kdemo123x"), None);
        assert_eq!(owner_pid("kf123n1"), None);
        assert_eq!(owner_pid("kdemosw"), None);
    }

    #[test]
    fn addresses_stay_in_the_documentation_ranges() {
        assert_eq!(Lab::node_addr(0, 0), "192.0.2.1");
        assert_eq!(Lab::node_addr(2, 1), "198.51.100.3");
        assert_eq!(Lab::client_addr(), "198.51.100.100");
        assert_eq!(Lab::port(1, 0), "p2n1");
    }
}
