//! Transactions: BEGIN/COMMIT/ROLLBACK/SAVE and isolation levels, mapped
//! onto SQLite as the engine's module doc describes (a READ COMMITTED
//! transaction takes SQLite's write lock lazily, a SNAPSHOT transaction is a
//! WAL read transaction from BEGIN on).

use super::catalog::q;
use super::errors::*;
use super::session::*;
use super::{catalog, ct};
use crate::error::SqlError;

impl Session {
    pub fn begin(&mut self, out: &mut Vec<Out>) -> Result<(), SqlError> {
        if self.tran.count == 0 {
            if self.isolation == Isolation::Snapshot {
                let allowed = catalog::get_option(&self.conn, "allow_snapshot_isolation")
                    .map_err(catalog::sqlite_err)?;
                if allowed.as_deref() != Some("ON") {
                    return Err(SqlError::new(
                        3952,
                        16,
                        format!("Snapshot isolation transaction failed accessing database '{}' because snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot isolation.", self.database),
                    ));
                }
                self.conn
                    .execute_batch("BEGIN DEFERRED")
                    .map_err(catalog::sqlite_err)?;
                self.tran.open = true;
                self.tran.snapshot = true;
            } else {
                self.tran.open = false;
                self.tran.snapshot = false;
            }
            self.tran.descriptor = self.shared.next_descriptor();
            self.tran.savepoints.clear();
            self.tran.count = 1;
            out.push(Out::BeginTran(self.tran.descriptor));
        } else {
            self.tran.count += 1;
        }
        Ok(())
    }

    /// Makes sure SQLite has a write transaction when a statement is about to write.
    pub(super) fn before_write(&mut self) -> Result<(), SqlError> {
        if self.tran.count > 0 && !self.tran.open {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| map_sqlite(e, None, &self.database, "BEGIN"))?;
            self.tran.open = true;
            for (name, made) in self.tran.savepoints.iter_mut() {
                self.conn
                    .execute_batch(&format!("SAVEPOINT {}", q(name)))
                    .map_err(catalog::sqlite_err)?;
                *made = true;
            }
        }
        Ok(())
    }

    pub fn commit(&mut self, out: &mut Vec<Out>) -> Result<(), SqlError> {
        if self.tran.count == 0 {
            return Err(SqlError::new(
                3902,
                16,
                "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            ));
        }
        self.tran.count -= 1;
        if self.tran.count == 0 {
            if self.tran.open {
                let now = self.now_text();
                let committed = ct::on_commit(&self.conn, &now).and_then(|_| {
                    self.conn
                        .execute_batch("COMMIT")
                        .map_err(|e| map_sqlite(e, None, &self.database, "COMMIT"))
                });
                if let Err(err) = committed {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.tran.open = false;
                    out.push(Out::RollbackTran(self.tran.descriptor));
                    return Err(err);
                }
            }
            self.tran.open = false;
            out.push(Out::CommitTran(self.tran.descriptor));
        }
        Ok(())
    }

    pub(super) fn rollback_all(&mut self, out: &mut Vec<Out>) {
        if self.tran.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.tran.open = false;
        self.tran.count = 0;
        self.tran.savepoints.clear();
        out.push(Out::RollbackTran(self.tran.descriptor));
    }

    pub fn rollback(&mut self, name: Option<&str>, out: &mut Vec<Out>) -> Result<(), SqlError> {
        if self.tran.count == 0 {
            return Err(SqlError::new(
                3903,
                16,
                "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            ));
        }
        if let Some(n) = name {
            if let Some(pos) = self.tran.savepoints.iter().rposition(|(s, _)| s == n) {
                let (_, made) = self.tran.savepoints[pos].clone();
                if made {
                    self.conn
                        .execute_batch(&format!("ROLLBACK TO {}", q(n)))
                        .map_err(catalog::sqlite_err)?;
                }
                self.tran.savepoints.truncate(pos + 1);
                return Ok(());
            }
            // A name that is not a savepoint must be the outer transaction's name;
            // we accept any other name only for the outermost rollback.
        }
        self.rollback_all(out);
        Ok(())
    }

    pub fn save(&mut self, name: &str) -> Result<(), SqlError> {
        if self.tran.count == 0 {
            return Err(SqlError::new(
                628,
                16,
                "Cannot issue SAVE TRANSACTION when there is no active transaction.",
            ));
        }
        let made = if self.tran.open {
            self.conn
                .execute_batch(&format!("SAVEPOINT {}", q(name)))
                .map_err(catalog::sqlite_err)?;
            true
        } else {
            false
        };
        self.tran.savepoints.push((name.to_string(), made));
        Ok(())
    }

    pub fn set_isolation(&mut self, level: Isolation) {
        self.isolation = level;
    }

    // ---------------------------------------------------------------- batches
}
