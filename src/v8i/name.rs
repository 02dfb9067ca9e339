//! When two base names are the same name: the platform ignores case (`Бухгалтерия` and
//! `БУХГАЛТЕРИЯ` are one base). The one rule for it, used by the checks within one file and
//! across files.

/// One character in lower case, the way names are compared: a fast path for ASCII and
/// Cyrillic, the full Unicode mapping for the rest.
enum Folded {
    One(Option<char>),
    Many(std::char::ToLowercase),
}

impl Iterator for Folded {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self {
            Folded::One(c) => c.take(),
            Folded::Many(chars) => chars.next(),
        }
    }
}

fn fold_char(c: char) -> Folded {
    match c {
        'A'..='Z' => Folded::One(Some(c.to_ascii_lowercase())),
        // А..Я → а..я, and Ѐ..Џ (Ё among them) → ѐ..џ.
        '\u{0410}'..='\u{042F}' => Folded::One(char::from_u32(c as u32 + 0x20)),
        '\u{0400}'..='\u{040F}' => Folded::One(char::from_u32(c as u32 + 0x50)),
        _ if c.is_ascii() || ('\u{0430}'..='\u{045F}').contains(&c) => Folded::One(Some(c)),
        _ => Folded::Many(c.to_lowercase()),
    }
}

fn folded(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars().flat_map(fold_char)
}

/// True when two base names are the same for the platform, which ignores case
/// (`Бухгалтерия` and `БУХГАЛТЕРИЯ` are one name).
pub(crate) fn names_equal(a: &str, b: &str) -> bool {
    a == b || folded(a).eq(folded(b))
}

/// FNV-1a over the case-folded characters: equal for names that [`names_equal`] says are
/// equal, so names can be grouped without allocating a lower-case copy of each. The
/// single-character cases of [`fold_char`] are taken without building its iterator.
pub(super) fn fold_hash(name: &str) -> u64 {
    let step = |hash: u64, c: char| (hash ^ u64::from(u32::from(c))).wrapping_mul(0x100_0000_01b3);
    name.chars().fold(0xcbf2_9ce4_8422_2325, |hash, c| match fold_char(c) {
        Folded::One(Some(folded)) => step(hash, folded),
        other => other.fold(hash, step),
    })
}

/// The name folded to lower case by the same rule as [`names_equal`]: a key for maps of
/// names (across files, where names are few and allocating one key each is cheap).
pub(super) fn folded_key(name: &str) -> String {
    folded(name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_agrees_with_unicode_lowercase() {
        for c in (0..0x2000).filter_map(char::from_u32) {
            let ours: String = fold_char(c).collect();
            let std: String = c.to_lowercase().collect();
            assert_eq!(ours, std, "{c:?}");
        }
        assert!(names_equal("Склад ЁЛКИ", "склад ёлки"));
        assert!(!names_equal("Склад", "Склад "));
        assert_eq!(fold_hash("БУХГАЛТЕРИЯ Ёлка İ"), fold_hash("бухгалтерия ёлка i̇"));
        assert_ne!(fold_hash("Склад"), fold_hash("Склад "));
        assert_eq!(folded_key("Склад ЁЛКИ"), "склад ёлки");
    }
}
