//! The `v8help` binary: parse the command line, set up logging, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = v8help::cli::Cli::parse();
    match v8help::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("v8help: {err:#}");
            ExitCode::from(2)
        }
    }
}
