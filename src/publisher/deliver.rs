//! Delivery: registered packages in the outbox → each caregiver's own area
//! (a local folder, or its SFTP account).
//!
//! Contract:
//! - a subscriber's packages go in sequence order, each to its own area only
//!   (the target comes from that subscriber's configuration, nothing else);
//! - a package appears under its final name only when complete (`.part`,
//!   size check, rename); it is recorded as delivered (state commit) only
//!   after the rename. A crash between the two makes the next round find the
//!   file already there (same size and SHA-256) and record it without
//!   sending a second copy; a leftover `.part` is replaced;
//! - subscribers are delivered concurrently (`delivery_concurrency`), so one
//!   broken area never holds up the others; failures are retried with
//!   exponential backoff per subscriber, bounded by `delivery_backoff_max_seconds`.
//!   `Mode::Now` (`ctferry once`) tries up to `delivery_attempts` times in the
//!   call; `Mode::Scheduled` (`ctferry run`) tries once per round and not
//!   before the subscriber's next attempt time, so a broken area costs each
//!   cycle at most one timeout;
//! - every delivery and every failed round is logged in the state (time,
//!   file, size, SHA-256, attempts, result); the subscriber's status keeps
//!   the last error for `ctferry status`;
//! - delivered packages leave the outbox after `outbox_retention`.
//!
//! Errors carry the area as `user@host:port/dir` or a folder path, never a
//! password or key.

use crate::config::{Config, Deliver, DeliveryPolicy, SubscriberConfig};
use crate::failpoint;
use crate::publisher::state::{
    Changes, DeliveryRecord, DeliveryStatus, PackageRecord, State, StateError,
};
use crate::sftp;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Whether to honour each subscriber's backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Try now, up to `delivery_attempts` times (`ctferry once`).
    Now,
    /// Try once, and only subscribers whose next attempt time has come (`ctferry run`).
    Scheduled,
}

/// What a delivery round did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub delivered: usize,
    /// Subscriber and the error of its last try, for those that still have a backlog.
    pub failures: Vec<(String, String)>,
    /// Subscribers skipped because their backoff has not run out.
    pub waiting: Vec<String>,
    /// Package files removed from the outbox after their retention.
    pub removed: usize,
}

/// A failed delivery try (or area check), naming the area, and whether a
/// later try can help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DeliverError {
    pub message: String,
    pub retryable: bool,
}

impl From<sftp::SftpError> for DeliverError {
    fn from(e: sftp::SftpError) -> Self {
        DeliverError {
            retryable: e.retryable(),
            message: e.to_string(),
        }
    }
}

use crate::time::{now, parse as parse_time, text};

/// Delivers every subscriber's backlog (concurrently), then prunes the outbox.
pub fn deliver_all(cfg: &Config, state: &State, mode: Mode) -> Result<Report, StateError> {
    let subs = &cfg.subscribers;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<Outcome, StateError>>> = Mutex::new(Vec::new());
    let workers = cfg.publisher.delivery.concurrency.min(subs.len()).max(1);
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(s) = subs.get(i) else { break };
                let r = deliver_subscriber(cfg, s, state, mode);
                results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
            });
        }
    });
    let mut report = Report::default();
    for r in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let o = r?;
        report.delivered += o.delivered;
        if let Some(e) = o.error {
            report.failures.push((o.subscriber.clone(), e));
        }
        if o.waiting {
            report.waiting.push(o.subscriber);
        }
    }
    report.failures.sort();
    report.removed = prune_outbox(cfg, state)?;
    Ok(report)
}

struct Outcome {
    subscriber: String,
    delivered: usize,
    error: Option<String>,
    waiting: bool,
}

