//! A caregiver's snapshot: every row it owns, of every published table, as
//! the first packages of a new epoch, read in steps.
//!
//! Why steps: a region's journal tables hold hundreds of millions of rows.
//! Read in one transaction, a snapshot would hold a SNAPSHOT transaction
//! open at the production server for hours (row versions piling up in
//! tempdb), and its whole ownership index would wait in the publisher's
//! memory for one commit. Instead:
//!
//! - `start` (inside the cycle's read, at its version V) begins the new
//!   epoch: the caregiver's stage and pending table changes (`k/`) are
//!   dropped, the ownership index forgets its rows (its subscriber number
//!   is retired: no row is read for that) and the membership rows it held,
//!   and its progress (`SnapshotProgress`) is recorded in the
//!   cycle's commit. A snapshot started over (a new reason while one runs,
//!   or the published tables changed under it) first takes back the parts
//!   it had written: none was delivered.
//! - a step (after the cycle's commit) reads at most `snapshot_step_rows`
//!   rows, table after table in key order (`sql::snapshot_step`: keyset
//!   pagination, one short SNAPSHOT read per step) and writes them as the
//!   next part(s); its `Batch` is committed in ONE state write after the
//!   part files are durable (`failpoint` `snapshot-written`): the parts'
//!   registration, the index entries of the step's rows, the references
//!   they count, and where the next step starts. A step that does not end
//!   its snapshot is committed before the next is written; the one-step snapshots of
//!   several caregivers share a commit. A crash loses at most the steps not
//!   yet committed; the next run continues there (a part written but not
//!   registered is written again under the same name). The last step's
//!   commit ends the snapshot.
//!
//! Correctness while the source keeps changing: every step reads rows as
//! they are at its own version, at or after V; the caregiver receives the
//! cycle's changes again from the cycle after `start` (its stage fills as
//! usual, from the index the steps build), and its deltas start at V. A row
//! changed after V is thus either read by a later step, or staged again
//! from the index a step wrote, or both (applying it twice is harmless).
//! What steps at different versions can leave wrong is mended by the cycle
//! after them: a row the index gave another caregiver is remembered and
//! deleted at this one unless it is its by then (`learn`,
//! `cycle::Live::settle`); the membership rows of a snapshot read in more
//! than one step are compared with the source once
//! (`cycle::Publisher::reconcile_held`). Member tables are read before the
//! tables whose holders they make. Nothing of the new epoch is packaged as
//! a delta or delivered until the last step is committed (`delta`,
//! `deliver` wait for it), and the copy applies all parts of a snapshot in
//! one transaction (`tests/membership.rs`: a writer runs during the steps).
//!
//! Reading and writing overlap: `read_ahead` runs the steps' reads on a
//! thread of its own, without waiting for their commits, and hands the
//! rows over in chunks; `step` (on the cycle's thread) writes and commits
//! each step as before. What was read ahead and never committed is read
//! again by the next cycle.
//!
//! Memory: one step's (or batch's) index entries, one part's buffer, and
//! at most `CHUNKS` chunks of rows read ahead (64 MiB).

use crate::config::{Owner, SubscriberConfig};
use crate::failpoint;
use crate::format::package::{Kind, PackageWriter};
use crate::format::value::{ColumnType, Value};
use crate::mssql::client::{self, Db, DbError, Param};
use crate::mssql::sql::source as sql;
use crate::publisher::catalog::TableInfo;
use crate::publisher::error::PublishError;
use crate::publisher::membership::{self, Refs, Rule};
use crate::publisher::packager::{Next, Packager};
use crate::publisher::report::CycleReport;
use crate::publisher::route::Owners;
use crate::publisher::stage::{decode_key, key_bytes};
use crate::publisher::state::{Changes, RefId, RowId, SnapshotProgress, State, SubscriberState};
use crate::time::now_text;
use sha2::{Digest, Sha256};

/// Who gets a snapshot, and why.
pub struct Onboard<'a> {
    pub subscriber: &'a SubscriberConfig,
    pub state: &'a SubscriberState,
    pub why: &'a str,
}

