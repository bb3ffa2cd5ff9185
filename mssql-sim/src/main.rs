//! `mssql-sim --listen 127.0.0.1:PORT --data DIR --password PASSWORD`
//!
//! Prints exactly one line, `mssql-sim listening on 127.0.0.1:PORT`, when it
//! accepts connections; SIGTERM or SIGINT shut it down cleanly.

use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "mssql-sim: a SQL Server simulator (TDS 7.4 over SQLite) for tests

USAGE:
    mssql-sim --listen 127.0.0.1:PORT --data DIR --password PASSWORD [--password-env VAR]
              [--tls-cert CERT.pem --tls-key KEY.pem [--force-encryption]]

OPTIONS:
    --listen ADDR         address to listen on (default 127.0.0.1:0; port 0 picks a free port)
    --data DIR            folder for the databases, one SQLite file each (created if missing)
    --password PASSWORD   password of the 'sa' login
    --password-env VAR    read the 'sa' password from environment variable VAR instead
    --lock-timeout SECS   how long a writer waits for another's lock before error 1222 (default 30)
    --clock-offset SECS   simulator-only: run the clock SECS seconds ahead of real time (tests of
                          change tracking retention); also `EXEC mssql_sim.advance_clock @seconds = N`
    --tls-cert CERT.pem   the server certificate (PEM, then any intermediates): TLS as SQL Server
                          does it; clients that ask for encryption get it, others get login-only
                          encryption (TLS for the login packet)
    --tls-key KEY.pem     its private key (PEM)
    --force-encryption    like SQL Server's Force Encryption: every connection is encrypted, and a
                          client that cannot encrypt is disconnected
    --collation NAME      the server collation (default SQL_Latin1_General_CP1_CI_AS): master's,
                          tempdb's and a new database's; also SQL_Latin1_General_CP1_CS_AS,
                          Latin1_General_CI_AS, Latin1_General_CS_AS, Finnish_Swedish_CI_AS,
                          Finnish_Swedish_CS_AS. Fixed for a data folder once it is made.
    -h, --help            this text
    -V, --version         the version

When ready, prints one line on stdout: 'mssql-sim listening on ADDR'.
SIGTERM or SIGINT stop the server; data in DIR persists across restarts.
Without --tls-cert, connect with TLS off (tiberius: encrypt=DANGER_PLAINTEXT; FreeTDS:
encryption = off; python-tds: no cafile; tedious: encrypt: false). With it, as to SQL Server
(tiberius: encrypt=true;TrustServerCertificateCA=CA.pem; python-tds: cafile=CA.pem; tedious:
encrypt: true). Login 'sa'.";

/// A flag's number of seconds, or the usage error (exit code 2).
fn seconds<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, ExitCode> {
    v.parse().map_err(|_| {
        eprintln!("mssql-sim: {flag} takes a number of seconds, not '{v}'");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:0".to_string();
    let mut data: Option<String> = None;
    let mut password: Option<String> = None;
    let mut lock_timeout = 30u64;
    let mut clock_offset = 0i64;
    let mut tls_cert: Option<String> = None;
    let mut tls_key: Option<String> = None;
    let mut force_encryption = false;
    let mut collation = mssql_sim::collation::DEFAULT;
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> Result<String, ExitCode> {
            args.next().ok_or_else(|| {
                eprintln!("mssql-sim: {name} needs a value; see --help");
                ExitCode::from(2)
            })
        };
        let r = match a.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" => {
                println!("mssql-sim {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--listen" => value("--listen").map(|v| listen = v),
            "--data" => value("--data").map(|v| data = Some(v)),
            "--password" => value("--password").map(|v| password = Some(v)),
            "--password-env" => value("--password-env").and_then(|v| match std::env::var(&v) {
                Ok(p) => {
                    password = Some(p);
                    Ok(())
                }
                Err(_) => {
                    eprintln!("mssql-sim: environment variable {v} is not set");
                    Err(ExitCode::from(2))
                }
            }),
            "--lock-timeout" => value("--lock-timeout")
                .and_then(|v| seconds("--lock-timeout", &v))
                .map(|n| lock_timeout = n),
            "--clock-offset" => value("--clock-offset")
                .and_then(|v| seconds("--clock-offset", &v))
                .map(|n| clock_offset = n),
            "--tls-cert" => value("--tls-cert").map(|v| tls_cert = Some(v)),
            "--tls-key" => value("--tls-key").map(|v| tls_key = Some(v)),
            "--collation" => value("--collation").and_then(|v| {
                mssql_sim::collation::Collation::parse(&v)
                    .map(|c| collation = c)
                    .map_err(|e| {
                        eprintln!("mssql-sim: --collation: {}", e.message);
                        ExitCode::from(2)
                    })
            }),
            "--force-encryption" => {
                force_encryption = true;
                Ok(())
            }
            other => {
                eprintln!("mssql-sim: unknown argument '{other}'; see --help");
                Err(ExitCode::from(2))
            }
        };
        if let Err(code) = r {
            return code;
        }
    }
    let Some(data) = data else {
        eprintln!("mssql-sim: --data DIR is required; see --help");
        return ExitCode::from(2);
    };
    let Some(password) = password else {
        eprintln!("mssql-sim: --password (or --password-env) is required; see --help");
        return ExitCode::from(2);
    };
    let listen = match listen.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("mssql-sim: --listen wants HOST:PORT such as 127.0.0.1:1433, not '{listen}'");
            return ExitCode::from(2);
        }
    };
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(mssql_sim::TlsConfig {
            cert: cert.into(),
            key: key.into(),
            force_encryption,
        }),
        (None, None) if force_encryption => {
            eprintln!("mssql-sim: --force-encryption needs --tls-cert and --tls-key");
            return ExitCode::from(2);
        }
        (None, None) => None,
        _ => {
            eprintln!("mssql-sim: give both --tls-cert and --tls-key");
            return ExitCode::from(2);
        }
    };
    let mut config = mssql_sim::Config::new(data, password);
    config.tls = tls;
    config.listen = listen;
    config.lock_timeout = Duration::from_secs(lock_timeout);
    config.clock_offset_secs = clock_offset;
    config.collation = collation;
    let term = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, term.clone()) {
            eprintln!("mssql-sim: cannot install signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    let server = match mssql_sim::Server::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mssql-sim: cannot start on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("mssql-sim listening on {}", server.addr());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    while !term.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.shutdown();
    ExitCode::SUCCESS
}
