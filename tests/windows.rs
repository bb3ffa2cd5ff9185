//! The caregiver's side on Windows: the `ctferry.exe` that
//! scripts/build-windows.sh cross-compiles, run under Wine. scripts/test.sh
//! runs scripts/windows-check.sh first and passes CTFERRY_WINDOWS_EXE and
//! WINEPREFIX; where the Windows target or Wine cannot be installed it says
//! "SKIPPED: Windows build (...)" and these tests say they were skipped.
//!
//! What runs: `ctferry.exe --version`; `inspect` of a package the Linux
//! build made; `apply` with an apply.toml written with Windows paths
//! (`Z:\...`, which Wine maps to this machine's `/`) of a snapshot and then
//! a delta from a folder into mssql-sim on 127.0.0.1; `apply --status`;
//! `apply` picking packages up from the caregiver's SFTP area (OpenSSH's
//! sshd on 127.0.0.1, an ed25519 host key pinned).

#[path = "support/sshd.rs"]
mod sshd;
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
    exe_env(w, cwd, &[], args)
}

/// As `exe_in`, with more environment variables.
fn exe_env(
    w: &(PathBuf, PathBuf),
    cwd: Option<&Path>,
    envs: &[(&str, &str)],
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = Command::new("wine");
    cmd.envs(envs.iter().copied());
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

/// apply.toml text `toml` with its key and folder paths written the
/// Windows way (`'Z:\...'`), as a caregiver on Windows writes them.
fn windows_paths(w: &World, toml: &str) -> String {
    let lit = |p: &str| format!("'{}'", win(&w.path(p)));
    toml.replace("\"keys/norr.sec.asc\"", &lit("keys/norr.sec.asc"))
        .replace("\"keys/region.pub.asc\"", &lit("keys/region.pub.asc"))
        .replace("folder = \"out\"", &format!("folder = {}", lit("out")))
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
    let windows_toml = windows_paths(&w, &apply);
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

/// Windows sign-in to the caregiver's SQL Server (`integrated security=true`,
/// no user id, no password): ctferry.exe hands it to tiberius's Windows
/// authentication (SSPI): under Wine that stops on the client side (Wine's
/// NTLM needs Samba's ntlm_auth) with a message that says so, and where it
/// reaches the simulator it is refused as SQL Server refuses a Windows
/// identity it cannot accept (18452) — a real Windows sign-in cannot be
/// exercised under Wine against the simulator. The Linux build
/// says it works with ctferry.exe only; a password next to it is refused.
#[test]
fn windows_sign_in_reaches_the_server_as_sspi() {
    let w = region();
    w.run(&["once"]);
    let apply = std::fs::read_to_string(w.path("apply.toml")).unwrap();
    let integrated = apply
        .replace("user id=sa;", "integrated security=true;")
        .replace("password_env = \"PW\"\n", "");
    assert!(
        integrated.contains("integrated security=true"),
        "{integrated}"
    );
    let cfg = w.path("apply-sspi.toml");
    std::fs::write(&cfg, &integrated).unwrap();
    // The Linux build.
    let (ok, out, err) = world::fixtures::run_ctferry(&["apply"], &cfg, &[("PW", PW)]);
    assert!(
        !ok && err.contains(
            "integrated security (Windows sign-in) works with ctferry.exe on Windows only"
        ),
        "{out}{err}"
    );
    let with_password = w.path("apply-sspi-pw.toml");
    std::fs::write(
        &with_password,
        integrated.replace("[target]\n", "[target]\npassword_env = \"PW\"\n"),
    )
    .unwrap();
    let (ok, _, err) = world::fixtures::run_ctferry(&["apply"], &with_password, &[("PW", PW)]);
    assert!(!ok && err.contains("remove password_env"), "{err}");
    // ctferry.exe under Wine: the login goes out as Windows authentication.
    let Some(wx) = windows() else { return };
    let windows_toml = windows_paths(&w, &integrated);
    std::fs::write(&cfg, windows_toml).unwrap();
    let (ok, out, err) = exe(&wx, &["apply", "-c", &win(&cfg)]);
    // Wine's SSPI cannot make an NTLM token without Samba's ntlm_auth, so
    // the sign-in usually stops on this side, said as such; where it goes
    // out, the simulator refuses it as SQL Server would.
    assert!(
        !ok && (err.contains("with Windows authentication (SSPI)")
            || err.contains("cannot be used with Integrated authentication")),
        "{out}{err}"
    );
    assert!(!err.contains("Force Encryption"), "{err}");
    assert_eq!(
        count(
            &mut w.kopia(),
            "SELECT COUNT(*) FROM sys.tables WHERE name = N'Besok'"
        ),
        0
    );
}

/// The scheduled task the README imports (docs/ctferry-apply-task.xml) is
/// well-formed Task Scheduler XML that runs `C:\ctferry\ctferry.exe apply`
/// every 15 minutes without overlapping runs, and the README's schtasks
/// line imports that file.
#[test]
fn the_scheduled_task_is_what_the_readme_says() {
    let root = env!("CARGO_MANIFEST_DIR");
    let xml = format!("{root}/docs/ctferry-apply-task.xml");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             ns = {'t': 'http://schemas.microsoft.com/windows/2004/02/mit/task'}\n\
             r = E.parse(sys.argv[1]).getroot()\n\
             f = lambda p: r.find(p, ns).text\n\
             print(f('t:Actions/t:Exec/t:Command'), f('t:Actions/t:Exec/t:Arguments'), f('t:Triggers/t:TimeTrigger/t:Repetition/t:Interval'), f('t:Settings/t:MultipleInstancesPolicy'))",
            &xml,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "C:\\ctferry\\ctferry.exe apply PT15M IgnoreNew"
    );
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(readme.contains(
        "schtasks /Create /TN \"ctferry apply\" /XML C:\\ctferry\\ctferry-apply-task.xml"
    ));
    assert!(readme.contains("copy ctferry.exe C:\\ctferry\\"));
}

/// `ctferry.exe apply --watch` under Wine keeps polling: a snapshot, then a
/// delta made while it runs, both applied without restarting it.
#[test]
fn apply_watch_under_wine_applies_what_arrives() {
    let Some(wx) = windows() else { return };
    let w = region();
    w.run(&["once"]);
    let apply = std::fs::read_to_string(w.path("apply.toml")).unwrap();
    let windows_toml = windows_paths(&w, &apply);
    let cfg = w.path("apply-watch.toml");
    std::fs::write(&cfg, windows_toml).unwrap();
    let mut child = Command::new("wine")
        .arg(&wx.0)
        .args(["apply", "-c", &win(&cfg), "--watch", "--every", "1"])
        .env("WINEPREFIX", &wx.1)
        .env("WINEDEBUG", "-all")
        .env("PW", PW)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait = |sql: &str, want: i64| {
        let t = std::time::Instant::now();
        loop {
            let n = w
                .kopia()
                .rows("waiting", sql, &[])
                .ok()
                .and_then(|r| r.first().and_then(|r| ctferry::mssql::client::int_at(r, 0)));
            if n == Some(want) {
                return true;
            }
            if t.elapsed().as_secs() > 60 {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    };
    let snapshot = wait("SELECT COUNT(*) FROM ctferry.applied", 1);
    w.pmo()
        .execute("UPDATE dbo.Besok SET Namn = N'Åsa (ny)' WHERE Id = 1")
        .unwrap();
    w.run(&["once"]);
    let delta = wait("SELECT COUNT(*) FROM dbo.Besok WHERE Namn = N'Åsa (ny)'", 1);
    let _ = child.kill();
    let _ = child.wait();
    assert!(snapshot, "--watch did not apply the snapshot");
    assert!(delta, "--watch did not apply the delta made while it ran");
}

/// The caregiver's packages picked up from its SFTP area (OpenSSH's sshd
/// on 127.0.0.1, the host key pinned) by ctferry.exe under Wine: the
/// snapshot, then a delta, downloaded into a folder given the Windows way
/// and applied; a wrong host key pin is refused before anything is read.
#[test]
fn apply_under_wine_picks_up_from_the_sftp_area() {
    let Some(wx) = windows() else { return };
    let w = region();
    // Its host key is ed25519, OpenSSH's preferred (which a build of
    // libssh2 on Windows CNG could not use).
    let sshd = sshd::Sshd::start();
    // What the region's publisher delivers there (as the account's files).
    let deliver = |w: &World| {
        for e in std::fs::read_dir(w.path("out")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".ctf.pgp") {
                let to = sshd.area(0).join(&name);
                std::fs::copy(e.path(), &to).unwrap();
                let ok = Command::new("chown")
                    .arg(sshd::USERS[0])
                    .arg(&to)
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "chown {}", to.display());
            }
        }
    };
    w.run(&["once"]);
    deliver(&w);
    let apply = std::fs::read_to_string(w.path("apply.toml")).unwrap();
    let windows_toml = windows_paths(&w, &apply);
    let sftp = |pin: &str| {
        windows_toml.replace(
            &format!("folder = '{}'", win(&w.path("out"))),
            &format!(
                "sftp = \"{}\"\npassword_env = \"SFTP_PASSWORD\"\nhost_key = \"{pin}\"\nfolder = '{}'",
                sshd.url(0),
                win(&w.path("downloaded"))
            ),
        )
    };
    let cfg = w.path("apply-sftp.toml");
    std::fs::write(&cfg, sftp(&sshd.fingerprint())).unwrap();
    assert!(
        std::fs::read_to_string(&cfg).unwrap().contains("sftp = "),
        "the test's apply.toml names no SFTP area"
    );
    let envs = [("SFTP_PASSWORD", sshd::PASSWORDS[0])];
    let (ok, out, err) = exe_env(&wx, None, &envs, &["apply", "-c", &win(&cfg)]);
    assert!(
        ok && out.contains("0000000001-snapshot-0-1.ctf.pgp: applied"),
        "{out}{err}\nsshd: {}",
        sshd.log()
    );
    let mut kopia = w.kopia();
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok"), 2);
    w.pmo()
        .execute("UPDATE dbo.Besok SET Namn = N'Åke' WHERE Id = 1")
        .unwrap();
    w.run(&["once"]);
    deliver(&w);
    let (ok, out, err) = exe_env(&wx, None, &envs, &["apply", "-c", &win(&cfg)]);
    assert!(ok && out.contains("0000000002-delta-"), "{out}{err}");
    assert_eq!(
        count(
            &mut kopia,
            "SELECT COUNT(*) FROM dbo.Besok WHERE Namn = N'Åke'"
        ),
        1
    );
    // Another host key than the one pinned: refused, and the copy stays.
    let other = format!("SHA256:{}", "A".repeat(43));
    std::fs::write(&cfg, sftp(&other)).unwrap();
    let (ok, out, err) = exe_env(&wx, None, &envs, &["apply", "-c", &win(&cfg)]);
    assert!(!ok, "a wrong host key pin was accepted:\n{out}{err}");
    assert!(err.contains("host key"), "{out}{err}");
    assert!(!err.contains(sshd::PASSWORDS[0]), "{err}");
    assert_eq!(count(&mut kopia, "SELECT COUNT(*) FROM dbo.Besok"), 2);
}
