//! Folders and files that hold health data or keys (the state, the outbox,
//! delivery folders, the caregiver's incoming folder) are readable by the
//! service account only: folders 0700, files 0600. The binary sets its
//! umask to 077 so that everything it creates is so; `dir` also tightens a
//! folder that existed before (made by another tool, or by an older
//! ctferry under a looser umask), and `tighten` everything in it.
//!
//! Others may be able to write into a delivery or incoming folder, so
//! ctferry never follows a link or opens anything but a regular file there:
//! `create_new` removes whatever has the name (a link is removed, not
//! followed) and creates the file exclusively; `open_regular` refuses a
//! link, a pipe or a device instead of following or blocking on it.

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

/// Creates `path` for writing, 0600, as a new file: whatever had the name
/// before (a leftover, or a link or pipe someone planted) is removed first,
/// never followed or written through.
pub fn create_new(path: &Path) -> io::Result<std::fs::File> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a folder has the name of a file ctferry writes; remove it",
            ))
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}

/// Opens `path` for reading only if it is a regular file: a link is not
/// followed and a pipe or device is refused rather than waited on.
pub fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = o.open(path).map_err(|e| {
        if e.raw_os_error() == Some(ELOOP) {
            not_regular()
        } else {
            e
        }
    })?;
    if !f.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(f)
}

/// The most a configuration, key, password or passphrase file may hold.
pub const SMALL_FILE_LIMIT: u64 = 1 << 20;

/// Reads a small file the operator names (configuration, key, password):
/// a regular file (a link to one is fine) of at most `SMALL_FILE_LIMIT`
/// bytes. A device such as /dev/zero or a pipe would otherwise make ctferry
/// read without end.
pub fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device or pipe); name the file itself",
        ));
    }
    let mut out = Vec::with_capacity(m.len().min(SMALL_FILE_LIMIT) as usize);
    f.take(SMALL_FILE_LIMIT + 1).read_to_end(&mut out)?;
    if out.len() as u64 > SMALL_FILE_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {SMALL_FILE_LIMIT} bytes; a configuration, key or password file is never that large"),
        ));
    }
    Ok(out)
}

/// `read_small` as UTF-8 text.
pub fn read_small_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_small(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(unix)]
const ELOOP: i32 = libc::ELOOP;
#[cfg(not(unix))]
const ELOOP: i32 = -1;

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a regular file (a link, pipe or device someone placed there); ctferry reads only files; remove it",
    )
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

/// For an error the operator fixes by freeing disk space: what to do, and
/// that nothing is lost (every step commits atomically; the next run goes
/// on from the last commit). Empty for any other error.
pub fn disk_full_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        "; the disk is full: free space on it, then run ctferry again (nothing is lost: it goes on from its last commit)"
    } else {
        ""
    }
}