fn deliver_subscriber(
    cfg: &Config,
    s: &SubscriberConfig,
    state: &State,
    mode: Mode,
) -> Result<Outcome, StateError> {
    let policy = &cfg.publisher.delivery;
    let mut out = Outcome {
        subscriber: s.hsa_id.clone(),
        delivered: 0,
        error: None,
        waiting: false,
    };
    let backlog = |state: &State| state.undelivered(&s.hsa_id);
    if backlog(state)?.is_empty() {
        return Ok(out);
    }
    // A snapshot under way is delivered once its last part is written
    // (the parts before may yet be taken back if it starts over).
    if state
        .subscriber(&s.hsa_id)?
        .is_some_and(|st| st.snapshot.is_some())
    {
        return Ok(out);
    }
    let status = state.delivery_status(&s.hsa_id)?;
    if mode == Mode::Scheduled {
        if let Some(t) = status.next_attempt_at.as_deref().and_then(parse_time) {
            if t > now() {
                out.waiting = true;
                return Ok(out);
            }
        }
    }
    let attempts = if mode == Mode::Now {
        policy.attempts
    } else {
        1
    };
    let mut tries = 0;
    loop {
        tries += 1;
        let earlier = state.delivery_status(&s.hsa_id)?.failures;
        match send_backlog(cfg, s, state, &backlog(state)?, earlier + tries) {
            Ok(n) => {
                out.delivered += n;
                return Ok(out);
            }
            Err(Failure::State(e)) => return Err(e),
            Err(Failure::Deliver {
                delivered,
                error,
                package,
            }) => {
                out.delivered += delivered;
                tracing::warn!(subscriber = %s.hsa_id, attempt = tries, error = %error.message, "delivery failed");
                if !error.retryable || tries >= attempts {
                    record_failure(
                        state,
                        s,
                        policy,
                        &error,
                        package.as_deref(),
                        earlier + tries,
                    )?;
                    out.error = Some(error.message);
                    return Ok(out);
                }
                // Within the call: wait as the schedule would, then try again.
                std::thread::sleep(policy.backoff_after(tries));
            }
        }
    }
}

enum Failure {
    State(StateError),
    Deliver {
        delivered: usize,
        error: DeliverError,
        package: Option<Box<PackageRecord>>,
    },
}

/// One package destination, open for one round.
enum Sink<'a> {
    Folder(&'a Path),
    Sftp(sftp::Connection),
}

fn send_backlog(
    cfg: &Config,
    s: &SubscriberConfig,
    state: &State,
    pkgs: &[PackageRecord],
    attempt: u32,
) -> Result<usize, Failure> {
    let fail = |delivered, error, package: Option<&PackageRecord>| Failure::Deliver {
        delivered,
        error,
        package: package.map(|p| Box::new(p.clone())),
    };
    if pkgs.is_empty() {
        return Ok(0);
    }
    let sink = match &s.deliver {
        Deliver::Folder(d) => Sink::Folder(d),
        Deliver::Sftp(t) => match sftp::connect(t) {
            Ok(c) => Sink::Sftp(c),
            Err(e) => return Err(fail(0, e.into(), pkgs.first())),
        },
    };
    let mut n = 0;
    for p in pkgs {
        let src = cfg.publisher.outbox.join(&s.hsa_id).join(&p.file);
        let sent = match &sink {
            Sink::Folder(dir) => deliver_to_folder(&src, dir, &p.file).map(|_| "delivered"),
            Sink::Sftp(c) => c
                .upload(&src, &p.file, p.bytes, &p.sha256)
                .map(|u| match u {
                    sftp::Uploaded::Sent => "delivered",
                    sftp::Uploaded::AlreadyThere => {
                        "already there (delivered before an interruption)"
                    }
                })
                .map_err(DeliverError::from),
        };
        let result = match sent {
            Ok(r) => r,
            Err(e) => return Err(fail(n, e, Some(p))),
        };
        failpoint::hit("delivered-unrecorded");
        let at = text(now());
        let mut rec = p.clone();
        rec.delivered_at = Some(at.clone());
        let mut st = state.delivery_status(&s.hsa_id).map_err(Failure::State)?;
        st.failures = 0;
        st.next_attempt_at = None;
        st.last_delivered_sequence = Some(p.sequence);
        st.last_delivered_at = Some(at.clone());
        let mut c = Changes::default();
        c.add_package(&rec);
        c.set_delivery_status(&s.hsa_id, &st);
        c.log_delivery(&DeliveryRecord {
            time: at,
            subscriber: s.hsa_id.clone(),
            sequence: p.sequence,
            file: p.file.clone(),
            bytes: p.bytes,
            sha256: p.sha256.clone(),
            attempts: attempt,
            result: result.to_string(),
        });
        state.commit(c).map_err(Failure::State)?;
        tracing::info!(subscriber = %s.hsa_id, file = %p.file, bytes = p.bytes, result, "delivered");
        n += 1;
    }
    if let Sink::Sftp(c) = sink {
        c.close();
    }
    Ok(n)
}

