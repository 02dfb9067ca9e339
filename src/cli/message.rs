//! `v8help message …`: check, show, set and clear the message document — the admin's tools
//! for writing the file without hand-editing JSON during an outage. `--base NAME` works on
//! a base's document in the messages directory instead; `list` lists them all.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use crate::atomic;
use crate::document::{Document, State};
use crate::snapshot::Snapshot;
use crate::time::{Zone, parse_when};

/// The `message` sub-commands.
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Validate a message document; exit 1 with the error (line, column or field) if invalid.
    Check {
        /// The document, as `--file` names it (kept for scripts that give it so).
        #[arg(conflicts_with = "base", value_name = "PATH")]
        path: Option<PathBuf>,
        /// Which document.
        #[command(flatten)]
        document: DocumentArg,
        /// The zone for local date-times in the document (`--tz`).
        #[command(flatten)]
        zone: ZoneArg,
    },
    /// Print what clients receive now (or at --at), for a language.
    Show {
        /// The document, as `--file` names it (kept for scripts that give it so).
        #[arg(conflicts_with = "base", value_name = "PATH")]
        path: Option<PathBuf>,
        /// Which document.
        #[command(flatten)]
        document: DocumentArg,
        /// Language tag, as ?lang= would choose it.
        #[arg(long, value_name = "TAG")]
        lang: Option<String>,
        /// The moment to show (RFC 3339, local date-time, HH:MM or +2h) [default: now].
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The zone for local date-times in the document (`--tz`).
        #[command(flatten)]
        zone: ZoneArg,
    },
    /// Write a message (atomically; unknown fields of the existing file are kept).
    Set(SetArgs),
    /// Take the message down: atomically write `{}`.
    Clear {
        /// Which document.
        #[command(flatten)]
        document: DocumentArg,
    },
    /// List the bases of a messages directory: base, state, until, text. Exits 1 if a
    /// document is invalid.
    List {
        /// The messages directory (`--messages` of `serve`).
        #[arg(long, value_name = "DIR", env = "V8HELP_MESSAGES")]
        messages: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// The zone for local date-times in the documents (`--tz`).
        #[command(flatten)]
        zone: ZoneArg,
    },
}

/// Which document a `message` sub-command works on, the same way for all of them:
/// `--file PATH` (or `V8HELP_MESSAGE`, as `serve` takes it), or `--base NAME` of a messages
/// directory; `message.json` when neither is given.
#[derive(Debug, Args)]
pub struct DocumentArg {
    /// The document [default: message.json].
    #[arg(long, value_name = "PATH", env = "V8HELP_MESSAGE", conflicts_with = "base")]
    pub file: Option<PathBuf>,
    /// Or a base's document in the messages directory.
    #[command(flatten)]
    pub base: BaseArg,
}

impl DocumentArg {
    /// The document's path; `positional` is check's and show's `PATH`, which wins over
    /// `--file` and the variable.
    fn path(&self, positional: Option<PathBuf>) -> anyhow::Result<PathBuf> {
        Ok(self
            .base
            .path()?
            .or(positional)
            .or_else(|| self.file.clone())
            .unwrap_or_else(default_path))
    }
}

/// `--base NAME [--messages DIR]`: the document `DIR/NAME.json` of one base.
#[derive(Debug, Args)]
pub struct BaseArg {
    /// The base whose document to use: DIR/NAME.json of the messages directory.
    #[arg(long, value_name = "NAME")]
    pub base: Option<String>,
    /// The messages directory (`--messages` of `serve`).
    #[arg(long, value_name = "DIR", env = "V8HELP_MESSAGES")]
    pub messages: Option<PathBuf>,
}

impl BaseArg {
    /// `DIR/NAME.json` when `--base` is given.
    fn path(&self) -> anyhow::Result<Option<PathBuf>> {
        let Some(base) = &self.base else {
            return Ok(None);
        };
        if !crate::messages::name::is_valid(base) {
            anyhow::bail!(
                "--base {base:?}: a base name is 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
            );
        }
        let Some(dir) = &self.messages else {
            anyhow::bail!("--base {base}: which messages directory? Give --messages DIR (or V8HELP_MESSAGES)");
        };
        Ok(Some(dir.join(format!("{base}.json"))))
    }
}

/// Output format of `message list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for reading.
    Table,
    /// An array of objects for scripts.
    Json,
}

