//! The `v8help` command line: `serve`, `message …` and `bases …`.
//!
//! `main.rs` parses [`Cli`] and calls [`run`]; everything a sub-command does lives in the
//! library so that tests can drive it without a process.

pub mod bases;

use clap::{Parser, Subcommand};

/// The whole command line, as clap parses it.
#[derive(Debug, Parser)]
#[command(name = "v8help", version, about = "Startup-error help service and base-list tools for 1C:Enterprise-style clients")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One sub-command of `v8help`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit and edit base lists (*.v8i): StartupErrorHelpText and StartupErrorHelpURL.
    #[command(subcommand)]
    Bases(bases::BasesCommand),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Bases(cmd) => Ok(bases::run(cmd)?),
    }
}
