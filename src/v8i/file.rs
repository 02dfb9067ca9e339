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

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> V8iError + '_ {
    move |source| V8iError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The first free backup name for `path`: `FILE.bak`, else `FILE.bak.1`, `FILE.bak.2`, …
/// An existing backup is never overwritten, so the oldest one is the file as it was before
/// v8help first touched it.
pub fn backup_path_for(path: &Path) -> PathBuf {
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
pub fn replace_file(path: &Path, original: &[u8], new: &[u8]) -> Result<PathBuf, V8iError> {
    let target = fs::canonicalize(path).map_err(io_error(path))?;
    ensure_unchanged(&target, path, original)?;
    let permissions = fs::metadata(&target).map_err(io_error(path))?.permissions();

    let backup = backup_path_for(path);
    write_new_file(&backup, original)?;

    let dir = target.parent().unwrap_or(Path::new("."));
    let temp = match write_temp(dir, &target, new, permissions) {
        Ok(temp) => temp,
        Err(err) => {
            let _ = fs::remove_file(&backup);
            return Err(err);
        }
    };
    if let Err(err) = ensure_unchanged(&target, path, original) {
        let _ = fs::remove_file(&temp);
        let _ = fs::remove_file(&backup);
        return Err(err);
    }
    if let Err(source) = fs::rename(&temp, &target) {
        let _ = fs::remove_file(&temp);
        return Err(V8iError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    sync_dir(dir);
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

fn write_temp(
    dir: &Path,
    target: &Path,
    bytes: &[u8],
    permissions: fs::Permissions,
) -> Result<PathBuf, V8iError> {
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    for attempt in 0..100 {
        let temp = dir.join(format!(".{file_name}.v8help-{pid}-{attempt}.tmp"));
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(V8iError::Io { path: temp, source }),
        };
        let written = file
            .write_all(bytes)
            .and_then(|()| file.set_permissions(permissions.clone()))
            .and_then(|()| file.sync_all());
        return match written {
            Ok(()) => Ok(temp),
            Err(source) => {
                let _ = fs::remove_file(&temp);
                Err(V8iError::Io { path: temp, source })
            }
        };
    }
    Err(V8iError::Io {
        path: dir.to_path_buf(),
        source: io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name"),
    })
}

/// Makes the rename durable where the platform allows syncing a directory; elsewhere the
/// rename is still atomic, only its durability after a power cut is up to the OS.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
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
        assert!(
            fs::symlink_metadata(&link)
                .expect("stat")
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).expect("read"), b"new");
        let mode = fs::metadata(&real).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}
