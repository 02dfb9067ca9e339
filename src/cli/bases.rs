//! `v8help bases …`: list, check and set help texts in base lists (`*.v8i`).
//!
//! - `list` prints the bases (and with `--all` the groups) as a table or JSON;
//! - `check` prints every diagnostic as `file:line: severity: message` and exits 1 on errors;
//! - `set-help` sets `StartupErrorHelpText` / `StartupErrorHelpURL` in chosen bases, as a
//!   unified diff with `--dry-run`, otherwise through a backup and an atomic replace.
//!
//! Files are named as the user gave them (paths from a `1CEStart.cfg` are joined to the
//! cfg's folder), so output is stable and can be pasted back into a command.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::url_template::{Fill, UrlTemplate};
use crate::v8i::{
    self, BaseList, Diagnostic, Edited, Entry, EntryKind, HELP_TEXT_KEY, HELP_URL_KEY, OrderInList, SetKey, Severity,
    V8iError,
};

/// The `bases` sub-commands.
#[derive(Debug, Subcommand)]
pub enum BasesCommand {
    /// List the bases of base lists (*.v8i) with their help text and link.
    List(ListArgs),
    /// Audit base lists: duplicates, broken keys and links, bases without help. Exits 1 on
    /// errors.
    Check(CheckArgs),
    /// Set StartupErrorHelpText and/or StartupErrorHelpURL in bases, changing nothing else.
    ///
    /// An existing key is changed in place (every occurrence in the section); a missing one
    /// is added after the section's last key line, with that line's line ending. Before
    /// the file is replaced (atomically, keeping its permissions) the original is saved as
    /// FILE.bak, or FILE.bak.1, FILE.bak.2, … when older backups exist. Nothing is written
    /// if the file changed since it was read, is not UTF-8, or a --only matches no base.
    SetHelp(SetHelpArgs),
}

/// Where the base lists come from.
#[derive(Debug, Args)]
pub struct Sources {
    /// Base lists to read. With neither FILE nor --cfg: the user's own ibases.v8i and the
    /// 1CEStart.cfg beside it (~/.1C/1cestart, or %APPDATA%\1C\1CEStart on Windows).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A 1CEStart.cfg: every list named by its CommonInfoBases= lines is read too
    /// (relative paths from the cfg's folder). Repeatable.
    #[arg(long, value_name = "1CEStart.cfg")]
    pub cfg: Vec<PathBuf>,
}

/// Output format of `bases list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for reading.
    Table,
    /// An array of objects for scripts.
    Json,
}

/// Arguments of `bases list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The lists to read.
    #[command(flatten)]
    pub sources: Sources,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Include groups (sections without Connect), not only bases.
    #[arg(long)]
    pub all: bool,
}

/// Arguments of `bases check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The lists to read.
    #[command(flatten)]
    pub sources: Sources,
}

