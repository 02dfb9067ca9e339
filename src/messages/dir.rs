//! The directory side of [`Messages`]: listing it, reading one file into its base, dropping
//! a base whose file stayed deleted, and re-checking every file by its metadata.
//!
//! Every function here runs under the writer lock of [`Messages`], so the map is changed by
//! one caller at a time; readers never wait for it.

use crate::platform::FileStamp;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::name::{self, Entry};
use super::{Map, Messages};
use crate::time::Zone;
use crate::watch::{LiveMessage, Now, Reload};

/// What the watcher remembers about the files: the metadata of each document when it was
/// last read (a re-check reads only files whose metadata changed), and the names already
/// logged as ignored.
#[derive(Debug, Default)]
pub(super) struct Files {
    stamps: HashMap<Box<str>, FileStamp>,
    ignored: HashSet<OsString>,
    /// The directory could not be listed at the last re-check (logged once until it can).
    unlisted: bool,
    /// It can be listed again since: the watcher should be set up anew.
    pub(super) relisted: bool,
}

/// What [`Messages::refresh`] did.
#[derive(Debug, Clone)]
pub enum Refreshed {
    /// The file is new: its base is served from now on (`Reload::Failed` if it is invalid;
    /// the base then serves no message until the file is valid).
    Added(Reload),
    /// The base's file was read again.
    Reloaded(Reload),
    /// The file is missing; its base, if any, is still served.
    Missing,
    /// The name is not a regular file (a directory called `x.json`): ignored.
    NotAFile,
}

impl Refreshed {
    /// Whether the file may have been caught half-written (or emptied), so that it should
    /// be read again shortly without waiting for an event.
    pub(crate) fn needs_settling(&self) -> bool {
        match self {
            Refreshed::Added(outcome) => matches!(outcome, Reload::Failed(_)),
            Refreshed::Reloaded(outcome) => outcome.needs_settling(),
            Refreshed::Missing | Refreshed::NotAFile => false,
        }
    }
}

fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

impl Files {
    /// Logs an ignored directory entry, once per name.
    pub(super) fn ignore(&mut self, dir: &Path, file: &OsString, why: &str) {
        if self.ignored.insert(file.clone()) {
            tracing::warn!(
                dir = %dir.display(),
                file = %file.to_string_lossy(),
                "ignored in the messages directory: {why}"
            );
        }
    }
}

/// Reads every document of `dir` (at start-up).
pub(super) fn load_all(dir: &Path, zone: Zone, files: &mut Files, now: Now) -> std::io::Result<Map> {
    let mut map = Map::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let file = entry.file_name();
        match name::classify(&file) {
            Entry::Hidden => {}
            Entry::Other => files.ignore(dir, &file, NOT_A_DOCUMENT),
            Entry::Base(base) => {
                let path = entry.path();
                match std::fs::metadata(&path) {
                    Ok(meta) if !meta.is_file() => files.ignore(dir, &file, "not a regular file"),
                    meta => {
                        if let Ok(meta) = meta {
                            files.stamps.insert(base.into(), FileStamp::of(&meta));
                        }
                        map.insert(base.into(), LiveMessage::load_quietly(path, zone, now));
                    }
                }
            }
        }
    }
    Ok(map)
}

pub(super) const NOT_A_DOCUMENT: &str = "not NAME.json with NAME of 1-64 letters, digits, '.', '_' or '-'";

pub(super) fn refresh(messages: &Messages, files: &mut Files, base: &str, now: Now) -> Refreshed {
    let path = path_of(&messages.dir, base);
    let current = messages.bases.load().get(base).cloned();
    match std::fs::metadata(&path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(live) = current {
                live.reload(false, now); // notes the file as missing in its status
            }
            Refreshed::Missing
        }
        Ok(meta) if !meta.is_file() => {
            files.ignore(
                &messages.dir,
                &OsString::from(format!("{base}.json")),
                "not a regular file",
            );
            Refreshed::NotAFile
        }
        meta => {
            match meta {
                Ok(meta) => files.stamps.insert(base.into(), FileStamp::of(&meta)),
                Err(_) => files.stamps.remove(base),
            };
            match current {
                Some(live) => Refreshed::Reloaded(live.reload(false, now)),
                None => {
                    let live = LiveMessage::load(path, messages.zone, now);
                    let outcome = live.first_outcome();
                    tracing::info!(base, "base added: now served at /{base}/");
                    let mut map = Map::clone(&messages.bases.load());
                    map.insert(base.into(), live);
                    messages.bases.store(Arc::new(map));
                    Refreshed::Added(outcome)
                }
            }
        }
    }
}

pub(super) fn drop_if_gone(messages: &Messages, files: &mut Files, base: &str) -> bool {
    if !messages.bases.load().contains_key(base) {
        return false;
    }
    let gone = match std::fs::metadata(path_of(&messages.dir, base)) {
        Err(err) => err.kind() == std::io::ErrorKind::NotFound,
        Ok(meta) => !meta.is_file(),
    };
    if gone {
        let mut map = Map::clone(&messages.bases.load());
        map.remove(base);
        messages.bases.store(Arc::new(map));
        files.stamps.remove(base);
        tracing::warn!(base, "base removed: its file stayed deleted; /{base}/ now answers 404");
    }
    gone
}

pub(super) fn rescan(messages: &Messages, files: &mut Files, now: Now) -> Vec<String> {
    let listing = match std::fs::read_dir(&messages.dir) {
        Ok(listing) => {
            if std::mem::take(&mut files.unlisted) {
                tracing::info!(dir = %messages.dir.display(), "the messages directory can be listed again");
                files.relisted = true;
            }
            listing
        }
        Err(err) => {
            // A mount that is away for a moment: every base keeps its last good version.
            if !std::mem::replace(&mut files.unlisted, true) {
                tracing::error!(
                    dir = %messages.dir.display(),
                    "cannot list the messages directory: {err}; every base keeps its last good version"
                );
            }
            return Vec::new();
        }
    };
    let mut seen: HashSet<String> = HashSet::new();
    for entry in listing {
        let Ok(entry) = entry else { continue };
        let file = entry.file_name();
        match name::classify(&file) {
            Entry::Hidden => {}
            Entry::Other => files.ignore(&messages.dir, &file, NOT_A_DOCUMENT),
            Entry::Base(base) => {
                seen.insert(base.to_string());
                let known = messages.bases.load().contains_key(base);
                let same = std::fs::metadata(entry.path())
                    .ok()
                    .is_some_and(|meta| files.stamps.get(base) == Some(&FileStamp::of(&meta)));
                if !known || !same {
                    refresh(messages, files, base, now);
                }
            }
        }
    }
    let missing: Vec<String> = messages
        .bases
        .load()
        .keys()
        .filter(|k| !seen.contains(&***k))
        .map(|k| k.to_string())
        .collect();
    for base in &missing {
        refresh(messages, files, base, now);
    }
    missing
}
