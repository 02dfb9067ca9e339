//! The `Connect` string of a base: `File="C:\Bases\x";`, `Srvr="host:1541";Ref="name";`,
//! `ws="https://…";` and whatever else the launcher or an admin put there.
//!
//! Fragments are `name=value` separated by `;`. A value may be double-quoted; inside quotes
//! `""` is a literal quote and `;` belongs to the value. The trailing `;` is optional.
//! Fragments v8help does not know are kept in [`Connect::params`].

use std::borrow::Cow;

use super::syntax::trim_blanks;

/// How the client reaches a base; `connectKind` in JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectKind {
    /// `File=`: a file infobase, a local or UNC path.
    File,
    /// `Srvr=` (with `Ref=`): a client-server infobase.
    Server,
    /// `ws=`: a web server publication.
    Web,
    /// None of the above.
    Unknown,
}

impl ConnectKind {
    /// The name used in JSON output and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectKind::File => "file",
            ConnectKind::Server => "server",
            ConnectKind::Web => "web",
            ConnectKind::Unknown => "unknown",
        }
    }
}

/// One `name=value` fragment of a `Connect` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectParam<'a> {
    /// The fragment name, spaces around it trimmed.
    pub name: &'a str,
    /// The value with quotes removed and `""` turned into `"`; `None` for a fragment
    /// without `=`.
    pub value: Option<Cow<'a, str>>,
    /// The value was written in double quotes.
    pub quoted: bool,
}

/// A parsed `Connect` string. The raw string stays in the file; this is a view of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect<'a> {
    raw: &'a str,
    params: Vec<ConnectParam<'a>>,
    unclosed_quote: bool,
}

impl<'a> Connect<'a> {
    /// Splits a `Connect` value into its fragments. Never fails: an unclosed quote takes the
    /// rest of the string and is reported by [`Connect::unclosed_quote`].
    pub fn parse(raw: &'a str) -> Connect<'a> {
        let mut fragments = Fragments {
            rest: raw,
            unclosed_quote: false,
        };
        let params = fragments.by_ref().collect();
        Connect {
            raw,
            params,
            unclosed_quote: fragments.unclosed_quote,
        }
    }

    /// The kind and whether a quote is left open, without keeping the fragments: what the
    /// reader needs for every base, so it allocates nothing.
    pub(crate) fn scan(raw: &str) -> (ConnectKind, bool) {
        let mut fragments = Fragments {
            rest: raw,
            unclosed_quote: false,
        };
        let mut kind = None;
        for param in fragments.by_ref() {
            kind = kind.or_else(|| kind_of(param.name));
        }
        (kind.unwrap_or(ConnectKind::Unknown), fragments.unclosed_quote)
    }

    /// The string as written in the file.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The value of the first fragment named `name` (ASCII case-insensitive, as the launcher
    /// accepts `File`, `file`, `FILE`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| p.value.as_deref())
    }

    /// A quote was opened and never closed.
    pub fn unclosed_quote(&self) -> bool {
        self.unclosed_quote
    }

    /// File, server or web, decided by the first of `File`, `Srvr`, `ws` present.
    pub fn kind(&self) -> ConnectKind {
        self.params
            .iter()
            .find_map(|p| kind_of(p.name))
            .unwrap_or(ConnectKind::Unknown)
    }

    /// A short human form for tables: the path, `server/infobase`, the URL, or the raw string.
    pub fn describe(&self) -> String {
        match self.kind() {
            ConnectKind::File => self.get("File").unwrap_or_default().to_string(),
            ConnectKind::Server => format!(
                "{}/{}",
                self.get("Srvr").unwrap_or_default(),
                self.get("Ref").unwrap_or_default()
            ),
            ConnectKind::Web => self.get("ws").unwrap_or_default().to_string(),
            ConnectKind::Unknown => self.raw.to_string(),
        }
    }
}

fn kind_of(name: &str) -> Option<ConnectKind> {
    if name.eq_ignore_ascii_case("File") {
        Some(ConnectKind::File)
    } else if name.eq_ignore_ascii_case("Srvr") {
        Some(ConnectKind::Server)
    } else if name.eq_ignore_ascii_case("ws") {
        Some(ConnectKind::Web)
    } else {
        None
    }
}

/// The fragments of a `Connect` string, one at a time.
struct Fragments<'a> {
    rest: &'a str,
    unclosed_quote: bool,
}

impl<'a> Iterator for Fragments<'a> {
    type Item = ConnectParam<'a>;

