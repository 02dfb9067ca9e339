//! `bases set-help --url 'https://help.example.ru/{name}/help'`: one URL per base, with
//! `{name}` and `{id}` filled in percent-encoded, so one command points every base of a
//! list at its own help page.

/// A parsed `--url` value: literal text and the placeholders between it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UrlTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Name,
    Id,
}

/// What one base gives the template.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fill<'a> {
    /// The base's name (its `[section]`).
    pub name: &'a str,
    /// The base's `ID=`, if it has one.
    pub id: Option<&'a str>,
}

impl UrlTemplate {
    /// Parses `text`; `{name}` and `{id}` are the only placeholders, any other `{…}` is an
    /// error naming it.
    pub(super) fn parse(text: &str) -> Result<UrlTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("{text:?}: a '{{' without its '}}'"));
            };
            parts.push(match &rest[open + 1..open + close] {
                "name" => Part::Name,
                "id" => Part::Id,
                other => {
                    return Err(format!(
                        "{text:?}: unknown placeholder {{{other}}}; use {{name}} or {{id}}"
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(UrlTemplate { parts })
    }

    /// Whether the value has placeholders (otherwise every base gets the same URL).
    pub(super) fn is_template(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Text(_)))
    }

    /// The URL for one base; an error when it uses `{id}` and the base has none.
    pub(super) fn fill(&self, base: Fill<'_>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Name => out.push_str(&percent_encode(base.name)),
                Part::Id => match base.id.map(str::trim).filter(|id| !id.is_empty()) {
                    Some(id) => out.push_str(&percent_encode(id)),
                    None => return Err(format!("base {:?} has no ID= for {{id}}", base.name)),
                },
            }
        }
        Ok(out)
    }
}

/// Percent-encodes every byte but the unreserved ones of RFC 3986 (`A-Z a-z 0-9 - . _ ~`),
/// so a name with spaces, slashes or Cyrillic letters stays one path segment.
pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_id_are_filled_percent_encoded() {
        let t = UrlTemplate::parse("https://help.example.ru/{name}/help?id={id}").unwrap();
        assert!(t.is_template());
        let url = t
            .fill(Fill {
                name: "Бухгалтерия / филиал 2",
                id: Some("5b2c0d4e-0000-4000-8000-000000000001"),
            })
            .unwrap();
        assert_eq!(
            url,
            "https://help.example.ru/%D0%91%D1%83%D1%85%D0%B3%D0%B0%D0%BB%D1%82%D0%B5%D1%80%D0%B8%D1%8F%20%2F%20%D1%84%D0%B8%D0%BB%D0%B8%D0%B0%D0%BB%202/help?id=5b2c0d4e-0000-4000-8000-000000000001"
        );
        assert_eq!(
            t.fill(Fill { name: "erp", id: None }).unwrap_err(),
            "base \"erp\" has no ID= for {id}"
        );
    }

    #[test]
    fn plain_urls_and_bad_placeholders() {
        let t = UrlTemplate::parse("https://help.example.ru/help").unwrap();
        assert!(!t.is_template());
        assert_eq!(
            t.fill(Fill { name: "x", id: None }).unwrap(),
            "https://help.example.ru/help"
        );
        assert!(UrlTemplate::parse("https://h/{base}").unwrap_err().contains("{base}"));
        assert!(UrlTemplate::parse("https://h/{name").is_err());
    }
}
