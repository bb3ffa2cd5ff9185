//! Delta packages: every due caregiver's stage drains into its next package.
//!
//! Contract: a caregiver is due when its interval has passed since its last
//! package (or always with `ctferry once`); its staged changes are written
//! in key order with the table schemas as published. A table whose copy
//! differs from what is published (`k/`, `reshape`) comes first, with the
//! table change (format 2) that brings the copy to the published shape
//! before its rows; a table whose rows are all staged again (reload) sends
//! no deletes. The package is registered in one commit with the removal of
//! exactly what it drained and of the copy differences it resolved, after
//! the file is durable (`failpoint` `delta-written`). A crash before the
//! commit leaves the stage as it was: the next cycle writes the same
//! package again.

use crate::config::{Config, SubscriberConfig};
use crate::failpoint;
use crate::format::package::{Kind, PackageWriter};
use crate::publisher::catalog::TableInfo;
use crate::publisher::error::PublishError;
use crate::publisher::packager::{Next, Packager};
use crate::publisher::report::CycleReport;
use crate::publisher::reshape;
use crate::publisher::stage::Op;
use crate::publisher::state::{Changes, Staged, State, SubscriberState};
use crate::time::{self, Time};
use std::collections::HashMap;

/// Whether caregiver `s` is due for a package at `now` (`all_due`: always).
pub fn due(s: &SubscriberConfig, st: &SubscriberState, all_due: bool, now: Time) -> bool {
    if all_due {
        return true;
    }
    match st.last_package_at.as_deref().and_then(time::parse) {
        None => true,
        Some(t) => now
            .signed_duration_since(t)
            .to_std()
            .map(|a| a >= s.interval)
            .unwrap_or(false),
    }
}

/// The published tables as the state remembers them, by name.
fn published_tables(
    cfg: &Config,
    state: &State,
) -> Result<HashMap<String, TableInfo>, PublishError> {
    let mut infos = HashMap::new();
    for t in &cfg.tables {
        let name = t.name.to_string();
        if let Some(schema) = state.table_schema(&name)? {
            infos.insert(name, schema.table_info(t));
        }
    }
    Ok(infos)
}

/// Drains every due caregiver's stage into its next delta package.
pub fn package_all(
    cfg: &Config,
    state: &State,
    packager: &mut Packager<'_>,
    report: &mut CycleReport,
    all_due: bool,
) -> Result<(), PublishError> {
    let w = state.watermark()?.unwrap_or(0);
    let mut infos: HashMap<String, TableInfo> = HashMap::new();
    for (i, s) in cfg.subscribers.iter().enumerate() {
        let Some(mut st) = state.subscriber(&s.hsa_id)? else {
            continue;
        };
        // A snapshot under way: its epoch's deltas follow its last part.
        if st.epoch == 0 || st.snapshot.is_some() || !due(s, &st, all_due, time::now()) {
            continue;
        }
        let staged = state.staged(&s.hsa_id)?;
        let copies = state.copy_tables(&s.hsa_id)?;
        if staged.is_empty() && copies.is_empty() {
            continue;
        }
        if let Some(why) = packager.recipient_problem(i) {
            report.key_problems.push((s.hsa_id.clone(), why));
            continue;
        }
        if infos.is_empty() {
            infos = published_tables(cfg, state)?;
        }
        let template = packager.template(Next {
            subscriber: s,
            state: &st,
            epoch: st.epoch,
            kind: Kind::Delta,
            ct_from: st.version,
            ct_to: w,
            as_of: state.watermark_time()?,
        });
        let mut writer = PackageWriter::new(packager.writer_config(i)?, template);
        let mut handles: HashMap<String, usize> = HashMap::new();
        let mut drained = Changes::default();
        // Tables whose rows are all staged again: no deletes.
        let mut reloads: Vec<String> = Vec::new();
        let mut told: Vec<String> = Vec::new();
        for (table, copy) in &copies {
            drained.set_copy_table(&s.hsa_id, table, None);
            let info = infos.get(table);
            let change = reshape::table_change(copy, info).map_err(|detail| {
                PublishError::StagedUnreadable {
                    table: table.clone(),
                    detail,
                }
            })?;
            let Some(change) = change else { continue };
            let schema = match info {
                Some(info) => info.schema.clone(),
                // Dropped: described as the copy has it.
                None => match &copy.schema {
                    Some(was) => was.table_schema(table),
                    None => continue,
                },
            };
            if change.reloads() {
                reloads.push(table.clone());
            }
            told.push(format!("{table}: {}", change.describe()));
            let h = writer.add_changed_table(schema, Some(change))?;
            handles.insert(table.clone(), h);
        }
        for Staged { id, table, op } in &staged {
            let Some(info) = infos.get(table) else {
                return Err(PublishError::NoLongerPublished {
                    table: table.clone(),
                    subscriber: s.hsa_id.clone(),
                });
            };
            let ti = match handles.get(table) {
                Some(h) => *h,
                None => {
                    let h = writer.add_table(info.schema.clone())?;
                    handles.insert(table.clone(), h);
                    h
                }
            };
            match Op::decode(op, info).map_err(|e| PublishError::StagedUnreadable {
                table: table.clone(),
                detail: e.to_string(),
            })? {
                Op::Upsert(vals) => writer.upsert(ti, &vals)?,
                Op::Delete(_) if reloads.contains(table) => {}
                Op::Delete(key) => writer.delete(ti, &key)?,
            }
            drained.unstage(id);
        }
        if handles.is_empty() {
            // Copy differences that came to nothing (a change undone before
            // it was delivered): forgotten, no package.
            drained.set_subscriber(&s.hsa_id, &st);
            state.commit(drained)?;
            continue;
        }
        let written = writer.finish()?;
        failpoint::hit("delta-written");
        let detail = (!told.is_empty()).then(|| format!("table changes: {}", told.join("; ")));
        packager.register(s, &mut st, &written, "delta", detail, &mut drained, report);
        drained.set_subscriber(&s.hsa_id, &st);
        state.commit(drained)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Deliver;
    use std::time::Duration;

    #[test]
    fn due_after_the_interval() {
        let s = SubscriberConfig {
            hsa_id: "SE-1".into(),
            name: "one".into(),
            keys: vec!["U1".into()],
            public_key: "k.asc".into(),
            interval: Duration::from_secs(900),
            deliver: Deliver::Folder("out".into()),
        };
        let now = time::parse("2026-11-27T12:00:00Z").unwrap();
        let st = |last: Option<&str>| SubscriberState {
            epoch: 1,
            last_package_at: last.map(str::to_string),
            ..Default::default()
        };
        assert!(due(&s, &st(None), false, now));
        assert!(due(&s, &st(Some("2026-11-27T11:45:00Z")), false, now));
        assert!(!due(&s, &st(Some("2026-11-27T11:45:01Z")), false, now));
        assert!(due(&s, &st(Some("2026-11-27T11:59:59Z")), true, now));
    }
}
