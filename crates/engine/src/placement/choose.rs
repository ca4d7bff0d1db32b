//! Choosing a group's owner: PreferredOwners order, then the Up, unpaused node with the fewest
//! groups, ties by name. A pure function over what the leader knows. Not when to move (rules.rs).

use std::collections::BTreeMap;

/// The owner for a group with `preferred` owners among `eligible` nodes (Up, unpaused, not
/// excluded), given how many groups each node owns (`load`, the group itself not counted).
pub fn choose_owner(
    preferred: &[String],
    eligible: &[String],
    load: &BTreeMap<String, usize>,
) -> Option<String> {
    if let Some(p) = preferred.iter().find(|p| eligible.contains(p)) {
        return Some(p.clone());
    }
    eligible
        .iter()
        .min_by_key(|n| (load.get(*n).copied().unwrap_or(0), n.as_str()))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_first_eligible_preferred_owner_wins() {
        let load = BTreeMap::from([("a".to_string(), 0)]);
        let got = choose_owner(&names(&["c", "b"]), &names(&["a", "b"]), &load);
        assert_eq!(got.as_deref(), Some("b"));
    }

    #[test]
    fn else_the_fewest_groups_then_the_name() {
        let load = BTreeMap::from([
            ("a".to_string(), 2),
            ("b".to_string(), 1),
            ("c".to_string(), 1),
        ]);
        let got = choose_owner(&names(&["z"]), &names(&["a", "c", "b"]), &load);
        assert_eq!(got.as_deref(), Some("b"));
        assert_eq!(choose_owner(&[], &[], &load), None);
    }
}
