//! Folders and files that hold health data or keys (the state, the outbox,
//! delivery folders, the caregiver's incoming folder) are readable by the
//! service account only: folders 0700, files 0600. The binary sets its
//! umask to 077 so that everything it creates is so; `dir` also tightens a
//! folder that existed before (made by another tool, or by an older
//! ctferry under a looser umask), and `tighten` everything in it.

use std::io;
use std::path::Path;

/// Creates `path` (and its parents) if needed, 0700. A folder that
/// existed is made 0700 too when this account may (one it does not own,
/// such as a share mounted for deliveries, is left as its owner set it).
pub fn dir(path: &Path) -> io::Result<()> {
    let existed = path.is_dir();
    std::fs::create_dir_all(path)?;
    match set_mode(path, 0o700) {
        Err(e) if existed && e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        r => r,
    }
}

/// Makes `path` 0700 and everything under it 0600 (files) or 0700
/// (folders); symbolic links are neither followed nor changed.
pub fn tighten(path: &Path) -> io::Result<()> {
    set_mode(path, 0o700)?;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        if ty.is_dir() {
            tighten(&entry.path())?;
        } else if ty.is_file() {
            set_mode(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    // Windows: the folder's ACL decides (issue: the caregiver's side on Windows).
    Ok(())
}
