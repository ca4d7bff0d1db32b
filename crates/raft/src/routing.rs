//! Where this node connects to reach a peer: the address raft's membership records for it
//! (`ClusterNode::addr`, a physical cluster address) unless an override names another, such as
//! the peer's address on the NetFT virtual adapter once that adapter is up. Every change bumps a
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
    pub generation: u64,
}

#[derive(Debug, Default)]
struct Table {
    /// Node name -> `ADDR:PORT` to use instead of its membership address.
    overrides: BTreeMap<String, String>,
    generation: u64,
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
        Route {
            addr: table
                .overrides
                .get(&node.name)
                .cloned()
                .unwrap_or_else(|| node.addr.clone()),
            generation: table.generation,
        }
    }

    /// The generation of the table now.
    pub fn generation(&self) -> u64 {
        self.0.read().unwrap_or_else(|p| p.into_inner()).generation
    }

    /// Replaces every override (an empty map: back to the membership addresses). Connections
    /// opened before are not reused once this returns.
    pub fn set_overrides(&self, overrides: BTreeMap<String, String>) {
        let mut table = self.0.write().unwrap_or_else(|p| p.into_inner());
        if table.overrides != overrides {
            table.overrides = overrides;
            table.generation += 1;
        }
    }

    /// The overrides in force.
    pub fn overrides(&self) -> BTreeMap<String, String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .overrides
            .clone()
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
                generation: 0
            }
        );
        let virt = BTreeMap::from([("n2".to_string(), "203.0.113.2:3344".to_string())]);
        routing.set_overrides(virt.clone());
        assert_eq!(routing.route(&n2).addr, "203.0.113.2:3344");
        assert_eq!(routing.route(&n2).generation, 1);
        assert_eq!(
            routing.route(&node("n3", "192.0.2.3:3344")).addr,
            "192.0.2.3:3344",
            "a peer without an override keeps its membership address"
        );
        routing.set_overrides(virt);
        assert_eq!(routing.generation(), 1, "the same table is no change");
        routing.set_overrides(BTreeMap::new());
        assert_eq!(routing.route(&n2).addr, "192.0.2.2:3344");
        assert_eq!(routing.generation(), 2);
    }
}
