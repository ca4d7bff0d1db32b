//! Fault injectors for the partition checker (t21), each a guard that heals what it did when it is
//! healed explicitly or dropped, even while the test panics: a process frozen with SIGSTOP (SIGCONT),
//! links set down from inside a node's namespace or a whole network's bridge set down in the
//! switch namespace (set up again), and drops of a node's cluster traffic with nftables inside
//! that node's namespace, one way or with one peer only (the table deleted). Only the lab's own namespaces, interfaces and
//! addresses. Not which fault to inflict or when (the test), nor kill -9 (rcm.rs).

use super::lab::{Lab, NETWORKS};
use keelson_sys::Signal;
use std::io::Write;
use std::process::{Command, Stdio};

/// The nftables table a one-way drop installs in a node's namespace.
const TABLE: &str = "keelson_t21";

/// Skips (false) a test that needs `nft` when it is missing locally; fails it in CI, which
/// installs nftables (scripts/test).
pub fn nft_or_skip(test: &str) -> bool {
    let found = Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    assert!(
        !super::in_ci(),
        "{test} needs nft (nftables) and CI installs it (scripts/test)"
    );
    eprintln!("skipped: {test} needs nft (apt-get install nftables)");
    false
}

/// Runs `cmd` with `stdin` on its standard input; its stderr on failure.
fn run(cmd: &mut Command, stdin: &str) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.as_bytes())
        .map_err(|e| format!("{shown}: writing its input: {e}"))?;
    drop(input);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A process stopped with SIGSTOP; SIGCONT when thawed or dropped.
pub struct Frozen {
    pid: u32,
    thawed: bool,
}

impl Frozen {
    pub fn stop(pid: u32) -> Frozen {
        assert!(pid > 0, "no process to stop");
        keelson_sys::process::kill(pid, Signal::SIGSTOP)
            .unwrap_or_else(|e| panic!("SIGSTOP {pid}: {e}"));
        Frozen { pid, thawed: false }
    }

    pub fn thaw(mut self) {
        self.thawed = true;
        keelson_sys::process::kill(self.pid, Signal::SIGCONT)
            .unwrap_or_else(|e| panic!("SIGCONT {}: {e}", self.pid));
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            if let Err(e) = keelson_sys::process::kill(self.pid, Signal::SIGCONT) {
                eprintln!("cleanup: SIGCONT {}: {e}", self.pid);
            }
        }
    }
}

/// Links set down in one namespace (a node's interfaces, or a bridge in the switch namespace);
/// up again when healed or dropped.
pub struct LinksDown {
    netns: String,
    links: Vec<String>,
    healed: bool,
}

impl LinksDown {
    /// Node `node`'s `links` (eth1, eth2), from inside its namespace: it sees its carrier go.
    pub fn node(lab: &Lab, node: usize, links: &[&str]) -> LinksDown {
        let known: Vec<&str> = NETWORKS.iter().map(|(inner, _)| *inner).collect();
        assert!(
            links.iter().all(|l| known.contains(l)),
            "{links:?}: not the lab's cluster interfaces {known:?}"
        );
        LinksDown::set(
            &lab.nodes[node],
            links.iter().map(|l| l.to_string()).collect(),
        )
    }

    /// Network `net` (0 for net1) as a whole: its bridge in the switch namespace goes down, so
    /// every node's interface on it keeps its carrier and hears nothing (a silent cut).
    pub fn network(lab: &Lab, net: usize) -> LinksDown {
        assert!(
            net < NETWORKS.len(),
            "network {net}: the lab has {}",
            NETWORKS.len()
        );
        LinksDown::set(&lab.switch, vec![format!("br{}", net + 1)])
    }

    fn set(netns: &str, links: Vec<String>) -> LinksDown {
        for link in &links {
            set_link(netns, link, "down").unwrap_or_else(|e| panic!("{e}"));
        }
        LinksDown {
            netns: netns.to_string(),
            links,
            healed: false,
        }
    }

