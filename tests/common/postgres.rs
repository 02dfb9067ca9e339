//! PostgreSQL for the tests: a fresh database per test on the server at
//! `V8HELP_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`, trust
//! auth), and a throw-away cluster of the test's own (initdb + pg_ctl on a free port in a
//! temporary directory) for tests that stop and start the server.
//!
//! Where no server answers, PostgreSQL tests skip with a printed reason; with `CI=true` they
//! fail instead, since CI (`.ci/run`) starts one.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The server the tests create their databases on.
pub fn server_url() -> String {
    std::env::var("V8HELP_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn answers(url: &str) -> bool {
    let config: tokio_postgres::Config = match url.parse() {
        Ok(c) => c,
        Err(_) => return false,
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let Ok(addr) = format!("{host}:{port}").parse::<SocketAddr>() else {
        return false;
    };
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Whether PostgreSQL tests can run; prints why not (and fails under `CI=true`) otherwise.
pub fn available(test: &str) -> bool {
    let url = server_url();
    if answers(&url) {
        return true;
    }
    let reason = format!("no PostgreSQL answers at {url} (set V8HELP_TEST_POSTGRES, or run .ci/run)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {reason}");
    }
    eprintln!("skipping {test}: {reason}");
    false
}

/// Runs `f` with a client connected to `url`, on a runtime in a thread of its own (callable
/// from sync or async test code).
fn with_client<T, F, Fut>(url: &str, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(tokio_postgres::Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            f(client).await
        })
    })
    .join()
    .map_err(|_| "PostgreSQL client thread panicked".to_string())?
}

/// Runs `sql` on the server at `url`.
pub fn admin(url: &str, sql: &str) -> Result<(), String> {
    let sql = sql.to_string();
    with_client(url, |client| async move {
        client.batch_execute(&sql).await.map_err(|e| e.to_string())
    })
}

/// Runs a query on `url` and returns the first column of every row as text.
pub fn query_texts(url: &str, sql: &str) -> Vec<String> {
    let sql = sql.to_string();
    with_client(url, |client| async move {
        let rows = client.simple_query(&sql).await.map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect())
    })
    .unwrap()
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A database of one test's own, dropped when the test ends.
pub struct TestDb {
    /// Its `postgres://` URL.
    pub url: String,
    name: String,
    server: String,
}

impl TestDb {
    /// Creates a fresh, empty database on [`server_url`].
    pub fn create() -> TestDb {
        TestDb::create_on(&server_url())
    }

    /// Creates a fresh, empty database on the server at `server`.
    pub fn create_on(server: &str) -> TestDb {
        let name = format!(
            "v8help_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        admin(server, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
        TestDb {
            url: format!("{base}/{name}"),
            name,
            server: server.to_string(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// The directory holding `initdb` and `pg_ctl` (the newest /usr/lib/postgresql/N/bin).
pub fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((n, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// A PostgreSQL cluster of the test's own on a free port, stopped (immediately) when dropped.
pub struct Cluster {
    /// Its superuser URL (`postgres` database).
    pub url: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

/// The user clusters run as: initdb refuses root, so a root test runs it as `postgres`.
fn as_cluster_user(bin: &Path, tool: &str) -> Command {
    // The effective user, from the process's own status file.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

impl Cluster {
    /// Creates and starts a cluster, or says why it cannot (no PostgreSQL binaries).
    pub fn start(test: &str) -> Option<Cluster> {
        let Some(bin) = pg_bin() else {
            let reason = "no /usr/lib/postgresql/*/bin/initdb (install Debian's postgresql, or run .ci/run)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: {reason}");
            }
            eprintln!("skipping {test}: {reason}");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("v8help-pg").tempdir_in("/tmp").unwrap();
        let data = dir.path().join("data");
        // The cluster user must own its directory.
        let _ = Command::new("chmod").arg("0777").arg(dir.path()).status();
        let init = as_cluster_user(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            port,
            bin,
            data,
            _dir: dir,
        };
        cluster.pg_ctl_start();
        Some(cluster)
    }

    fn pg_ctl_start(&self) {
        let out = as_cluster_user(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "-l"])
            .arg(self.data.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
                self.port,
                self.data.display()
            ))
            .arg("start")
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(self.data.join("log")).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(&self.url) {
            assert!(
                Instant::now() < deadline,
                "the test cluster does not answer on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server at once (`-m immediate`: like a crash, no checkpoint).
    pub fn stop(&self) {
        let out = as_cluster_user(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_cluster_user(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}
