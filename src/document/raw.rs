//! What a JSON value tree loses and the admin wrote: repeated keys (a tree keeps only the
//! last, silently) and the exact text of numbers (a tree keeps an `f64`). Both are read
//! from the document's text in separate passes, after it has parsed as JSON.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{DocumentError, line_of_key, syntax_error};

/// Refuses a key repeated within one object, at any depth, naming it and its lines.
pub(super) fn refuse_duplicate_keys(text: &str) -> Result<(), DocumentError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = NoRepeats {
        path: String::new(),
        found: &found,
    };
    match seed.deserialize(&mut de) {
        Ok(()) => Ok(()),
        Err(err) => match found.into_inner() {
            Some(field) => {
                let first = line_of_key(text, &field).map_or(String::new(), |l| format!(" (first on line {l})"));
                Err(DocumentError::Field {
                    field,
                    line: Some(err.line()),
                    problem: format!("is repeated{first}; only one may be given, or the last would silently win"),
                })
            }
            None => Err(syntax_error(&err, text)),
        },
    }
}

/// The top-level fields of an object document, each as compact JSON text as written.
pub(super) fn top_level_fields(text: &str) -> Result<Vec<(String, String)>, DocumentError> {
    let fields: TopLevel = serde_json::from_str(text).map_err(|e| syntax_error(&e, text))?;
    Ok(fields.0.into_iter().map(|(k, v)| (k, compact(v.get()))).collect())
}

/// `text` (valid JSON) without the whitespace between tokens.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

struct TopLevel(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TopLevel, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopLevel;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push(entry);
                }
                Ok(TopLevel(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// Walks a value; in each object, remembers the keys seen and stops at the first repeat,
/// leaving its dotted path in `found`.
struct NoRepeats<'a> {
    path: String,
    found: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for NoRepeats<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoRepeats<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(NoRepeats {
                path: format!("{}[{i}]", self.path),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                *self.found.borrow_mut() = Some(path);
                return Err(A::Error::custom("a repeated key"));
            }
            map.next_value_seed(NoRepeats {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_strings_and_number_text() {
        assert_eq!(
            compact("{ \"a b\": [1.50, 123456789012345678901234567890],\n \"c\": \"x\\\" y\" }"),
            r#"{"a b":[1.50,123456789012345678901234567890],"c":"x\" y"}"#
        );
    }

    #[test]
    fn a_repeated_key_names_the_field_and_its_lines() {
        let err = refuse_duplicate_keys("{\"userMessage\": \"a\",\n\"x\": 1,\n\"userMessage\": \"b\"}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: field \"userMessage\": is repeated (first on line 1); only one may be given, or the last would silently win"
        );
        let nested = refuse_duplicate_keys(r#"{"t":{"a":[{"k":1,"k":2}]}}"#).unwrap_err();
        assert!(matches!(nested, DocumentError::Field { field, .. } if field == "t.a[0].k"));
        assert!(refuse_duplicate_keys(r#"{"a":{"k":1},"b":{"k":1}}"#).is_ok());
    }
}