/// The order a snapshot reads the tables in: tables owned by a column or a
/// path first, then membership tables and followers, each after the
/// tables its holders come from (`membership::routing_order`).
pub fn reading_order(tables: &[TableInfo]) -> Vec<&TableInfo> {
    let mut order: Vec<&TableInfo> = tables
        .iter()
        .filter(|t| !t.cfg.owner.is_membership())
        .collect();
    order.extend(membership::routing_order(tables));
    order
}

/// A digest of what a snapshot's parts depend on: each table's name,
/// published shape (columns, key, masks) and owner rule, in reading order.
pub fn shapes(tables: &[TableInfo]) -> String {
    let mut h = Sha256::new();
    for t in reading_order(tables) {
        h.update(t.schema.name.as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(&t.published()).unwrap_or_default());
        h.update(format!("{:?}", t.cfg.owner).as_bytes());
        h.update([0]);
    }
    crate::format::package::hex(&h.finalize())
}

/// Why a snapshot that is under way must start over, if it must: the
/// published tables (their shapes, masks or owner rules) changed since it
/// began.
pub fn must_restart(p: &SnapshotProgress, tables: &[TableInfo]) -> Option<String> {
    let names: Vec<String> = reading_order(tables)
        .iter()
        .map(|t| t.schema.name.clone())
        .collect();
    (p.tables != names || p.shapes != shapes(tables)).then(|| {
        format!(
            "the published tables changed while its snapshot ({}) was being written; it starts over",
            p.why
        )
    })
}

/// Begins `o`'s snapshot at version `v` in the cycle's commit (see the
/// module doc). Packages nothing: `step` does, after the commit.
#[allow(clippy::too_many_arguments)]
pub fn start(
    state: &State,
    outbox: &std::path::Path,
    o: Onboard<'_>,
    tables: &[TableInfo],
    v: i64,
    as_of: Option<String>,
    owners: &mut Owners<'_>,
    changes: &mut Changes,
) -> Result<(), PublishError> {
    let s = o.subscriber;
    let mut st = o.state.clone();
    if let Some(old) = st.snapshot.take() {
        // Its parts were never delivered (`deliver` waits for the last):
        // the chain goes back to where it stood.
        for rec in state.packages(&s.hsa_id)? {
            if rec.sequence >= old.from_sequence {
                changes.drop_package(&s.hsa_id, rec.sequence);
                let _ = std::fs::remove_file(outbox.join(&s.hsa_id).join(&rec.file));
            }
        }
        st.next_sequence = old.from_sequence;
        st.last_sha256 = old.from_sha256;
        st.version = old.from_version;
    }
    for staged in state.staged(&s.hsa_id)? {
        changes.unstage(&staged.id);
    }
    // The snapshot re-creates every table as published now.
    for (table, _) in state.copy_tables(&s.hsa_id)? {
        changes.set_copy_table(&s.hsa_id, &table, None);
    }
    owners.forget(&s.hsa_id)?;
    st.epoch += 1;
    st.keys = {
        let mut k = s.keys.clone();
        k.sort();
        k
    };
    st.needs_snapshot = None;
    st.snapshot = Some(SnapshotProgress {
        why: o.why.to_string(),
        version: v,
        as_of,
        started_at: now_text(),
        tables: reading_order(tables)
            .iter()
            .map(|t| t.schema.name.clone())
            .collect(),
        shapes: shapes(tables),
        table: 0,
        after: None,
        part: 1,
        rows: 0,
        steps: 0,
        from_sequence: st.next_sequence.max(1),
        from_sha256: st.last_sha256.clone(),
        from_version: st.version,
    });
    changes.set_subscriber(&s.hsa_id, &st);
    Ok(())
}

