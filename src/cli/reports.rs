//! `v8help reports …`: the error-report store from the command line — list the groups, show
//! a report, export its archive byte-for-byte, purge old reports. Works on the database
//! directly (`--reports-db`, as `serve` takes it), with or without a running service.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use crate::reports::block_on;
use crate::reports::config::{DEFAULT_DB, parse_duration};
use crate::store::{self, GroupQuery, GroupSummary, ReportDetail, ReportId, Store};

/// Where the database is, as `serve` takes it.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// The report database: sqlite:PATH or postgres://USER@HOST/DB.
    #[arg(long, env = "V8HELP_REPORTS_DB", value_name = "ADDRESS", default_value = DEFAULT_DB)]
    pub reports_db: String,
    /// A file whose first line is the PostgreSQL password.
    #[arg(long, env = "V8HELP_REPORTS_DB_PASSWORD_FILE", value_name = "FILE")]
    pub reports_db_password_file: Option<std::path::PathBuf>,
}

/// `v8help reports …`.
#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// List the error groups, latest seen first.
    List {
        /// Only groups seen within this long, e.g. 24h or 7d [default: all].
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Output as a table or as JSON.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// At most this many groups [default: all].
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// The database (`--reports-db`).
        #[command(flatten)]
        db: DbArgs,
    },
    /// Show one report: its fields, its group and the files in its archive.
    Show {
        /// The report's number (from `list --format json` or the console).
        id: ReportId,
        /// Output as text or as JSON.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// The database (`--reports-db`).
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write a report's archive, byte-for-byte as the client sent it.
    Export {
        /// The report's number.
        id: ReportId,
        /// The file to write (`-` for standard output).
        #[arg(short = 'o', long = "output", value_name = "FILE.zip")]
        output: PathBuf,
        /// The database (`--reports-db`).
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove reports and login failures older than a duration, e.g. 30d.
    Purge {
        /// Remove what arrived longer ago than this.
        #[arg(long, value_name = "DURATION")]
        older_than: String,
        /// The database (`--reports-db`).
        #[command(flatten)]
        db: DbArgs,
    },
}

/// How `list` and `show` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (or lines) for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Runs a `reports` sub-command.
pub(super) fn run(cmd: ReportsCommand) -> anyhow::Result<u8> {
    run_at(cmd, Utc::now(), &mut std::io::stdout().lock())
}

fn open(db: &DbArgs) -> anyhow::Result<Arc<dyn Store>> {
    if crate::reports::config::is_postgres(&db.reports_db) {
        let options = store::OpenOptions {
            password_file: db.reports_db_password_file.clone(),
            ..store::OpenOptions::default()
        };
        return Ok(store::open_with(&db.reports_db, &options)?);
    }
    let path = db.reports_db.strip_prefix("sqlite:").unwrap_or(&db.reports_db);
    if !std::path::Path::new(path).exists() {
        bail!("no report database at {path} (--reports-db {})", db.reports_db);
    }
    Ok(store::open(&db.reports_db)?)
}

/// Runs a sub-command as of `now`, printing to `out`.
pub(super) fn run_at(cmd: ReportsCommand, now: DateTime<Utc>, out: &mut dyn std::io::Write) -> anyhow::Result<u8> {
    match cmd {
        ReportsCommand::List {
            since,
            format,
            limit,
            db,
        } => {
            let since = match since {
                Some(s) => {
                    let d = parse_duration(&s).map_err(anyhow::Error::msg).context("--since")?;
                    Some(now - chrono::Duration::from_std(d).context("--since")?)
                }
                None => None,
            };
            let store = open(&db)?;
            let groups = block_on(async move { store.list_groups(GroupQuery { since, limit }).await })??;
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&groups)?)?,
                Format::Table => print_groups(&groups, out)?,
            }
            Ok(0)
        }
        ReportsCommand::Show { id, format, db } => {
            let store = open(&db)?;
            let Some(report) = block_on(async move { store.report(id).await })?? else {
                bail!("no report {id} in {}", db.reports_db);
            };
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
                Format::Table => print_report(&report, out)?,
            }
            Ok(0)
        }
        ReportsCommand::Export { id, output, db } => {
            let store = open(&db)?;
            let Some(archive) = block_on(async move { store.archive(id).await })?? else {
                bail!("no report {id} in {}", db.reports_db);
            };
            if output.as_os_str() == "-" {
                out.write_all(&archive)?;
            } else {
                crate::atomic::replace(&output, &archive)
                    .with_context(|| format!("cannot write {}", output.display()))?;
                eprintln!("report {id}: {} bytes written to {}", archive.len(), output.display());
            }
            Ok(0)
        }
        ReportsCommand::Purge { older_than, db } => {
            let d = parse_duration(&older_than)
                .map_err(anyhow::Error::msg)
                .context("--older-than")?;
            let cutoff = now - chrono::Duration::from_std(d).context("--older-than")?;
            let store = open(&db)?;
            let purged = block_on(async move { store.purge_older_than(cutoff).await })??;
            writeln!(
                out,
                "removed {} reports ({} bytes of archives) and {} login failures received before {}",
                purged.reports,
                purged.bytes,
                purged.login_failures,
                cutoff.to_rfc3339()
            )?;
            Ok(0)
        }
    }
}

