//! The `ctferry` binary: all of it is in `cli/` (flags and printing) over
//! the library (`ctferry`), which does the work.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
