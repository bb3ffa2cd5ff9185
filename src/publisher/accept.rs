//! `ctferry schema accept`: an operator's decision that columns held back
//! (new at the source of a published table, `new_columns = "hold"`) may be
//! published. The decision is recorded in the state (`n/<table>`) with an
//! audit record naming the columns; the next cycle publishes them as added
//! columns (with the table's rows again when they already hold values) and
//! forgets the decision. Masking or excluding a column in the configuration
//! decides too, without this command.

use crate::publisher::state::{AuditRecord, Changes, State, StateError};

/// Why columns cannot be accepted. Retrying does not help: the table or
/// column named is not held back (a cycle must first see it).
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("no column of {table} is held back{}", held_elsewhere(.others))]
    NothingHeld { table: String, others: Vec<String> },
    #[error("{table}.{column} is not held back; held back in {table}: {}", .held.join(", "))]
    NotHeld {
        table: String,
        column: String,
        held: Vec<String>,
    },
}

fn held_elsewhere(others: &[String]) -> String {
    if others.is_empty() {
        " (a column added at the source is held from the first cycle that sees it)".into()
    } else {
        format!("; tables with columns held back: {}", others.join(", "))
    }
}

/// Accepts `columns` of `table` (all its held columns when empty) for
/// publishing; returns the table's name as stored and the columns accepted.
pub fn accept(
    state: &State,
    table: &str,
    columns: &[String],
    now: &str,
) -> Result<(String, Vec<String>), AcceptError> {
    let all = state.held_all()?;
    let Some((name, held)) = all.iter().find(|(t, _)| t.eq_ignore_ascii_case(table)) else {
        return Err(AcceptError::NothingHeld {
            table: table.to_string(),
            others: all.iter().map(|(t, _)| t.clone()).collect(),
        });
    };
    let mut chosen = Vec::new();
    if columns.is_empty() {
        chosen = held.clone();
    }
    for c in columns {
        match held.iter().find(|h| h.eq_ignore_ascii_case(c)) {
            Some(h) => chosen.push(h.clone()),
            None => {
                return Err(AcceptError::NotHeld {
                    table: name.clone(),
                    column: c.clone(),
                    held: held.clone(),
                })
            }
        }
    }
    let mut accepted = state.accepted(name)?;
    for c in &chosen {
        if !accepted.contains(c) {
            accepted.push(c.clone());
        }
    }
    let mut changes = Changes::default();
    changes.set_accepted(name, &accepted);
    changes.audit(
        &AuditRecord {
            time: now.to_string(),
            subscriber: "*".into(),
            event: "columns accepted".into(),
            sequence: None,
            file: None,
            sha256: None,
            tables: vec![],
            detail: Some(format!(
                "{name}: {} accepted for publishing with `ctferry schema accept`",
                chosen.join(", ")
            )),
        },
        0,
    );
    state.commit(changes)?;
    Ok((name.clone(), chosen))
}
