//! The `v8help` binary: parse the command line, set up logging, run, map errors to exit codes.

use std::process::ExitCode;

/// mimalloc instead of glibc malloc: after a burst of thousands of connections it hands the
/// freed memory back to the system within milliseconds, where glibc's per-thread arenas keep
/// it (bench/compare.sh: RSS after the run).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = v8help::cli::Cli::parse();
    let filter = EnvFilter::try_from_env("V8HELP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: never escape codes in the journal or a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match cli.log_format {
        v8help::cli::LogFormat::Text => logs.init(),
        v8help::cli::LogFormat::Json => logs.json().init(),
    }
    match v8help::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("v8help: {err:#}");
            ExitCode::from(2)
        }
    }
}
