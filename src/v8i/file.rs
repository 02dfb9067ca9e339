//! The one place the v8i module touches the disk: replacing a base list safely.
//!
//! [`replace_file`] writes a backup of what was read, writes the new content to a temporary
//! file in the same folder (synced, with the original's permissions), checks that the file
//! still holds what was read, and renames the temporary file over it. A reader of the list
//! (the launcher, another admin's editor) sees either the old file or the new one, never a
//! half-written one, and an edit someone saved since we read is never overwritten.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::V8iError;
use crate::atomic::Staged;

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> V8iError + '_ {
    move |source| V8iError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The first free backup name for `path`: `FILE.bak`, else `FILE.bak.1`, `FILE.bak.2`, …
/// An existing backup is never overwritten, so the oldest one is the file as it was before
/// v8help first touched it.
fn backup_path_for(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".bak");
    let first = PathBuf::from(&name);
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|n| {
            let mut numbered = name.clone();
            numbered.push(format!(".{n}"));
            PathBuf::from(numbered)
        })
        .find(|candidate| !candidate.exists())
        .unwrap_or(first)
}

/// Replaces the file at `path`, which was read as `original`, with `new`; returns the backup's
/// path. Refuses with [`V8iError::ChangedSinceRead`] (and leaves no trace) when the file no
/// longer holds `original`. A symlink is followed: its target is replaced, the link stays.
pub(crate) fn replace_file(path: &Path, original: &[u8], new: &[u8]) -> Result<PathBuf, V8iError> {
    let target = fs::canonicalize(path).map_err(io_error(path))?;
    ensure_unchanged(&target, path, original)?;
    let backup = backup_path_for(path);
    write_new_file(&backup, original)?;
    let staged = match Staged::write(&target, new) {
        Ok(staged) => staged,
        Err(source) => {
            let _ = fs::remove_file(&backup);
            return Err(V8iError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // Checked again as late as possible: an edit saved meanwhile is never overwritten.
    if let Err(err) = ensure_unchanged(&target, path, original) {
        drop(staged);
        let _ = fs::remove_file(&backup);
        return Err(err);
    }
    staged.commit().map_err(io_error(path))?;
    Ok(backup)
}

fn ensure_unchanged(target: &Path, shown: &Path, original: &[u8]) -> Result<(), V8iError> {
    let current = fs::read(target).map_err(io_error(shown))?;
    if current != original {
        return Err(V8iError::ChangedSinceRead {
            path: shown.to_path_buf(),
        });
    }
    Ok(())
}

fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), V8iError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_keeps_a_backup_of_what_was_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ibases.v8i");
        fs::write(&path, b"old").expect("write");
        let backup = replace_file(&path, b"old", b"new").expect("replace");
        assert_eq!(fs::read(&path).expect("read"), b"new");
        assert_eq!(backup, dir.path().join("ibases.v8i.bak"));
        assert_eq!(fs::read(&backup).expect("read backup"), b"old");

        let second = replace_file(&path, b"new", b"newer").expect("replace again");
        assert_eq!(second, dir.path().join("ibases.v8i.bak.1"));
        assert_eq!(fs::read(&backup).expect("first backup kept"), b"old");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn refuses_when_the_file_changed_since_it_was_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ibases.v8i");
        fs::write(&path, b"saved by someone else").expect("write");
        let err = replace_file(&path, b"what we read", b"ours").expect_err("must refuse");
        assert!(matches!(err, V8iError::ChangedSinceRead { .. }));
        assert_eq!(fs::read(&path).expect("read"), b"saved by someone else");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn keeps_permissions_and_replaces_a_symlinks_target() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.v8i");
        let link = dir.path().join("link.v8i");
        fs::write(&real, b"old").expect("write");
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).expect("chmod");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        replace_file(&link, b"old", b"new").expect("replace");
        assert!(fs::symlink_metadata(&link).expect("stat").file_type().is_symlink());
        assert_eq!(fs::read(&real).expect("read"), b"new");
        let mode = fs::metadata(&real).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}
