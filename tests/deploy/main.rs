//! Checks of the deployment files under `deploy/`, one module per target: [`kubernetes`]
//! (manifests), [`kubernetes_postgres`] (their PostgreSQL-backed variant), [`container`]
//! (the Containerfile), [`systemd`] (the unit) and [`proxies`] (nginx, Apache, IIS snippets). Each file is parsed and checked against the others and
//! against the real v8help (its flags, its document validation, the built binary), and the
//! tools that can judge a file (systemd-analyze, nginx, apache2) are run.
//!
//! Debian packages these tests need (CI: `apt-get install -y systemd procps nginx apache2`):
//! - `systemd`  — `systemd-analyze verify` on the unit;
//! - `procps`   — `/bin/kill`, which `systemd-analyze verify` checks for ExecReload=;
//! - `nginx`    — `nginx -t` on the example site, and serving through it;
//! - `apache2`  — `apache2 -t` on the example virtual host, and serving through it.
//!
//! Without a tool, the suites that need it are skipped with a note saying how to run them;
//! under `CI=true` a missing tool fails them (see `tests/common/tools.rs`).
//! Run: `cargo test --test deploy` (one target: `cargo test --test deploy proxies::`).

#[path = "../common/mod.rs"]
mod common;

mod container;
mod files;
mod kubernetes;
mod kubernetes_postgres;
mod proxies;
mod systemd;

use std::path::{Path, PathBuf};

use files::deploy_path;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_deploy_file_starts_with_a_comment_saying_what_it_is_for() {
    let mut files = Vec::new();
    files_under(&deploy_path(""), &mut files);
    assert!(files.len() >= 15, "deploy/ has only {} files", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text.lines();
        let mut first = lines.next().unwrap_or_default();
        let ok = match path.extension().and_then(|e| e.to_str()) {
            Some("md") => first.starts_with("# "),
            Some("config") => first.starts_with("<!--"),
            // A script says it after its `#!` line.
            Some("sh") if first.starts_with("#!") => {
                first = lines.next().unwrap_or_default();
                first.starts_with("# ")
            }
            _ => first.starts_with("# "),
        };
        assert!(
            ok,
            "{} must start with a comment saying what it is for, not {first:?}",
            path.display()
        );
    }
}
