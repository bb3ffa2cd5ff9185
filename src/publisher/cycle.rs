//! The publisher's cycle (docs/ARCHITECTURE.md, "The data path"): change
//! tracking → route → stage → package → deliver.
//!
//! Contract of one cycle (`Publisher::once`):
//! - the source is read in ONE snapshot transaction: V, the minimum valid
//!   versions, two statements per published table (changed rows with their
//!   owner along the owner path; deleted keys), and the snapshots of the
//!   subscribers that need one. The number of statements does not depend on
//!   the number of subscribers (snapshots aside);
//! - routing (`route`) uses the row's owner now and the ownership index for
//!   the owner before: deletes go to previous owners only, a row that
//!   changed owner (itself or up its path) leaves the old owner and enters
//!   the new one;
//! - the staged changes, the ownership index, the snapshot packages'
//!   registration and the new watermark W = V are committed in one atomic,
//!   flushed state write. Package files are fsynced before they are
//!   registered; an unregistered file left by a crash is rewritten under the
//!   same name by the next cycle;
//! - then every due subscriber's stage drains into its next delta package
//!   (`delta`), registered atomically with the removal of what it drained;
//! - then registered packages not yet delivered go to the subscriber's area
//!   (`deliver`: folder or SFTP, `.part` then rename, in sequence order).
//!
//! Masked columns are replaced in the SELECT, so unmasked values never reach
//! ctferry, its state or its logs.

use crate::config::{Config, Owner};
use crate::failpoint;
use crate::format::value::ColumnType;
use crate::format::value::{self, Value};
use crate::mssql::client::{self, int_at, Db, Param};
use crate::mssql::sql::source as sql;
use crate::publisher::catalog::{describe, drift, Drift, PublishedSchema, TableInfo};
use crate::publisher::deliver::{self, Mode};
use crate::publisher::delta;
use crate::publisher::error::PublishError;
use crate::publisher::membership::{self, Refs, Rule};
use crate::publisher::packager::Packager;
use crate::publisher::report::CycleReport;
use crate::publisher::reshape::{self, CopyTable, Reload};
use crate::publisher::route::{self, Owners, Send};
use crate::publisher::snapshot::{self, Onboard};
use crate::publisher::stage::{decode_key, key_bytes, Op};
use crate::publisher::state::{Changes, RefId, RowId, State, SubscriberState};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The region's publisher: one per state folder.
pub struct Publisher<'c> {
    pub cfg: &'c Config,
    pub state: State,
    packager: Packager<'c>,
    /// Accept changed table columns in this run (`ctferry snapshot --all`).
    accept_schema: bool,
    /// How long a cycle spends on snapshot steps (`limit_snapshot_steps`).
    step_budget: Option<std::time::Duration>,
    /// Set when the process is asked to stop: no new step begins.
    stop: Option<&'static std::sync::atomic::AtomicBool>,
}

/// A table whose shape changed this cycle, or that was added to or removed
/// from the configuration of a running setup (`reshape`).
struct Reshaped {
    name: String,
    /// Its place in the cycle's tables; None: no longer published.
    index: Option<usize>,
    /// The shape it was published with; None: new to the copies.
    was: Option<PublishedSchema>,
    /// Whether its rows travel again, and how.
    reload: Option<Reload>,
    why: String,
}

/// What a cycle reads again whole, by index into its tables: re-sent
/// (why, reload), reloaded after a change of shape, references learnt,
/// holders learnt again (why, reload).
struct Rereads<'a> {
    resend: &'a [(usize, String, Option<Reload>)],
    reloads: &'a [(usize, Reload)],
    learn_refs: &'a [usize],
    relearn: &'a [(usize, String, Option<Reload>)],
}

/// The caregivers that receive changes this cycle (those getting a
/// snapshot instead are not live), and the routed-change counts.
struct Live<'a> {
    cfg: &'a Config,
    live: Vec<bool>,
    /// Rows a snapshot step read for a caregiver while the index gave them
    /// to another (`Changes::settle_row`), with those caregivers: `settle`.
    settle: HashMap<RowId, Vec<String>>,
    /// Partition keys that changed hands in the configuration since the
    /// last cycle: the rows they own are read and re-routed this cycle.
    rekeyed: Vec<String>,
}

impl Live<'_> {
    /// The parameters of `sql::changed_rows` for table `t`: W, then the
    /// re-keyed partition keys when the table has an owner column to
    /// compare them with; and how many of those.
    fn change_params(&self, t: &TableInfo, w: i64) -> (usize, Vec<Param>) {
        let mut params = vec![Param::I64(w)];
        if t.cfg.owner.direct().is_none() {
            return (0, params);
        }
        params.extend(self.rekeyed.iter().map(|k| Param::Str(k.clone())));
        (self.rekeyed.len(), params)
    }
}

impl Live<'_> {
    /// A row with a single owner that a step of a caregiver's snapshot
    /// read while the index gave it to another caregiver (`snapshot::learn`,
    /// `Live::settle`) is in that caregiver's copy; routed now, it is
    /// deleted there unless it is the caregiver's now (`now`); when it is,
    /// routing sent it already (its index owner was another). Every such
    /// row changed after the index's version, so the cycle that follows the
    /// steps routes each of them.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        sent: &[Send<'_>],
        now: Option<&str>,
        row: &RowId,
        table: &str,
        kb: &[u8],
        key: &[Value],
        changes: &mut Changes,
        report: &mut CycleReport,
    ) {
        let Some(read_by) = self.settle.get(row) else {
            return;
        };
        for s in read_by {
            if now != Some(s.as_str()) && !sent.contains(&Send::Delete(s)) {
                self.stage(s, table, kb, &Op::Delete(key.to_vec()), changes, report);
            }
        }
    }

    /// Stages `op` for caregiver `hsa` when it is live, and counts it.
    fn stage(
        &self,
        hsa: &str,
        table: &str,
        key: &[u8],
        op: &Op,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) {
        let live = self
            .cfg
            .subscribers
            .iter()
            .zip(&self.live)
            .any(|(s, l)| *l && s.hsa_id == hsa);
        if live {
            changes.stage(hsa, table, key, op.encode());
            *report.routed.entry(hsa.to_string()).or_default() += 1;
        }
    }

    /// Stages what `route` decided: `row` (the whole row) for an upsert,
    /// `key` for a delete.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        sends: &[Send<'_>],
        table: &str,
        kb: &[u8],
        row: &[Value],
        key: &[Value],
        changes: &mut Changes,
        report: &mut CycleReport,
    ) {
        for send in sends {
            let (who, op): (Vec<&str>, Op) = match send {
                Send::Upsert(h) => (vec![*h], Op::Upsert(row.to_vec())),
                Send::Delete(h) => (vec![*h], Op::Delete(key.to_vec())),
                Send::UpsertAll => (self.all(), Op::Upsert(row.to_vec())),
                Send::DeleteAll => (self.all(), Op::Delete(key.to_vec())),
            };
            for h in who {
                self.stage(h, table, kb, &op, changes, report);
            }
        }
    }

    fn all(&self) -> Vec<&str> {
        self.cfg
            .subscribers
            .iter()
            .map(|s| s.hsa_id.as_str())
            .collect()
    }
}

