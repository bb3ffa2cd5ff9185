//! Routing: which caregivers a changed row goes to, and what the ownership
//! index must say afterwards. The decision is a pure function of the
//! table's owner rule, whether the row itself changed, and its owner before
//! (ownership index) and now (read with the row); no I/O, so every case is
//! unit-tested. `Owners` is the ownership index as this cycle sees it: the
//! state, overlaid with the cycle's own decisions until they are committed.
//!
//! Rules: a shared table's changes go to every caregiver; an owned row that
//! kept its owner goes to that owner when it changed; a row whose owner
//! changed (itself or up its owner path) is deleted at the old owner and
//! upserted at the new one; a deleted row goes (as a delete) to the owner
//! that had it, and to no one else.
//!
//! A membership table's row (`owner = { members = [...] }`) has a set of
//! holders: it moves in where it gained a member (with all of it), out
//! where it lost its last one, goes to every holder when it changed, and
//! as a delete to every caregiver that held it when it is deleted
//! (`member_row`). The holders are kept per row (`m/`, (row, member)
//! pairs), and, for each member table's row, the key it references (`f/`).

use crate::config::Owner;
use crate::publisher::state::{Changes, RefId, RowId, State, StateError};
use std::collections::{BTreeSet, HashMap};

/// Where one staged change goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Send<'a> {
    /// The row (upsert) to this caregiver.
    Upsert(&'a str),
    /// The key (delete) to this caregiver.
    Delete(&'a str),
    /// The row to every caregiver (a shared table).
    UpsertAll,
    /// The key to every caregiver (a shared table).
    DeleteAll,
}

/// A routing decision: what to stage, and the row's owner in the index
/// afterwards (`None`: the index stays as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    pub send: Vec<Send<'a>>,
    pub index: Option<Option<&'a str>>,
}

impl Route<'_> {
    fn nothing() -> Self {
        Route {
            send: vec![],
            index: None,
        }
    }
}

/// A row read from CHANGETABLE joined to the table (it exists now).
/// `own_change`: the row itself changed (not only something up its owner
/// path); `old`: its owner per the index; `new`: its owner now.
pub fn changed_row<'a>(
    rule: &Owner,
    own_change: bool,
    old: Option<&'a str>,
    new: Option<&'a str>,
) -> Route<'a> {
    match rule {
        Owner::Shared => Route {
            send: if own_change {
                vec![Send::UpsertAll]
            } else {
                vec![]
            },
            index: None,
        },
        // Membership tables (and their followers) are routed by
        // `member_row`; a caller that gets here treats the direct owner as
        // the only one.
        Owner::Column(_) | Owner::Path { .. } | Owner::Members { .. } | Owner::Follows { .. } => {
            if old == new {
                return Route {
                    send: match new {
                        Some(h) if own_change => vec![Send::Upsert(h)],
                        _ => vec![],
                    },
                    index: None,
                };
            }
            let mut send = Vec::new();
            if let Some(h) = old {
                send.push(Send::Delete(h));
            }
            if let Some(h) = new {
                send.push(Send::Upsert(h));
            }
            Route {
                send,
                index: Some(new),
            }
        }
    }
}

/// A row deleted at the source; `old`: its owner per the index.
pub fn deleted_row<'a>(rule: &Owner, old: Option<&'a str>) -> Route<'a> {
    match rule {
        Owner::Shared => Route {
            send: vec![Send::DeleteAll],
            index: None,
        },
        Owner::Column(_) | Owner::Path { .. } | Owner::Members { .. } | Owner::Follows { .. } => {
            match old {
                Some(h) => Route {
                    send: vec![Send::Delete(h)],
                    index: Some(None),
                },
                None => Route::nothing(),
            }
        }
    }
}

/// A membership table's row: `exists` (read now) or deleted; `own_change`:
/// the row itself changed; `held`: the caregivers that hold it (index);
/// `now`: its members now (empty when deleted). Returns what to send; the
/// index becomes `now`.
pub fn member_row<'a>(
    own_change: bool,
    exists: bool,
    held: &'a BTreeSet<String>,
    now: &'a BTreeSet<String>,
) -> Vec<Send<'a>> {
    let mut send = Vec::new();
    for h in held {
        if !exists || !now.contains(h) {
            send.push(Send::Delete(h));
        }
    }
    if exists {
        for h in now {
            if own_change || !held.contains(h) {
                send.push(Send::Upsert(h));
            }
        }
    }
    send
}

