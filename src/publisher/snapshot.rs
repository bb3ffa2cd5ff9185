//! A caregiver's snapshot: every row it owns, of every published table, read
//! in the cycle's snapshot transaction (so it agrees with the version V the
//! cycle commits) and written as the first package(s) of a new epoch.
//!
//! Contract: the new epoch replaces the copy whole, so the caregiver's stage
//! and its pending table changes (`k/`) are dropped and the ownership index forgets its rows (and the membership
//! rows it held), then learns them again from the snapshot, with the keys
//! its member tables' rows reference; all of it goes into the cycle's one commit,
//! after the package files are durable (`failpoint` `snapshot-written`).

use crate::config::{Owner, SubscriberConfig};
use crate::failpoint;
use crate::format::package::{Kind, PackageError, PackageWriter};
use crate::format::value::Value;
use crate::mssql::client::{self, Db, Param};
use crate::mssql::sql::source as sql;
use crate::publisher::catalog::TableInfo;
use crate::publisher::error::PublishError;
use crate::publisher::membership::{self, Refs, Rule};
use crate::publisher::packager::{Next, Packager};
use crate::publisher::report::CycleReport;
use crate::publisher::route::Owners;
use crate::publisher::stage::key_bytes;
use crate::publisher::state::{Changes, RefId, RowId, State, SubscriberState};

/// Who gets a snapshot, and why.
pub struct Onboard<'a> {
    pub subscriber: &'a SubscriberConfig,
    /// Its position in the configuration (its key in the packager).
    pub index: usize,
    pub state: &'a SubscriberState,
    pub why: &'a str,
}

/// Writes `o`'s snapshot of `tables` at version `v` and registers it in
/// `changes` (see the module doc).
#[allow(clippy::too_many_arguments)]
pub fn write(
    db: &mut Db,
    state: &State,
    packager: &mut Packager<'_>,
    o: Onboard<'_>,
    tables: &[TableInfo],
    v: i64,
    as_of: Option<String>,
    owners: &mut Owners<'_>,
    changes: &mut Changes,
    report: &mut CycleReport,
) -> Result<(), PublishError> {
    let s = o.subscriber;
    for staged in state.staged(&s.hsa_id)? {
        changes.unstage(&staged.id);
    }
    // The snapshot re-creates every table as published now.
    for (table, _) in state.copy_tables(&s.hsa_id)? {
        changes.set_copy_table(&s.hsa_id, &table, None);
    }
    owners.forget(&s.hsa_id)?;
    let mut st = o.state.clone();
    let epoch = st.epoch + 1;
    let template = packager.template(Next {
        subscriber: s,
        state: &st,
        epoch,
        kind: Kind::Snapshot,
        ct_from: None,
        ct_to: v,
        as_of,
    });
    let mut w = PackageWriter::new(packager.writer_config(o.index)?, template);
    let params: Vec<Param> = s.keys.iter().map(|k| Param::Str(k.clone())).collect();
    let mut owned: Vec<RowId> = Vec::new();
    let rules = Rule::all(tables);
    let mut held: Vec<RowId> = Vec::new();
    let mut refs: Vec<(RefId, Option<Vec<u8>>)> = Vec::new();
    for t in tables {
        let ti = w.add_table(t.schema.clone())?;
        let membership = t.cfg.owner.is_membership();
        let shared = t.cfg.owner == Owner::Shared;
        let name = t.schema.name.clone();
        let mine = Refs::of(t, &rules);
        let q = sql::snapshot_rows(
            &membership::holding(t, tables),
            &t.select,
            s.keys.len(),
            &mine.cols,
        );
        let mut failure: Option<PackageError> = None;
        db.query(
            &format!("reading the snapshot of {name} for {}", s.hsa_id),
            &q,
            if shared { &[] } else { &params },
            |r| {
                let mut vals = Vec::with_capacity(t.schema.columns.len());
                for (ci, c) in t.schema.columns.iter().enumerate() {
                    vals.push(client::value(r, ci + 1, &c.name, &c.ty)?);
                }
                if !shared {
                    let key: Vec<Value> = t.key_pos.iter().map(|p| vals[*p].clone()).collect();
                    let row = RowId::new(&name, &key_bytes(&key));
                    let referenced = mine.read(r, 1 + t.schema.columns.len())?;
                    for (m, k) in mine.keys(&referenced) {
                        refs.push((RefId::new(&m.id, &row), k));
                    }
                    if membership {
                        held.push(row);
                    } else {
                        owned.push(row);
                    }
                }
                if failure.is_none() {
                    if let Err(e) = w.upsert(ti, &vals) {
                        failure = Some(e);
                    }
                }
                Ok(())
            },
        )?;
        report.statements += 1;
        if let Some(e) = failure {
            return Err(e.into());
        }
    }
    let written = w.finish()?;
    failpoint::hit("snapshot-written");
    owners.reserve(owned.len());
    for row in owned {
        owners.set(row, Some(s.hsa_id.clone()));
    }
    for row in held {
        let mut set = owners.holders(&row)?;
        set.insert(s.hsa_id.clone());
        owners.set_holders(row, set);
    }
    for (r, k) in refs {
        owners.set_reference(r, k);
    }
    st.epoch = epoch;
    st.keys = {
        let mut k = s.keys.clone();
        k.sort();
        k
    };
    st.needs_snapshot = None;
    packager.register(
        s,
        &mut st,
        &written,
        "snapshot",
        Some(o.why.to_string()),
        changes,
        report,
    );
    changes.set_subscriber(&s.hsa_id, &st);
    report.snapshots.push((s.hsa_id.clone(), o.why.to_string()));
    Ok(())
}