/// Arguments of `bases set-help`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).multiple(true).args(["text", "url"])))]
pub struct SetHelpArgs {
    /// Base lists to change.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// StartupErrorHelpText: the text shown under the startup error (one line).
    #[arg(long)]
    pub text: Option<String>,
    /// StartupErrorHelpURL: the "Need help" link (http or https; "" for none). `{name}` and
    /// `{id}` are replaced, percent-encoded, by each base's name and ID, so that every base
    /// gets its own page: 'https://help.example.ru/{name}/help'.
    #[arg(long)]
    pub url: Option<String>,
    /// Only bases with this name (case-insensitive, as the platform compares) or ID.
    /// Repeatable; without it every base of the files is changed.
    #[arg(long, value_name = "NAME|ID")]
    pub only: Vec<String>,
    /// Print the unified diff of what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs one `bases` sub-command and returns the exit code: 0 fine, 1 errors found or the
/// change refused.
pub(super) fn run(cmd: BasesCommand) -> anyhow::Result<u8> {
    let mut out = String::new();
    // What was done is printed even when a later step fails (set-help may have written some
    // files before an error).
    let result = match cmd {
        BasesCommand::List(args) => list(&args, &mut out),
        BasesCommand::Check(args) => check(&args, &mut out),
        BasesCommand::SetHelp(args) => set_help(&args, &mut out),
    };
    match io::stdout().lock().write_all(out.as_bytes()) {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(err).context("cannot write to standard output"),
        _ => result,
    }
}

/// A base list read from disk: the name to show, and the bytes as read (kept for the
/// "changed since read" check).
struct Source {
    shown: String,
    path: PathBuf,
    bytes: Vec<u8>,
}

fn read_file(path: &Path) -> Result<Vec<u8>, V8iError> {
    std::fs::read(path).map_err(|source| V8iError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the FILEs, then the lists named by each cfg, once each.
fn load(sources: &Sources) -> anyhow::Result<Vec<Source>> {
    let (files, cfgs) = if sources.files.is_empty() && sources.cfg.is_empty() {
        default_sources()?
    } else {
        (sources.files.clone(), sources.cfg.clone())
    };
    let mut loaded = Vec::new();
    let mut seen = HashSet::new();
    for path in files {
        let bytes = read_file(&path)?;
        push_unique(&mut loaded, &mut seen, path, bytes);
    }
    for cfg in cfgs {
        let parsed = v8i::parse_start_cfg(&read_file(&cfg)?).map_err(|source| V8iError::Cfg {
            path: cfg.clone(),
            source,
        })?;
        for entry in parsed.common_info_bases {
            let resolved = resolve_listed(&cfg, &entry.path);
            let bytes = std::fs::read(&resolved).map_err(|source| V8iError::ListedFile {
                cfg: cfg.clone(),
                line: entry.line,
                entry: entry.path.clone(),
                resolved: resolved.clone(),
                source,
            })?;
            push_unique(&mut loaded, &mut seen, resolved, bytes);
        }
    }
    Ok(loaded)
}

fn push_unique(loaded: &mut Vec<Source>, seen: &mut HashSet<PathBuf>, path: PathBuf, bytes: Vec<u8>) {
    let identity = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    if seen.insert(identity) {
        loaded.push(Source {
            shown: path.display().to_string(),
            path,
            bytes,
        });
    }
}

/// A `CommonInfoBases=` path as a path to open: absolute ones (including UNC `\\server\…`
/// and `C:\…`, which are absolute to the launcher on any system) as they are, relative ones
/// from the cfg's folder.
fn resolve_listed(cfg: &Path, entry: &str) -> PathBuf {
    let bytes = entry.as_bytes();
    let windows_absolute = entry.starts_with("\\\\")
        || (bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && matches!(bytes[2], b'\\' | b'/'));
    let path = Path::new(entry);
    if path.is_absolute() || windows_absolute {
        return path.to_path_buf();
    }
    cfg.parent().unwrap_or(Path::new("")).join(path)
}

/// The user's own list and launcher settings, for a command given no FILE and no --cfg.
fn default_sources() -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let dir = if cfg!(windows) {
        std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join("1C").join("1CEStart"))
    } else {
        std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".1C").join("1cestart"))
    };
    let Some(dir) = dir else {
        anyhow::bail!("no base list given: pass FILE… or --cfg 1CEStart.cfg");
    };
    let list = dir.join("ibases.v8i");
    let cfg = dir.join("1CEStart.cfg");
    let files: Vec<_> = [list].into_iter().filter(|p| p.is_file()).collect();
    let cfgs: Vec<_> = [cfg].into_iter().filter(|p| p.is_file()).collect();
    if files.is_empty() && cfgs.is_empty() {
        anyhow::bail!(
            "no base list given, and no ibases.v8i or 1CEStart.cfg in {}: pass FILE… or --cfg 1CEStart.cfg",
            dir.display()
        );
    }
    Ok((files, cfgs))
}

/// One row of `bases list --format json`; the field names are the contract with scripts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryJson<'a> {
    file: &'a str,
    line: usize,
    name: &'a str,
    kind: &'static str,
    id: Option<&'a str>,
    folder: Option<&'a str>,
    order_in_list: Option<serde_json::Number>,
    connect: Option<&'a str>,
    connect_kind: Option<&'static str>,
    startup_error_help_text: Option<&'a str>,
    startup_error_help_url: Option<&'a str>,
}

impl<'a> EntryJson<'a> {
    fn new(file: &'a str, entry: &Entry<'a>) -> Self {
        EntryJson {
            file,
            line: entry.line,
            name: entry.name,
            kind: entry.kind().as_str(),
            id: entry.id,
            folder: entry.folder,
            order_in_list: entry.order().and_then(|order| match order {
                OrderInList::Integer(n) => Some(n.into()),
                OrderInList::Fractional(x) => serde_json::Number::from_f64(x),
            }),
            connect: entry.connect,
            connect_kind: entry.connect_kind().map(|k| k.as_str()),
            startup_error_help_text: entry.help_text,
            startup_error_help_url: entry.help_url,
        }
    }
}

