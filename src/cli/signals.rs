//! Stopping the long-running commands (`run`, `apply --watch`) cleanly: the
//! first SIGTERM/SIGINT lets the current step (a cycle, a package) finish,
//! a second abandons it (exit 130; every step commits atomically, so nothing
//! half-done is kept).

/// Set by the first SIGTERM or SIGINT: `run` and `apply --watch` finish the
/// step in progress (a cycle, a package) and exit 0.
pub static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the handlers (for the long-running commands only; one-shot
/// commands keep the default: a signal ends them at once, which is safe
/// because every step commits atomically). A second signal abandons the
/// current step: exit code 130, nothing half-done is kept (a cycle's state
/// commit or a package's transaction either happened or did not).
pub fn stop_on_signals() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            let (Ok(mut term), Ok(mut int)) = (
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
            ) else {
                return;
            };
            loop {
                #[cfg(unix)]
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                #[cfg(not(unix))]
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                if STOP.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    eprintln!("ctferry: second signal: abandoning the current step (it is rolled back or redone, never half-kept)");
                    std::process::exit(130);
                }
                eprintln!("ctferry: stopping after the current step (signal again to abandon it)");
            }
        });
    });
}

/// Sleeps `secs` seconds; false when a stop signal arrived (before or during).
pub fn pause(secs: u64) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs.max(1));
    while std::time::Instant::now() < until {
        if STOP.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    !STOP.load(std::sync::atomic::Ordering::SeqCst)
}
