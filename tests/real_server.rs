//! docs/REAL-SERVER.md's checklist, held true: for each usual mistake a
//! region's DBA or operator makes against a real server (made here against
//! mssql-sim forcing TLS with a test certificate), `ctferry check` fails or
//! warns, and every line the document shows for it is in what check says
//! (the port and the configuration folder written as the document writes
//! them).

#[path = "support/world.rs"]
mod world;
use world::World;

fn setup() -> World {
    World::tls_forced(
        &[
            "CREATE TABLE dbo.Vardenhet (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Namn nvarchar(100) NOT NULL)".into(),
            "ALTER TABLE dbo.Vardenhet ENABLE CHANGE_TRACKING".into(),
            "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL)".into(),
            "CREATE TABLE dbo.Logg (Rad int NOT NULL, HsaId nvarchar(40) NOT NULL)".into(),
            format!("CREATE LOGIN ctferry WITH PASSWORD = '{}'", world::PW),
            "CREATE USER ctferry FOR LOGIN ctferry".into(),
            "GRANT SELECT ON dbo.Vardenhet TO ctferry".into(),
        ],
    )
}

const TABLE: &str = "[[table]]\nname = \"dbo.Vardenhet\"\nowner = { column = \"HsaId\" }";

/// What `check` says (stderr) with `tls` ending the connection strings and
/// `tables` published; the port and folder as the document writes them.
fn check(w: &World, tls: &str, tables: &str, edit: impl Fn(String) -> String) -> (bool, String) {
    *w.tls.borrow_mut() = tls.to_string();
    w.configure(tables, "[\"SE-E001\"]");
    let cfg = w.path("ctferry.toml");
    std::fs::write(&cfg, edit(std::fs::read_to_string(&cfg).unwrap())).unwrap();
    let (ok, out, err) = w.ctferry(&["check"]);
    let text = format!("{out}{err}")
        .replace(&w.source.addr().port().to_string(), "1433")
        .replace(&w.dir.path().display().to_string(), "/etc/ctferry");
    (ok, text)
}

/// The document's `<!-- check: NAME -->` blocks: (name, lines shown).
fn documented() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/REAL-SERVER.md"))
        .unwrap();
    doc.split("<!-- check: ")
        .skip(1)
        .map(|part| {
            let (name, rest) = part.split_once(" -->").unwrap();
            let block = rest.split("```text\n").nth(1).unwrap();
            let block = block.split("```").next().unwrap();
            (
                name.to_string(),
                block.lines().map(str::to_string).collect(),
            )
        })
        .collect()
}

#[test]
fn every_message_the_checklist_shows_is_what_check_says() {
    let w = setup();
    let ca = "TrustServerCertificateCA=ca.pem";
    let table =
        |t: &str| format!("[[table]]\nname = \"dbo.{t}\"\nowner = {{ column = \"HsaId\" }}");
    let same = |s: String| s;
    let remote = |s: String| s.replace("server=tcp:localhost", "server=tcp:pmo-db.region.example");
    let docs = documented();
    let least = |s: String| s.replace("user id=sa;", "user id=ctferry;");
    assert_eq!(docs.len(), 10, "the document's check blocks");
    for (name, lines) in docs {
        if name == "snapshot isolation off" {
            w.pmo()
                .execute("ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION OFF")
                .unwrap();
        }
        // (connection string tail, tables, edit of ctferry.toml, check passes)
        let (tls, tables, edit, passes): (&str, String, &dyn Fn(String) -> String, bool) =
            match name.as_str() {
                "untrusted certificate" => (
                    "TrustServerCertificateCA=other-ca.pem",
                    TABLE.into(),
                    &same,
                    false,
                ),
                "trust any certificate" => {
                    ("TrustServerCertificate=true", TABLE.into(), &same, true)
                }
                "login-only encryption" => (
                    "encrypt=false;TrustServerCertificate=true",
                    TABLE.into(),
                    &same,
                    true,
                ),
                "plaintext to another host" => {
                    ("encrypt=DANGER_PLAINTEXT", TABLE.into(), &remote, false)
                }
                "password in the connection string" => (
                    "TrustServerCertificateCA=ca.pem;password=hemligt",
                    TABLE.into(),
                    &same,
                    false,
                ),
                "table without change tracking" => (ca, table("Besok"), &same, false),
                "table without primary key" => (ca, table("Logg"), &same, false),
                "unknown table" => (ca, table("Vardenhetr"), &same, false),
                "missing grant" => (ca, TABLE.into(), &least, false),
                "snapshot isolation off" => (ca, TABLE.into(), &same, false),
                other => panic!(
                    "docs/REAL-SERVER.md shows a check block this test does not make: {other}"
                ),
            };
        let (ok, text) = check(&w, tls, &tables, edit);
        assert_eq!(ok, passes, "{name}: {text}");
        for line in lines {
            assert!(
                text.contains(&line),
                "{name}: the document shows\n{line}\ncheck says\n{text}"
            );
        }
    }
    // And with everything right: OK and no warning.
    w.pmo()
        .execute("ALTER DATABASE Pmo SET ALLOW_SNAPSHOT_ISOLATION ON")
        .unwrap();
    let (ok, text) = check(&w, ca, TABLE, same);
    assert!(
        ok && text.contains("OK (1 tables, 1 subscribers)") && !text.contains("warning"),
        "{text}"
    );
}
