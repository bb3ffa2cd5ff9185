//! Membership (`owner = { members = ["dbo.Besok(PatientId)"] }`): a row
//! belongs to every caregiver that holds a row of a member table
//! referencing it, so a patient is in every copy where it has care and
//! leaves when its last care there goes.
//!
//! Why it is routed this way: change tracking gives a changed visit's key,
//! not the patient it pointed to before, and a patient's members are a set
//! that no single row holds. So the cycle remembers, for every member
//! table's row, the key it references (state `f/`); routes the member
//! tables first, collecting the keys they referenced before and reference
//! now wherever the reference or the row's owner changed; then reads those
//! rows' members in set-based statements (one per rule per chunk of keys,
//! never one per caregiver) and compares them with the caregivers that
//! hold each row (state `m/`, the (row, member) pairs). A member table
//! may itself be owned by membership (a patient by its referrals, a
//! referral by its receivers): its rows' holders are then read from `m/`
//! after it was routed, so membership tables are routed in dependency
//! order (`routing_order`). Snapshots select a membership table's rows
//! whose key is referenced by a row the caregiver holds, recursively
//! (`holding`). Rules, checked at load: a member table is published and
//! not shared, and the rules form no loop.

use crate::config::{Member, Owner};
use crate::format::value::{ColumnType, Value};
use crate::mssql::client::{self, DbError};
use crate::mssql::sql::source::Holding;
use crate::publisher::catalog::TableInfo;
use crate::publisher::stage::key_bytes;

/// One membership rule as the cycle uses it: the table whose rows get
/// members (`target`), the member table (`source`) and its columns.
pub struct Rule<'t> {
    /// `dbo.patient<-dbo.besok(patientid)`: names the rule in the state
    /// (lower case, so that rewriting the rule in another case keeps it).
    pub id: String,
    pub target: &'t TableInfo,
    pub source: &'t TableInfo,
    pub member: &'t Member,
}

impl Rule<'_> {
    /// Every membership rule of the published tables.
    pub fn all(tables: &[TableInfo]) -> Vec<Rule<'_>> {
        let mut out = Vec::new();
        for t in tables {
            for m in t.cfg.owner.members() {
                if let Some(source) = tables.iter().find(|s| s.cfg.name.is(&m.table)) {
                    let cols: Vec<String> = m.columns.iter().map(|c| c.to_lowercase()).collect();
                    out.push(Rule {
                        id: format!(
                            "{}<-{}({})",
                            t.schema.name.to_lowercase(),
                            source.schema.name.to_lowercase(),
                            cols.join(",")
                        ),
                        target: t,
                        source,
                        member: m,
                    });
                }
            }
        }
        out
    }

    /// Whether the member table's own rows have a set of holders (owned by
    /// membership, or following a table that is).
    pub fn source_is_membership(&self) -> bool {
        self.source.cfg.owner.is_membership()
    }

    /// The types of the target's key columns (which the member columns
    /// reference, in order).
    pub fn key_types(&self) -> Vec<ColumnType> {
        self.target
            .key_pos
            .iter()
            .map(|p| self.target.schema.columns[*p].ty)
            .collect()
    }
}

/// The membership and follower tables in the order a cycle routes them:
/// each after the tables its holders are computed from (its member tables
/// that are themselves owned by membership; the table it follows). The
/// configuration refuses loops, so every table gets a place.
pub fn routing_order(tables: &[TableInfo]) -> Vec<&TableInfo> {
    let sources = |t: &TableInfo| -> Vec<String> {
        let mut out: Vec<String> = t
            .cfg
            .owner
            .members()
            .iter()
            .filter_map(|m| tables.iter().find(|x| x.cfg.name.is(&m.table)))
            .filter(|x| x.cfg.owner.is_membership())
            .map(|x| x.schema.name.clone())
            .collect();
        if let Owner::Follows { table, .. } = &t.cfg.owner {
            out.extend(
                tables
                    .iter()
                    .find(|x| x.cfg.name.is(table))
                    .map(|x| x.schema.name.clone()),
            );
        }
        out
    };
    let mut left: Vec<&TableInfo> = tables
        .iter()
        .filter(|t| t.cfg.owner.is_membership())
        .collect();
    let mut order: Vec<&TableInfo> = Vec::new();
    while !left.is_empty() {
        let before = left.len();
        let mut i = 0;
        while i < left.len() {
            let ready = sources(left[i])
                .iter()
                .all(|s| order.iter().any(|o| &o.schema.name == s));
            if ready {
                order.push(left.remove(i));
            } else {
                i += 1;
            }
        }
        if left.len() == before {
            // A loop (refused at load): route the rest as they come.
            order.append(&mut left);
        }
    }
    order
}

