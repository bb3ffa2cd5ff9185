//! The `ctferry` command line. For now it only reports its version; the
//! subcommands of DESIGN.md §8 arrive with the issues that introduce them.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("--version") | Some("-V") | Some("version") => {
            println!("ctferry {}", ctferry::VERSION);
            ExitCode::SUCCESS
        }
        Some("--help") | Some("-h") | Some("help") => {
            println!("ctferry {}: per-caregiver encrypted increments of a SQL Server database.\n\nNo subcommands are available in this build yet; see README.md.", ctferry::VERSION);
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!(
                "ctferry: unknown command '{other}'; run 'ctferry --help' for the list of commands"
            );
            ExitCode::from(2)
        }
    }
}
