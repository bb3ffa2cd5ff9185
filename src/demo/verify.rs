//! The demo's checks: each copy equals its caregiver's filtered, masked
//! source, and holds nothing of the others.

use super::data::{Caregiver, TABLES};
use super::error::DemoError;
use crate::mssql::client::{self, Db, Param};

/// Every row of a result as text, in order (types compared exactly: the
/// copy's columns have the source's types).
pub fn rows_text(db: &mut Db, sql: &str, params: &[Param]) -> Result<Vec<String>, DemoError> {
    let mut out = Vec::new();
    db.query("reading rows to compare", sql, params, |r| {
        out.push(client::row_debug(r));
        Ok(())
    })?;
    Ok(out)
}

/// Compares every table of one caregiver's copy with its filtered, masked source.
pub fn verify(src: &mut Db, copy: &mut Db, c: &Caregiver) -> Result<Vec<String>, DemoError> {
    let mut problems = Vec::new();
    for t in &TABLES {
        let (filter, params) = match t.owner {
            Some(o) => (
                format!(" WHERE {o} = @P1"),
                vec![Param::Str(c.hsa.to_string())],
            ),
            None => (String::new(), vec![]),
        };
        let want = rows_text(
            src,
            &format!(
                "SELECT {} FROM {}{filter} ORDER BY x.{}",
                t.source_columns, t.from, t.key
            ),
            &params,
        )?;
        let got = rows_text(
            copy,
            &format!("SELECT {} FROM {} ORDER BY {}", t.columns, t.name, t.key),
            &[],
        )?;
        if want != got {
            let first = want
                .iter()
                .zip(&got)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len().min(got.len()));
            problems.push(format!(
                "{}: {} has {} rows, the filtered source {} (first difference at row {})",
                c.short,
                t.name,
                got.len(),
                want.len(),
                first + 1
            ));
        }
    }
    Ok(problems)
}

/// Rows each caregiver should have, and the other caregivers' rows in its copy.
pub fn count_foreign(copy: &mut Db, c: &Caregiver) -> Result<u64, DemoError> {
    let rows = copy.rows(
        "counting foreign rows",
        "SELECT COUNT(*) FROM dbo.Vardenhet WHERE VardgivareHsaId <> @P1",
        &[Param::Str(c.hsa.to_string())],
    )?;
    Ok(rows.first().and_then(|r| client::int_at(r, 0)).unwrap_or(0) as u64)
}
