//! The demo's checks: each copy equals its caregiver's filtered, masked
//! source (a patient wherever it has care, nowhere else), holds nothing of
//! the others, and no reference in it dangles (no visit without its
//! patient).

use super::data::{Caregiver, Table, REFERENCES};
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

/// A filter written for one partition key (`= @P1`) for the keys
/// `keys` (`IN (@P1, @P2, ...)`), and its parameters.
fn for_keys(filter: &str, keys: &[String]) -> (String, Vec<Param>) {
    let list: Vec<String> = (1..=keys.len()).map(|i| format!("@P{i}")).collect();
    (
        filter.replace("= @P1", &format!("IN ({})", list.join(", "))),
        keys.iter().map(|k| Param::Str(k.clone())).collect(),
    )
}

/// Compares every table of `tables` in one caregiver's copy with its
/// filtered, masked source, for the caregiver's partition keys `keys`.
pub fn verify(
    src: &mut Db,
    copy: &mut Db,
    c: &Caregiver,
    tables: &[&Table],
    keys: &[String],
) -> Result<Vec<String>, DemoError> {
    let mut problems = Vec::new();
    for t in tables {
        let (filter, params) = match t.filter {
            Some(f) => {
                let (f, p) = for_keys(f, keys);
                (format!(" WHERE {f}"), p)
            }
            None => (String::new(), vec![]),
        };
        // The table's alias in `from`, as its columns are written (x or p).
        let alias = t.source_columns.split('.').next().unwrap_or("x");
        let want = rows_text(
            src,
            &format!(
                "SELECT {} FROM {}{filter} ORDER BY {alias}.{}",
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

/// The references that dangle in a copy: (what, how many), for each of
/// `REFERENCES` that is not 0.
pub fn dangling(copy: &mut Db) -> Result<Vec<(&'static str, i64)>, DemoError> {
    let mut out = Vec::new();
    for (what, sql) in REFERENCES {
        let rows = copy.rows("counting dangling references", sql, &[])?;
        let n = rows.first().and_then(|r| client::int_at(r, 0)).unwrap_or(0);
        if n != 0 {
            out.push((what, n));
        }
    }
    Ok(out)
}

/// Rows each caregiver should have, and the other caregivers' rows in its copy.
pub fn count_foreign(copy: &mut Db, keys: &[String]) -> Result<u64, DemoError> {
    let (filter, params) = for_keys("VardgivareHsaId = @P1", keys);
    let rows = copy.rows(
        "counting foreign rows",
        &format!(
            "SELECT COUNT(*) FROM dbo.Vardenhet WHERE NOT (VardgivareHsaId {})",
            filter.trim_start_matches("VardgivareHsaId ")
        ),
        &params,
    )?;
    Ok(rows.first().and_then(|r| client::int_at(r, 0)).unwrap_or(0) as u64)
}