impl<'c> Publisher<'c> {
    /// Loads the keys and opens the state (one publisher per state folder).
    pub fn open(cfg: &'c Config) -> Result<Publisher<'c>, PublishError> {
        let packager = Packager::open(cfg)?;
        let state = State::open(&cfg.publisher.state)?;
        Ok(Publisher {
            cfg,
            state,
            packager,
            accept_schema: false,
            step_budget: None,
            stop: None,
        })
    }

    /// Accepts the source's current table columns at the next cycle and gives
    /// every subscriber a new snapshot (after a reviewed schema change).
    pub fn snapshot_all_accepting_schema(&mut self) -> Result<(), PublishError> {
        for s in &self.cfg.subscribers {
            self.request_snapshot(&s.hsa_id, "requested with `ctferry snapshot --all`")?;
        }
        self.accept_schema = true;
        Ok(())
    }

    /// Bounds the time one cycle spends on snapshot steps, after one step
    /// of each snapshot under way (`ctferry run` gives its interval: a
    /// snapshot of a large table is then written over many cycles while
    /// the other caregivers' changes keep flowing), and gives the flag
    /// that, once set, lets no new step begin (a stop asked for by a
    /// signal waits for one step, not for the whole snapshot). Without
    /// them (`once`, `snapshot`) a cycle writes every snapshot to its end.
    pub fn limit_snapshot_steps(
        &mut self,
        budget: Option<std::time::Duration>,
        stop: Option<&'static std::sync::atomic::AtomicBool>,
    ) {
        self.step_budget = budget;
        self.stop = stop;
    }

    /// Marks a subscriber for a new snapshot at the next cycle.
    pub fn request_snapshot(&self, hsa: &str, reason: &str) -> Result<(), PublishError> {
        let mut st = self.state.subscriber(hsa)?.unwrap_or_default();
        st.needs_snapshot = Some(reason.to_string());
        let mut c = Changes::default();
        c.set_subscriber(hsa, &st);
        self.state.commit(c)?;
        Ok(())
    }

    /// One cycle. `all_due`: package every subscriber with work, whatever its interval.
    pub fn once(&mut self, db: &mut Db, all_due: bool) -> Result<CycleReport, PublishError> {
        let started = std::time::Instant::now();
        let mut report = CycleReport::default();
        // Outbox folders are made (and their mode checked) again each cycle.
        self.packager.new_cycle();
        db.execute(sql::begin_snapshot())?;
        let r = self.read_and_stage(db, &mut report);
        let end = db.execute(sql::commit());
        if r.is_err() {
            let _ = db.execute(crate::mssql::sql::rollback_if_open());
        }
        let tables = r?;
        end?;
        self.snapshot_steps(db, &tables, &mut report)?;
        delta::package_all(
            self.cfg,
            &self.state,
            &mut self.packager,
            &mut report,
            all_due,
        )?;
        let mode = if all_due { Mode::Now } else { Mode::Scheduled };
        let d = self.deliver(mode)?;
        report.delivered = d.delivered;
        report.delivery_failures = d.failures;
        report.delivery_waiting = d.waiting;
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Delivers registered, undelivered packages (see `deliver`).
    pub fn deliver(&mut self, mode: Mode) -> Result<deliver::Report, PublishError> {
        Ok(deliver::deliver_all(self.cfg, &self.state, mode)?)
    }

    /// Every snapshot under way, step after step to its end (`snapshot`),
    /// or until the cycle's time for steps is spent (`limit_snapshot_steps`;
    /// each snapshot gets at least one step per cycle): each step its own
    /// short read and its own commit. A caregiver whose key cannot be used
    /// now waits, its snapshot where it stopped.
    fn snapshot_steps(
        &mut self,
        db: &mut Db,
        tables: &[TableInfo],
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let started = std::time::Instant::now();
        let cfg = self.cfg;
        let rows = cfg.publisher.snapshot_step_rows;
        // Whose snapshots are read, in the configuration's order: the ones
        // under way, unless the caregiver's key cannot be used now (its
        // snapshot waits where it stopped).
        let mut to_read: Vec<snapshot::ToRead<'_>> = Vec::new();
        for (i, s) in cfg.subscribers.iter().enumerate() {
            let Some(p) = self.state.subscriber(&s.hsa_id)?.and_then(|st| st.snapshot) else {
                continue;
            };
            if let Some(problem) = self.packager.recipient_problem(i) {
                if !report.key_problems.iter().any(|(h, _)| h == &s.hsa_id) {
                    report.key_problems.push((s.hsa_id.clone(), problem));
                }
                continue;
            }
            to_read.push(snapshot::ToRead {
                subscriber: s,
                index: i,
                table: p.table,
                after: p.after,
            });
        }
        if to_read.is_empty() {
            return Ok(());
        }
        // Reading overlaps writing: a thread reads the steps ahead (at most
        // `snapshot::CHUNKS` chunks of rows wait) while this one writes and
        // commits them, caregiver after caregiver.
        let skip = std::sync::atomic::AtomicUsize::new(0);
        let (tx, rx) = std::sync::mpsc::sync_channel(snapshot::CHUNKS);
        let (back_tx, back_rx) = std::sync::mpsc::channel();
        std::thread::scope(|sc| {
            let skip = &skip;
            let to_read = &to_read;
            let reader = sc.spawn(move || {
                snapshot::read_ahead(db, to_read, tables, rows, skip, &tx, &back_rx);
            });
            let written = self.write_steps(&rx, &back_tx, to_read, tables, skip, started, report);
            // The reader stops at its next chunk once no one listens.
            drop(rx);
            let read = reader.join();
            match (written, read) {
                (Err(e), _) => Err(e),
                (Ok(()), Err(_)) => Err(PublishError::SnapshotReading {
                    subscriber: to_read
                        .last()
                        .map(|c| c.subscriber.hsa_id.clone())
                        .unwrap_or_default(),
                    detail: "the reading thread panicked".into(),
                }),
                (Ok(()), Ok(())) => Ok(()),
            }
        })
    }

    /// The writing half of `snapshot_steps`: each caregiver's steps as the
    /// reading thread sends them, each committed before the caregiver's
    /// next step, and once a step's worth of rows of several caregivers
    /// are in a batch; moves on to the next caregiver (telling the reader
    /// by `skip`) when the cycle's time for steps is spent or it is asked
    /// to stop.
    #[allow(clippy::too_many_arguments)]
    fn write_steps(
        &mut self,
        rx: &std::sync::mpsc::Receiver<snapshot::Fetched>,
        back: &std::sync::mpsc::Sender<snapshot::Chunk>,
        to_read: &[snapshot::ToRead<'_>],
        tables: &[TableInfo],
        skip: &std::sync::atomic::AtomicUsize,
        started: std::time::Instant,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let rows = self.cfg.publisher.snapshot_step_rows;
        let mut batch = snapshot::Batch::new(&self.state);
        for (who, c) in to_read.iter().enumerate() {
            let s = c.subscriber;
            loop {
                let done = snapshot::step(
                    rx,
                    back,
                    who,
                    &self.state,
                    &mut self.packager,
                    c,
                    tables,
                    &mut batch,
                    report,
                )?;
                // Committed before this caregiver's next step, and once a
                // step's worth of rows of several caregivers are in it.
                if !done || batch.full(rows) {
                    std::mem::replace(&mut batch, snapshot::Batch::new(&self.state))
                        .commit(&self.state, report)?;
                }
                if done {
                    break;
                }
                failpoint::pause("snapshot-step-committed");
                let stopping = self
                    .stop
                    .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst));
                let spent = self.step_budget.is_some_and(|b| started.elapsed() >= b);
                if stopping || spent {
                    skip.store(who + 1, std::sync::atomic::Ordering::SeqCst);
                    if let Some(p) = self.state.subscriber(&s.hsa_id)?.and_then(|st| st.snapshot) {
                        report.snapshots_continuing.push((
                            s.hsa_id.clone(),
                            crate::publisher::status::snapshot_progress(&p),
                        ));
                    }
                    break;
                }
            }
        }
        batch.commit(&self.state, report)
    }

    /// The read half of a cycle, inside the snapshot transaction: versions,
    /// tables, who needs a snapshot, routed changes, snapshots begun; one
    /// commit. Returns the tables as published.
    fn read_and_stage(
        &mut self,
        db: &mut Db,
        report: &mut CycleReport,
    ) -> Result<Vec<TableInfo>, PublishError> {
        let cfg = self.cfg;
        let vt = db.rows(
            "reading the current version",
            sql::current_version_and_time(),
            &[],
        )?;
        report.statements += 1;
        let v = vt
            .first()
            .and_then(|r| int_at(r, 0))
            .ok_or(PublishError::TrackingOff)?;
        let as_of = vt
            .first()
            .and_then(|r| r.try_get::<chrono::NaiveDateTime, _>(1).ok().flatten())
            .map(|t| format!("{}Z", value::datetime_text(&t)));
        report.version = v;
        let mut changes = Changes::default();
        let w = self.state.watermark()?;
        report.previous = w;
        let (tables, reshaped) = self.read_tables(db, &mut changes, report, w.is_some())?;
        let (reset, mut lost) = self.history_reset(db, &tables, v, w, &mut changes, report)?;
        // A table whose owner rule changed in the configuration: its index
        // was built by the old rule, so it is handled as if its history
        // were lost (re-sent, or its holders learnt again).
        lost.extend(self.owner_rule_changes(&tables, w.is_some(), &mut changes)?);
        // A table whose change history was lost is re-sent whole to the
        // caregivers that receive changes (no new epoch), and the
        // membership tables whose holders depend on it learn them again.
        let (mut resend, mut relearn) = self.resend_tables(&tables, &lost);
        // A table whose rows travel again because its shape changed: routed
        // as usual, then re-read whole for every caregiver that receives
        // changes, the copy's rows going first (format 2); its ownership
        // did not change, so the indexes stay as routing leaves them. A
        // table added is re-sent like a table whose history was lost (its
        // index is built); when it takes part in membership, the tables
        // whose holders depend on it learn them, and the references its
        // rules count are learnt from their member tables.
        let rules_now = Rule::all(&tables);
        let mut reloads: Vec<(usize, Reload)> = Vec::new();
        let mut learn_refs: Vec<usize> = Vec::new();
        let index_of = |t: &TableInfo| tables.iter().position(|x| x.schema.name == t.schema.name);
        for r in &reshaped {
            let (Some(i), Some(reload)) = (r.index, r.reload) else {
                continue;
            };
            if let Some(x) = resend.iter_mut().find(|(j, _, _)| *j == i) {
                x.2 = x.2.max(Some(reload));
                continue;
            }
            if r.was
                .as_ref()
                .is_some_and(|was| was.key == tables[i].schema.key)
            {
                reloads.push((i, reload));
                continue;
            }
            // Added, or a new key (the indexes are keyed by the old one):
            // learnt again, as for a lost history.
            learn_again(&tables, i, &r.why, Some(reload), &mut resend, &mut relearn);
            if r.was.is_some() {
                continue;
            }
            let t = &tables[i];
            for rule in rules_now
                .iter()
                .filter(|x| x.target.schema.name == t.schema.name)
            {
                if let Some(j) = index_of(rule.source) {
                    if !rule.source.cfg.owner.is_membership() && !learn_refs.contains(&j) {
                        learn_refs.push(j);
                    }
                }
            }
        }
        // A table learnt again is re-read whole: its shape reload is part of that.
        reloads.retain(
            |(i, reload)| match relearn.iter_mut().find(|(j, _, _)| j == i) {
                Some(x) => {
                    x.2 = x.2.max(Some(*reload));
                    false
                }
                None => true,
            },
        );
        learn_refs.retain(|i| !resend.iter().any(|(j, _, _)| j == i));
        self.mark_offboarded(&mut changes)?;
        let (mut subs, snap) = self.snapshot_reasons(reset.as_deref(), &tables)?;
        // Snapshot steps read after the last cycle's read: this cycle
        // settles their rows (`Live::settle`) and reconciles the snapshots
        // they completed (a caregiver whose snapshot begins now is not
        // live, so neither).
        let mut reconciling = Vec::new();
        let mut settle: HashMap<RowId, Vec<String>> = HashMap::new();
        for (hsa, row) in self.state.settle_rows()? {
            // Routed this cycle (or moot: a snapshot begins, or the
            // caregiver is no longer configured).
            changes.settled_row(&hsa, &row);
            let live = cfg.subscribers.iter().position(|s| s.hsa_id == hsa);
            if live.is_some_and(|i| snap[i].is_none()) {
                settle.entry(row).or_default().push(hsa);
            }
        }
        for (i, s) in cfg.subscribers.iter().enumerate() {
            if subs[i].reconcile {
                if snap[i].is_none() {
                    reconciling.push(s.hsa_id.clone());
                }
                subs[i].reconcile = false;
                changes.set_subscriber(&s.hsa_id, &subs[i]);
            }
        }
        let mut owners = Owners::new(&self.state);
        if let (Some(w), None) = (w, &reset) {
            let live = Live {
                cfg,
                live: snap.iter().map(Option::is_none).collect(),
                settle,
                rekeyed: self.rekey(&subs, &snap, &mut changes, report),
            };
            // Before routing stages anything: the copies' shapes, and the
            // staged rows in the shape published now.
            let marked: Vec<(usize, String, Option<Reload>)> =
                resend.iter().chain(&relearn).cloned().collect();
            self.reshape(&tables, &reshaped, &marked, &live, &mut changes, report)?;
            // Member tables before the tables whose members they make.
            let rules = Rule::all(&tables);
            let mut touched = Touched::default();
            let resent = |t: &TableInfo| {
                resend
                    .iter()
                    .any(|(i, _, _)| tables[*i].schema.name == t.schema.name)
            };
            for t in tables
                .iter()
                .filter(|t| !t.cfg.owner.is_membership() && !resent(t))
            {
                self.route_table(
                    db,
                    t,
                    w,
                    &rules,
                    &mut touched,
                    &live,
                    &mut owners,
                    &mut changes,
                    report,
                )?;
                report.statements += 2;
            }
            // Membership tables and followers, each after the tables its
            // holders come from.
            let mut moved = Touched::default();
            let relearnt = |t: &TableInfo| {
                relearn
                    .iter()
                    .any(|(i, _, _)| tables[*i].schema.name == t.schema.name)
            };
            for t in membership::routing_order(&tables)
                .into_iter()
                .filter(|t| !relearnt(t))
            {
                if let Owner::Follows { table, .. } = &t.cfg.owner {
                    let followed =
                        tables
                            .iter()
                            .find(|x| &x.cfg.name == table)
                            .ok_or_else(|| PublishError::Rule {
                                table: t.schema.name.clone(),
                                detail: format!("it follows {table}, which is not published"),
                            })?;
                    self.route_followers(
                        db,
                        t,
                        followed,
                        w,
                        &rules,
                        &mut touched,
                        &mut moved,
                        &live,
                        &mut owners,
                        &mut changes,
                        report,
                    )?;
                } else {
                    self.route_members(
                        db,
                        t,
                        w,
                        &rules,
                        &mut touched,
                        &mut moved,
                        &live,
                        &mut owners,
                        &mut changes,
                        report,
                    )?;
                }
            }
        }
        if let (Some(_), None) = (w, &reset) {
            self.reconcile_held(db, &tables, &reconciling, &mut owners, &mut changes, report)?;
        }
        if let (Some(_), None) = (w, &reset) {
            let live = Live {
                cfg,
                live: snap.iter().map(Option::is_none).collect(),
                settle: HashMap::new(),
                rekeyed: Vec::new(),
            };
            let plan = Rereads {
                resend: &resend,
                reloads: &reloads,
                learn_refs: &learn_refs,
                relearn: &relearn,
            };
            self.reread(db, &tables, &plan, &live, &mut owners, &mut changes, report)?;
        }
        // Snapshots begin here (at V); their steps follow the commit.
        for (i, s) in cfg.subscribers.iter().enumerate() {
            let Some(why) = &snap[i] else { continue };
            // A key that cannot be used: no snapshot now, the reason kept
            // so that it is made once the key is replaced (the caregiver
            // is not live meanwhile, so nothing is staged that the
            // snapshot would not cover).
            if let Some(problem) = self.packager.recipient_problem(i) {
                if subs[i].epoch > 0 && subs[i].needs_snapshot.is_none() {
                    let mut st = subs[i].clone();
                    st.needs_snapshot = Some(why.clone());
                    changes.set_subscriber(&s.hsa_id, &st);
                }
                report.key_problems.push((s.hsa_id.clone(), problem));
                continue;
            }
            snapshot::start(
                &self.state,
                &cfg.publisher.outbox,
                Onboard {
                    subscriber: s,
                    state: &subs[i],
                    why,
                },
                &tables,
                v,
                as_of.clone(),
                &mut owners,
                &mut changes,
            )?;
        }
        owners.commit(&mut changes)?;
        changes.set_watermark(v);
        if let Some(t) = &as_of {
            changes.set_watermark_time(t);
        }
        self.state.commit(changes)?;
        failpoint::hit("cycle-committed");
        Ok(tables)
    }

    /// Describes every published table and compares it with what was
    /// published (`reshape`): columns new at the source are held unless
    /// decided (`new_columns = "publish"`, a mask or exclude, `ctferry
    /// schema accept`, or `snapshot --all`); the shape recorded is the one
    /// published now. Returns the tables as published, and those whose
    /// shape changed, were added (`running`: a running setup) or removed.
    fn read_tables(
        &self,
        db: &mut Db,
        changes: &mut Changes,
        report: &mut CycleReport,
        running: bool,
    ) -> Result<(Vec<TableInfo>, Vec<Reshaped>), PublishError> {
        let mut tables = Vec::new();
        let mut reshaped = Vec::new();
        for t in &self.cfg.tables {
            let mut info = describe(db, t)?;
            report.statements += 2;
            let name = info.schema.name.clone();
            let stored = self.state.table_schema(&name)?;
            if let Some(st) = &stored {
                info = self.hold_new_columns(info, st, changes, report)?;
            }
            let now = info.published();
            match drift(stored, &now) {
                Drift::New => {
                    changes.set_table_schema(&name, &now);
                    if running {
                        reshaped.push(Reshaped {
                            name: name.clone(),
                            index: Some(tables.len()),
                            was: None,
                            reload: Some(Reload::Create),
                            why: "added to the configuration".into(),
                        });
                    }
                }
                Drift::Same => {}
                Drift::Completed => changes.set_table_schema(&name, &now),
                Drift::Changed { was } => {
                    changes.set_table_schema(&name, &now);
                    let (reload, why) = reshape::assess(&was, &now, |c| {
                        report.statements += 1;
                        db.rows(
                            &format!("looking for values in {name}.{c}"),
                            &sql::any_value(&t.name, c),
                            &[],
                        )
                        .map(|r| !r.is_empty())
                    })?;
                    reshaped.push(Reshaped {
                        name: name.clone(),
                        index: Some(tables.len()),
                        was: Some(was),
                        reload,
                        why,
                    });
                }
            }
            tables.push(info);
        }
        for (name, was) in self.state.table_schemas()? {
            if tables.iter().any(|t| t.schema.name == name) {
                continue;
            }
            changes.forget_table(&name);
            if running {
                reshaped.push(Reshaped {
                    name,
                    index: None,
                    was: Some(was),
                    reload: None,
                    why: "removed from the configuration".into(),
                });
            }
        }
        Ok((tables, reshaped))
    }

    /// Table `info` without the columns new at the source (not in `stored`)
    /// that nobody decided on: held, recorded (`h/`) and reported. Accepted
    /// columns (`n/`) that are published now are no longer pending.
    fn hold_new_columns(
        &self,
        info: TableInfo,
        stored: &PublishedSchema,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<TableInfo, PublishError> {
        let name = info.schema.name.clone();
        let accepted = self.state.accepted(&name)?;
        let held = reshape::undecided(&info, stored, &accepted, self.accept_schema);
        if held != self.state.held(&name)? {
            changes.set_held(&name, &held);
        }
        if !accepted.is_empty() {
            // Accepted and published now (or gone from the source): done.
            changes.set_accepted(&name, &[]);
        }
        if !held.is_empty() {
            report.held.push((name, held.clone()));
        }
        Ok(info.without(&held))
    }

    /// The tables read again whole this cycle, after routing (see
    /// `read_and_stage`): re-sent (lost history, added), reloaded (shape),
    /// their references learnt, their holders learnt again.
    #[allow(clippy::too_many_arguments)]
    fn reread(
        &self,
        db: &mut Db,
        tables: &[TableInfo],
        plan: &Rereads<'_>,
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        for (i, why, reload) in plan.resend {
            self.resend(
                db,
                &tables[*i],
                tables,
                *reload,
                true,
                live,
                owners,
                changes,
                report,
            )?;
            report
                .resent
                .push((tables[*i].schema.name.clone(), why.clone()));
        }
        for (i, reload) in plan.reloads {
            self.resend(
                db,
                &tables[*i],
                tables,
                Some(*reload),
                false,
                live,
                owners,
                changes,
                report,
            )?;
        }
        for i in plan.learn_refs {
            self.learn_refs(db, &tables[*i], tables, live, owners, report)?;
        }
        // In routing order: a table's holders are learnt after those of
        // the tables they come from.
        for t in membership::routing_order(tables) {
            let Some((i, why, reload)) = plan
                .relearn
                .iter()
                .find(|(i, _, _)| tables[*i].schema.name == t.schema.name)
            else {
                continue;
            };
            self.relearn(
                db,
                &tables[*i],
                tables,
                *reload,
                live,
                owners,
                changes,
                report,
            )?;
            report
                .resent
                .push((tables[*i].schema.name.clone(), why.clone()));
        }
        Ok(())
    }

    /// The tables whose owner rule differs from the one their index was
    /// built with (`x/`), with why; records the rules (the first time
    /// without a change).
    fn owner_rule_changes(
        &self,
        tables: &[TableInfo],
        running: bool,
        changes: &mut Changes,
    ) -> Result<Vec<(String, String)>, PublishError> {
        let mut out = Vec::new();
        for t in tables {
            let name = &t.schema.name;
            let now = t.cfg.owner.to_string();
            let before = self.state.owner_rule(name)?;
            if before.as_deref().map(str::to_lowercase) == Some(now.to_lowercase()) {
                continue;
            }
            changes.set_owner_rule(name, &now);
            if let (Some(was), true) = (before, running) {
                out.push((
                    name.clone(),
                    format!("its owner rule changed in the configuration (was {was}; now {now})"),
                ));
            }
        }
        Ok(out)
    }

    /// Why every caregiver needs a new snapshot, if the source's change
    /// history does not continue from W: the version went back (restore),
    /// a table's history before W is gone (expiry), or a table's tracking
    /// began again (re-enabled, truncated). Published tables and the tables
    /// of owner paths alike: a lost change of a hop table is a row that
    /// moved unseen. Records each table's begin version.
    fn history_reset(
        &self,
        db: &mut Db,
        tables: &[TableInfo],
        v: i64,
        w: Option<i64>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(Option<String>, Lost), PublishError> {
        let mut reset: Option<String> = None;
        let mut lost: Vec<(String, String)> = Vec::new();
        if let Some(w) = w {
            if v < w {
                reset = Some(format!("the source's change tracking version {v} is below the last one read ({w}): the database was restored or replaced"));
            }
        }
        let mut names: Vec<String> = tables.iter().map(|t| t.schema.name.clone()).collect();
        for t in &self.cfg.tables {
            if let Some(hops) = owner_hops(&t.owner) {
                for h in hops {
                    let n = h.table.to_string();
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
        }
        for name in &names {
            let rows = db.rows(
                "reading the minimum valid version",
                sql::min_valid_version(),
                &[Param::Str(name.clone())],
            )?;
            report.statements += 1;
            let min = rows.first().and_then(|r| int_at(r, 0)).ok_or_else(|| {
                PublishError::TableNotTracked {
                    table: name.clone(),
                }
            })?;
            let begin = rows.first().and_then(|r| int_at(r, 1)).unwrap_or(min);
            let before = self.state.begin_version(name)?;
            if before != Some(begin) {
                changes.set_begin_version(name, begin);
            }
            let Some(w) = w else { continue };
            if reset.is_some() {
                continue;
            }
            if w < min {
                lost.push((name.clone(), format!("the change history of {name} before version {min} is gone (expired, truncated, or tracking re-enabled) and the last version read is {w}")));
            } else if before.is_some() && before != Some(begin) {
                lost.push((name.clone(), format!(
                    "change tracking of {name} began again at version {begin} (was {}): it was disabled and re-enabled, or the table truncated, and changes in between are unknown",
                    before.unwrap_or(0)
                )));
            }
        }
        Ok((reset, lost))
    }

    /// What a lost change history (`lost`: the table, why) makes the cycle
    /// do, without a new epoch: the single-owner and shared tables to
    /// re-send whole (the table itself and those whose owner path goes
    /// through it; a shared table, whose rows the index does not list,
    /// with its copies emptied first: `Reload::Reset`), and the membership
    /// tables whose holders must be learnt again (those depending on a
    /// table re-sent or on the lost one, or whose owner path goes through
    /// it; the lost one itself, whose rows changed unseen, reloaded).
    #[allow(clippy::type_complexity)]
    fn resend_tables(
        &self,
        tables: &[TableInfo],
        lost: &[(String, String)],
    ) -> (
        Vec<(usize, String, Option<Reload>)>,
        Vec<(usize, String, Option<Reload>)>,
    ) {
        let mut resend: Vec<(usize, String, Option<Reload>)> = Vec::new();
        let mut relearn: Vec<(usize, String, Option<Reload>)> = Vec::new();
        for (name, why) in lost {
            for (i, t) in tables.iter().enumerate() {
                let through = owner_hops(&t.cfg.owner)
                    .is_some_and(|h| h.iter().any(|h| &h.table.to_string() == name));
                if &t.schema.name != name && !through {
                    continue;
                }
                // Its own rows changed unseen when it is the lost one (or,
                // shared, it has no index to send the difference from).
                let reload = if t.cfg.owner.is_membership() {
                    (&t.schema.name == name).then_some(Reload::Reset)
                } else {
                    (t.cfg.owner == Owner::Shared).then_some(Reload::Reset)
                };
                learn_again(tables, i, why, reload, &mut resend, &mut relearn);
            }
        }
        (resend, relearn)
    }

    /// Records, for every caregiver that receives this cycle's changes, how
    /// its copy of each reshaped table differs from what is published now
    /// (`k/`, merged with a difference not yet delivered), so that its next
    /// delta carries the table change; the tables re-sent this cycle get
    /// their reload there too. Staged rows of a changed table are rewritten
    /// in the shape published now (every caregiver's); those of a table no
    /// longer published, or re-sent with a reload, are dropped.
    fn reshape(
        &self,
        tables: &[TableInfo],
        reshaped: &[Reshaped],
        resend: &[(usize, String, Option<Reload>)],
        live: &Live<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let cfg = self.cfg;
        // Each table to mark, with the shape a copy has when nothing is
        // pending for it yet: the one published before this cycle.
        let mut marks: Vec<(&str, Option<PublishedSchema>, Option<Reload>, &str)> = reshaped
            .iter()
            .map(|r| (r.name.as_str(), r.was.clone(), r.reload, r.why.as_str()))
            .collect();
        for (i, why, reload) in resend {
            let name = tables[*i].schema.name.as_str();
            if reload.is_some() && !marks.iter().any(|m| m.0 == name) {
                marks.push((name, self.state.table_schema(name)?, *reload, why));
            }
        }
        for (j, s) in cfg.subscribers.iter().enumerate() {
            if !live.live[j] {
                continue;
            }
            for (name, was, reload, why) in &marks {
                let base = self
                    .state
                    .copy_table(&s.hsa_id, name)?
                    .unwrap_or_else(|| CopyTable {
                        schema: was.clone(),
                        reload: None,
                        why: Vec::new(),
                    });
                changes.set_copy_table(&s.hsa_id, name, Some(&base.merge(*reload, why)));
            }
        }
        let subscribers = self.state.subscribers()?;
        for r in reshaped {
            let drop_staged = match r.index {
                None => true,
                Some(i) => {
                    r.reload.is_some() || resend.iter().any(|(j, _, re)| *j == i && re.is_some())
                }
            };
            for (hsa, _) in &subscribers {
                for st in self.state.staged_in(hsa, &r.name)? {
                    if drop_staged {
                        changes.unstage(&st.id);
                        continue;
                    }
                    let (Some(i), Some(was)) = (r.index, &r.was) else {
                        continue;
                    };
                    let t = &tables[i];
                    let op =
                        reshape::convert_op(&st.op, &was.table_info(&t.cfg), t).map_err(|e| {
                            PublishError::StagedUnreadable {
                                table: r.name.clone(),
                                detail: e.to_string(),
                            }
                        })?;
                    changes.restage(&st.id, op);
                }
            }
            report.reshaped.push((r.name.clone(), r.why.clone()));
        }
        Ok(())
    }

    /// Re-sends table `t` to every live caregiver inside the cycle. First,
    /// for each, a delete for every row the index gives it; then the row
    /// for every row it has now (read as a snapshot reads it); staging
    /// compacts by key, so without `reload` the package carries exactly the
    /// difference, and the index follows. With `reload` the copy's rows go
    /// first (the package empties or re-creates the table) and the deletes
    /// are not sent. A shared table (not in the index) needs a reload.
    /// Without `learn` (a table routed as usual this cycle, whose
    /// ownership did not change) the indexes are left as they are: any
    /// table, membership ones included, is re-read that way.
    #[allow(clippy::too_many_arguments)]
    fn resend(
        &self,
        db: &mut Db,
        t: &TableInfo,
        tables: &[TableInfo],
        reload: Option<Reload>,
        learn: bool,
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let name = &t.schema.name;
        let shared = t.cfg.owner == Owner::Shared;
        let subs: Vec<&crate::config::SubscriberConfig> = self
            .cfg
            .subscribers
            .iter()
            .enumerate()
            .filter(|(j, _)| live.live[*j])
            .map(|(_, s)| s)
            .collect();
        let key_types: Vec<ColumnType> =
            t.key_pos.iter().map(|p| t.schema.columns[*p].ty).collect();
        // All the forgetting before any learning: a row that moved between
        // two caregivers is learnt for its new one after it was forgotten
        // for its old one.
        for s in subs.iter().filter(|_| !shared && learn) {
            for (row, kb) in self.state.owned_in(name, &s.hsa_id)? {
                if reload.is_none() {
                    let key = decode_key(&kb, &key_types).map_err(|e| {
                        PublishError::StagedUnreadable {
                            table: name.clone(),
                            detail: format!("a key in the ownership index ({e})"),
                        }
                    })?;
                    live.send(
                        &[Send::Delete(&s.hsa_id)],
                        name,
                        &kb,
                        &[],
                        &key,
                        changes,
                        report,
                    );
                }
                owners.set(row, None);
            }
        }
        let holding = membership::holding(t, tables);
        // A member table's rows: the keys they reference are learnt too.
        let rules = Rule::all(tables);
        let mine = Refs::of(t, &rules);
        let ref_cols: &[String] = if learn { &mine.cols } else { &[] };
        let readers: Vec<Option<&crate::config::SubscriberConfig>> = if shared {
            vec![None]
        } else {
            subs.iter().map(|s| Some(*s)).collect()
        };
        for s in readers {
            let keys = s.map(|s| s.keys.clone()).unwrap_or_default();
            let q = sql::snapshot_rows(&holding, &t.select, keys.len(), ref_cols);
            let params: Vec<Param> = keys.iter().map(|k| Param::Str(k.clone())).collect();
            let mut rows: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
            db.query(
                &format!(
                    "re-reading {name}{}",
                    s.map(|s| format!(" for {}", s.hsa_id)).unwrap_or_default()
                ),
                &q,
                &params,
                |r| {
                    let vals = client::values(r, 1, &t.schema.columns)?;
                    let referenced = if ref_cols.is_empty() {
                        Vec::new()
                    } else {
                        mine.read(r, 1 + t.schema.columns.len())?
                    };
                    rows.push((vals, referenced));
                    Ok(())
                },
            )?;
            report.statements += 1;
            for (vals, referenced) in rows {
                let key: Vec<Value> = t.key_of(&vals);
                let kb = key_bytes(&key);
                if !ref_cols.is_empty() {
                    let row = RowId::new(name, &kb);
                    for (m, k) in mine.keys(&referenced) {
                        owners.set_reference(RefId::new(&m.id, &row), k);
                    }
                }
                match s {
                    Some(s) => {
                        live.send(
                            &[Send::Upsert(&s.hsa_id)],
                            name,
                            &kb,
                            &vals,
                            &key,
                            changes,
                            report,
                        );
                        if learn {
                            owners.set(RowId::new(name, &kb), Some(s.hsa_id.clone()));
                        }
                    }
                    None => {
                        for s in &subs {
                            live.send(
                                &[Send::Upsert(&s.hsa_id)],
                                name,
                                &kb,
                                &vals,
                                &key,
                                changes,
                                report,
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Learns again which live caregivers hold each row of membership (or
    /// follower) table `t`, as a snapshot reads them at V, without a new
    /// epoch: every row a caregiver holds now is sent to it (whole, with
    /// its values now: its rows or its holders may have changed unseen),
    /// and every row it held and holds no more is deleted there (with
    /// `reload` the copy's table is emptied or re-created first instead,
    /// and the rows staged for it before are dropped). The holders of
    /// caregivers that do not receive changes are left for their
    /// snapshot. The references `t`'s rows count through membership rules
    /// of other tables are learnt with them. Not routed this cycle.
    #[allow(clippy::too_many_arguments)]
    fn relearn(
        &self,
        db: &mut Db,
        t: &TableInfo,
        tables: &[TableInfo],
        reload: Option<Reload>,
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let name = &t.schema.name;
        let rules = Rule::all(tables);
        let mine = Refs::of(t, &rules);
        let holding = membership::holding(t, tables);
        let key_types: Vec<ColumnType> =
            t.key_pos.iter().map(|p| t.schema.columns[*p].ty).collect();
        let before = self.state.holders_in(name)?;
        for (j, s) in self.cfg.subscribers.iter().enumerate() {
            if !live.live[j] {
                continue;
            }
            if reload.is_some() {
                for st in self.state.staged_in(&s.hsa_id, name)? {
                    changes.unstage(&st.id);
                }
            }
            let params: Vec<Param> = s.keys.iter().map(|k| Param::Str(k.clone())).collect();
            let mut rows: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
            db.query(
                &format!("learning the holders of {name} for {}", s.hsa_id),
                &sql::snapshot_rows(&holding, &t.select, s.keys.len(), &mine.cols),
                &params,
                |r| {
                    let vals = client::values(r, 1, &t.schema.columns)?;
                    let referenced = mine.read(r, 1 + t.schema.columns.len())?;
                    rows.push((vals, referenced));
                    Ok(())
                },
            )?;
            report.statements += 1;
            let mut now: BTreeSet<Vec<u8>> = BTreeSet::new();
            for (vals, referenced) in rows {
                let key: Vec<Value> = t.key_of(&vals);
                let kb = key_bytes(&key);
                let row = RowId::new(name, &kb);
                for (m, k) in mine.keys(&referenced) {
                    owners.set_reference(RefId::new(&m.id, &row), k);
                }
                live.send(
                    &[Send::Upsert(&s.hsa_id)],
                    name,
                    &kb,
                    &vals,
                    &key,
                    changes,
                    report,
                );
                let mut set = owners.holders(&row)?;
                if set.insert(s.hsa_id.clone()) {
                    owners.set_holders(row, set);
                }
                now.insert(kb);
            }
            for (row, kb, _) in &before {
                if now.contains(kb) {
                    continue;
                }
                let mut set = owners.holders(row)?;
                if !set.remove(&s.hsa_id) {
                    continue;
                }
                if reload.is_none() {
                    let key =
                        decode_key(kb, &key_types).map_err(|e| PublishError::StagedUnreadable {
                            table: name.clone(),
                            detail: format!("a key in the membership index ({e})"),
                        })?;
                    live.send(
                        &[Send::Delete(&s.hsa_id)],
                        name,
                        kb,
                        &[],
                        &key,
                        changes,
                        report,
                    );
                }
                owners.set_holders(row.clone(), set);
            }
        }
        Ok(())
    }

    /// Learns the keys that the rows of member table `t` (not itself owned
    /// by membership) reference through the membership rules of `tables`,
    /// for the rows each live caregiver has (a membership table just added
    /// counts them from the next cycle on). Nothing is staged.
    fn learn_refs(
        &self,
        db: &mut Db,
        t: &TableInfo,
        tables: &[TableInfo],
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let name = &t.schema.name;
        let rules = Rule::all(tables);
        let mine = Refs::of(t, &rules);
        if mine.rules.is_empty() {
            return Ok(());
        }
        let holding = membership::holding(t, tables);
        for (j, s) in self.cfg.subscribers.iter().enumerate() {
            if !live.live[j] {
                continue;
            }
            let params: Vec<Param> = s.keys.iter().map(|k| Param::Str(k.clone())).collect();
            let mut refs: Vec<(RowId, Vec<Value>)> = Vec::new();
            db.query(
                &format!("learning what {name} references for {}", s.hsa_id),
                &sql::snapshot_rows(&holding, &t.select, s.keys.len(), &mine.cols),
                &params,
                |r| {
                    let mut key = Vec::with_capacity(t.key_pos.len());
                    for p in &t.key_pos {
                        let c = &t.schema.columns[*p];
                        key.push(client::value(r, p + 1, &c.name, &c.ty)?);
                    }
                    let referenced = mine.read(r, 1 + t.schema.columns.len())?;
                    refs.push((RowId::new(name, &key_bytes(&key)), referenced));
                    Ok(())
                },
            )?;
            report.statements += 1;
            for (row, referenced) in refs {
                for (m, k) in mine.keys(&referenced) {
                    owners.set_reference(RefId::new(&m.id, &row), k);
                }
            }
        }
        Ok(())
    }

    /// A caregiver no longer in the configuration (offboarded) receives
    /// nothing from now on; should it come back, the changes in between
    /// were never staged for it, so it must start over with a snapshot.
    fn mark_offboarded(&self, changes: &mut Changes) -> Result<(), PublishError> {
        for (hsa, mut st) in self.state.subscribers()? {
            if self.cfg.subscriber(&hsa).is_none() && st.epoch > 0 && st.needs_snapshot.is_none() {
                st.needs_snapshot =
                    Some("it was removed from the configuration (offboarded) and came back".into());
                changes.set_subscriber(&hsa, &st);
            }
        }
        Ok(())
    }

    /// The partition keys that changed hands in the configuration since
    /// the last cycle, for the caregivers that receive this cycle's changes
    /// (`snap[i]` is None): a key gained or lost. Their rows are re-routed
    /// in this cycle (read by owner value, `sql::changed_rows`), so a care
    /// unit gained arrives and one lost leaves as deltas, with no new
    /// epoch; the new keys are recorded in the cycle's commit.
    fn rekey(
        &self,
        subs: &[SubscriberState],
        snap: &[Option<String>],
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, s) in self.cfg.subscribers.iter().enumerate() {
            if snap[i].is_some() {
                continue;
            }
            let mut keys = s.keys.clone();
            keys.sort();
            let had = &subs[i].keys;
            if &keys == had {
                continue;
            }
            let gained: Vec<&String> = keys.iter().filter(|k| !had.contains(k)).collect();
            let lost: Vec<&String> = had.iter().filter(|k| !keys.contains(k)).collect();
            out.extend(gained.iter().chain(&lost).map(|k| k.to_string()));
            let list = |v: &[&String]| v.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
            report.rekeyed.push((
                s.hsa_id.clone(),
                match (gained.is_empty(), lost.is_empty()) {
                    (false, true) => format!("gained {}", list(&gained)),
                    (true, false) => format!("lost {}", list(&lost)),
                    _ => format!("gained {}; lost {}", list(&gained), list(&lost)),
                },
            ));
            let mut st = subs[i].clone();
            st.keys = keys;
            changes.set_subscriber(&s.hsa_id, &st);
        }
        out.sort();
        out.dedup();
        out
    }

    /// Each configured caregiver's state, and why it needs a snapshot now
    /// (`None`: it receives this cycle's changes).
    #[allow(clippy::type_complexity)]
    fn snapshot_reasons(
        &self,
        reset: Option<&str>,
        tables: &[TableInfo],
    ) -> Result<(Vec<SubscriberState>, Vec<Option<String>>), PublishError> {
        let mut subs = Vec::new();
        let mut snap = Vec::new();
        for s in &self.cfg.subscribers {
            let st = self.state.subscriber(&s.hsa_id)?.unwrap_or_default();
            let why = if st.epoch == 0 {
                Some("onboarding".to_string())
            } else if let Some(r) = &st.needs_snapshot {
                Some(r.clone())
            } else if let Some(r) = reset {
                Some(r.to_string())
            } else {
                st.snapshot
                    .as_ref()
                    .and_then(|p| snapshot::must_restart(p, tables))
            };
            subs.push(st);
            snap.push(why);
        }
        Ok((subs, snap))
    }

    /// Reads table `t`'s changes since `w` (rows that exist now, with their
    /// owner; deleted keys) and stages each where `route` sends it. When
    /// `t`'s rows make caregivers members of another table's rows
    /// (`rules`), the keys they reference, before and now, are remembered
    /// and, where the reference or the row's owner changed, added to
    /// `touched` for `route_members`.
    #[allow(clippy::too_many_arguments)]
    fn route_table(
        &self,
        db: &mut Db,
        t: &TableInfo,
        w: i64,
        rules: &[Rule<'_>],
        touched: &mut Touched,
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let name = t.schema.name.clone();
        let rule = &t.cfg.owner;
        let refs = Refs::of(t, rules);
        let (rekeyed, params) = live.change_params(t, w);
        let q = sql::changed_rows(
            &t.cfg.name,
            rule,
            &t.schema.key,
            &t.select,
            &self.cfg.key_owners(),
            &refs.cols,
            rekeyed,
        );
        #[allow(clippy::type_complexity)]
        let mut rows: Vec<(bool, Option<i64>, Vec<Value>, Vec<Value>)> = Vec::new();
        db.query(
            &format!("reading the changes of {name}"),
            &q,
            &params,
            |r| {
                let own_change = int_at(r, 0).unwrap_or(0) != 0;
                let owner = int_at(r, 1);
                let vals = client::values(r, 2, &t.schema.columns)?;
                let referenced = refs.read(r, 2 + t.schema.columns.len())?;
                rows.push((own_change, owner, vals, referenced));
                Ok(())
            },
        )?;
        let deleted = read_deleted(db, t, w)?;
        report.changes_read += rows.iter().filter(|r| r.0).count() as u64 + deleted.len() as u64;
        for (own_change, owner, vals, referenced) in rows {
            let key: Vec<Value> = t.key_of(&vals);
            let kb = key_bytes(&key);
            let row = RowId::new(&name, &kb);
            let old = match rule {
                Owner::Shared => None,
                _ => owners.get(&row)?,
            };
            // SQL Server matched the owner value to a subscriber (see
            // `sql::source::changed_rows`).
            let new = owner
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.cfg.subscribers.get(i))
                .map(|s| s.hsa_id.clone());
            let r = route::changed_row(rule, own_change, old.as_deref(), new.as_deref());
            live.send(&r.send, &name, &kb, &vals, &key, changes, report);
            if *rule != Owner::Shared {
                live.settle(
                    &r.send,
                    new.as_deref(),
                    &row,
                    &name,
                    &kb,
                    &key,
                    changes,
                    report,
                );
            }
            if let Some(o) = r.index {
                owners.set(row.clone(), o.map(str::to_string));
            }
            remember_refs(&refs, &row, &referenced, old != new, owners, touched)?;
        }
        for key in deleted {
            let kb = key_bytes(&key);
            let row = RowId::new(&name, &kb);
            let old = match rule {
                Owner::Shared => None,
                _ => owners.get(&row)?,
            };
            let r = route::deleted_row(rule, old.as_deref());
            live.send(&r.send, &name, &kb, &[], &key, changes, report);
            if *rule != Owner::Shared {
                live.settle(&r.send, None, &row, &name, &kb, &key, changes, report);
            }
            if let Some(o) = r.index {
                owners.set(row.clone(), o.map(str::to_string));
            }
            forget_refs(&refs, &row, owners, touched)?;
        }
        Ok(())
    }

    /// Routes membership table `t` (`owner = { members = [...] }`): its
    /// own changes, and the rows `touched` by changes of its member
    /// tables; each row's members now are read in set-based statements
    /// (`sql::source::member_owners`, one per rule per chunk of keys) and
    /// compared with the caregivers that hold it (`route::member_row`).
    /// Rows whose holders changed go to `moved`, for their followers.
    #[allow(clippy::too_many_arguments)]
    fn route_members(
        &self,
        db: &mut Db,
        t: &TableInfo,
        w: i64,
        rules: &[Rule<'_>],
        touched: &mut Touched,
        moved: &mut Touched,
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let name = t.schema.name.clone();
        let key_owners = self.cfg.key_owners();
        let key_types: Vec<ColumnType> =
            t.key_pos.iter().map(|p| t.schema.columns[*p].ty).collect();
        // `__owner` is the direct owner's position among the subscribers.
        let mut rows = HeldRows::new(t, None, rules);
        rows.read_changes(db, &key_owners, live.change_params(t, w), report)?;
        // Rows whose members may have changed, not read above.
        let more: Vec<&Vec<Value>> = touched
            .keys(&name)
            .filter(|(kb, _)| !rows.rows.contains_key(*kb))
            .map(|(_, k)| k)
            .collect();
        for chunk in more.chunks(KEYS_PER_STATEMENT) {
            rows.read(
                db,
                &format!("reading the rows of {name} whose members may have changed"),
                &sql::rows_by_key(
                    &t.cfg.name,
                    &t.cfg.owner,
                    &t.schema.key,
                    &t.select,
                    &key_owners,
                    chunk.len(),
                    &rows.refs.cols,
                ),
                &key_params(chunk, &key_types),
            )?;
            report.statements += 1;
        }
        // Their members now: the direct owner, and each rule's.
        let mut members: HashMap<Vec<u8>, BTreeSet<String>> = HashMap::new();
        for (kb, (_, direct, _, _)) in &rows.rows {
            let set = members.entry(kb.clone()).or_default();
            if let Value::Int(i) = direct {
                set.extend(self.subscriber_at(Some(*i)));
            }
        }
        let keys: Vec<Vec<Value>> = rows
            .rows
            .values()
            .map(|(_, _, vals, _)| t.key_of(vals))
            .collect();
        let keys: Vec<&Vec<Value>> = keys.iter().collect();
        for r in rules.iter().filter(|r| r.target.schema.name == name) {
            if r.source_is_membership() {
                // Its rows' holders are in the state (routed before this
                // table): which of its rows reference each key, then
                // their holders.
                let skey: Vec<ColumnType> = r
                    .source
                    .key_pos
                    .iter()
                    .map(|p| r.source.schema.columns[*p].ty)
                    .collect();
                let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                    db.query(
                        &format!(
                            "reading the rows of {} that make members of {name}",
                            r.source.schema.name
                        ),
                        &sql::member_rows(
                            &t.cfg.name,
                            &t.schema.key,
                            &r.source.cfg.name,
                            &r.source.schema.key,
                            &r.member.columns,
                            chunk.len(),
                        ),
                        &key_params(chunk, &key_types),
                        |row| {
                            let mut k = Vec::with_capacity(key_types.len());
                            for (i, ty) in key_types.iter().enumerate() {
                                k.push(client::value(row, i, &t.schema.key[i], ty)?);
                            }
                            let mut sk = Vec::with_capacity(skey.len());
                            for (i, ty) in skey.iter().enumerate() {
                                sk.push(client::value(
                                    row,
                                    key_types.len() + i,
                                    &r.source.schema.key[i],
                                    ty,
                                )?);
                            }
                            pairs.push((key_bytes(&k), key_bytes(&sk)));
                            Ok(())
                        },
                    )?;
                    report.statements += 1;
                }
                for (kb, skb) in pairs {
                    let held = owners.holders(&RowId::new(&r.source.schema.name, &skb))?;
                    members.entry(kb).or_default().extend(held);
                }
                continue;
            }
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                db.query(
                    &format!("reading the members of {name} through {}", r.member),
                    &sql::member_owners(
                        &t.cfg.name,
                        &t.schema.key,
                        &r.source.cfg.name,
                        &r.source.cfg.owner,
                        &r.member.columns,
                        &key_owners,
                        chunk.len(),
                    ),
                    &key_params(chunk, &key_types),
                    |row| {
                        let mut k = Vec::with_capacity(key_types.len());
                        for (i, ty) in key_types.iter().enumerate() {
                            k.push(client::value(row, i, &t.schema.key[i], ty)?);
                        }
                        if let Some(h) = self.subscriber_at(int_at(row, key_types.len())) {
                            members.entry(key_bytes(&k)).or_default().insert(h);
                        }
                        Ok(())
                    },
                )?;
                report.statements += 1;
            }
        }
        let changed = rows.settle(
            |_, kb, _| Ok(members.remove(kb).unwrap_or_default()),
            live,
            owners,
            changes,
            report,
        )?;
        rows.finish(
            db, w, changed, touched, moved, live, owners, changes, report,
        )
    }

    /// Routes table `t`, which follows membership table `followed`
    /// (`owner = { path = "PatientId -> dbo.Patient(Id)" }`): a row is
    /// held where the row it follows is held (`m/` of that row, as
    /// `route_members` left it this cycle). Its own changes (and changes up
    /// its path) are read as any table's; the rows following a row whose
    /// holders changed (`moved`) are read by that row's key.
    #[allow(clippy::too_many_arguments)]
    fn route_followers(
        &self,
        db: &mut Db,
        t: &TableInfo,
        followed: &TableInfo,
        w: i64,
        rules: &[Rule<'_>],
        touched: &mut Touched,
        moved: &mut Touched,
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let name = t.schema.name.clone();
        let fname = followed.schema.name.clone();
        let [kp] = followed.key_pos[..] else {
            return Err(PublishError::Rule {
                table: name,
                detail: format!("it follows {fname}, whose primary key has {} columns; a path follows a key of one column: end the path at an owner column, or give {} members of its own", followed.key_pos.len(), t.schema.name),
            });
        };
        let fty = followed.schema.columns[kp].ty;
        let key_owners = self.cfg.key_owners();
        // `__owner` is the key of the followed row.
        let mut rows = HeldRows::new(t, Some(fty), rules);
        rows.read_changes(db, &key_owners, live.change_params(t, w), report)?;
        let keys: Vec<Vec<Value>> = moved.keys(&fname).map(|(_, k)| k.clone()).collect();
        let keys: Vec<&Vec<Value>> = keys.iter().collect();
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            rows.read(
                db,
                &format!("reading the rows of {name} that follow rows of {fname} that moved"),
                &sql::rows_following(
                    &t.cfg.name,
                    &t.cfg.owner,
                    &t.select,
                    chunk.len(),
                    &rows.refs.cols,
                ),
                &key_params(chunk, &[fty]),
            )?;
            report.statements += 1;
        }
        let changed = rows.settle(
            |owners, _, f| match f {
                Value::Null => Ok(BTreeSet::new()),
                f => Ok(owners.holders(&RowId::new(&fname, &key_bytes(std::slice::from_ref(f))))?),
            },
            live,
            owners,
            changes,
            report,
        )?;
        rows.finish(
            db, w, changed, touched, moved, live, owners, changes, report,
        )
    }

    /// For each caregiver whose snapshot, read in several steps, completed
    /// since the last cycle (`SubscriberState::reconcile`), after routing: the
    /// rows of every membership and follower table it holds, read now as
    /// its snapshot reads them, against the rows the index says it holds;
    /// a row it holds now and the index does not goes to it, one the index
    /// says it holds and it does not now is deleted there, and the index
    /// follows. Its snapshot read each table at its own version, so a
    /// membership can rest on a member row that came and went between two
    /// steps without the index ever knowing it (a visit added after the
    /// visits were read and gone before the cycle routed it); this is the
    /// one place that sees such a row. Costs one read of the caregiver's
    /// held rows per table, once per snapshot.
    fn reconcile_held(
        &self,
        db: &mut Db,
        tables: &[TableInfo],
        reconciling: &[String],
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        if reconciling.is_empty() {
            return Ok(());
        }
        let live = Live {
            cfg: self.cfg,
            live: vec![true; self.cfg.subscribers.len()],
            settle: HashMap::new(),
            rekeyed: Vec::new(),
        };
        for hsa in reconciling {
            let Some(s) = self.cfg.subscriber(hsa) else {
                continue;
            };
            // What the index says it holds: the state, and what this
            // cycle's routing decided (which may rest on a membership this
            // reconciliation corrects).
            let mut before: HashMap<String, BTreeSet<RowId>> = HashMap::new();
            let decided: Vec<RowId> = owners
                .decided_holders()
                .filter(|(_, set)| set.contains(hsa))
                .map(|(row, _)| row.clone())
                .collect();
            for row in self
                .state
                .held_by(hsa)?
                .into_iter()
                .map(|(r, _)| r)
                .chain(decided)
            {
                before
                    .entry(row.table().to_string())
                    .or_default()
                    .insert(row);
            }
            let params: Vec<Param> = s.keys.iter().map(|k| Param::Str(k.clone())).collect();
            for t in membership::routing_order(tables) {
                let name = t.schema.name.clone();
                let mut was = before.remove(&name).unwrap_or_default();
                let mut now: Vec<(Vec<u8>, Vec<Value>)> = Vec::new();
                db.query(
                    &format!("reading the rows of {name} that {hsa} holds"),
                    &sql::snapshot_rows(
                        &membership::holding(t, tables),
                        &t.select,
                        s.keys.len(),
                        &[],
                    ),
                    &params,
                    |r| {
                        let vals = client::values(r, 1, &t.schema.columns)?;
                        let key: Vec<Value> = t.key_of(&vals);
                        now.push((key_bytes(&key), vals));
                        Ok(())
                    },
                )?;
                report.statements += 1;
                for (kb, vals) in now {
                    let row = RowId::new(&name, &kb);
                    was.remove(&row);
                    let mut set = owners.holders(&row)?;
                    if set.insert(hsa.clone()) {
                        live.stage(hsa, &name, &kb, &Op::Upsert(vals), changes, report);
                        owners.set_holders(row, set);
                    }
                }
                let types: Vec<ColumnType> =
                    t.key_pos.iter().map(|p| t.schema.columns[*p].ty).collect();
                for row in was {
                    let mut set = owners.holders(&row)?;
                    if set.remove(hsa) {
                        let key = decode_key(row.key(), &types).map_err(|e| {
                            PublishError::StagedUnreadable {
                                table: name.clone(),
                                detail: format!("a key in the membership index ({e})"),
                            }
                        })?;
                        let kb = row.key().to_vec();
                        live.stage(hsa, &name, &kb, &Op::Delete(key), changes, report);
                        owners.set_holders(row, set);
                    }
                }
            }
        }
        Ok(())
    }

    /// The subscriber at position `i` of the configuration (the `__owner`
    /// that `owner_case` gives), if any.
    fn subscriber_at(&self, i: Option<i64>) -> Option<String> {
        i.and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.cfg.subscribers.get(i))
            .map(|s| s.hsa_id.clone())
    }
}

/// Rows of a membership or follower table read this cycle, by encoded key:
/// (own change, `__owner`, values). `__owner` is the direct owner's
/// position among the subscribers (`owner_ty` None) or the followed row's
/// key (of type `owner_ty`).
struct HeldRows<'t> {
    t: &'t TableInfo,
    owner_ty: Option<ColumnType>,
    /// The rules through which the rows make members of another table's
    /// rows (membership through membership).
    refs: Refs<'t>,
    /// Encoded key → (own change, `__owner`, values, referencing values).
    #[allow(clippy::type_complexity)]
    rows: BTreeMap<Vec<u8>, (bool, Value, Vec<Value>, Vec<Value>)>,
}

impl<'t> HeldRows<'t> {
    fn new(t: &'t TableInfo, owner_ty: Option<ColumnType>, rules: &'t [Rule<'t>]) -> HeldRows<'t> {
        HeldRows {
            t,
            owner_ty,
            refs: Refs::of(t, rules),
            rows: BTreeMap::new(),
        }
    }

    /// The end of routing a membership or follower table: its deletes (to
    /// every caregiver that held each row), the keys its rows touch through
    /// membership rules, and the rows whose holders changed (`changed`)
    /// and deleted ones into `moved`, for the tables that follow it.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        db: &mut Db,
        w: i64,
        changed: Vec<KeyPair>,
        touched: &mut Touched,
        moved: &mut Touched,
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let name = &self.t.schema.name;
        let deleted = read_deleted(db, self.t, w)?;
        report.statements += 1;
        report.changes_read += deleted.len() as u64;
        self.touch(&changed, &deleted, owners, touched)?;
        for (kb, key) in changed {
            moved.insert(name, &kb, key);
        }
        for (kb, key) in drop_held(name, deleted, live, owners, changes, report)? {
            moved.insert(name, &kb, key);
        }
        Ok(())
    }

    /// For each membership rule through this table: the keys its rows
    /// referenced before (`f/`) and reference now, where the reference or
    /// the row's holders (`changed`) changed, or the row was deleted, are
    /// touched; the references remembered.
    fn touch(
        &self,
        changed: &[KeyPair],
        deleted: &[Vec<Value>],
        owners: &mut Owners<'_>,
        touched: &mut Touched,
    ) -> Result<(), PublishError> {
        if self.refs.rules.is_empty() {
            return Ok(());
        }
        let name = &self.t.schema.name;
        for (kb, (_, _, _, referenced)) in &self.rows {
            let moved = changed.iter().any(|(k, _)| k == kb);
            remember_refs(
                &self.refs,
                &RowId::new(name, kb),
                referenced,
                moved,
                owners,
                touched,
            )?;
        }
        for key in deleted {
            forget_refs(
                &self.refs,
                &RowId::new(name, &key_bytes(key)),
                owners,
                touched,
            )?;
        }
        Ok(())
    }

    /// Reads rows of `changed_rows`' shape; a row read before is kept.
    fn read(
        &mut self,
        db: &mut Db,
        what: &str,
        sql: &str,
        params: &[Param],
    ) -> Result<(), PublishError> {
        let t = self.t;
        let (owner_ty, rows) = (self.owner_ty, &mut self.rows);
        let refs = &self.refs;
        db.query(what, sql, params, |r| {
            let vals = client::values(r, 2, &t.schema.columns)?;
            let referenced = refs.read(r, 2 + t.schema.columns.len())?;
            let owner = match &owner_ty {
                None => int_at(r, 1).map(Value::Int).unwrap_or(Value::Null),
                Some(ty) => client::value(r, 1, "__owner", ty)?,
            };
            let kb = key_bytes(
                &t.key_pos
                    .iter()
                    .map(|p| vals[*p].clone())
                    .collect::<Vec<_>>(),
            );
            rows.entry(kb)
                .or_insert((int_at(r, 0).unwrap_or(0) != 0, owner, vals, referenced));
            Ok(())
        })?;
        Ok(())
    }

    /// Reads the table's own changes after W (and rows whose path changed,
    /// or whose partition key changed hands), counting them; `params` from
    /// `Live::change_params`.
    fn read_changes(
        &mut self,
        db: &mut Db,
        key_owners: &[(String, usize)],
        (rekeyed, params): (usize, Vec<Param>),
        report: &mut CycleReport,
    ) -> Result<(), PublishError> {
        let t = self.t;
        let q = sql::changed_rows(
            &t.cfg.name,
            &t.cfg.owner,
            &t.schema.key,
            &t.select,
            key_owners,
            &self.refs.cols,
            rekeyed,
        );
        self.read(
            db,
            &format!("reading the changes of {}", t.schema.name),
            &q,
            &params,
        )?;
        report.statements += 1;
        report.changes_read += self.rows.values().filter(|r| r.0).count() as u64;
        Ok(())
    }

    /// Sends every row where `now` (encoded key, `__owner`) says it is
    /// held now, against where it was held (`route::member_row`), and
    /// records the holders. Returns the rows whose holders changed.
    fn settle(
        &self,
        mut now: impl FnMut(&Owners<'_>, &[u8], &Value) -> Result<BTreeSet<String>, PublishError>,
        live: &Live<'_>,
        owners: &mut Owners<'_>,
        changes: &mut Changes,
        report: &mut CycleReport,
    ) -> Result<Vec<KeyPair>, PublishError> {
        let name = &self.t.schema.name;
        let mut changed = Vec::new();
        for (kb, (own_change, owner, vals, _)) in &self.rows {
            let row = RowId::new(name, kb);
            let held = owners.holders(&row)?;
            let now = now(owners, kb, owner)?;
            let key: Vec<Value> = self.t.key_of(vals);
            let send = route::member_row(*own_change, true, &held, &now);
            live.send(&send, name, kb, vals, &key, changes, report);
            if held != now {
                owners.set_holders(row, now);
                changed.push((kb.clone(), key));
            }
        }
        Ok(changed)
    }
}

/// Tables whose change history was lost, and why (`history_reset`).
type Lost = Vec<(String, String)>;

/// The hops of a table's owner path (its own path, or the path to the
/// table it follows), if it has one.
/// Table `i`'s rows travel again whole and its indexes are learnt again,
/// with `reload` (the copy's rows going first) or without: re-sent when
/// its rows have single owners, its holders learnt again when it is a
/// membership table; and the holders of the membership tables that depend
/// on it learnt again.
fn learn_again(
    tables: &[TableInfo],
    i: usize,
    why: &str,
    reload: Option<Reload>,
    resend: &mut Vec<(usize, String, Option<Reload>)>,
    relearn: &mut Vec<(usize, String, Option<Reload>)>,
) {
    let t = &tables[i];
    if !t.cfg.owner.is_membership() {
        match resend.iter_mut().find(|(j, _, _)| *j == i) {
            Some(x) => x.2 = x.2.max(reload),
            None => resend.push((i, why.to_string(), reload)),
        }
    }
    for d in membership::dependents(&t.schema.name, tables) {
        if let Some(j) = tables.iter().position(|x| x.schema.name == d.schema.name) {
            merge_relearn(relearn, j, why, (j == i).then_some(reload).flatten());
        }
    }
}

/// Adds membership table `i` to the tables whose holders are learnt again
/// this cycle, or strengthens its reload.
fn merge_relearn(
    relearn: &mut Vec<(usize, String, Option<Reload>)>,
    i: usize,
    why: &str,
    reload: Option<Reload>,
) {
    match relearn.iter_mut().find(|(j, _, _)| *j == i) {
        Some(x) => x.2 = x.2.max(reload),
        None => relearn.push((i, why.to_string(), reload)),
    }
}

fn owner_hops(owner: &Owner) -> Option<&[crate::config::Hop]> {
    match (owner, owner.direct()) {
        (Owner::Follows { hops, .. }, _) => Some(hops),
        (_, Some(Owner::Path { hops, .. })) => Some(hops),
        _ => None,
    }
}

/// Remembers the keys member row `row` references now (`referenced`, read
/// by `Refs::read`), and touches the keys it referenced before and
/// references now wherever the reference changed or `moved` (its owner or
/// holders changed): their members may have changed.
fn remember_refs(
    refs: &Refs<'_>,
    row: &RowId,
    referenced: &[Value],
    moved: bool,
    owners: &mut Owners<'_>,
    touched: &mut Touched,
) -> Result<(), PublishError> {
    for (m, now) in refs.keys(referenced) {
        let rid = RefId::new(&m.id, row);
        let before = owners.reference(&rid)?;
        if before != now || moved {
            touched.add(m, before.as_deref())?;
            touched.add(m, now.as_deref())?;
        }
        if before != now {
            owners.set_reference(rid, now);
        }
    }
    Ok(())
}

/// A deleted member row: touches the keys it referenced, and forgets them.
fn forget_refs(
    refs: &Refs<'_>,
    row: &RowId,
    owners: &mut Owners<'_>,
    touched: &mut Touched,
) -> Result<(), PublishError> {
    for m in &refs.rules {
        let rid = RefId::new(&m.id, row);
        if let Some(before) = owners.reference(&rid)? {
            touched.add(m, Some(&before))?;
            owners.set_reference(rid, None);
        }
    }
    Ok(())
}

/// Keys of `t`'s rows deleted after `w` (`sql::source::deleted_keys`).
fn read_deleted(db: &mut Db, t: &TableInfo, w: i64) -> Result<Vec<Vec<Value>>, PublishError> {
    let mut deleted: Vec<Vec<Value>> = Vec::new();
    db.query(
        &format!("reading the deletes of {}", t.schema.name),
        &sql::deleted_keys(&t.cfg.name, &t.schema.key),
        &[Param::I64(w)],
        |r| {
            let mut k = Vec::new();
            for (i, p) in t.key_pos.iter().enumerate() {
                let c = &t.schema.columns[*p];
                k.push(client::value(r, i, &c.name, &c.ty)?);
            }
            deleted.push(k);
            Ok(())
        },
    )?;
    Ok(deleted)
}

/// A row's key, encoded and as values.
type KeyPair = (Vec<u8>, Vec<Value>);

/// Rows of membership (or follower) table `name` deleted at the source: a
/// delete to every caregiver that held each, and no one else. Returns the
/// (encoded key, key) of those some caregiver held.
fn drop_held(
    name: &str,
    deleted: Vec<Vec<Value>>,
    live: &Live<'_>,
    owners: &mut Owners<'_>,
    changes: &mut Changes,
    report: &mut CycleReport,
) -> Result<Vec<KeyPair>, PublishError> {
    let mut gone = Vec::new();
    for key in deleted {
        let kb = key_bytes(&key);
        let row = RowId::new(name, &kb);
        let held = owners.holders(&row)?;
        let none = BTreeSet::new();
        let send = route::member_row(true, false, &held, &none);
        live.send(&send, name, &kb, &[], &key, changes, report);
        if !held.is_empty() {
            owners.set_holders(row, none);
            gone.push((kb, key));
        }
    }
    Ok(gone)
}

/// Keys bound per key-set statement: well under SQL Server's 2,100
/// parameters for keys of up to four columns.
const KEYS_PER_STATEMENT: usize = 500;

/// The parameters of a key set: every key's values, key by key.
fn key_params(keys: &[&Vec<Value>], types: &[ColumnType]) -> Vec<Param> {
    keys.iter()
        .flat_map(|k| {
            k.iter()
                .zip(types)
                .map(|(v, ty)| Param::Value(v.clone(), *ty))
        })
        .collect()
}

/// The keys of membership tables' rows whose members may have changed this
/// cycle, by table, as values to bind.
#[derive(Default)]
struct Touched(HashMap<String, BTreeMap<Vec<u8>, Vec<Value>>>);

impl Touched {
    /// Adds the key `key` (encoded; none: nothing) of rule `r`'s target.
    fn add(&mut self, r: &Rule<'_>, key: Option<&[u8]>) -> Result<(), PublishError> {
        let Some(kb) = key else { return Ok(()) };
        let table = r.target.schema.name.clone();
        let set = self.0.entry(table.clone()).or_default();
        if !set.contains_key(kb) {
            let vals =
                decode_key(kb, &r.key_types()).map_err(|e| PublishError::StagedUnreadable {
                    table,
                    detail: format!("a remembered reference ({e})"),
                })?;
            set.insert(kb.to_vec(), vals);
        }
        Ok(())
    }

    /// Adds a key of `table` directly.
    fn insert(&mut self, table: &str, kb: &[u8], key: Vec<Value>) {
        self.0
            .entry(table.to_string())
            .or_default()
            .entry(kb.to_vec())
            .or_insert(key);
    }

    fn keys(&self, table: &str) -> impl Iterator<Item = (&Vec<u8>, &Vec<Value>)> {
        self.0.get(table).into_iter().flatten()
    }
}
