//! `v8help bases …`: list, check and set help texts in base lists.

use clap::Subcommand;

/// The `bases` sub-commands.
#[derive(Debug, Subcommand)]
pub enum BasesCommand {
    /// List the bases of one or more base lists.
    List,
}

/// Runs one `bases` sub-command and returns the exit code.
pub fn run(_cmd: BasesCommand) -> anyhow::Result<u8> {
    anyhow::bail!("bases commands are not built yet")
}