    fn next(&mut self) -> Option<ConnectParam<'a>> {
        let skip = self
            .rest
            .bytes()
            .position(|b| !matches!(b, b' ' | b'\t' | b';'))
            .unwrap_or(self.rest.len());
        let rest = &self.rest[skip..];
        if rest.is_empty() {
            self.rest = rest;
            return None;
        }
        let stop = memchr::memchr2(b'=', b';', rest.as_bytes()).unwrap_or(rest.len());
        let name = trim_blanks(&rest[..stop]);
        if !rest[stop..].starts_with('=') {
            self.rest = &rest[stop..];
            return Some(ConnectParam {
                name,
                value: None,
                quoted: false,
            });
        }
        let after_eq = &rest[stop + 1..];
        let value_start = after_eq.trim_start_matches([' ', '\t']);
        if let Some(quoted) = value_start.strip_prefix('"') {
            let (value, remainder, closed) = read_quoted(quoted);
            self.unclosed_quote |= !closed;
            // Anything between the closing quote and the next `;` is not part of a value.
            self.rest = memchr::memchr(b';', remainder.as_bytes()).map_or("", |i| &remainder[i..]);
            return Some(ConnectParam {
                name,
                value: Some(value),
                quoted: true,
            });
        }
        let end = memchr::memchr(b';', after_eq.as_bytes()).unwrap_or(after_eq.len());
        self.rest = &after_eq[end..];
        Some(ConnectParam {
            name,
            value: Some(Cow::Borrowed(&after_eq[..end])),
            quoted: false,
        })
    }
}

/// Reads a quoted value starting just after the opening quote. Returns the value, what
/// follows the closing quote, and whether a closing quote was found.
fn read_quoted(s: &str) -> (Cow<'_, str>, &str, bool) {
    let bytes = s.as_bytes();
    let mut owned: Option<String> = None;
    let mut copied_to = 0;
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'"', &bytes[i..]) {
        let quote = i + offset;
        if bytes.get(quote + 1) == Some(&b'"') {
            let buffer = owned.get_or_insert_with(String::new);
            buffer.push_str(&s[copied_to..=quote]);
            copied_to = quote + 2;
            i = quote + 2;
            continue;
        }
        let value = match owned {
            Some(mut buffer) => {
                buffer.push_str(&s[copied_to..quote]);
                Cow::Owned(buffer)
            }
            None => Cow::Borrowed(&s[..quote]),
        };
        return (value, &s[quote + 1..], true);
    }
    let value = match owned {
        Some(mut buffer) => {
            buffer.push_str(&s[copied_to..]);
            Cow::Owned(buffer)
        }
        None => Cow::Borrowed(s),
    };
    (value, "", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_keep_backslashes_and_unc_prefixes() {
        let c = Connect::parse(r#"File="\\fs01\1c\Бухгалтерия";"#);
        assert_eq!(c.kind(), ConnectKind::File);
        assert_eq!(c.get("File"), Some(r"\\fs01\1c\Бухгалтерия"));
    }

    #[test]
    fn server_bases_have_srvr_and_ref_without_trailing_semicolon() {
        let c = Connect::parse(r#"Srvr="srv1c:1541";Ref="buh_2024""#);
        assert_eq!(c.kind(), ConnectKind::Server);
        assert_eq!(c.get("srvr"), Some("srv1c:1541"));
        assert_eq!(c.get("Ref"), Some("buh_2024"));
        assert_eq!(c.describe(), "srv1c:1541/buh_2024");
        assert!(!c.unclosed_quote());
    }

    #[test]
    fn quotes_protect_semicolons_and_double_quotes_escape_a_quote() {
        let c = Connect::parse(r#"File="D:\a;b ""x""\c";Usr="";Extra=1"#);
        assert_eq!(c.get("File"), Some(r#"D:\a;b "x"\c"#));
        assert_eq!(c.get("Usr"), Some(""));
        let names: Vec<_> = c.params.iter().map(|p| p.name).collect();
        assert_eq!(names, ["File", "Usr", "Extra"]);
        assert_eq!(c.get("Extra"), Some("1"));
    }

    #[test]
    fn web_bases_and_unknown_fragments() {
        let c = Connect::parse(r#"ws="https://web.example.com/buh?x=1;y=2";Proxy;"#);
        assert_eq!(c.kind(), ConnectKind::Web);
        assert_eq!(c.get("ws"), Some("https://web.example.com/buh?x=1;y=2"));
        assert_eq!(c.params[1].name, "Proxy");
        assert_eq!(c.params[1].value, None);
        assert_eq!(Connect::parse("Foo=bar").kind(), ConnectKind::Unknown);
    }

    #[test]
    fn an_unclosed_quote_takes_the_rest_and_is_reported() {
        let c = Connect::parse(r#"File="C:\x;Ref=y"#);
        assert!(c.unclosed_quote());
        assert_eq!(Connect::scan(c.raw()), (ConnectKind::File, true));
        assert_eq!(c.get("File"), Some(r"C:\x;Ref=y"));
        assert_eq!(c.get("Ref"), None);
    }
}
