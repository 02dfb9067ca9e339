//! `v8help message list`: every base of a messages directory with its state now, until
//! when, and its text — what an admin checks before and after an outage.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::message::ListFormat;
use crate::document::{Document, State};
use crate::messages::name::{self, Entry};
use crate::time::Zone;

/// One row; the field names are the contract with scripts.
#[derive(Debug, Serialize)]
struct Row {
    base: String,
    /// `active`, `scheduled`, `expired`, `none`, or `invalid`.
    state: &'static str,
    /// `expires`, RFC 3339 in the zone asked for.
    until: Option<String>,
    /// `starts`, when the message is scheduled.
    from: Option<String>,
    /// The default text; for an invalid document, why it is invalid.
    text: String,
}

/// Prints the bases of `dir`; exit code 1 when a document is invalid or unreadable.
pub(super) fn run(
    dir: &Path,
    format: ListFormat,
    zone: Zone,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let listing = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
    let mut rows = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
        let file = entry.file_name();
        let Entry::Base(base) = name::classify(&file) else {
            continue;
        };
        if !std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let parsed = std::fs::read(entry.path())
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|bytes| Document::parse(&bytes, zone).map_err(|e| e.to_string()));
        let when = |t: DateTime<chrono::FixedOffset>| zone.at(t.with_timezone(&Utc)).to_rfc3339();
        rows.push(match parsed {
            Ok(doc) => {
                let state = doc.state(now);
                Row {
                    base: base.to_string(),
                    state: state.as_str(),
                    until: doc.expires.map(when),
                    from: doc.starts.filter(|_| state == State::Scheduled).map(when),
                    text: doc.user_message.clone(),
                }
            }
            Err(problem) => Row {
                base: base.to_string(),
                state: "invalid",
                until: None,
                from: None,
                text: problem,
            },
        });
    }
    rows.sort_by(|a, b| a.base.cmp(&b.base));
    match format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)?;
        }
        ListFormat::Table => {
            let mut table = vec![vec!["BASE".to_string(), "STATE".into(), "UNTIL".into(), "TEXT".into()]];
            for row in &rows {
                let until = row
                    .until
                    .as_deref()
                    .and_then(|u| DateTime::parse_from_rfc3339(u).ok())
                    .map_or_else(|| "-".to_string(), |t| t.format("%Y-%m-%d %H:%M %:z").to_string());
                table.push(vec![row.base.clone(), row.state.into(), until, row.text.clone()]);
            }
            let mut text = String::new();
            super::bases::write_table(&mut text, &table);
            out.write_all(text.as_bytes())?;
        }
    }
    let invalid = rows.iter().filter(|r| r.state == "invalid").count();
    if invalid > 0 {
        eprintln!(
            "v8help: {invalid} of {} documents in {} are invalid",
            rows.len(),
            dir.display()
        );
        return Ok(1);
    }
    Ok(0)
}
