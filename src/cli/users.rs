//! `v8help users add|remove`: who may log in to the support console.
//!
//! The password is read from the terminal without echo (asked twice), or as one line of
//! standard input when that is not a terminal (`echo "$PW" | v8help users add anna`).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::users::{Users, check_name};

/// `v8help users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a console user, or set a new password for an existing one.
    Add(UserArgs),
    /// Remove a console user; their open sessions stop working at their next request.
    Remove(UserArgs),
}

/// A user name and the users file.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The login name (1–64 bytes, no ':' or spaces).
    pub name: String,
    /// The users file the console reads [default: ./v8help-users].
    #[arg(long, env = "V8HELP_USERS", value_name = "FILE", default_value = "v8help-users")]
    pub users: PathBuf,
}

/// Runs a `users` sub-command; returns the exit code.
pub(super) fn run(cmd: UsersCommand) -> anyhow::Result<u8> {
    match cmd {
        UsersCommand::Add(args) => {
            check_name(&args.name)?;
            let mut users = Users::read(&args.users)?;
            let password = read_password()?;
            let new = users.set(&args.name, &password)?;
            users.write(&args.users)?;
            let what = if new { "added" } else { "password changed for" };
            eprintln!("{what} {} in {}", args.name, args.users.display());
            Ok(0)
        }
        UsersCommand::Remove(args) => {
            let mut users = Users::read(&args.users)?;
            if !users.remove(&args.name) {
                return Err(crate::users::UsersError::NoSuchUser {
                    name: args.name,
                    path: args.users,
                }
                .into());
            }
            users.write(&args.users)?;
            eprintln!("removed {} from {}", args.name, args.users.display());
            Ok(0)
        }
    }
}

/// The new password: typed twice without echo on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let second = rpassword::prompt_password("Repeat: ").context("cannot read the password")?;
        if first != second {
            bail!("the passwords differ; nothing changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on standard input (one line expected)");
    }
    Ok(password.to_string())
}