/// The ownership index as this cycle sees it: the state's, overlaid with
/// the cycle's decisions, written into the cycle's commit by `commit`.
pub struct Owners<'s> {
    state: &'s State,
    pending: HashMap<RowId, Option<String>>,
    holders: HashMap<RowId, BTreeSet<String>>,
    refs: HashMap<RefId, Option<Vec<u8>>>,
    /// Caregivers that began a new epoch in this cycle (`forget`).
    forgotten: BTreeSet<String>,
}

impl<'s> Owners<'s> {
    pub fn new(state: &'s State) -> Owners<'s> {
        Owners {
            state,
            pending: HashMap::new(),
            holders: HashMap::new(),
            refs: HashMap::new(),
            forgotten: BTreeSet::new(),
        }
    }

    /// The caregiver that has `row` now.
    pub fn get(&self, row: &RowId) -> Result<Option<String>, StateError> {
        match self.pending.get(row) {
            Some(o) => Ok(o.clone()),
            None => Ok(self
                .state
                .owner(row)?
                .filter(|h| !self.forgotten.contains(h))),
        }
    }

    /// `row` is now `hsa`'s (or no one's).
    pub fn set(&mut self, row: RowId, hsa: Option<String>) {
        self.pending.insert(row, hsa);
    }

    /// The caregivers that hold membership row `row` now.
    pub fn holders(&self, row: &RowId) -> Result<BTreeSet<String>, StateError> {
        match self.holders.get(row) {
            Some(h) => Ok(h.clone()),
            None => self.state.holders(row),
        }
    }

    /// The membership rows this cycle decided holders for (not yet committed).
    pub fn decided_holders(&self) -> impl Iterator<Item = (&RowId, &BTreeSet<String>)> {
        self.holders.iter()
    }

    /// Membership row `row` is now held by `set`.
    pub fn set_holders(&mut self, row: RowId, set: BTreeSet<String>) {
        self.holders.insert(row, set);
    }

    /// The key a member table's row references through a rule.
    pub fn reference(&self, r: &RefId) -> Result<Option<Vec<u8>>, StateError> {
        match self.refs.get(r) {
            Some(k) => Ok(k.clone()),
            None => self.state.reference(r),
        }
    }

    /// The row now references `key` (or nothing, or it is gone).
    pub fn set_reference(&mut self, r: RefId, key: Option<Vec<u8>>) {
        self.refs.insert(r, key);
    }

    /// A new epoch for `hsa` replaces its copy whole: it owns and holds
    /// nothing until its snapshot says what it owns. Its owned rows are not
    /// read: the commit retires its number in the index
    /// (`State::retire_owner`), and until then `get` answers "no one" for
    /// a row the state gives it. (Its membership rows are still read:
    /// `held_by`.)
    pub fn forget(&mut self, hsa: &str) -> Result<(), StateError> {
        self.forgotten.insert(hsa.to_string());
        for o in self.pending.values_mut() {
            if o.as_deref() == Some(hsa) {
                *o = None;
            }
        }
        for (row, set) in self.state.held_by(hsa)? {
            self.holders.entry(row).or_insert(set);
        }
        for set in self.holders.values_mut() {
            set.remove(hsa);
        }
        Ok(())
    }

    /// Writes the cycle's decisions into its commit.
    pub fn commit(self, changes: &mut Changes) -> Result<(), StateError> {
        self.commit_with(Vec::new(), changes)
    }

    /// As `commit`, with `more` decisions made outside it (rows no decision
    /// of its own names: a snapshot batch's, in key order).
    pub fn commit_with(
        self,
        more: Vec<(RowId, Option<String>)>,
        changes: &mut Changes,
    ) -> Result<(), StateError> {
        for h in &self.forgotten {
            self.state.retire_owner(h, changes)?;
        }
        self.state
            .write_owners(self.pending.into_iter().chain(more), changes)?;
        for (row, set) in self.holders {
            changes.set_holders(&row, &set);
        }
        for (r, key) in self.refs {
            changes.set_reference(&r, key.as_deref());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TableName;

    fn rules() -> [Owner; 2] {
        [
            Owner::Column("VardenhetId".into()),
            Owner::Path {
                hops: vec![crate::config::Hop {
                    from_column: "BesokId".into(),
                    table: TableName::parse("dbo.Besok").unwrap(),
                    to_column: "Id".into(),
                }],
                column: "VardenhetId".into(),
            },
        ]
    }

    #[test]
    fn shared_tables_go_to_everyone() {
        let r = changed_row(&Owner::Shared, true, None, None);
        assert_eq!(r.send, vec![Send::UpsertAll]);
        assert_eq!(r.index, None);
        // Read only because something it joins changed: nothing to send.
        assert!(changed_row(&Owner::Shared, false, None, None)
            .send
            .is_empty());
        assert_eq!(
            deleted_row(&Owner::Shared, None).send,
            vec![Send::DeleteAll]
        );
    }

    #[test]
    fn membership_rows_move_in_and_out_with_their_members() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let (ab, bc, none) = (set(&["A", "B"]), set(&["B", "C"]), set(&[]));
        // B stays, A loses its last related row, C gains its first: the row
        // leaves A and arrives at C whole; B needs nothing, unless the row
        // itself changed.
        assert_eq!(
            member_row(false, true, &ab, &bc),
            vec![Send::Delete("A"), Send::Upsert("C")]
        );
        assert_eq!(
            member_row(true, true, &ab, &bc),
            vec![Send::Delete("A"), Send::Upsert("B"), Send::Upsert("C")]
        );
        // Updated, same members: to every member.
        assert_eq!(
            member_row(true, true, &ab, &ab),
            vec![Send::Upsert("A"), Send::Upsert("B")]
        );
        // Read because a related row changed, members unchanged: nothing.
        assert!(member_row(false, true, &ab, &ab).is_empty());
        // Deleted: to every caregiver that held it, and no one else.
        assert_eq!(
            member_row(true, false, &ab, &none),
            vec![Send::Delete("A"), Send::Delete("B")]
        );
        // Never held, no members: nothing at all.
        assert!(member_row(true, true, &none, &none).is_empty());
    }

    #[test]
    fn owned_rows_follow_their_owner() {
        for rule in rules() {
            // Updated in place: to its owner only.
            let r = changed_row(&rule, true, Some("A"), Some("A"));
            assert_eq!((r.send, r.index), (vec![Send::Upsert("A")], None));
            // Unchanged, read because its path was touched: nothing.
            assert_eq!(
                changed_row(&rule, false, Some("A"), Some("A")),
                Route::nothing()
            );
            // New row: in, and indexed.
            let r = changed_row(&rule, true, None, Some("A"));
            assert_eq!(
                (r.send, r.index),
                (vec![Send::Upsert("A")], Some(Some("A")))
            );
            // Moved (itself or up its path, changed or not): out of A, into B.
            for own in [true, false] {
                let r = changed_row(&rule, own, Some("A"), Some("B"));
                assert_eq!(r.send, vec![Send::Delete("A"), Send::Upsert("B")]);
                assert_eq!(r.index, Some(Some("B")));
            }
            // Moved to a care unit no caregiver covers: out of A, to no one.
            let r = changed_row(&rule, true, Some("A"), None);
            assert_eq!((r.send, r.index), (vec![Send::Delete("A")], Some(None)));
            // Owned by no caregiver before or now: nothing at all.
            assert_eq!(changed_row(&rule, true, None, None), Route::nothing());
            // Deleted: to the owner that had it, and out of the index.
            let r = deleted_row(&rule, Some("A"));
            assert_eq!((r.send, r.index), (vec![Send::Delete("A")], Some(None)));
            assert_eq!(deleted_row(&rule, None), Route::nothing());
        }
    }

    /// A caregiver's new epoch: in the cycle that begins it, a row the
    /// state gives it has no owner, a row it gains in that cycle is its,
    /// and after the commit the state says the same; other caregivers keep
    /// theirs.
    #[test]
    fn a_forgotten_caregiver_owns_only_what_it_gains_after() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(dir.path()).unwrap();
        let row = |i: u8| RowId::new("dbo.Besok", &[i]);
        let mut owners = Owners::new(&st);
        owners.set(row(1), Some("A".into()));
        owners.set(row(2), Some("A".into()));
        owners.set(row(3), Some("B".into()));
        let mut c = Changes::default();
        owners.commit(&mut c).unwrap();
        st.commit(c).unwrap();

        let mut owners = Owners::new(&st);
        owners.set(row(4), Some("A".into()));
        owners.forget("A").unwrap();
        owners.set(row(2), Some("A".into()));
        let now = |o: &Owners, i| o.get(&row(i)).unwrap();
        assert_eq!(now(&owners, 1), None, "owned before the new epoch");
        assert_eq!(
            now(&owners, 4),
            None,
            "decided before forget in the same cycle"
        );
        assert_eq!(now(&owners, 2), Some("A".into()), "gained after forget");
        assert_eq!(now(&owners, 3), Some("B".into()));
        let mut c = Changes::default();
        owners.commit(&mut c).unwrap();
        st.commit(c).unwrap();
        for (i, want) in [(1, None), (2, Some("A")), (3, Some("B")), (4, None)] {
            assert_eq!(st.owner(&row(i)).unwrap().as_deref(), want, "row {i}");
        }
    }
}
