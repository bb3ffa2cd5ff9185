//! Where the caregiver's packages come from: the local folder they arrive
//! in, or the caregiver's SFTP area, downloaded into that folder first.
//!
//! Contract: a download appears under its final name only when complete
//! (`.part`, size check, fsync, rename; `crate::sftp`); a file already
//! there with the right size is kept; files of packages already applied are
//! removed from the download folder (it is a cache; the copies on the
//! server are left alone). Only names of the form
//! `<seq:010>-….ctf.pgp` are ever considered.

use crate::config::Target;
use crate::format::package::SUFFIX;
use crate::sftp::{self, SftpError};
use std::path::{Path, PathBuf};

/// Why the packages could not be listed or fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot create the download folder {}: {source}", path.display())]
    CreateFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the package folder {}: {source}", path.display())]
    ReadFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fetching packages over SFTP: {0}{hint}", hint = if .0.retryable() { " (the next run tries again)" } else { "" })]
    Sftp(SftpError),
}

impl FetchError {
    /// Whether the next run can succeed without a person (a network
    /// problem can pass; a changed host key or a missing folder cannot).
    pub fn retryable(&self) -> bool {
        match self {
            FetchError::Sftp(e) => e.retryable(),
            _ => false,
        }
    }
}

/// The sequence number in a package file's name, or `None` when the name is
/// not a package's.
pub fn seq_of(file: &Path) -> Option<u64> {
    let name = file.file_name()?.to_str()?;
    if !name.ends_with(SUFFIX) || name.len() < 11 || name.as_bytes()[10] != b'-' {
        return None;
    }
    name[..10].parse().ok()
}

/// The packages in `folder`, by sequence.
pub fn packages_in(folder: &Path) -> Result<Vec<(u64, PathBuf)>, FetchError> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(folder)
        .map_err(|source| FetchError::ReadFolder {
            path: folder.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| seq_of(&p).map(|s| (s, p)))
        .collect();
    files.sort();
    Ok(files)
}

/// Downloads the packages after sequence `last` from the caregiver's SFTP
/// area into `folder` (see the module doc). Returns the names downloaded.
pub fn fetch(t: &Target, folder: &Path, last: u64) -> Result<Vec<String>, FetchError> {
    crate::private::dir(folder).map_err(|source| FetchError::CreateFolder {
        path: folder.to_path_buf(),
        source,
    })?;
    if let Ok(rd) = std::fs::read_dir(folder) {
        for p in rd.flatten().map(|e| e.path()) {
            if seq_of(&p).is_some_and(|s| s <= last) {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    let c = sftp::connect(t).map_err(FetchError::Sftp)?;
    let mut got = Vec::new();
    for f in c.list(SUFFIX).map_err(FetchError::Sftp)? {
        let dest = folder.join(&f.name);
        match seq_of(&dest) {
            Some(s) if s > last => {}
            _ => continue,
        }
        if std::fs::metadata(&dest).map(|m| m.len()).ok() == Some(f.size) {
            continue;
        }
        c.download(&f.name, f.size, &dest)
            .map_err(FetchError::Sftp)?;
        tracing::info!(file = %f.name, bytes = f.size, "downloaded");
        got.push(f.name);
    }
    c.close();
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_package_names_count() {
        assert_eq!(
            seq_of(Path::new("in/0000000007-delta-1-9.ctf.pgp")),
            Some(7)
        );
        assert_eq!(seq_of(Path::new("0000000007-delta-1-9.ctf.pgp.part")), None);
        assert_eq!(seq_of(Path::new("000000007-delta-1-9.ctf.pgp")), None);
        assert_eq!(seq_of(Path::new("notanumber-delta.ctf.pgp")), None);
        assert_eq!(seq_of(Path::new(".ctf.pgp")), None);
    }
}
