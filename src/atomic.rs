//! Replacing a file so that a reader sees either the old bytes or the new ones, never a mix:
//! write a temporary file in the same directory (with the old file's permissions), fsync
//! it, rename it over the target, fsync the directory. The service's watcher sees the
//! rename as one complete save, and so does the 1C launcher reading a base list.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::platform::sync_dir;

/// Atomically replaces `path` with `bytes`. A symlink is followed, so the file it points to
/// is replaced and the link stays.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    Staged::write(path, bytes)?.commit()
}

/// New content written and synced beside its target, not yet in place: the caller may still
/// check something (that the target did not change meanwhile) before [`Staged::commit`].
/// Dropping it removes the temporary file.
#[derive(Debug)]
pub(crate) struct Staged {
    temp: Option<PathBuf>,
    target: PathBuf,
}

impl Staged {
    /// Writes `bytes` to a fresh temporary file next to the file `path` resolves to.
    pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<Staged> {
        let target = match fs::canonicalize(path) {
            Ok(real) => real,
            Err(err) if err.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
            Err(err) => return Err(err),
        };
        let dir = parent(&target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pid = std::process::id();
        for attempt in 0..100 {
            let temp = dir.join(format!(".{name}.v8help-{pid}-{attempt}.tmp"));
            let mut file = match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => file,
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            };
            let staged = Staged {
                temp: Some(temp),
                target,
            };
            if let Ok(meta) = fs::metadata(&staged.target) {
                file.set_permissions(meta.permissions())?;
            }
            file.write_all(bytes)?;
            file.sync_all()?;
            return Ok(staged);
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary file name",
        ))
    }

    /// The temporary file holding the new content (to tighten its mode before the commit).
    pub(crate) fn temp_path(&self) -> Option<&Path> {
        self.temp.as_deref()
    }

    /// Renames the temporary file over the target and makes the rename durable.
    pub(crate) fn commit(mut self) -> io::Result<()> {
        let Some(temp) = self.temp.take() else { return Ok(()) };
        if let Err(err) = fs::rename(&temp, &self.target) {
            let _ = fs::remove_file(&temp);
            return Err(err);
        }
        let _ = sync_dir(&parent(&self.target));
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = fs::remove_file(temp);
        }
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        fs::write(&path, "old").unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_staged_write_dropped_uncommitted_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        fs::write(&path, "old").unwrap();
        let staged = Staged::write(&path, b"new").unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        drop(staged);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn keeps_permissions_and_symlinks() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.json");
        symlink(&real, &link).unwrap();
        replace(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
    }
}
