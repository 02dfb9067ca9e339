//! Child processes: the real `v8help` binary (one-shot commands and `serve`), and any other
//! server a test starts (nginx, Apache, ChromeDriver), with its output collected line by
//! line and the process stopped when the test drops it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::wait::{POLL, try_wait_blocking};

/// `v8help` with no `V8HELP_*` or `RUST_LOG` inherited from the test's environment.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_v8help"));
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if n.starts_with("V8HELP_") || n == "RUST_LOG" {
            command.env_remove(&name);
        }
    }
    // No error-report database in the working tree unless a test asks for one.
    command.env("V8HELP_REPORTS_DB", "off");
    command
}

/// Runs `v8help <args>` to its end.
pub fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("the v8help binary runs")
}

/// Runs `v8help <args>` in `dir` to its end.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    command()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the v8help binary runs")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The exit code (panics if the process was killed by a signal).
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

/// The lines a child writes to one pipe, gathered by a thread that reads the pipe to its
/// end (so the child never blocks on a full pipe).
#[derive(Clone)]
pub struct Log {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Log {
    /// Starts reading `pipe`; each line is also echoed to the test's output under `tag`.
    pub fn read(pipe: impl Read + Send + 'static, tag: &'static str) -> Log {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Log { lines }
    }

    /// The first line `pick` accepts, waiting up to `limit` for it; `None` if none came.
    pub fn find<T>(&self, limit: Duration, mut pick: impl FnMut(&str) -> Option<T>) -> Option<T> {
        try_wait_blocking(limit, POLL, || self.lines.lock().unwrap().iter().find_map(|l| pick(l)))
    }

    /// Waits until a line contains `needle`; returns that line (panics after `limit`).
    pub fn wait_line(&self, needle: &str, limit: Duration) -> String {
        self.find(limit, |l| l.contains(needle).then(|| l.to_string()))
            .unwrap_or_else(|| panic!("no log line with {needle:?} within {limit:?}: {:?}", self.lines()))
    }

    /// All lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// A child process stopped when dropped: SIGTERM first, so that a server's master process
/// takes its workers down with it (SIGKILL would leave them running), SIGKILL after 5 s.
pub struct Running {
    pub child: Child,
    pub name: &'static str,
}

impl Running {
    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) -> bool {
        Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        self.signal("TERM");
        let exited = try_wait_blocking(Duration::from_secs(5), POLL, || self.child.try_wait().ok().flatten());
        if exited.is_none() {
            eprintln!("{} did not stop on SIGTERM within 5 s; killing it", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The real `v8help` process (usually `serve`), with its log and the addresses it reported
/// in its "v8help listening on" line.
pub struct Binary {
    pub process: Running,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    log: Log,
    /// Holds the error-report database when the caller gave none (never the working tree).
    _reports_dir: tempfile::TempDir,
}

impl Binary {
    /// Starts `v8help <args>` with `envs` as its only `V8HELP_*` variables and waits for it
    /// to listen.
    pub fn serve(args: &[&OsStr], envs: &[(&str, &str)]) -> Binary {
        Binary::serve_from(command(), args, envs)
    }

    /// [`Binary::serve`] with `dir` as the working directory (for relative paths).
    pub fn serve_in(dir: &Path, args: &[&OsStr], envs: &[(&str, &str)]) -> Binary {
        let mut command = command();
        command.current_dir(dir);
        Binary::serve_from(command, args, envs)
    }

    fn serve_from(mut command: Command, args: &[&OsStr], envs: &[(&str, &str)]) -> Binary {
        let reports_dir = tempfile::tempdir().expect("a temporary directory");
        command
            .args(args)
            .env("V8HELP_REPORTS_DB", reports_dir.path().join("reports.db"))
            // Each test's console on a port of its own (the default, 8444, is one for all).
            .env("V8HELP_ADMIN_LISTEN", "127.0.0.1:0")
            .envs(envs.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("v8help starts");
        let log = Log::read(child.stderr.take().expect("piped stderr"), "v8help");
        let process = Running { child, name: "v8help" };
        let addr = regex::Regex::new(r"(https?)://([0-9.]+:[0-9]+)").expect("regex");
        let (https, http) = log
            .find(Duration::from_secs(20), |line| {
                if !line.contains("v8help listening on") {
                    return None;
                }
                let (mut https, mut http) = (None, None);
                for c in addr.captures_iter(line) {
                    let a: SocketAddr = c[2].parse().expect("address in the log line");
                    match &c[1] {
                        "https" => https = Some(a),
                        _ => http = Some(a),
                    }
                }
                Some((https.expect("https address in the log line"), http))
            })
            .unwrap_or_else(|| panic!("v8help did not report listening within 20 s; log: {:?}", log.lines()));
        Binary {
            process,
            https,
            http,
            log,
            _reports_dir: reports_dir,
        }
    }

    /// `v8help serve` with `vars` as its only environment settings.
    pub fn serve_env(vars: &[(String, String)]) -> Binary {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Binary::serve(&[OsStr::new("serve")], &vars)
    }

    /// The HTTPS address.
    pub fn addr(&self) -> SocketAddr {
        self.https
    }

    /// Waits until a log line contains `needle`; returns that line.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        self.log.wait_line(needle, limit)
    }

    /// All log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        assert!(self.process.signal(name), "kill -{name} failed");
    }

    /// Waits for the process to exit.
    pub fn wait(mut self) -> ExitStatus {
        self.process.child.wait().unwrap()
    }
}

/// `v8help serve` on the report database `db` (a `--reports-db` value) with plain HTTP on a free port, its spool in `dir`, and
/// `extra` arguments; several start at the same moment, each in a thread of its own.
pub fn serve_replicas(db: &str, dir: &std::path::Path, extra: &[Vec<String>], envs: &[(&str, String)]) -> Vec<Binary> {
    let message = dir.join("message.json");
    if !message.exists() {
        std::fs::write(&message, "{}").unwrap();
    }
    let threads: Vec<_> = extra
        .iter()
        .enumerate()
        .map(|(i, extra)| {
            let mut args: Vec<std::ffi::OsString> = ["serve", "--listen", "127.0.0.1:0", "--http-listen"]
                .iter()
                .map(Into::into)
                .collect();
            args.push(format!("127.0.0.1:{}", super::client::free_port()).into());
            args.extend(["--message".into(), message.clone().into_os_string()]);
            args.extend([
                "--reports-spool".into(),
                dir.join(format!("spool-{i}")).into_os_string(),
            ]);
            args.extend(extra.iter().map(Into::into));
            let mut envs: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            envs.push(("V8HELP_REPORTS_DB".into(), db.to_string()));
            std::thread::spawn(move || {
                let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
                let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                Binary::serve(&args, &envs)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}
