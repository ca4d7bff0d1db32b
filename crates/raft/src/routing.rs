//! Where this node connects to reach a peer: the address raft's membership records for it
//! (`ClusterNode::addr`, a physical cluster address) unless an override names another, such as
//! the peer's address on the NetFT virtual adapter once that adapter is up, or (`@NAME=ADDR:PORT`)
//! "wherever node NAME is reached, else ADDR:PORT", for a voter hosted by another node. Overrides come in layers, one per
//! source (`virtual-adapter`, `witness`), each replaced on its own. Every change bumps a
//! generation, so a connection opened under an older one is dropped and the next call reconnects
//! to the new address. Not the connection itself (network.rs, client.rs) nor who sets the
//! overrides (keelson-rcm).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::ClusterNode;

/// Where to connect for one peer, and the generation of the table it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub addr: String,
    /// The membership address, when an override replaced it: tried when `addr` cannot be
    /// connected to (the virtual adapter restarting, say).
    pub fallback: Option<String>,
    pub generation: u64,
}

impl Route {
    /// The addresses to try, in order.
    pub fn candidates(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.addr.as_str()).chain(self.fallback.as_deref())
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Source -> (node name -> `ADDR:PORT` or `@NAME=ADDR:PORT` to use instead of its membership
    /// address).
    layers: BTreeMap<String, BTreeMap<String, String>>,
    generation: u64,
}

impl Table {
    fn lookup(&self, name: &str) -> Option<&String> {
        self.layers.values().find_map(|layer| layer.get(name))
    }
}

/// A shared, changeable table of address overrides by node name; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Routing(Arc<RwLock<Table>>);

impl Routing {
    /// A table with no overrides: every peer is reached at its membership address.
    pub fn direct() -> Routing {
        Routing::default()
    }

    /// The address to reach `node` at now.
    pub fn route(&self, node: &ClusterNode) -> Route {
        let table = self.0.read().unwrap_or_else(|p| p.into_inner());
        let mut addr = table.lookup(&node.name).cloned();
        if let Some((host, fallback)) = addr
            .as_deref()
            .and_then(|a| a.strip_prefix('@'))
            .and_then(|a| a.split_once('='))
        {
            // Hosted by another node: reached where that node is (one level, never a loop).
            let hosted = table.lookup(host).filter(|a| !a.starts_with('@'));
            addr = Some(hosted.map_or(fallback, String::as_str).to_string());
        }
        let fallback = addr
            .as_ref()
            .filter(|a| **a != node.addr && !node.addr.is_empty())
            .map(|_| node.addr.clone());
        Route {
            addr: addr.unwrap_or_else(|| node.addr.clone()),
            fallback,
            generation: table.generation,
        }
    }

    /// The generation of the table now.
    pub fn generation(&self) -> u64 {
        self.0.read().unwrap_or_else(|p| p.into_inner()).generation
    }

    /// Replaces the overrides from `source` (an empty map removes them). Connections opened
    /// before are not reused once this returns. A name in two layers takes the first source's in
    /// name order.
    pub fn set_overrides(&self, source: &str, overrides: BTreeMap<String, String>) {
        let mut table = self.0.write().unwrap_or_else(|p| p.into_inner());
        let old = table.layers.get(source).cloned().unwrap_or_default();
        if old != overrides {
            if overrides.is_empty() {
                table.layers.remove(source);
            } else {
                table.layers.insert(source.to_string(), overrides);
            }
            table.generation += 1;
        }
    }

    /// The overrides from `source` in force.
    pub fn overrides(&self, source: &str) -> BTreeMap<String, String> {
        let table = self.0.read().unwrap_or_else(|p| p.into_inner());
        table.layers.get(source).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, addr: &str) -> ClusterNode {
        ClusterNode {
            name: name.into(),
            addr: addr.into(),
        }
    }

    #[test]
    fn overrides_win_and_every_change_bumps_the_generation() {
        let routing = Routing::direct();
        let n2 = node("n2", "192.0.2.2:3344");
        assert_eq!(
            routing.route(&n2),
            Route {
                addr: "192.0.2.2:3344".into(),
                fallback: None,
                generation: 0
            }
        );
        let virt = BTreeMap::from([("n2".to_string(), "203.0.113.2:3344".to_string())]);
        routing.set_overrides("virtual-adapter", virt.clone());
        assert_eq!(routing.route(&n2).addr, "203.0.113.2:3344");
        assert_eq!(
            routing.route(&n2).candidates().collect::<Vec<_>>(),
            ["203.0.113.2:3344", "192.0.2.2:3344"],
            "the membership address is the fallback"
        );
        assert_eq!(routing.route(&n2).generation, 1);
        assert_eq!(
            routing.route(&node("n3", "192.0.2.3:3344")).addr,
            "192.0.2.3:3344",
            "a peer without an override keeps its membership address"
        );
        routing.set_overrides("virtual-adapter", virt);
        assert_eq!(routing.generation(), 1, "the same table is no change");
        routing.set_overrides(
            "witness",
            BTreeMap::from([("witness".to_string(), "@n2=192.0.2.2:3344".to_string())]),
        );
        assert_eq!(
            routing.route(&node("witness", "")).addr,
            "203.0.113.2:3344",
            "a hosted voter is reached where its host is"
        );
        routing.set_overrides("virtual-adapter", BTreeMap::new());
        assert_eq!(routing.route(&n2).addr, "192.0.2.2:3344");
        assert_eq!(
            routing.route(&node("witness", "")).addr,
            "192.0.2.2:3344",
            "a host with no override: the host's own address"
        );
        assert_eq!(routing.generation(), 3);
        assert_eq!(routing.overrides("witness").len(), 1);
    }
}
