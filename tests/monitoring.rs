//! Monitoring while `ctferry run` runs (the README's "Monitoring"): the
//! real binary runs with `--metrics`; meanwhile `ctferry status`, `ctferry
//! audit` and `ctferry audit --verify` work (they used to fail with "state
//! folder in use"), /metrics answers in Prometheus text format and /health
//! turns 503 when a caregiver goes stale. Then the audit log's hash chain
//! is tampered with and `audit --verify` names the line.

#[path = "support/world.rs"]
mod world;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use world::{World, PW};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from the metrics endpoint: (status code, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (code, body)
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("waited {secs} s for {what}");
}

#[test]
fn status_audit_metrics_and_health_while_run_runs() {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1'), (2, N'E2')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Besok\"\nowner = { column = \"HsaId\" }",
        "[\"E1\"]",
    );
    // A short interval, so that staleness shows within the test.
    let cfg = w.path("ctferry.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "hsa_id = \"SE-NORR\"",
            "hsa_id = \"SE-NORR\"\ninterval = \"2s\"",
        ),
    )
    .unwrap();
    let port = free_port();
    let _run = Running(
        Command::new(env!("CARGO_BIN_EXE_ctferry"))
            .args([
                "run",
                "-c",
                cfg.to_str().unwrap(),
                "--every",
                "1s",
                "--metrics",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .env("PW", PW)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let status_file = w.path("state/status.json");
    wait_for("the first status file", 30, || {
        std::fs::read_to_string(&status_file)
            .map(|t| t.contains("\"ok\": true"))
            .unwrap_or(false)
    });

    // status, while run holds the state.
    let (ok, out, err) = w.ctferry(&["status"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("from the running publisher (pid"), "{out}");
    assert!(
        out.contains("SE-NORR") && out.contains("copy shows the source as of"),
        "{out}"
    );
    let (ok, out, err) = w.ctferry(&["status", "--json"]);
    assert!(
        ok && out.contains("\"subscriber\":\"SE-NORR\""),
        "{out}{err}"
    );

    // audit and its verification, while run holds the state.
    let (ok, out, err) = w.ctferry(&["audit"]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("time,subscriber,event,"), "{out}");
    assert!(
        out.contains(",SE-NORR,snapshot,1,0000000001-snapshot-"),
        "{out}"
    );
    assert!(out.contains(",SE-NORR,delivered,1,"), "{out}");
    let (ok, out, err) = w.ctferry(&["audit", "--verify"]);
    assert!(
        ok && out.contains("records, the hash chain is intact"),
        "{out}{err}"
    );

    // /metrics and /health.
    let (code, body) = get(port, "/metrics");
    assert_eq!(code, 200, "{body}");
    for line in [
        "# TYPE ctferry_caregiver_lag_seconds gauge",
        "ctferry_caregiver_stale{subscriber=\"SE-NORR\"} 0",
        "ctferry_caregiver_backlog_packages{subscriber=\"SE-NORR\"} 0",
        "ctferry_caregiver_delivery_failures{subscriber=\"SE-NORR\"} 0",
        "ctferry_last_cycle_success 1",
        "# TYPE ctferry_cycles_total counter",
    ] {
        assert!(body.contains(line), "{line}\n{body}");
    }
    assert!(
        body.contains("ctferry_caregiver_lag_seconds{subscriber=\"SE-NORR\"} "),
        "{body}"
    );
    let (code, body) = get(port, "/health");
    assert_eq!((code, body.starts_with("ok:")), (200, true), "{body}");
    assert_eq!(get(port, "/nothing").0, 404);

    // The caregiver's area disappears (a file where the folder was): a new
    // change cannot be delivered, and after twice the interval the
    // caregiver is stale everywhere.
    let out_dir = w.path("out");
    std::fs::remove_dir_all(&out_dir).unwrap();
    std::fs::write(&out_dir, b"not a folder").unwrap();
    w.pmo()
        .execute("INSERT INTO dbo.Besok VALUES (3, N'E1')")
        .unwrap();
    wait_for("/health to report the stale caregiver", 30, || {
        get(port, "/health").0 == 503
    });
    let (_, body) = get(port, "/health");
    assert!(
        body.contains("SE-NORR: changes have waited longer than twice its interval"),
        "{body}"
    );
    let (_, body) = get(port, "/metrics");
    assert!(
        body.contains("ctferry_caregiver_stale{subscriber=\"SE-NORR\"} 1"),
        "{body}"
    );
    assert!(
        !body.contains("ctferry_caregiver_delivery_failures{subscriber=\"SE-NORR\"} 0"),
        "{body}"
    );
    let (ok, out, err) = w.ctferry(&["status"]);
    assert!(
        !ok && out.contains("STALE:") && err.contains("1 caregiver(s) stale: SE-NORR"),
        "{out}{err}"
    );
    // The failed deliveries are in the audit too.
    let (_, out, _) = w.ctferry(&["audit", "--subscriber", "SE-NORR"]);
    assert!(out.contains(",SE-NORR,delivery failed,"), "{out}");

    // A changed line of the audit log is found, and named.
    drop(_run);
    let log = w.path("state/audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.replacen("\"event\":\"snapshot\"", "\"event\":\"delta\"", 1),
    )
    .unwrap();
    let (ok, out, err) = w.ctferry(&["audit", "--verify"]);
    assert!(
        !ok && err.contains("audit.log line 2: its hash of the previous line does not match"),
        "{out}{err}"
    );
    let (ok, _, err) = w.ctferry(&["audit"]);
    assert!(!ok && err.contains("audit.log line 2"), "{err}");
    // A removed log is rebuilt from the state's own records.
    std::fs::remove_file(&log).unwrap();
    let (ok, out, err) = w.ctferry(&["audit", "--verify"]);
    assert!(
        ok && out.contains("records, the hash chain is intact"),
        "{out}{err}"
    );
    let (_, out, _) = w.ctferry(&["audit"]);
    assert!(
        out.contains(",SE-NORR,snapshot,1,") && out.contains(",SE-NORR,delivery failed,"),
        "{out}"
    );
}
