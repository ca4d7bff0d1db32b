//! Database changes of internal events (host deaths, timers: nobody to refuse) that could not be
//! written when they happened. They ride along with the next write, administrator request or not,
//! so the database catches up as soon as it works again; a newer change to the same record replaces
//! an older one. Not the database (crates/store) nor the refusal of administrator requests (core.rs).

use keelson_store::{Change, Store, StoreError};

/// The changes still to be written, oldest first, at most one per record.
#[derive(Default)]
pub struct Unsaved {
    pending: Vec<Change>,
}

impl Unsaved {
    /// Writes `changes` (with everything pending) in one transaction. On failure nothing is
    /// written and the pending set is as before: the caller decides whether `changes` count.
    pub fn save_with(&mut self, store: &mut Store, changes: &[Change]) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return store.apply(changes);
        }
        let all = merged(&self.pending, changes);
        store.apply(&all)?;
        self.pending.clear();
        Ok(())
    }

    /// Writes `changes` like `save_with`; if that fails, keeps them to write with the next change.
    pub fn save_or_keep(
        &mut self,
        store: &mut Store,
        changes: &[Change],
    ) -> Result<(), StoreError> {
        let result = self.save_with(store, changes);
        if result.is_err() {
            self.pending = merged(&self.pending, changes);
        }
        result
    }

    /// How many records wait to be written.
    pub fn len(&self) -> usize {
        self.pending.len()
    }
}

/// `older` then `newer`, a record's older change dropped where a newer one replaces it.
fn merged(older: &[Change], newer: &[Change]) -> Vec<Change> {
    let mut out: Vec<Change> = older
        .iter()
        .filter(|o| !newer.iter().any(|n| n.key() == o.key()))
        .cloned()
        .collect();
    out.extend(newer.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_store::{GroupRecord, ResourceRecord};

    fn put(name: &str, want_online: bool) -> Change {
        Change::PutResource(ResourceRecord {
            name: name.into(),
            want_online,
            ..Default::default()
        })
    }

    #[test]
    fn a_newer_change_to_a_record_replaces_the_older_one() {
        let group = Change::PutGroup(GroupRecord {
            name: "a".into(),
            ..Default::default()
        });
        let older = [put("a", false), put("b", false), group.clone()];
        let newer = [put("a", true), Change::DeleteResource("b".into())];
        assert_eq!(
            merged(&older, &newer),
            [group, put("a", true), Change::DeleteResource("b".into())]
        );
    }
}