fn list(args: &ListArgs, out: &mut String) -> anyhow::Result<u8> {
    let sources = load(&args.sources)?;
    let lists: Vec<BaseList<'_>> = sources.iter().map(|s| v8i::parse(&s.bytes)).collect();
    let shown = |entry: &Entry<'_>| args.all || entry.kind() == EntryKind::Base;
    match args.format {
        Format::Json => {
            let rows: Vec<EntryJson<'_>> = sources
                .iter()
                .zip(&lists)
                .flat_map(|(source, list)| {
                    list.entries()
                        .filter(shown)
                        .map(|entry| EntryJson::new(&source.shown, &entry))
                })
                .collect();
            out.push_str(&serde_json::to_string_pretty(&rows)?);
            out.push('\n');
        }
        Format::Table => {
            let mut header = vec!["FILE:LINE"];
            if args.all {
                header.push("KIND");
            }
            header.extend(["NAME", "FOLDER", "CONNECT", "HELP TEXT", "HELP URL"]);
            let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
            for (source, list) in sources.iter().zip(&lists) {
                for entry in list.entries().filter(shown) {
                    let mut row = vec![format!("{}:{}", source.shown, entry.line)];
                    if args.all {
                        row.push(entry.kind().as_str().into());
                    }
                    row.push(entry.name.into());
                    row.push(entry.folder.unwrap_or("").into());
                    row.push(entry.connect_parsed().map(|c| c.describe()).unwrap_or_default());
                    row.push(cell(entry.help_text));
                    row.push(cell(entry.help_url));
                    rows.push(row);
                }
            }
            write_table(out, &rows);
        }
    }
    let errors: usize = lists
        .iter()
        .map(|l| {
            l.diagnostics()
                .iter()
                .filter(|d| d.severity() == Severity::Error)
                .count()
        })
        .sum();
    if errors > 0 {
        eprintln!(
            "v8help: {} in these lists; see `v8help bases check`",
            plural(errors, "error", "errors")
        );
    }
    Ok(0)
}

/// A help value for the table: `-` when absent, `""` when present but empty.
fn cell(value: Option<&str>) -> String {
    match value {
        None => "-".into(),
        Some("") => "\"\"".into(),
        Some(value) => value.into(),
    }
}

/// The widest a table cell gets, in characters; longer values end in `…` (JSON has them
/// whole).
const MAX_CELL: usize = 48;

