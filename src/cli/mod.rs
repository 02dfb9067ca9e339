//! The `v8help` command line: `serve`, `message …`, `bases …`, `reports …` and `users …`.
//!
//! `main.rs` parses [`Cli`] and calls [`run`]; everything a sub-command does lives in the
//! library so that tests can drive it without a process.

mod bases;
mod message;
mod message_list;
mod reports;
mod url_template;
mod users;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::sync::Notify;

use crate::config::{ServeArgs, ServeConfig};
use crate::service::Service;

/// The whole command line, as clap parses it.
#[derive(Debug, Parser)]
#[command(
    name = "v8help",
    version,
    about = "Startup-error help service and base-list tools for 1C:Enterprise-style clients"
)]
pub struct Cli {
    /// Log lines as human-readable text or as one JSON object per line (for log collectors).
    #[arg(long, global = true, env = "V8HELP_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// What to do: serve, or work on the message document or base lists.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal or the journal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// One sub-command of `v8help`.
// `serve`'s flags make its variant large; the value is parsed once per process.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the message over HTTPS (and optionally plain HTTP) and reload it on every save.
    Serve(ServeArgs),
    /// Check, show, set or clear the message document.
    #[command(subcommand)]
    Message(message::MessageCommand),
    /// Audit and edit base lists (*.v8i): StartupErrorHelpText and StartupErrorHelpURL.
    #[command(subcommand)]
    Bases(bases::BasesCommand),
    /// Error reports in the store: list groups, show a report, export its archive, purge.
    #[command(subcommand)]
    Reports(reports::ReportsCommand),
    /// Add or remove users of the support console (`--admin-listen`).
    #[command(subcommand)]
    Users(users::UsersCommand),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Message(cmd) => message::run(cmd),
        Command::Bases(cmd) => bases::run(cmd),
        Command::Reports(cmd) => reports::run(cmd),
        Command::Users(cmd) => users::run(cmd),
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<u8> {
    let config = ServeConfig::resolve(args)?;
    // The workers run their own runtimes (see server::run); this one only watches files and
    // handles signals.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let served = runtime.block_on(async move {
        if let Some(warning) = &config.zone_warning {
            tracing::warn!("{warning}");
        }
        let summary = format!(
            "message {} (zone {}), max-age ≤ {} s",
            config.message.display(),
            config.zone,
            config.max_age
        );
        let console_config = config.console.clone();
        let grace = config.shutdown_timeout;
        let server = Service::bind(config)?;
        let console = match (console_config, server.reports()) {
            (Some(c), Some(reports)) => {
                let (listener, console) = crate::console::bind(&c, server.certificate(), reports)?;
                console.show_health(server.health_report());
                Some((listener, console))
            }
            _ => None,
        };
        if let Some(fingerprint) = &server.self_signed_fingerprint {
            tracing::warn!(
                "no --cert/--key given: serving an in-memory SELF-SIGNED certificate for localhost and 127.0.0.1; \
                 clients will not trust it. SHA-256 fingerprint {fingerprint}"
            );
        }
        // Signal handlers before the "listening" line: whoever waits for that line may signal
        // at once, and an unhandled SIGHUP would end the process.
        let reload = Arc::new(Notify::new());
        crate::platform::on_hangup(reload.clone())?;
        let signal = crate::platform::shutdown_signal()?;
        match server.http_addr() {
            Some(http) => tracing::info!(
                "v8help listening on https://{} and http://{http}; {summary}",
                server.https_addr()
            ),
            None => tracing::info!("v8help listening on https://{}; {summary}", server.https_addr()),
        }
        // One signal stops the public listeners and the console together.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let console = console.map(|(listener, console)| {
            if let Some(addr) = listener.addr() {
                tracing::info!("v8help support console on https://{addr}/ (not on the public listeners)");
            }
            tokio::spawn(listener.run(console, grace, until_stopped(stopped.clone())))
        });
        server.run(reload, until_stopped(stopped)).await;
        if let Some(console) = console {
            let _ = console.await;
        }
        tracing::info!("v8help stopped");
        Ok(0)
    });
    // A file read stuck in a hung mount must not hold the exit: its thread is left behind.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    served
}
