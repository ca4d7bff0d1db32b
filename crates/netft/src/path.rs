//! The virtual adapter's route chooser, pure: from every route's state and its network's Priority,
//! the route each peer's packets take — the Up route of the lowest Priority (ties: the lowest route
//! key, so every node chooses the same way every time), none while no route to the peer is Up. Going
//! Down moves a peer to its next-best route; coming back Up moves it back. Not the states
//! themselves (detector.rs) and not the sending (adapter.rs).

use crate::action::RouteState;
use crate::detector::RouteStatus;
use crate::topology::{NodeId, RouteKey};
use std::collections::BTreeMap;

/// One route as the chooser sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub key: RouteKey,
    pub node: NodeId,
    /// The route's network's Priority: lower is preferred.
    pub priority: u32,
    pub state: RouteState,
}

impl From<&RouteStatus> for Candidate {
    fn from(route: &RouteStatus) -> Self {
        Candidate {
            key: route.key,
            node: route.node,
            priority: route.priority,
            state: route.state,
        }
    }
}

/// A peer whose route changed between two tables (`None`: no live route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathMove {
    pub node: NodeId,
    pub from: Option<Candidate>,
    pub to: Option<Candidate>,
}

/// The chosen route of every peer, and which peer every known route leads to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathTable {
    best: BTreeMap<NodeId, Candidate>,
    routes: BTreeMap<RouteKey, NodeId>,
}

impl PathTable {
    /// Chooses from `routes` (any order).
    pub fn new(routes: &[Candidate]) -> PathTable {
        let mut table = PathTable::default();
        for route in routes {
            table.routes.insert(route.key, route.node);
            if route.state != RouteState::Up {
                continue;
            }
            let better = match table.best.get(&route.node) {
                Some(best) => (route.priority, route.key) < (best.priority, best.key),
                None => true,
            };
            if better {
                table.best.insert(route.node, *route);
            }
        }
        table
    }

    /// The route `node`'s packets take now (None: no route to it is Up).
    pub fn best(&self, node: NodeId) -> Option<Candidate> {
        self.best.get(&node).copied()
    }

    /// The peer a route leads to, whatever its state (None: no such route).
    pub fn node_of(&self, route: &RouteKey) -> Option<NodeId> {
        self.routes.get(route).copied()
    }

    /// Every peer whose chosen route differs in `newer`.
    pub fn moves(&self, newer: &PathTable) -> Vec<PathMove> {
        let mut nodes: Vec<NodeId> = self.best.keys().chain(newer.best.keys()).copied().collect();
        nodes.sort();
        nodes.dedup();
        nodes
            .into_iter()
            .filter_map(|node| {
                let (from, to) = (self.best(node), newer.best(node));
                (from.map(|c| c.key) != to.map(|c| c.key)).then_some(PathMove { node, from, to })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(local: &str, remote: &str, node: u32, priority: u32, state: RouteState) -> Candidate {
        Candidate {
            key: RouteKey {
                local: local.parse().unwrap(),
                remote: remote.parse().unwrap(),
            },
            node: NodeId(node),
            priority,
            state,
        }
    }

    /// Node 2 on two networks (priority 1 and 2), node 3 on the second only.
    fn routes(net1: RouteState, net2: RouteState) -> Vec<Candidate> {
        vec![
            route("198.51.100.1", "198.51.100.2", 2, 2, net2),
            route("192.0.2.1", "192.0.2.2", 2, 1, net1),
            route("198.51.100.1", "198.51.100.3", 3, 2, net2),
        ]
    }

    #[test]
    fn the_lowest_priority_up_route_wins_and_failover_goes_to_the_next_and_back() {
        use RouteState::{Down, Unknown, Up};
        let all_up = PathTable::new(&routes(Up, Up));
        assert_eq!(
            all_up.best(NodeId(2)).unwrap().key.remote.to_string(),
            "192.0.2.2"
        );
        assert_eq!(all_up.best(NodeId(3)).unwrap().priority, 2);

        let net1_down = PathTable::new(&routes(Down, Up));
        let fallback = net1_down.best(NodeId(2)).unwrap();
        assert_eq!(
            (fallback.key.remote.to_string(), fallback.priority),
            ("198.51.100.2".into(), 2)
        );
        let moves = all_up.moves(&net1_down);
        assert_eq!(moves.len(), 1, "only node 2 moves: {moves:?}");
        assert_eq!(moves[0].from.unwrap().priority, 1);
        assert_eq!(moves[0].to.unwrap().priority, 2);

        let back = PathTable::new(&routes(Up, Up));
        assert_eq!(back, all_up, "a route back Up takes its traffic back");
        assert_eq!(net1_down.moves(&back)[0].to.unwrap().priority, 1);

        assert_eq!(
            PathTable::new(&routes(Unknown, Unknown)).best(NodeId(2)),
            None,
            "Unknown is not live"
        );
        let none = PathTable::new(&routes(Down, Down));
        assert_eq!(none.best(NodeId(2)), None);
        assert_eq!(none.best(NodeId(3)), None);
        let gone = net1_down.moves(&none);
        assert_eq!(gone.len(), 2);
        assert!(gone.iter().all(|m| m.to.is_none()));
    }

    #[test]
    fn equal_priorities_choose_the_same_route_in_any_order_and_unknown_peers_have_none() {
        let mut both = vec![
            route("192.0.2.1", "192.0.2.9", 2, 1, RouteState::Up),
            route("192.0.2.1", "192.0.2.2", 2, 1, RouteState::Up),
        ];
        let first = PathTable::new(&both).best(NodeId(2)).unwrap();
        both.reverse();
        assert_eq!(PathTable::new(&both).best(NodeId(2)).unwrap(), first);
        assert_eq!(first.key.remote.to_string(), "192.0.2.2");
        assert_eq!(PathTable::new(&both).best(NodeId(7)), None);
    }

    #[test]
    fn every_route_knows_its_peer_whatever_its_state() {
        let table = PathTable::new(&routes(RouteState::Down, RouteState::Unknown));
        for r in routes(RouteState::Up, RouteState::Up) {
            assert_eq!(table.node_of(&r.key), Some(r.node));
        }
        let stranger = RouteKey {
            local: "192.0.2.1".parse().unwrap(),
            remote: "192.0.2.77".parse().unwrap(),
        };
        assert_eq!(table.node_of(&stranger), None);
    }
}