/// The membership and follower tables whose holders depend on table
/// `name` (itself included when it is one): a rule's member table is
/// `name` or depends on it, or the table followed is or does; in routing
/// order. When `name`'s rows changed unseen (its change history lost) or
/// its membership rules are new, these are the tables whose holders must
/// be learnt again.
pub fn dependents<'a>(name: &str, tables: &'a [TableInfo]) -> Vec<&'a TableInfo> {
    let mut out: Vec<&TableInfo> = Vec::new();
    for t in routing_order(tables) {
        let on = |n: &str| n == name || out.iter().any(|o| o.schema.name == n);
        let by_rule = t.cfg.owner.members().iter().any(|m| {
            tables
                .iter()
                .find(|x| x.cfg.name.is(&m.table))
                .is_some_and(|x| on(&x.schema.name))
        });
        let by_follow = match &t.cfg.owner {
            Owner::Follows { table, .. } => tables
                .iter()
                .find(|x| x.cfg.name.is(table))
                .is_some_and(|x| on(&x.schema.name)),
            _ => false,
        };
        if t.schema.name == name || by_rule || by_follow {
            out.push(t);
        }
    }
    out
}

/// How a table's rows are held, for the snapshot's SELECT
/// (`mssql::sql::source::snapshot_rows`): its rule, and recursively the
/// rules of the tables its holders come from.
pub fn holding<'a>(t: &'a TableInfo, tables: &'a [TableInfo]) -> Holding<'a> {
    let members = t
        .cfg
        .owner
        .members()
        .iter()
        .filter_map(|m| {
            tables
                .iter()
                .find(|x| x.cfg.name.is(&m.table))
                .map(|source| (m, holding(source, tables)))
        })
        .collect();
    let followed = match &t.cfg.owner {
        Owner::Follows { table, .. } => tables
            .iter()
            .find(|x| x.cfg.name.is(table))
            .map(|f| Box::new(holding(f, tables))),
        _ => None,
    };
    let owner_is_text = match &t.cfg.owner {
        Owner::Column(c) => t
            .schema
            .columns
            .iter()
            .any(|x| x.name.eq_ignore_ascii_case(c) && x.ty.is_string()),
        _ => false,
    };
    Holding {
        table: &t.cfg.name,
        owner: &t.cfg.owner,
        key: &t.schema.key,
        owner_is_text,
        members,
        followed,
    }
}

/// The membership rules a table is the member table of, and the columns
/// through which its rows reference the rows they make members of, read
/// raw after the table's columns (`sql::source::changed_rows`,
/// `snapshot_rows`, `rows_by_key`, `rows_following`: `refs`).
pub struct Refs<'a> {
    pub rules: Vec<&'a Rule<'a>>,
    pub cols: Vec<String>,
    types: Vec<ColumnType>,
}

impl<'a> Refs<'a> {
    /// The rules of `rules` whose member table is `t`.
    pub fn of(t: &TableInfo, rules: &'a [Rule<'a>]) -> Refs<'a> {
        let rules: Vec<&Rule<'_>> = rules
            .iter()
            .filter(|r| r.source.schema.name == t.schema.name)
            .collect();
        Refs {
            cols: rules
                .iter()
                .flat_map(|r| r.member.columns.clone())
                .collect(),
            types: rules.iter().flat_map(|r| r.key_types()).collect(),
            rules,
        }
    }

    /// The raw referencing values of row `r`, from column `at` on.
    pub fn read(&self, r: &tiberius::Row, at: usize) -> Result<Vec<Value>, DbError> {
        let mut out = Vec::with_capacity(self.cols.len());
        for (i, (c, ty)) in self.cols.iter().zip(&self.types).enumerate() {
            out.push(client::value(r, at + i, c, ty)?);
        }
        Ok(out)
    }

    /// Per rule, the encoded key that `values` (from `read`) reference
    /// through it; None when one of its columns is NULL (no reference).
    pub fn keys<'v>(
        &'v self,
        values: &'v [Value],
    ) -> impl Iterator<Item = (&'a Rule<'a>, Option<Vec<u8>>)> + 'v {
        let mut at = 0;
        self.rules.iter().map(move |m| {
            let n = m.member.columns.len();
            let k = &values[at..at + n];
            at += n;
            (*m, (!k.contains(&Value::Null)).then(|| key_bytes(k)))
        })
    }
}