/// `--tz`, shared by the sub-commands that read times.
#[derive(Debug, Args)]
pub struct ZoneArg {
    /// Time zone for local date-times and HH:MM, an IANA name [default: the system's].
    #[arg(long, env = "V8HELP_TZ", value_name = "ZONE")]
    pub tz: Option<String>,
}

/// `v8help message set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The default text (shown when no --lang text fits the client's language).
    pub text: String,
    /// Until when: RFC 3339, a local date-time, HH:MM (today, or tomorrow if past), or +2h / +30m.
    #[arg(long, value_name = "WHEN")]
    pub until: String,
    /// From when (planned maintenance), in the same forms; without it the message is live at once.
    #[arg(long, value_name = "WHEN")]
    pub from: Option<String>,
    /// A text for one language: --lang kk "…" (repeatable). Replaces all earlier translations.
    #[arg(long, num_args = 2, value_names = ["TAG", "TEXT"], action = clap::ArgAction::Append)]
    pub lang: Vec<String>,
    /// The "Need help" link (kept from the existing file when not given).
    #[arg(long, value_name = "URL")]
    pub help_url: Option<String>,
    /// Which document.
    #[command(flatten)]
    pub document: DocumentArg,
    /// The zone for local date-times and HH:MM in `--until` and `--from` (`--tz`).
    #[command(flatten)]
    pub zone: ZoneArg,
}

/// Runs one `message` sub-command; returns the exit code (1: the document is invalid or
/// would be).
pub(super) fn run(cmd: MessageCommand) -> anyhow::Result<u8> {
    let now = Utc::now();
    let mut out = std::io::stdout().lock();
    match cmd {
        MessageCommand::Check { path, document, zone } => {
            let path = document.path(path)?;
            let zone = zone.resolve()?;
            match load(&path, zone) {
                Ok(doc) => {
                    writeln!(out, "{}: valid; {}", path.display(), describe(&doc, now, zone))?;
                    Ok(0)
                }
                Err(invalid @ LoadError::Invalid { .. }) => {
                    eprintln!("{invalid}");
                    Ok(1)
                }
                Err(unreadable) => Err(unreadable.into()),
            }
        }
        MessageCommand::Show {
            path,
            document,
            lang,
            at,
            zone,
        } => {
            let path = document.path(path)?;
            let zone = zone.resolve()?;
            let at = match at {
                Some(at) => parse_when(&at, now, zone)?.at.with_timezone(&Utc),
                None => now,
            };
            let doc = match load(&path, zone) {
                Ok(doc) => doc,
                Err(invalid @ LoadError::Invalid { .. }) => {
                    eprintln!("{invalid}");
                    return Ok(1);
                }
                Err(unreadable) => return Err(unreadable.into()),
            };
            let summary = describe(&doc, at, zone);
            let snapshot = Snapshot::new(doc);
            let choice = snapshot.choose(at, lang.as_deref(), None);
            out.write_all(&choice.rendered.body)?;
            writeln!(out)?;
            eprintln!(
                "{} at {}: {summary}",
                path.display(),
                zone.at(at).to_rfc3339_opts(SecondsFormat::Secs, true)
            );
            Ok(0)
        }
        MessageCommand::Set(args) => set(args, now, &mut out),
        MessageCommand::List { messages, format, zone } => {
            super::message_list::run(&messages, format, zone.resolve()?, now, &mut out)
        }
        MessageCommand::Clear { document } => {
            let path = document.path(None)?;
            atomic::replace(&path, b"{}\n").map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            writeln!(
                out,
                "{}: cleared; clients now get {{\"userMessage\": \"\"}}",
                path.display()
            )?;
            Ok(0)
        }
    }
}

