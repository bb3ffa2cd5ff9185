//! The caregiver's side on Windows: the `ctferry.exe` that
//! scripts/build-windows.sh cross-compiles, run under Wine. scripts/test.sh
//! runs scripts/windows-check.sh first and passes CTFERRY_WINDOWS_EXE and
//! WINEPREFIX; where the Windows target or Wine cannot be installed it says
//! "SKIPPED: Windows build (...)" and these tests say they were skipped.
//!
//! What runs: `ctferry.exe --version`; `inspect` of a package the Linux
//! build made; `apply` with an apply.toml written with Windows paths
//! (`Z:\...`, which Wine maps to this machine's `/`) of a snapshot and then
//! a delta from a folder into mssql-sim on 127.0.0.1; `apply --status`.

#[path = "support/world.rs"]
mod world;
use std::path::{Path, PathBuf};
use std::process::Command;
use world::{count, World, PW};

/// The Windows build and its Wine prefix, or None (the test is skipped).
fn windows() -> Option<(PathBuf, PathBuf)> {
    match (
        std::env::var_os("CTFERRY_WINDOWS_EXE"),
        std::env::var_os("WINEPREFIX"),
    ) {
        (Some(exe), Some(prefix)) => Some((exe.into(), prefix.into())),
        _ => {
            eprintln!("SKIPPED: no Windows build (run scripts/test.sh, which runs scripts/windows-check.sh first)");
            None
        }
    }
}

/// A path of this machine as Windows programs under Wine see it.
fn win(p: &Path) -> String {
    format!("Z:{}", p.display().to_string().replace('/', "\\"))
}

/// Runs ctferry.exe under Wine: (success, stdout, stderr).
fn exe(w: &(PathBuf, PathBuf), args: &[&str]) -> (bool, String, String) {
    exe_in(w, None, args)
}

/// Runs ctferry.exe under Wine in folder `cwd` (this machine's path).
fn exe_in(w: &(PathBuf, PathBuf), cwd: Option<&Path>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new("wine");
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let out = cmd
        .arg(&w.0)
        .args(args)
        .env("WINEPREFIX", &w.1)
        .env("WINEDEBUG", "-all")
        .env("PW", PW)
        .output()
        .expect("run wine");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn region() -> World {
    let w = World::new(&[
        "CREATE TABLE dbo.Besok (Id int NOT NULL PRIMARY KEY, HsaId nvarchar(40) NOT NULL, Namn nvarchar(50) NOT NULL)".into(),
        "ALTER TABLE dbo.Besok ENABLE CHANGE_TRACKING".into(),
        "INSERT INTO dbo.Besok VALUES (1, N'E1', N'Åsa'), (2, N'E2', N'Örjan'), (3, N'E1', N'Märta')".into(),
    ]);
    w.configure(
        "[[table]]\nname = \"dbo.Besok\"\nowner = { column = \"HsaId\" }",
        "[\"E1\"]",
    );
    w
}

#[test]
fn version_and_inspect_of_a_package_the_linux_build_made() {
    let Some(wx) = windows() else { return };
    let (ok, out, err) = exe(&wx, &["--version"]);
    assert!(ok && out.starts_with("ctferry "), "{out}{err}");
    let w = region();
    // A key pair made on Windows is one the Linux build reads.
    let out_base = w.path("keys/win");
    let (ok, out, err) = exe(
        &wx,
        &[
            "keys",
            "generate",
            "--name",
            "Vårdcentralen Norr",
            "--email",
            "it@norr.example",
            "--out",
            &win(&out_base),
        ],
    );
    assert!(ok, "{out}{err}");
    let public = ctferry::format::crypto::PublicKey::load(&w.path("keys/win.pub.asc")).unwrap();
    public.check_usable_now().unwrap();
    w.run(&["once"]);
    let pkg = w.path("out/0000000001-snapshot-0-1.ctf.pgp");
    let args = [
        "inspect",
        &win(&pkg),
        "--key",
        &win(&w.path("keys/norr.sec.asc")),
        "--signer",
        &win(&w.path("keys/region.pub.asc")),
        "--json",
    ];
    let (ok, out, err) = exe(&wx, &args);
    assert!(ok, "{out}{err}");
    let linux = std::process::Command::new(env!("CARGO_BIN_EXE_ctferry"))
        .args(["inspect", pkg.to_str().unwrap(), "--key"])
        .arg(w.path("keys/norr.sec.asc"))
        .arg("--signer")
        .arg(w.path("keys/region.pub.asc"))
        .arg("--json")
        .output()
        .unwrap();
    let a: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&linux.stdout).unwrap();
    // The same manifest and rows; only the file name is written each
    // platform's way.
    assert_eq!(a["manifest"], b["manifest"], "{out}");
    assert_eq!(a["tables"], b["tables"], "{out}");
}

#[test]
fn apply_with_windows_paths_takes_a_snapshot_then_a_delta() {
    let Some(wx) = windows() else { return };
    let w = region();
    w.run(&["once"]);
    let apply = std::fs::read_to_string(w.path("apply.toml")).unwrap();
    let lit = |p: &str| format!("'{}'", win(&w.path(p)));
    let windows_toml = apply
        .replace("\"keys/norr.sec.asc\"", &lit("keys/norr.sec.asc"))
        .replace("\"keys/region.pub.asc\"", &lit("keys/region.pub.asc"))
        .replace("folder = \"out\"", &format!("folder = {}", lit("out")));
    assert!(windows_toml.contains("Z:\\"), "{windows_toml}");
    let cfg = w.path("apply-windows.toml");
    std::fs::write(&cfg, windows_toml).unwrap();
    let (ok, out, err) = exe(&wx, &["apply", "-c", &win(&cfg)]);
    assert!(
        ok && out.contains("0000000001-snapshot-0-1.ctf.pgp: applied"),
        "{out}{err}"
    );
    let mut kopia = w.kopia();
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok"), 2);
    assert_eq!(
        count(
            &mut kopia,
            "SELECT COUNT(*) FROM dbo.Besok WHERE Namn = N'Märta'"
        ),
        1
    );
    w.pmo()
        .execute(
            "UPDATE dbo.Besok SET HsaId = N'E1' WHERE Id = 2; DELETE FROM dbo.Besok WHERE Id = 1",
        )
        .unwrap();
    w.run(&["once"]);
    let (ok, out, err) = exe(&wx, &["apply", "-c", &win(&cfg)]);
    assert!(ok, "{out}{err}");
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok"), 2);
    assert_eq!(
        count(
            &mut kopia,
            "SELECT COUNT(*) FROM dbo.Besok WHERE Namn = N'Örjan'"
        ),
        1
    );
    let (ok, out, err) = exe(&wx, &["apply", "-c", &win(&cfg), "--status"]);
    assert!(ok, "{out}{err}");
    // As a scheduled task runs it: in C:\Windows\System32, without -c: the
    // configuration is looked for in %ProgramData%\ctferry.
    let program_data = wx.1.join("drive_c/ProgramData/ctferry");
    std::fs::create_dir_all(&program_data).unwrap();
    std::fs::copy(&cfg, program_data.join("apply.toml")).unwrap();
    let system32 = wx.1.join("drive_c/windows/system32");
    let (ok2, out2, err2) = exe_in(&wx, Some(&system32), &["apply", "--status"]);
    std::fs::remove_dir_all(&program_data).unwrap();
    assert!(ok2 && out2 == out, "{out2}{err2}");
    assert!(
        out.contains("epoch 1\nlast sequence 2 (0000000002-delta-")
            && out.contains("data as of 20"),
        "{out}"
    );
}