/// Cuts `text` to `max` characters on one line.
fn cell(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        one_line.chars().take(max.saturating_sub(1)).chain(['…']).collect()
    }
}

fn print_groups(groups: &[GroupSummary], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let rows: Vec<[String; 8]> = groups
        .iter()
        .map(|g| {
            let config = g
                .configs
                .first()
                .map(|c| format!("{} {}", c.name, c.version).trim().to_string())
                .unwrap_or_default();
            [
                g.key.clone(),
                g.count.to_string(),
                g.users.to_string(),
                g.machines.to_string(),
                g.last_seen.format("%Y-%m-%d %H:%M").to_string(),
                g.mark.as_ref().map_or("", |m| m.state.as_str()).to_string(),
                cell(&config, 30),
                cell(g.title.as_deref().unwrap_or(""), 70),
            ]
        })
        .collect();
    let header = [
        "GROUP",
        "COUNT",
        "USERS",
        "MACHINES",
        "LAST SEEN (UTC)",
        "MARK",
        "CONFIG",
        "ERROR",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>, out: &mut dyn std::io::Write| {
        let mut text = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(c);
            } else {
                text.push_str(c);
                text.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(header.to_vec(), out)?;
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), out)?;
    }
    if rows.is_empty() {
        writeln!(out, "(no reports)")?;
    }
    Ok(())
}

fn print_report(r: &ReportDetail, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let s = &r.summary;
    let f = &s.fields;
    let received = s.received_at.to_rfc3339();
    let size = s.archive_size.to_string();
    let rows: [(&str, Option<&str>); 17] = [
        ("group", Some(&s.group_key)),
        ("received", Some(&received)),
        ("client address", r.client_addr.as_deref()),
        ("report time", f.report_time.as_deref()),
        ("user", f.user_name.as_deref()),
        ("machine", f.client_id.as_deref()),
        ("OS", f.os_version.as_deref()),
        ("application", f.app_name.as_deref()),
        ("platform", f.app_version.as_deref()),
        ("platform type", f.platform_type.as_deref()),
        ("configuration", f.config_name.as_deref()),
        ("config version", f.config_version.as_deref()),
        ("user description", f.user_description.as_deref()),
        ("app stack hash", f.app_stack_hash.as_deref()),
        ("client stack hash", f.client_stack_hash.as_deref()),
        ("server stack hash", f.server_stack_hash.as_deref()),
        ("archive bytes", Some(&size)),
    ];
    writeln!(out, "{:<18} {}", "id", s.id)?;
    for (name, value) in rows {
        if let Some(v) = value {
            writeln!(out, "{name:<18} {}", cell(v, 200))?;
        }
    }
    if let Some(text) = &f.error_text {
        writeln!(out, "error:")?;
        for l in text.lines() {
            writeln!(out, "  {l}")?;
        }
    }
    writeln!(out, "files:")?;
    for file in &r.files {
        writeln!(out, "  {:>10}  {}", file.size, file.name)?;
    }
    Ok(())
}
