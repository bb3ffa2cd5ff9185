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
//! hold each row (state `m/`, the (row, member) pairs). Snapshots select a
//! membership table's rows `WHERE EXISTS` a referencing row the caregiver
//! owns. Rules, checked at load: a member table is published, owned by a
//! column or a path (not shared, not itself by members).

use crate::config::Member;
use crate::format::value::ColumnType;
use crate::publisher::catalog::TableInfo;

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
