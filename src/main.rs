//! The `ctferry` binary: all of it is in `cli/` (flags and printing) over
//! the library (`ctferry`), which does the work.

mod cli;

fn main() -> std::process::ExitCode {
    // Everything ctferry writes (state, outbox, deliveries, incoming
    // packages, logs) holds health data or keys: readable by the service
    // account only, whatever umask it was started with (ctferry::private).
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    cli::main()
}