/// Steps not yet committed: several caregivers' small snapshots (a step
/// each) go into one state commit, so that 300 caregivers onboarded
/// together rewrite the ownership index's blocks a few times, not 300
/// times, and look their rows up in it in one pass in key order
/// (`settle`), not one pass each (each caregiver's rows are spread over
/// every block of a table: 300 passes read every block 300 times). Holds
/// at most about `snapshot_step_rows` rows' decisions (`Batch::full`); a
/// caregiver's step that does not end its snapshot is committed before
/// its next (which reads where it stands from the state).
pub struct Batch<'s> {
    owners: Owners<'s>,
    changes: Changes,
    rows: u64,
    /// The owned rows the steps read, in the order they were read, each
    /// with the caregiver whose step read it (its position in `claimants`);
    /// decided by `settle`.
    claims: Vec<(RowId, u32)>,
    claimants: Vec<String>,
    /// The references the claimed rows make, with their claimant (made
    /// only if the claim holds).
    claim_refs: Vec<(RowId, u32, RefId, Option<Vec<u8>>)>,
    /// Caregivers whose snapshot completed in it, and why (reported once
    /// committed).
    done: Vec<(String, String)>,
}

impl<'s> Batch<'s> {
    pub fn new(state: &'s State) -> Batch<'s> {
        Batch {
            owners: Owners::new(state),
            changes: Changes::default(),
            rows: 0,
            claims: Vec::new(),
            claimants: Vec::new(),
            claim_refs: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Whether it holds a step's worth of rows.
    pub fn full(&self, step_rows: usize) -> bool {
        self.rows >= step_rows as u64
    }

    /// Commits every step in it (one atomic, flushed state write).
    pub fn commit(mut self, state: &State, report: &mut CycleReport) -> Result<(), PublishError> {
        let decided = self.settle(state)?;
        let mut changes = self.changes;
        self.owners.commit_with(decided, &mut changes)?;
        state.commit(changes)?;
        report.snapshots.extend(self.done);
        Ok(())
    }

    /// Decides the claims: a row the index gives to another caregiver is
    /// left to routing and remembered (`settle_row`, see `learn`), and so
    /// is a row an earlier step of the batch gave to another; the others
    /// become their claimant's, with their references. One pass over the
    /// index in key order (a stable sort keeps the steps' order per row, so
    /// the claims of one row are side by side, the first first). Returns
    /// the decisions, in key order.
    #[allow(clippy::type_complexity)]
    fn settle(&mut self, state: &State) -> Result<Vec<(RowId, Option<String>)>, PublishError> {
        let mut claims = std::mem::take(&mut self.claims);
        claims.sort_by(|a, b| a.0.cmp(&b.0));
        let (rows, who): (Vec<RowId>, Vec<u32>) = claims.into_iter().unzip();
        let now = state.owners_of(&rows)?;
        let mut decided: Vec<(RowId, Option<String>)> = Vec::with_capacity(rows.len());
        let mut skipped: std::collections::HashSet<(RowId, u32)> = Default::default();
        for ((row, w), o) in rows.into_iter().zip(who).zip(now) {
            let hsa = &self.claimants[w as usize];
            // Claimed again (steps at different versions): the first
            // claim's decision stands.
            let again = decided.last().is_some_and(|(r, _)| *r == row);
            let o = if again {
                decided.last().and_then(|(_, d)| d.clone())
            } else {
                o
            };
            match o {
                Some(other) if &other != hsa => {
                    self.changes.settle_row(hsa, &row);
                    skipped.insert((row, w));
                }
                _ if again => {}
                _ => decided.push((row, Some(hsa.clone()))),
            }
        }
        for (row, w, r, k) in std::mem::take(&mut self.claim_refs) {
            if !skipped.contains(&(row, w)) {
                self.owners.set_reference(r, k);
            }
        }
        Ok(decided)
    }
}

/// What one step read, for the index.
#[derive(Default)]
struct Read {
    rows: u64,
    owned: Vec<RowId>,
    held: Vec<RowId>,
    /// The references the owned rows make: (row, reference, key referenced).
    owned_refs: Vec<(RowId, RefId, Option<Vec<u8>>)>,
    /// The references the membership rows make.
    held_refs: Vec<(RowId, RefId, Option<Vec<u8>>)>,
}

/// Rows the reading thread hands over at once (at most `CHUNK_ROWS` rows,
/// or about `CHUNK_BYTES` bytes of values), and how many such chunks wait
/// at most: what is read ahead of the writing is bounded by
/// `CHUNKS` × `CHUNK_BYTES` (64 MiB), whatever the step's size. 64 rather
/// than 16: the reading thread goes on while a batch commits (2 M rows,
/// 300 caregivers: 13.5 / 13.2 s with 16, 11.7 / 12.0 s with 64).
const CHUNK_ROWS: usize = 512;
const CHUNK_BYTES: usize = 1 << 20;
pub const CHUNKS: usize = 64;

/// A caregiver whose snapshot the reading thread reads (`read_ahead`),
/// from where its committed progress stands.
pub struct ToRead<'a> {
    pub subscriber: &'a SubscriberConfig,
    /// Its position in the configuration (its keys in the packager).
    pub index: usize,
    pub table: usize,
    pub after: Option<Vec<u8>>,
}

/// What the reading thread sends about the caregiver at `who` (its
/// position in `read_ahead`'s list).
pub struct Fetched {
    pub who: usize,
    pub what: Result<Piece, PublishError>,
}

/// Rows as read: each row's values (the published columns), then the
/// values its references are made of. The writing side sends each chunk
/// back once written, so that its memory is freed on the reading thread
/// that allocated it: freed on another thread, glibc's allocator locks
/// the reading thread's arena for every value (measured: the reading
/// thread spent 29 % of its time in libc).
pub type Chunk = Vec<(Vec<Value>, Vec<Value>)>;

/// A piece of a step as read.
pub enum Piece {
    /// Rows of the table at `table` in reading order.
    Rows { table: usize, rows: Chunk },
    /// The step's SNAPSHOT read is committed: it began at `from` (table,
    /// last key) and the next step begins at `to`.
    End {
        from: (usize, Option<Vec<u8>>),
        to: (usize, Option<Vec<u8>>),
        statements: u64,
    },
}

/// The reading half of the snapshot steps, on a thread of its own while
/// `step` writes what it read: for each caregiver of `list` in order, step
/// after step to the end of its snapshot, without waiting for the steps'
/// commits (a step read ahead and never committed is read again by the
/// next cycle: nothing is lost). Each step is its own short SNAPSHOT read
/// (`read_step` inside it). Moves on to the caregiver at `skip` when the writing side
/// sets it past the one being read (its time for steps is spent), and
/// stops when the writing side is gone. A failure is sent, then reading
/// stops. Bounded memory: `tx`'s capacity in chunks (`CHUNKS`).
pub fn read_ahead(
    db: &mut Db,
    list: &[ToRead<'_>],
    tables: &[TableInfo],
    step_rows: usize,
    skip: &std::sync::atomic::AtomicUsize,
    tx: &std::sync::mpsc::SyncSender<Fetched>,
    back: &std::sync::mpsc::Receiver<Chunk>,
) {
    let order = reading_order(tables);
    for (who, c) in list.iter().enumerate() {
        let mut at = (c.table, c.after.clone());
        // At least one step each, as the writing side expects.
        while skip.load(std::sync::atomic::Ordering::SeqCst) <= who {
            let from = at.clone();
            let mut gone = false;
            let mut send = |piece: Piece| {
                // Freed here, where they were allocated (see `Chunk`).
                while let Ok(done) = back.try_recv() {
                    drop(done);
                }
                gone = gone
                    || tx
                        .send(Fetched {
                            who,
                            what: Ok(piece),
                        })
                        .is_err();
                !gone
            };
            // Each step its own short SNAPSHOT read.
            let r = db
                .execute(sql::begin_snapshot())
                .map_err(PublishError::from)
                .and_then(|()| {
                    let r = read_step(
                        db,
                        c.subscriber,
                        tables,
                        &order,
                        &mut at,
                        step_rows,
                        &mut send,
                    );
                    let end = db.execute(sql::commit());
                    if r.is_err() {
                        let _ = db.execute(crate::mssql::sql::rollback_if_open());
                    }
                    let statements = r?;
                    end?;
                    Ok(statements)
                });
            let what = match r {
                Ok(statements) => Ok(Piece::End {
                    from,
                    to: at.clone(),
                    statements,
                }),
                Err(_) if gone => return,
                Err(e) => Err(e),
            };
            let failed = what.is_err();
            if tx.send(Fetched { who, what }).is_err() || failed {
                return;
            }
            if at.0 >= order.len() {
                break;
            }
        }
    }
}

/// Writes the next step of caregiver `c`'s snapshot from what the reading
/// thread sends about it (`who`: its position in `read_ahead`'s list) into
/// `batch`, which the
/// caller commits (see the module doc and `Batch`); returns whether the
/// snapshot is complete. What `rx` still holds of caregivers before `who`
/// (read ahead, then skipped) is dropped.
#[allow(clippy::too_many_arguments)]
pub fn step(
    rx: &std::sync::mpsc::Receiver<Fetched>,
    back: &std::sync::mpsc::Sender<Chunk>,
    who: usize,
    state: &State,
    packager: &mut Packager<'_>,
    c: &ToRead<'_>,
    tables: &[TableInfo],
    batch: &mut Batch<'_>,
    report: &mut CycleReport,
) -> Result<bool, PublishError> {
    let s = c.subscriber;
    let mut st = state.subscriber(&s.hsa_id)?.unwrap_or_default();
    let Some(mut p) = st.snapshot.clone() else {
        return Ok(true);
    };
    let order = reading_order(tables);
    if must_restart(&p, tables).is_some() {
        return Err(PublishError::Rule {
            table: p.tables.get(p.table).cloned().unwrap_or_default(),
            detail: "the published tables changed while a snapshot was being written".into(),
        });
    }
    let template = packager.template(Next {
        subscriber: s,
        state: &st,
        epoch: st.epoch,
        kind: Kind::Snapshot,
        ct_from: None,
        ct_to: p.version,
        as_of: p.as_of.clone(),
    });
    let mut w = PackageWriter::continuing(packager.writer_config(c.index)?, template, p.part);
    let mut handles = Vec::with_capacity(order.len());
    for t in &order {
        handles.push(w.add_table(t.schema.clone())?);
    }
    let rules = Rule::all(tables);
    let refs: Vec<Refs<'_>> = order.iter().map(|t| Refs::of(t, &rules)).collect();
    let mut read = Read::default();
    let rows_before = p.rows;
    let reading = |detail: String| PublishError::SnapshotReading {
        subscriber: s.hsa_id.clone(),
        detail,
    };
    loop {
        let f = rx
            .recv()
            .map_err(|_| reading("the reading thread stopped without a word".into()))?;
        if f.who < who {
            continue;
        }
        if f.who > who {
            return Err(reading(format!(
                "the reading thread went on to the caregiver at {} of the list, this one is at {who}",
                f.who
            )));
        }
        match f.what? {
            Piece::Rows { table, rows } => {
                let t = order[table];
                let shared = t.cfg.owner == Owner::Shared;
                let membership = t.cfg.owner.is_membership();
                for (vals, referenced) in &rows {
                    if !shared {
                        let k: Vec<Value> = t.key_of(vals);
                        let row = RowId::new(&t.schema.name, &key_bytes(&k));
                        let out = if membership {
                            &mut read.held_refs
                        } else {
                            &mut read.owned_refs
                        };
                        for (m, kb) in refs[table].keys(referenced) {
                            out.push((row.clone(), RefId::new(&m.id, &row), kb));
                        }
                        if membership {
                            read.held.push(row);
                        } else {
                            read.owned.push(row);
                        }
                    }
                    w.upsert(handles[table], vals)?;
                    read.rows += 1;
                }
                let _ = back.send(rows);
            }
            Piece::End {
                from,
                to,
                statements,
            } => {
                report.statements += statements;
                if from != (p.table, p.after.clone()) {
                    return Err(reading(
                        "a step was read from elsewhere than where the snapshot stands".into(),
                    ));
                }
                (p.table, p.after) = to;
                break;
            }
        }
    }
    let done = p.table >= order.len();
    let written = if done { w.finish()? } else { w.finish_part()? };
    failpoint::hit("snapshot-written");
    batch.rows += read.rows;
    p.rows = rows_before + read.rows;
    learn(&s.hsa_id, read, batch)?;
    p.part += written.len() as u32;
    p.steps += 1;
    let why = p.why.clone();
    // Read at more than one version: its membership rows are compared
    // with the source after the next cycle's routing.
    st.reconcile = done && p.steps > 1;
    st.snapshot = if done { None } else { Some(p) };
    packager.register(
        s,
        &mut st,
        &written,
        "snapshot",
        Some(why.clone()),
        &mut batch.changes,
        report,
    );
    batch.changes.set_subscriber(&s.hsa_id, &st);
    if done {
        batch.done.push((s.hsa_id.clone(), why));
    }
    Ok(done)
}

/// What a step read goes into the index, without undoing what the next
/// cycle must route. Each step reads at its own version, later than the
/// one the index was routed to (W); a row the index gives to another
/// caregiver T but that is `hsa`'s now moved after W, and the next cycle
/// routes that move from the index (a delete for T, the row for `hsa`):
/// so such a row, and the references it makes, are left as they are, and
/// the row is remembered (`settle_row`) so that the next cycle deletes it
/// at `hsa` if it is no longer `hsa`'s by then (`cycle::Live::settle`). A
/// row no one has in the index, or `hsa` has, becomes `hsa`'s with its
/// references (owned rows are claimed here and decided when the batch is
/// committed: `Batch::settle`); a membership row gains `hsa` among its
/// holders (the others stay: the next cycle routes their changes as
/// usual).
fn learn(hsa: &str, read: Read, batch: &mut Batch<'_>) -> Result<(), PublishError> {
    let who = match batch.claimants.iter().position(|c| c == hsa) {
        Some(i) => i,
        None => {
            batch.claimants.push(hsa.to_string());
            batch.claimants.len() - 1
        }
    } as u32;
    let mut skipped: std::collections::HashSet<RowId> = Default::default();
    for row in read.held {
        let mut set = batch.owners.holders(&row)?;
        if set.iter().any(|h| h != hsa) {
            skipped.insert(row.clone());
        }
        set.insert(hsa.to_string());
        batch.owners.set_holders(row, set);
    }
    for (row, r, k) in read.held_refs {
        if !skipped.contains(&row) {
            batch.owners.set_reference(r, k);
        }
    }
    batch.claim_refs.extend(
        read.owned_refs
            .into_iter()
            .map(|(row, r, k)| (row, who, r, k)),
    );
    batch
        .claims
        .extend(read.owned.into_iter().map(|row| (row, who)));
    Ok(())
}

/// A step's reading, inside its SNAPSHOT transaction: from `at`'s table
/// and key on, at most `step_rows` rows, sent in chunks; `at` is moved
/// past what was read. Returns the statements it ran; fails (after the
/// query ends) when `send` answers that no one listens.
fn read_step(
    db: &mut Db,
    s: &SubscriberConfig,
    tables: &[TableInfo],
    order: &[&TableInfo],
    at: &mut (usize, Option<Vec<u8>>),
    step_rows: usize,
    send: &mut dyn FnMut(Piece) -> bool,
) -> Result<u64, PublishError> {
    let rules = Rule::all(tables);
    let mut budget = step_rows;
    let mut statements = 0;
    while budget > 0 && at.0 < order.len() {
        let table = at.0;
        let t = order[table];
        let shared = t.cfg.owner == Owner::Shared;
        let name = t.schema.name.clone();
        let mine = Refs::of(t, &rules);
        let key: Vec<(String, ColumnType)> = t
            .key_pos
            .iter()
            .map(|i| (t.schema.columns[*i].name.clone(), t.schema.columns[*i].ty))
            .collect();
        let mut params: Vec<Param> = if shared {
            Vec::new()
        } else {
            s.keys.iter().map(|k| Param::Str(k.clone())).collect()
        };
        let after = match &at.1 {
            None => None,
            Some(kb) => {
                let types: Vec<ColumnType> = key.iter().map(|k| k.1).collect();
                let vals = decode_key(kb, &types).map_err(|e| PublishError::StagedUnreadable {
                    table: name.clone(),
                    detail: format!("where its snapshot continues ({e})"),
                })?;
                let first = params.len() + 1;
                params.extend(
                    vals.into_iter()
                        .zip(types)
                        .map(|(v, ty)| Param::Value(v, ty)),
                );
                Some(first)
            }
        };
        let q = sql::snapshot_step(
            &membership::holding(t, tables),
            &t.select,
            s.keys.len(),
            &mine.cols,
            &key,
            after,
            budget,
        );
        let mut n = 0usize;
        // The last key read: taken from a chunk's last row as it goes.
        let mut last: Option<Vec<Value>> = None;
        let mut chunk: Chunk = Vec::new();
        let mut chunk_bytes = 0usize;
        let stopped = || DbError {
            what: format!("reading the snapshot of {name} for {}", s.hsa_id),
            message: "the cycle stopped writing the snapshot".into(),
            number: None,
            retryable: true,
        };
        db.query(
            &format!("reading the snapshot of {name} for {}", s.hsa_id),
            &q,
            &params,
            |r| {
                let vals = client::values(r, 1, &t.schema.columns)?;
                let referenced = if shared {
                    Vec::new()
                } else {
                    mine.read(r, 1 + t.schema.columns.len())?
                };
                chunk_bytes += vals.iter().map(Value::size_hint).sum::<usize>();
                chunk.push((vals, referenced));
                n += 1;
                if chunk.len() >= CHUNK_ROWS || chunk_bytes >= CHUNK_BYTES {
                    chunk_bytes = 0;
                    let rows = std::mem::take(&mut chunk);
                    last = rows.last().map(|(v, _)| t.key_of(v));
                    if !send(Piece::Rows { table, rows }) {
                        return Err(stopped());
                    }
                }
                Ok(())
            },
        )?;
        statements += 1;
        if let Some((v, _)) = chunk.last() {
            last = Some(t.key_of(v));
            if !send(Piece::Rows { table, rows: chunk }) {
                return Err(stopped().into());
            }
        }
        if n < budget {
            // The table is complete: the next one from its first row.
            *at = (table + 1, None);
            budget -= n;
        } else {
            at.1 = last.map(|k| key_bytes(&k));
            budget = 0;
        }
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u8) -> RowId {
        RowId::new("dbo.Besok", &[0x81, i])
    }

    fn read(owned: &[u8]) -> Read {
        Read {
            rows: owned.len() as u64,
            owned: owned.iter().map(|i| row(*i)).collect(),
            owned_refs: owned
                .iter()
                .map(|i| (row(*i), RefId::new("r", &row(*i)), Some(vec![*i])))
                .collect(),
            ..Read::default()
        }
    }

    /// Two caregivers' steps in one batch that read the same row (it moved
    /// between their reads): the first claim stands, the second is left to
    /// routing (remembered to settle) and its references are not made; a
    /// row the index gives to another caregiver is left to routing too.
    #[test]
    fn a_batch_decides_each_claim_once_in_step_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        // Row 9 is SE-C's in the index.
        let mut owners = Owners::new(&state);
        owners.set(row(9), Some("SE-C".into()));
        let mut changes = Changes::default();
        owners.commit(&mut changes).unwrap();
        state.commit(changes).unwrap();

        let mut batch = Batch::new(&state);
        learn("SE-A", read(&[1, 2, 9]), &mut batch).unwrap();
        let mut second = read(&[2, 3]);
        second.owned_refs[0].2 = Some(vec![42]);
        learn("SE-B", second, &mut batch).unwrap();
        batch.commit(&state, &mut CycleReport::default()).unwrap();

        let owner = |i| state.owner(&row(i)).unwrap();
        assert_eq!(owner(1).as_deref(), Some("SE-A"));
        assert_eq!(owner(2).as_deref(), Some("SE-A"), "the first claim stands");
        assert_eq!(owner(3).as_deref(), Some("SE-B"));
        assert_eq!(owner(9).as_deref(), Some("SE-C"), "routing moves it");
        let mut settle = state.settle_rows().unwrap();
        settle.sort();
        assert_eq!(
            settle,
            vec![("SE-A".to_string(), row(9)), ("SE-B".to_string(), row(2))]
        );
        let reference = |i| state.reference(&RefId::new("r", &row(i))).unwrap();
        assert_eq!(
            reference(2),
            Some(vec![2]),
            "the standing claim's reference"
        );
        assert_eq!(reference(3), Some(vec![3]));
        assert_eq!(reference(9), None);
    }
}
