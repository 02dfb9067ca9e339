//! The support console's users: a text file of `name:argon2id-hash` lines (`--users`),
//! edited by `v8help users add|remove` and read by the console, which notices edits
//! without a restart (a removed user's sessions stop working at their next request).
//!
//! The file is replaced atomically (`crate::atomic`) and kept at mode 0600 on unix: the
//! hashes are slow to attack (argon2id, OWASP's parameters) but still nobody else's business.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Longest accepted user name, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 64;
/// Longest accepted password, in bytes (argon2 takes any length; this bounds the work a
/// login form can ask for).
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;

/// Why the users file cannot be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file exists but cannot be read, or cannot be written.
    #[error("users file {path}: {source}")]
    Io {
        /// The `--users` file.
        path: PathBuf,
        /// Why reading or writing failed.
        source: std::io::Error,
    },
    /// A line is not `name:hash` with a valid name and an argon2 hash.
    #[error("users file {path}, line {line}: {problem}")]
    Line {
        /// The `--users` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        problem: String,
    },
    /// A user name that cannot be stored (empty, too long, `:` or spaces or control characters).
    #[error("invalid user name {name:?}: {problem}")]
    Name {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A password that cannot be used (empty or too long).
    #[error("invalid password: {0}")]
    Password(&'static str),
    /// `users remove` of a name that is not in the file.
    #[error("no user {name:?} in {path}")]
    NoSuchUser {
        /// The name asked for.
        name: String,
        /// The `--users` file.
        path: PathBuf,
    },
    /// Hashing failed (out of memory, a broken random source).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Users and their password hashes, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    entries: Vec<(String, String)>,
}

impl Users {
    /// Reads `path`; a missing file is an empty list (no one can log in yet).
    pub fn read(path: &Path) -> Result<Users, UsersError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Users::parse(&text, path),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Users::default()),
            Err(source) => Err(UsersError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses the file's text; blank lines and `#` comments are skipped.
    pub fn parse(text: &str, path: &Path) -> Result<Users, UsersError> {
        let mut users = Users::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: String| UsersError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                problem,
            };
            let (name, hash) = line.split_once(':').ok_or_else(|| bad("expected name:hash".into()))?;
            check_name(name).map_err(|e| bad(e.to_string()))?;
            PasswordHash::new(hash).map_err(|e| bad(format!("not an argon2 hash: {e}")))?;
            if users.hash_of(name).is_some() {
                return Err(bad(format!("user {name:?} appears twice")));
            }
            users.entries.push((name.to_string(), hash.to_string()));
        }
        Ok(users)
    }

    /// The file's text: one `name:hash` line per user.
    pub fn render(&self) -> String {
        let mut out = String::from("# v8help console users: name:argon2id hash (edit with `v8help users`)\n");
        for (name, hash) in &self.entries {
            out.push_str(name);
            out.push(':');
            out.push_str(hash);
            out.push('\n');
        }
        out
    }

    /// User names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// Whether `name` is a user.
    pub fn contains(&self, name: &str) -> bool {
        self.hash_of(name).is_some()
    }

    fn hash_of(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, h)| h.as_str())
    }

    /// Adds `name` or replaces its password; returns whether the user is new.
    pub fn set(&mut self, name: &str, password: &str) -> Result<bool, UsersError> {
        check_name(name)?;
        let hash = hash_password(password)?;
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => {
                entry.1 = hash;
                Ok(false)
            }
            None => {
                self.entries.push((name.to_string(), hash));
                Ok(true)
            }
        }
    }

    /// Removes `name`; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| n != name);
        self.entries.len() != before
    }

    /// Whether `password` is `name`'s. An unknown name costs the same argon2 work as a
    /// wrong password, so timing does not tell which names exist.
    pub(crate) fn verify(&self, name: &str, password: &str) -> bool {
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let hash = self.hash_of(name).unwrap_or(DUMMY_HASH);
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let ok = argon2().verify_password(password.as_bytes(), &parsed).is_ok();
        ok && self.hash_of(name).is_some()
    }

    /// Writes the list to `path` atomically, mode 0600 on unix.
    pub fn write(&self, path: &Path) -> Result<(), UsersError> {
        let io = |source| UsersError::Io {
            path: path.to_path_buf(),
            source,
        };
        let staged = crate::atomic::Staged::write(path, self.render().as_bytes()).map_err(io)?;
        if let Some(temp) = staged.temp_path() {
            crate::platform::make_private(temp).map_err(io)?;
        }
        staged.commit().map_err(io)
    }
}