/// Writes rows as columns two spaces apart, the first row being the header. Control
/// characters become spaces so a value cannot break the layout.
pub(super) fn write_table(out: &mut String, rows: &[Vec<String>]) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| {
                    let clean: String = cell.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
                    if clean.chars().count() > MAX_CELL {
                        let mut cut: String = clean.chars().take(MAX_CELL - 1).collect();
                        cut.push('…');
                        cut
                    } else {
                        clean
                    }
                })
                .collect()
        })
        .collect();
    let columns = cells.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| cells.iter().map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == columns {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                let _ = write!(line, "{cell}{:pad$}  ", "");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn check(args: &CheckArgs, out: &mut String) -> anyhow::Result<u8> {
    let sources = load(&args.sources)?;
    let lists: Vec<BaseList<'_>> = sources.iter().map(|s| v8i::parse(&s.bytes)).collect();
    let mut found: Vec<(usize, &Diagnostic)> = lists
        .iter()
        .enumerate()
        .flat_map(|(i, list)| list.diagnostics().iter().map(move |d| (i, d)))
        .collect();
    let named: Vec<(&str, &BaseList<'_>)> = sources.iter().map(|s| s.shown.as_str()).zip(&lists).collect();
    let across = v8i::cross_check(&named);
    found.extend(across.iter().map(|(i, d)| (*i, d)));
    found.sort_by_key(|(i, d)| (*i, d.line));

    for (i, diagnostic) in &found {
        let _ = writeln!(
            out,
            "{}:{}: {}: {}",
            sources[*i].shown,
            diagnostic.line,
            diagnostic.severity(),
            diagnostic.finding
        );
    }
    let errors = found.iter().filter(|(_, d)| d.severity() == Severity::Error).count();
    let warnings = found.len() - errors;
    let bases: usize = lists
        .iter()
        .map(|l| l.entries().filter(|e| e.kind() == EntryKind::Base).count())
        .sum();
    let _ = writeln!(
        out,
        "{}, {} in {} ({})",
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings"),
        plural(sources.len(), "file", "files"),
        plural(bases, "base", "bases"),
    );
    Ok(if errors > 0 { 1 } else { 0 })
}

/// Whether `entry` is one the user picked with `--only` (by name, ignoring case as the
/// platform does, or by ID).
fn selected_by(selector: &str, entry: &Entry<'_>) -> bool {
    v8i::names_equal(entry.name, selector)
        || entry
            .id
            .is_some_and(|id| !id.trim().is_empty() && id.trim().eq_ignore_ascii_case(selector.trim()))
}

fn set_help(args: &SetHelpArgs, out: &mut String) -> anyhow::Result<u8> {
    let template = match args.url.as_deref().map(UrlTemplate::parse).transpose() {
        Ok(template) => template,
        Err(problem) => {
            eprintln!("v8help: --url {problem}; nothing written");
            return Ok(1);
        }
    };
    if let Some(url) = args
        .url
        .as_deref()
        .filter(|u| !u.is_empty() && !v8i::is_http_url(u) && !template.as_ref().is_some_and(UrlTemplate::is_template))
    {
        eprintln!("v8help: --url {url:?} is not an http(s) URL; nothing written");
        return Ok(1);
    }
    let sources = load(&Sources {
        files: args.files.clone(),
        cfg: Vec::new(),
    })?;
    let lists: Vec<BaseList<'_>> = sources.iter().map(|s| v8i::parse(&s.bytes)).collect();

    let mut matched = vec![false; args.only.len()];
    let mut edits: Vec<Edited> = Vec::with_capacity(lists.len());
    let mut refusals = Vec::new();
    for (source, list) in sources.iter().zip(&lists) {
        let mut picked_entries = Vec::new();
        for entry in list.entries().filter(|e| e.kind() == EntryKind::Base) {
            let mut picked = args.only.is_empty();
            for (i, selector) in args.only.iter().enumerate() {
                if selected_by(selector, &entry) {
                    matched[i] = true;
                    picked = true;
                }
            }
            if picked {
                picked_entries.push(entry);
            }
        }
        // Each base's own URL, when --url has {name} or {id}.
        let mut urls: Vec<String> = Vec::with_capacity(picked_entries.len());
        if let Some(template) = &template {
            for entry in &picked_entries {
                match template.fill(Fill {
                    name: entry.name,
                    id: entry.id,
                }) {
                    Ok(url) if url.is_empty() || v8i::is_http_url(&url) => urls.push(url),
                    Ok(url) => {
                        refusals.push(format!(
                            "{}:{}: --url gives {url:?}, not an http(s) URL",
                            source.shown, entry.line
                        ));
                        urls.push(url);
                    }
                    Err(problem) => {
                        refusals.push(format!("{}:{}: --url: {problem}", source.shown, entry.line));
                        urls.push(String::new());
                    }
                }
            }
        }
        let mut sets = Vec::new();
        for (i, entry) in picked_entries.iter().enumerate() {
            if let Some(text) = &args.text {
                sets.push(SetKey {
                    section: entry.section,
                    key: HELP_TEXT_KEY,
                    value: text,
                });
            }
            if let Some(url) = urls.get(i) {
                sets.push(SetKey {
                    section: entry.section,
                    key: HELP_URL_KEY,
                    value: url,
                });
            }
        }
        match v8i::apply(list, &sets) {
            Ok(edited) => edits.push(edited),
            Err(source_err) => refusals.push(format!("{}: {source_err}", source.shown)),
        }
    }
    for (selector, _) in args.only.iter().zip(&matched).filter(|(_, m)| !**m) {
        refusals.push(format!("--only {selector:?} matches no base in the given files"));
    }
    if !refusals.is_empty() {
        for refusal in refusals {
            eprintln!("v8help: {refusal}");
        }
        eprintln!("v8help: nothing written");
        return Ok(1);
    }

    let changed_files = edits.iter().filter(|e| !e.changes.is_empty()).count();
    let changed_lines: usize = edits.iter().map(|e| e.changes.len()).sum();
    if args.dry_run {
        for (source, edited) in sources.iter().zip(&edits).filter(|(_, e)| !e.changes.is_empty()) {
            let old = String::from_utf8_lossy(&source.bytes);
            let new = String::from_utf8_lossy(&edited.bytes);
            let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref());
            let _ = write!(
                out,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&source.shown, &source.shown)
            );
        }
        eprintln!(
            "v8help: dry run: {} in {} of {} would change; nothing written",
            plural(changed_lines, "line", "lines"),
            plural(changed_files, "file", "files"),
            sources.len()
        );
        return Ok(0);
    }

    let mut code = 0;
    let (mut written_lines, mut written_files) = (0, 0);
    for (source, edited) in sources.iter().zip(&edits) {
        if edited.changes.is_empty() {
            let _ = writeln!(out, "{}: already up to date", source.shown);
            continue;
        }
        let backup = match v8i::replace_file(&source.path, &source.bytes, &edited.bytes) {
            Ok(backup) => backup,
            Err(err @ V8iError::ChangedSinceRead { .. }) => {
                eprintln!("v8help: {err}");
                code = 1;
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        for change in &edited.changes {
            let what = match &change.old {
                None => format!("added {:?}", change.new),
                Some(old) => format!("changed {old:?} to {:?}", change.new),
            };
            let _ = writeln!(
                out,
                "{}:{}: [{}] {}: {what}",
                source.shown, change.line, change.section_name, change.key
            );
        }
        let _ = writeln!(out, "{}: backup in {}", source.shown, backup.display());
        written_lines += edited.changes.len();
        written_files += 1;
    }
    let _ = writeln!(
        out,
        "{} changed in {}",
        plural(written_lines, "line", "lines"),
        plural(written_files, "file", "files")
    );
    Ok(code)
}