fn set(args: SetArgs, now: DateTime<Utc>, out: &mut impl Write) -> anyhow::Result<u8> {
    let path = args.document.path(None)?;
    let zone = args.zone.resolve()?;
    let mut fields: Map<String, Value> = match std::fs::read(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) | Err(_) => {
                let problem = match Document::parse(&bytes, zone) {
                    Err(e) => format!("{}: {e}", path.display()),
                    Ok(_) => format!("{}: not a JSON object", path.display()),
                };
                eprintln!("{problem}\nrefusing to overwrite it: fix it, or run `v8help message clear` first");
                return Ok(1);
            }
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(err) => anyhow::bail!("cannot read {}: {err}", path.display()),
    };

    let until = parse_when(&args.until, now, zone)?;
    let from = args.from.as_deref().map(|f| parse_when(f, now, zone)).transpose()?;
    fields.insert("userMessage".into(), Value::String(args.text.clone()));
    fields.insert(
        "expires".into(),
        Value::String(until.at.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    match &from {
        Some(from) => fields.insert(
            "starts".into(),
            Value::String(from.at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ),
        None => fields.remove("starts"),
    };
    if args.lang.is_empty() {
        fields.remove("userMessages");
    } else {
        let translations: Map<String, Value> = args
            .lang
            .chunks(2)
            .map(|pair| (pair[0].clone(), Value::String(pair.get(1).cloned().unwrap_or_default())))
            .collect();
        fields.insert("userMessages".into(), Value::Object(translations));
    }
    if let Some(url) = &args.help_url {
        fields.insert("helpUrl".into(), Value::String(url.clone()));
    }

    let mut bytes = serde_json::to_vec_pretty(&Value::Object(fields.clone()))?;
    bytes.push(b'\n');
    let doc = match Document::parse(&bytes, zone) {
        Ok(doc) => doc,
        Err(err) => {
            eprintln!("refusing to write {}: {err}", path.display());
            return Ok(1);
        }
    };
    if doc.state(now) == State::Expired {
        eprintln!(
            "refusing to write {}: --until {} is already past",
            path.display(),
            until.at.to_rfc3339()
        );
        return Ok(1);
    }
    atomic::replace(&path, &bytes).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    if let Some(day) = until.day {
        writeln!(
            out,
            "--until {}: {day}, {}",
            args.until,
            until.at.format("%Y-%m-%d %H:%M %:z")
        )?;
    }
    if let Some(day) = from.as_ref().and_then(|f| f.day) {
        writeln!(out, "--from {}: {day}", args.from.as_deref().unwrap_or_default())?;
    }
    writeln!(out, "{}: written; {}", path.display(), describe(&doc, now, zone))?;
    Ok(0)
}

impl ZoneArg {
    pub(super) fn resolve(&self) -> anyhow::Result<Zone> {
        Ok(match &self.tz {
            Some(name) => name.parse()?,
            None => Zone::system().0,
        })
    }
}

fn default_path() -> PathBuf {
    std::env::var_os("V8HELP_MESSAGE").map_or_else(|| PathBuf::from("message.json"), PathBuf::from)
}

/// Why `message check` or `message show` cannot use a document.
#[derive(Debug, thiserror::Error)]
pub(super) enum LoadError {
    /// The file cannot be read: a start-up style failure (exit code 2).
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    /// The file was read but is not a valid document: the answer of `check` (exit code 1).
    #[error("{}: {cause}", path.display())]
    Invalid {
        path: PathBuf,
        /// Where and why it is invalid (line, column or field).
        cause: crate::document::DocumentError,
    },
}

/// The document at `path`, read with local date-times in `zone`.
fn load(path: &Path, zone: Zone) -> Result<Document, LoadError> {
    let bytes = std::fs::read(path).map_err(|cause| LoadError::Read {
        path: path.into(),
        cause,
    })?;
    Document::parse(&bytes, zone).map_err(|cause| LoadError::Invalid {
        path: path.into(),
        cause,
    })
}

/// One line on what clients get: "active until 2026-11-22 14:00 +03:00; languages kk, lv".
pub(super) fn describe(doc: &Document, now: DateTime<Utc>, zone: Zone) -> String {
    let when =
        |t: DateTime<chrono::FixedOffset>| zone.at(t.with_timezone(&Utc)).format("%Y-%m-%d %H:%M %:z").to_string();
    let mut s = match doc.state(now) {
        State::None => "no message (clients get an empty userMessage)".to_string(),
        State::Scheduled => format!("scheduled from {}", doc.starts.map(when).unwrap_or_default()),
        State::Active => "active".to_string(),
        State::Expired => format!("expired at {}", doc.expires.map(when).unwrap_or_default()),
    };
    if matches!(doc.state(now), State::Active | State::Scheduled) {
        match doc.expires {
            Some(e) => s.push_str(&format!(" until {}", when(e))),
            None => s.push_str(" with no expiry"),
        }
    }
    if !doc.translations.is_empty() {
        let tags: Vec<&str> = doc.translations.iter().map(|(t, _)| t.as_str()).collect();
        s.push_str(&format!("; languages {}", tags.join(", ")));
    }
    s
}