fn record_failure(
    state: &State,
    s: &SubscriberConfig,
    policy: &DeliveryPolicy,
    e: &DeliverError,
    p: Option<&PackageRecord>,
    attempts: u32,
) -> Result<(), StateError> {
    let t = now();
    let mut st = state.delivery_status(&s.hsa_id)?;
    st.failures = st.failures.saturating_add(1);
    let wait = policy.backoff_after(st.failures);
    st.next_attempt_at = Some(text(
        t + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60)),
    ));
    st.last_error = Some(e.message.clone());
    st.last_error_at = Some(text(t));
    let mut c = Changes::default();
    c.set_delivery_status(&s.hsa_id, &st);
    if let Some(p) = p {
        c.log_delivery(&DeliveryRecord {
            time: text(t),
            subscriber: s.hsa_id.clone(),
            sequence: p.sequence,
            file: p.file.clone(),
            bytes: p.bytes,
            sha256: p.sha256.clone(),
            attempts,
            result: format!("failed: {}", e.message),
        });
    }
    state.commit(c)
}

/// Removes delivered package files older than the retention from the outbox
/// (their records stay, marked `removed_at`).
pub fn prune_outbox(cfg: &Config, state: &State) -> Result<usize, StateError> {
    let keep =
        chrono::Duration::from_std(cfg.publisher.outbox_retention).unwrap_or(chrono::Duration::MAX);
    let t = now();
    let mut n = 0;
    for s in &cfg.subscribers {
        for p in state.delivered_in_outbox(&s.hsa_id)? {
            let Some(d) = p.delivered_at.as_deref().and_then(parse_time) else {
                continue;
            };
            if p.removed_at.is_some() || d + keep > t {
                continue;
            }
            let f = cfg.publisher.outbox.join(&s.hsa_id).join(&p.file);
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "cannot remove a delivered package from the outbox");
                    continue;
                }
            }
            let mut rec = p.clone();
            rec.removed_at = Some(text(t));
            let mut c = Changes::default();
            c.add_package(&rec);
            state.commit(c)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Copies `src` into `dir` as `name`, never showing a partial file under its
/// final name (`.part`, fsync, rename, fsync of the folder).
pub fn deliver_to_folder(src: &Path, dir: &Path, name: &str) -> Result<(), DeliverError> {
    let io = |what: &str, p: &Path, e: std::io::Error| DeliverError {
        message: format!("{what} {}: {e}", p.display()),
        retryable: true,
    };
    crate::private::dir(dir).map_err(|e| io("cannot create the delivery folder", dir, e))?;
    let part = dir.join(format!("{name}.part"));
    let fin = dir.join(name);
    {
        let mut from = crate::private::open_regular(src).map_err(|e| DeliverError {
            message: format!("cannot open the outbox file {}: {e}", src.display()),
            retryable: false,
        })?;
        let mut to =
            crate::private::create_new(&part).map_err(|e| io("cannot create", &part, e))?;
        std::io::copy(&mut from, &mut to).map_err(|e| io("cannot write", &part, e))?;
        to.flush().map_err(|e| io("cannot write", &part, e))?;
        to.sync_all().map_err(|e| io("cannot sync", &part, e))?;
    }
    std::fs::rename(&part, &fin).map_err(|e| io("cannot rename into place", &fin, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Checks a subscriber's delivery area without delivering anything: a
/// folder must be creatable and writable; an SFTP area must present the
/// pinned host key, accept the login, and let the account create and
/// remove a file in its folder. For `ctferry check`.
pub fn check_area(s: &SubscriberConfig) -> Result<(), DeliverError> {
    match &s.deliver {
        Deliver::Folder(dir) => {
            let io = |message: String| DeliverError {
                message,
                retryable: false,
            };
            crate::private::dir(dir).map_err(|e| {
                io(format!(
                    "cannot create the delivery folder {}: {e}",
                    dir.display()
                ))
            })?;
            let probe = dir.join(".ctferry-check.part");
            crate::private::create_new(&probe).map_err(|e| {
                io(format!(
                    "cannot write in the delivery folder {}: {e}",
                    dir.display()
                ))
            })?;
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Deliver::Sftp(t) => {
            let c = sftp::connect(t)?;
            c.probe_write()?;
            c.close();
            Ok(())
        }
    }
}

/// The backoff a subscriber is waiting out, if any (for `ctferry status`).
pub fn waiting_until(st: &DeliveryStatus) -> Option<String> {
    let t = st.next_attempt_at.as_deref().and_then(parse_time)?;
    (t > now()).then(|| text(t))
}