    pub fn heal(mut self) {
        self.healed = true;
        for link in &self.links {
            set_link(&self.netns, link, "up").unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

impl Drop for LinksDown {
    fn drop(&mut self) {
        if !self.healed {
            for link in &self.links {
                if let Err(e) = set_link(&self.netns, link, "up") {
                    eprintln!("cleanup: {e}");
                }
            }
        }
    }
}

fn set_link(netns: &str, link: &str, state: &str) -> Result<(), String> {
    run(
        Command::new("ip").args(["-n", netns, "link", "set", link, state]),
        "",
    )
}

/// Which way a one-way cut drops a node's cluster traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The node hears nobody; the others still hear it.
    Inbound,
    /// Nobody hears the node; it still hears them.
    Outbound,
}

/// A drop of a node's cluster packets by an nftables table in that node's namespace: one way
/// with everyone, or both ways with one peer only; the table is deleted when healed or dropped.
pub struct NftDrop {
    netns: String,
    healed: bool,
}

impl NftDrop {
    /// Every packet between node `node` and the lab's networks, in `direction` only.
    pub fn one_way(lab: &Lab, node: usize, direction: Direction) -> NftDrop {
        NftDrop::install(lab, node, &one_way_ruleset(direction))
    }

    /// Every packet between node `node` and node `peer` (both from 0), both ways; the rest flows,
    /// so each may still reach the other through nobody but a third node (a non-transitive cut).
    pub fn between(lab: &Lab, node: usize, peer: usize) -> NftDrop {
        assert!(
            node != peer && peer < lab.nodes.len(),
            "nodes {node} and {peer}"
        );
        NftDrop::install(lab, node, &pair_ruleset(peer))
    }

    fn install(lab: &Lab, node: usize, script: &str) -> NftDrop {
        let netns = lab.nodes[node].clone();
        run(
            Command::new("ip").args(["netns", "exec", &netns, "nft", "-f", "-"]),
            script,
        )
        .unwrap_or_else(|e| panic!("nft drop in {netns}: {e}"));
        NftDrop {
            netns,
            healed: false,
        }
    }

    pub fn heal(mut self) {
        self.healed = true;
        self.delete().unwrap_or_else(|e| panic!("{e}"));
    }

    fn delete(&self) -> Result<(), String> {
        run(
            Command::new("ip").args([
                "netns",
                "exec",
                &self.netns,
                "nft",
                "delete",
                "table",
                "inet",
                TABLE,
            ]),
            "",
        )
    }
}

impl Drop for NftDrop {
    fn drop(&mut self) {
        if !self.healed {
            if let Err(e) = self.delete() {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// The lab's cluster interfaces, quoted for nft.
fn lab_links() -> String {
    let links: Vec<String> = NETWORKS.iter().map(|(i, _)| format!("\"{i}\"")).collect();
    links.join(", ")
}

/// The nft script: one chain on the input or output hook dropping packets on the lab's cluster
/// interfaces from (to) the lab's subnets; loopback and everything else untouched.
fn one_way_ruleset(direction: Direction) -> String {
    let subnets: Vec<String> = NETWORKS.iter().map(|(_, s)| format!("{s}.0/24")).collect();
    let (chain, link_match, addr_match) = match direction {
        Direction::Inbound => ("input", "iifname", "saddr"),
        Direction::Outbound => ("output", "oifname", "daddr"),
    };
    format!(
        "table inet {TABLE} {{\n  chain {chain} {{\n    type filter hook {chain} priority 0; policy accept;\n    \
         {link_match} {{ {} }} ip {addr_match} {{ {} }} drop\n  }}\n}}\n",
        lab_links(),
        subnets.join(", ")
    )
}

/// The nft script: packets on the lab's cluster interfaces from and to node `peer`'s addresses
/// dropped, in both directions.
fn pair_ruleset(peer: usize) -> String {
    let addrs: Vec<String> = NETWORKS
        .iter()
        .map(|(_, s)| format!("{s}.{}", peer + 1))
        .collect();
    let (links, addrs) = (lab_links(), addrs.join(", "));
    format!(
        "table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
         iifname {{ {links} }} ip saddr {{ {addrs} }} drop\n  }}\n  chain output {{\n    \
         type filter hook output priority 0; policy accept;\n    \
         oifname {{ {links} }} ip daddr {{ {addrs} }} drop\n  }}\n}}\n"
    )
}
