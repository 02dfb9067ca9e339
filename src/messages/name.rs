//! Which files of the messages directory are message documents, and what their base is
//! called: `NAME.json` with NAME of 1 to 64 characters from `[A-Za-z0-9._-]`, compared as
//! written (case-sensitive). A name never starts with `.`: hidden files are the temporary
//! files of atomic saves, editors' swap files and a ConfigMap's `..data` links, and `.` and
//! `..` would be path steps in a URL.

use std::ffi::OsStr;

/// The longest base name, in bytes (all of them ASCII).
pub(crate) const MAX_NAME: usize = 64;

/// Whether `name` may name a base: what `/NAME/` in a request and `--base NAME` accept.
pub(crate) fn is_valid(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What a directory entry is to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry<'a> {
    /// `NAME.json` with a valid NAME: the document of base NAME.
    Base(&'a str),
    /// A hidden file: temporary files of atomic saves (`.erp.json.v8help-….tmp`), editors'
    /// swap files, the ConfigMap's `..data` links. Never logged.
    Hidden,
    /// Anything else (`notes.txt`, `erp.json~`, `bad name.json`): ignored, logged once.
    Other,
}

/// Classifies a directory entry by its file name.
pub(crate) fn classify(file_name: &OsStr) -> Entry<'_> {
    let Some(name) = file_name.to_str() else {
        return Entry::Other;
    };
    if name.starts_with('.') {
        return Entry::Hidden;
    }
    match name.strip_suffix(".json") {
        Some(stem) if is_valid(stem) => Entry::Base(stem),
        _ => Entry::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_ascii_letters_digits_dot_dash_underscore_up_to_64() {
        for good in ["erp", "ERP", "hr-2", "cluster_1.buh", "a", &"x".repeat(64), "a.b"] {
            assert!(is_valid(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "бух",
            "a%2f",
            &"x".repeat(65),
            "a\\b",
            "a:b",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn files_are_bases_hidden_or_other() {
        fn c(s: &str) -> Entry<'_> {
            classify(OsStr::new(s))
        }
        assert_eq!(c("erp.json"), Entry::Base("erp"));
        assert_eq!(c("Erp.json"), Entry::Base("Erp"));
        assert_eq!(c("default.json"), Entry::Base("default"));
        assert_eq!(c(".erp.json.v8help-12-0.tmp"), Entry::Hidden);
        assert_eq!(c("..data"), Entry::Hidden);
        assert_eq!(c("..2026_11_22_10_00_00.000001"), Entry::Hidden);
        assert_eq!(c("...json"), Entry::Hidden);
        assert_eq!(c("erp.json~"), Entry::Other);
        assert_eq!(c("notes.txt"), Entry::Other);
        assert_eq!(c("bad name.json"), Entry::Other);
        assert_eq!(c(".json"), Entry::Hidden);
        assert_eq!(c(&format!("{}.json", "x".repeat(65))), Entry::Other);
    }
}
