//! A mask is a value, never SQL (issue: "Masks are spliced into SQL as
//! written"): text that is not NULL, a quoted string, a number or 0x hex is
//! refused by every command before anything is read, so no operator text
//! reaches the server and no real value leaves under a `masked` flag.

#[path = "support/world.rs"]
mod world;
use ctferry::mssql::client::text_at;
use world::World;

fn world() -> World {
    World::new(&[
        "CREATE TABLE dbo.Anvandare (Id int NOT NULL PRIMARY KEY, Enhet nvarchar(10) NOT NULL, Epost nvarchar(200) NULL, Losenord varbinary(64) NULL)".into(),
        "ALTER TABLE dbo.Anvandare ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Anvandare VALUES (1, N'E1', N'tolvan@example.invalid', 0x0102)".into(),
        "CREATE TABLE dbo.Victim (Id int NOT NULL PRIMARY KEY)".into(),
    ])
}

fn configure(w: &World, mask: &str) {
    w.configure(
        &format!(
            "[[table]]\nname = \"dbo.Anvandare\"\nowner = {{ column = \"Enhet\" }}\nmask = {mask}"
        ),
        "[\"E1\"]",
    );
}

#[test]
fn sql_in_a_mask_is_refused_by_every_command() {
    let w = world();
    for mask in [
        r#"{ Losenord = "NULL AS varbinary(64)) AS v; DROP TABLE dbo.Victim; SELECT CAST(NULL" }"#,
        r#"{ Epost = "t.Epost" }"#,
        r#"{ Epost = "N'x' + t.Epost" }"#,
    ] {
        configure(&w, mask);
        for cmd in ["check", "once"] {
            let (ok, out, err) = w.ctferry(&[cmd]);
            assert!(!ok, "{cmd} accepted {mask}:\n{out}");
            assert!(
                err.contains("a mask is a value"),
                "{cmd} with {mask}:\n{err}"
            );
        }
    }
    // Nothing ran: the victim is there, nothing was packaged.
    let n = w
        .pmo()
        .rows(
            "counting",
            "SELECT COUNT(*) FROM sys.tables WHERE name = N'Victim'",
            &[],
        )
        .unwrap();
    assert_eq!(ctferry::mssql::client::int_at(&n[0], 0), Some(1));
    assert!(!w.path("out").exists() || std::fs::read_dir(w.path("out")).unwrap().count() == 0);
}

#[test]
fn a_masks_value_reaches_the_copy_as_written_quotes_and_all() {
    let w = world();
    configure(
        &w,
        r#"{ Epost = "N'O''Brien; DROP TABLE dbo.Victim; --'", Losenord = "0x00FF" }"#,
    );
    w.run(&["check"]);
    w.cycle();
    let r = w
        .kopia()
        .rows(
            "reading",
            "SELECT Epost, CONVERT(varchar(10), Losenord, 1) FROM dbo.Anvandare",
            &[],
        )
        .unwrap();
    assert_eq!(
        text_at(&r[0], 0).as_deref(),
        Some("O'Brien; DROP TABLE dbo.Victim; --")
    );
    assert_eq!(text_at(&r[0], 1).as_deref(), Some("0x00FF"));
    // A value that does not fit its column: refused by `once` too, naming it.
    configure(&w, r#"{ Epost = "0x01" }"#);
    let (ok, _, err) = w.ctferry(&["once"]);
    assert!(!ok);
    assert!(
        err.contains("mask Epost = 0x01, but a binary value"),
        "{err}"
    );
}
