//! Crash-test hooks at commit boundaries (docs/ARCHITECTURE.md, invariant 7).
//!
//! `CTFERRY_FAILPOINT=<name>` makes the process stop at that point: `hit`
//! says so on stderr and waits to be killed (tests send SIGKILL); `pause`
//! says so and sleeps `CTFERRY_FAILPOINT_PAUSE_MS` (default 3000) once, so a
//! test can break something outside (stop the SFTP server) mid-operation.
//! Without the variable both are a single environment lookup. They never
//! change what the code does, only when.
//!
//! Points: `snapshot-written` (a snapshot step's parts written, not
//! registered), `delta-written` (package files written, not
//! registered), `cycle-committed` (stage committed), `delivered-unrecorded`
//! (file delivered, delivery not recorded), `audit-queued` (audit records
//! committed to the state, not yet in the audit log), `apply-table-changed`
//! (a table change made at the copy, inside the apply transaction, before
//! its rows), `apply-mid-package` (inside the apply transaction), `sftp-mid-upload` (pause after the first 1 MiB),
//! `snapshot-step-committed` (pause after a snapshot step that did not end it).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn armed(name: &str) -> bool {
    std::env::var("CTFERRY_FAILPOINT").as_deref() == Ok(name)
}

static HITS: AtomicUsize = AtomicUsize::new(0);

/// Stops here until killed when armed (after `CTFERRY_FAILPOINT_AFTER`
/// passes, 0 by default: a point reached many times, such as a
/// snapshot's steps, can be stopped at its n-th time).
pub fn hit(name: &str) {
    if armed(name) {
        let after: usize = std::env::var("CTFERRY_FAILPOINT_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if HITS.fetch_add(1, Ordering::SeqCst) < after {
            return;
        }
        eprintln!("ctferry: failpoint {name} reached");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

static PAUSED: AtomicBool = AtomicBool::new(false);

/// Pauses once per process when armed.
pub fn pause(name: &str) {
    if armed(name) && !PAUSED.swap(true, Ordering::SeqCst) {
        let ms = std::env::var("CTFERRY_FAILPOINT_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000);
        eprintln!("ctferry: failpoint {name} reached, pausing {ms} ms");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Whether `name` is armed (for hooks that must be decided up front).
pub fn is_armed(name: &str) -> bool {
    armed(name)
}
