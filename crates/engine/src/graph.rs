//! Walks over the dependency graph (edges point from a resource to what it depends on): paths for
//! cycle detection, transitive providers and dependents. Not validation messages (admin.rs).

use crate::resource::Resource;
use keelson_types::ResourceId;
use std::collections::{BTreeMap, BTreeSet};

type Resources = BTreeMap<ResourceId, Resource>;

/// A dependency path `from -> … -> to`, if `from` (transitively) depends on `to`.
pub(crate) fn path(
    resources: &Resources,
    from: ResourceId,
    to: ResourceId,
) -> Option<Vec<ResourceId>> {
    let mut seen = BTreeSet::new();
    let mut trail = vec![from];
    walk(resources, from, to, &mut seen, &mut trail).then_some(trail)
}

fn walk(
    resources: &Resources,
    at: ResourceId,
    to: ResourceId,
    seen: &mut BTreeSet<ResourceId>,
    trail: &mut Vec<ResourceId>,
) -> bool {
    if at == to {
        return true;
    }
    if !seen.insert(at) {
        return false;
    }
    for next in resources
        .get(&at)
        .map(|r| r.depends_on.clone())
        .unwrap_or_default()
    {
        trail.push(next);
        if walk(resources, next, to, seen, trail) {
            return true;
        }
        trail.pop();
    }
    false
}

/// Everything `id` depends on, directly or not (excluding `id`).
pub(crate) fn providers(resources: &Resources, id: ResourceId) -> BTreeSet<ResourceId> {
    closure(id, |r| {
        resources
            .get(&r)
            .map(|x| x.depends_on.iter().copied().collect())
            .unwrap_or_default()
    })
}

/// Everything that depends on `id`, directly or not (excluding `id`).
pub(crate) fn dependents(resources: &Resources, id: ResourceId) -> BTreeSet<ResourceId> {
    closure(id, |r| direct_dependents(resources, r))
}

/// The resources that depend on `id` directly (from the reverse index, not a scan).
pub(crate) fn direct_dependents(resources: &Resources, id: ResourceId) -> Vec<ResourceId> {
    resources
        .get(&id)
        .map(|r| r.dependents.iter().copied().collect())
        .unwrap_or_default()
}

fn closure(
    start: ResourceId,
    next: impl Fn(ResourceId) -> Vec<ResourceId>,
) -> BTreeSet<ResourceId> {
    let mut out = BTreeSet::new();
    let mut todo = next(start);
    while let Some(r) = todo.pop() {
        if r != start && out.insert(r) {
            todo.extend(next(r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::GroupId;

    fn graph(edges: &[(u64, u64)]) -> Resources {
        let mut m = Resources::new();
        for i in 1..=4 {
            let id = ResourceId(i);
            m.insert(
                id,
                Resource::new(id, format!("r{i}"), GroupId(1), "t".into(), "p".into()),
            );
        }
        for (a, b) in edges {
            m.get_mut(&ResourceId(*a))
                .unwrap()
                .depends_on
                .insert(ResourceId(*b));
            m.get_mut(&ResourceId(*b))
                .unwrap()
                .dependents
                .insert(ResourceId(*a));
        }
        m
    }

    #[test]
    fn paths_and_closures() {
        let g = graph(&[(1, 2), (2, 3), (4, 3)]);
        let ids = |v: Vec<ResourceId>| v.into_iter().map(|r| r.0).collect::<Vec<_>>();
        assert_eq!(
            path(&g, ResourceId(1), ResourceId(3)).map(ids),
            Some(vec![1, 2, 3])
        );
        assert_eq!(path(&g, ResourceId(3), ResourceId(1)), None);
        let set = |s: BTreeSet<ResourceId>| s.into_iter().map(|r| r.0).collect::<Vec<_>>();
        assert_eq!(set(providers(&g, ResourceId(1))), vec![2, 3]);
        assert_eq!(set(dependents(&g, ResourceId(3))), vec![1, 2, 4]);
        assert_eq!(
            direct_dependents(&g, ResourceId(3)),
            vec![ResourceId(2), ResourceId(4)]
        );
    }
}