/// A valid argon2id hash of a random password, verified against when the name is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$5dVrKeNIsVOyPXexw1fJk+8B/jGNM63ljV6Jvx8JK8U";

/// argon2id with OWASP's minimum (19 MiB, two passes, one lane): about 20–40 ms a check.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a fresh random salt.
pub(crate) fn hash_password(password: &str) -> Result<String, UsersError> {
    if password.is_empty() {
        return Err(UsersError::Password("empty"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(UsersError::Password("longer than 1024 bytes"));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| UsersError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UsersError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Checks that `name` can be a user name: 1–64 bytes, no `:`, whitespace or control characters.
pub(crate) fn check_name(name: &str) -> Result<(), UsersError> {
    let problem = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("longer than 64 bytes")
    } else if name.contains(':') {
        Some("contains ':'")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains a space or control character")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(UsersError::Name {
            name: name.to_string(),
            problem,
        }),
        None => Ok(()),
    }
}

/// The file's modification time and size when last read, and what it held then.
type Cached = (Option<(SystemTime, u64)>, std::sync::Arc<Users>);

/// The users file as the running console sees it: re-read when its size or modification
/// time changes, so `v8help users add|remove` takes effect without a restart. A file that
/// becomes unreadable or invalid keeps the last good list (and is logged).
#[derive(Debug)]
pub struct UsersFile {
    path: PathBuf,
    cached: Mutex<Cached>,
}

impl UsersFile {
    /// Reads `path` now; an invalid file is an error here (a start-up mistake).
    pub fn open(path: PathBuf) -> Result<UsersFile, UsersError> {
        let stamp = stamp(&path);
        let users = Users::read(&path)?;
        Ok(UsersFile {
            path,
            cached: Mutex::new((stamp, std::sync::Arc::new(users))),
        })
    }

    /// The file this list comes from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current list, re-read first when the file changed.
    pub fn current(&self) -> std::sync::Arc<Users> {
        let now = stamp(&self.path);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached.0 != now {
            match Users::read(&self.path) {
                Ok(users) => *cached = (now, std::sync::Arc::new(users)),
                Err(err) => {
                    tracing::error!("{err}; the console keeps the previous users");
                    cached.0 = now;
                }
            }
        }
        cached.1.clone()
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_password_verifies_and_others_do_not() {
        let mut users = Users::default();
        assert!(users.set("anna", "correct horse").unwrap());
        assert!(users.verify("anna", "correct horse"));
        assert!(!users.verify("anna", "correct horsE"));
        assert!(!users.verify("boris", "correct horse"));
        assert!(!users.set("anna", "new one").unwrap());
        assert!(!users.verify("anna", "correct horse"));
        assert!(users.verify("anna", "new one"));
    }

    #[test]
    fn hashes_are_argon2id_with_a_fresh_salt() {
        let a = hash_password("pw").unwrap();
        let b = hash_password("pw").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = Users::parse("# c\n\nanna\n", Path::new("u")).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        let err = Users::parse("anna:nohash\n", Path::new("u")).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("argon2"), "{err}");
    }

    #[test]
    fn names_with_separators_or_spaces_are_refused() {
        for name in ["", "a:b", "a b", "a\nb", &"x".repeat(65)] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name("анна.petrova@example").is_ok());
    }

    #[test]
    fn round_trip_through_the_file_is_mode_0600_and_seen_by_a_running_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let file = UsersFile::open(path.clone()).unwrap();
        assert!(!file.current().contains("anna"));
        let mut users = Users::read(&path).unwrap();
        users.set("anna", "pw1").unwrap();
        users.write(&path).unwrap();
        assert!(file.current().verify("anna", "pw1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mut users = Users::read(&path).unwrap();
        assert!(users.remove("anna"));
        users.write(&path).unwrap();
        assert!(!file.current().contains("anna"));
    }
}
