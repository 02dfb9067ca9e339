//! External tools some suites need (nginx, Apache, systemd-analyze, Chromium): found on
//! PATH or skipped. A plain `cargo test` on a machine without them passes and says, once
//! per suite, what it skipped and how to run it; with `CI=true` (what `.ci/run` runs
//! under) a missing tool is a failure, so CI never passes by skipping.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Suites already reported as skipped in this test binary.
static REPORTED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// The first file called `name` on PATH or in the system binary folders.
pub fn which(name: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether missing tools fail the run (`CI=true`, as `.ci/run` and CI services set).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// What a suite needs and how to get it.
pub struct Suite {
    /// The suite's name as `cargo test` filters it (`proxies::nginx`).
    pub name: &'static str,
    /// The test binary (`deploy`, `browser`).
    pub test: &'static str,
    /// The Debian packages that provide the tools.
    pub packages: &'static str,
}

impl Suite {
    /// Reports that the suite cannot run because `missing`: a failure under `CI=true`,
    /// otherwise one note on stderr (past the harness's capture) and `None` to skip.
    pub fn skip<T>(&self, missing: &str) -> Option<T> {
        if required() {
            panic!(
                "{missing}, so the `{}` suite cannot run and CI=true forbids skipping it. \
                 Install it: apt-get install -y {}",
                self.name, self.packages
            );
        }
        if REPORTED.lock().map(|mut r| r.insert(self.name)).unwrap_or(true) {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED suite `{}`: {missing}. To run it: apt-get install -y {} && \
                 cargo test --test {} {} (or bash .ci/run, which installs everything)",
                self.name,
                self.packages,
                self.test,
                self.name
            );
        }
        None
    }

    /// `name` on PATH, or the suite skipped (see [`Suite::skip`]).
    pub fn tool(&self, name: &str) -> Option<PathBuf> {
        which(name).or_else(|| self.skip(&format!("`{name}` is not installed")))
    }

    /// A binary named by environment variable `var` if set (it must exist), else the first
    /// of `names` on PATH; or the suite skipped.
    pub fn tool_from_env(&self, var: &str, names: &[&str]) -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(var) {
            return if Path::new(&path).is_file() {
                Some(PathBuf::from(path))
            } else {
                self.skip(&format!("{var}={} is not a file", path.to_string_lossy()))
            };
        }
        names
            .iter()
            .find_map(|n| which(n))
            .or_else(|| self.skip(&format!("none of {names:?} is installed")))
    }
}
