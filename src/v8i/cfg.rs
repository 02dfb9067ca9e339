//! `1CEStart.cfg`: the launcher's settings, read here only for its `CommonInfoBases=` lines,
//! which name the shared base lists an admin hands out (often UNC paths).
//!
//! The launcher writes the file in UTF-16LE with a byte order mark; hand-made ones are often
//! UTF-8, so both are accepted. Pure: bytes in, entries out.

use super::error::CfgError;

/// The key naming a shared base list; it may appear several times.
pub(super) const COMMON_INFO_BASES_KEY: &str = "CommonInfoBases";

/// The encoding a cfg file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfgEncoding {
    /// UTF-16 little-endian (the launcher's own), with or without BOM.
    Utf16Le,
    /// UTF-16 big-endian with BOM.
    Utf16Be,
    /// UTF-8, with or without BOM.
    Utf8,
}

/// One `CommonInfoBases=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgEntry {
    /// 1-based line in the cfg.
    pub line: usize,
    /// The path as written, spaces around it trimmed.
    pub path: String,
}

/// What v8help needs from a `1CEStart.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartCfg {
    /// The encoding the file was decoded from.
    pub encoding: CfgEncoding,
    /// Every non-empty `CommonInfoBases=` entry, in file order.
    pub common_info_bases: Vec<CfgEntry>,
}

/// Decodes a `1CEStart.cfg` and collects its `CommonInfoBases=` entries.
pub fn parse_start_cfg(bytes: &[u8]) -> Result<StartCfg, CfgError> {
    let (encoding, text) = decode(bytes)?;
    let common_info_bases = text
        .split('\n')
        .enumerate()
        .filter_map(|(index, line)| {
            let (key, value) = line.split_once('=')?;
            let path = value.trim_matches([' ', '\t', '\r']);
            (key.trim_matches([' ', '\t', '\u{feff}']) == COMMON_INFO_BASES_KEY && !path.is_empty()).then(|| CfgEntry {
                line: index + 1,
                path: path.into(),
            })
        })
        .collect();
    Ok(StartCfg {
        encoding,
        common_info_bases,
    })
}

fn decode(bytes: &[u8]) -> Result<(CfgEncoding, String), CfgError> {
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return decode_utf16(rest, 2, u16::from_le_bytes, "UTF-16LE").map(|t| (CfgEncoding::Utf16Le, t));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return decode_utf16(rest, 2, u16::from_be_bytes, "UTF-16BE").map(|t| (CfgEncoding::Utf16Be, t));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return decode_utf8(rest, 3).map(|t| (CfgEncoding::Utf8, t));
    }
    // No BOM: an ASCII first character followed by a zero byte is UTF-16LE.
    if bytes.len() >= 2 && bytes[0] != 0 && bytes[1] == 0 {
        return decode_utf16(bytes, 0, u16::from_le_bytes, "UTF-16LE").map(|t| (CfgEncoding::Utf16Le, t));
    }
    decode_utf8(bytes, 0).map(|t| (CfgEncoding::Utf8, t))
}

fn decode_utf8(bytes: &[u8], base: usize) -> Result<String, CfgError> {
    std::str::from_utf8(bytes)
        .map(Into::into)
        .map_err(|e| CfgError::Decode {
            offset: base + e.valid_up_to(),
            encoding: "UTF-8",
        })
}

fn decode_utf16(
    bytes: &[u8],
    base: usize,
    unit: fn([u8; 2]) -> u16,
    encoding: &'static str,
) -> Result<String, CfgError> {
    if bytes.len() % 2 != 0 {
        return Err(CfgError::Decode {
            offset: base + bytes.len() - 1,
            encoding,
        });
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    let mut text = String::with_capacity(bytes.len() / 2);
    let mut offset = base;
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(c) => {
                text.push(c);
                offset += 2 * c.len_utf16();
            }
            Err(_) => return Err(CfgError::Decode { offset, encoding }),
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le_with_bom(text: &str) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    }

    #[test]
    fn reads_every_common_info_bases_line_from_utf16le() {
        let text = "DefaultVersion=8.3.25\r\nCommonInfoBases=\\\\fs01\\1c\\Общие.v8i\r\nCommonInfoBases=lists/extra.v8i\r\nCommonInfoBases=\r\n";
        let cfg = parse_start_cfg(&utf16le_with_bom(text)).expect("decodes");
        assert_eq!(cfg.encoding, CfgEncoding::Utf16Le);
        assert_eq!(
            cfg.common_info_bases,
            [
                CfgEntry {
                    line: 2,
                    path: r"\\fs01\1c\Общие.v8i".into()
                },
                CfgEntry {
                    line: 3,
                    path: "lists/extra.v8i".into()
                },
            ]
        );
    }

    #[test]
    fn accepts_utf8_with_and_without_bom() {
        for bytes in [
            "\u{feff}CommonInfoBases=a.v8i\n".as_bytes(),
            "CommonInfoBases=a.v8i".as_bytes(),
        ] {
            let cfg = parse_start_cfg(bytes).expect("decodes");
            assert_eq!(cfg.encoding, CfgEncoding::Utf8);
            assert_eq!(cfg.common_info_bases[0].path, "a.v8i");
        }
    }

    #[test]
    fn utf16le_without_bom_is_recognised() {
        let bytes: Vec<u8> = "CommonInfoBases=x.v8i\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let cfg = parse_start_cfg(&bytes).expect("decodes");
        assert_eq!(cfg.common_info_bases[0].path, "x.v8i");
    }

    #[test]
    fn broken_encodings_name_the_byte_offset() {
        assert_eq!(
            parse_start_cfg(b"\xFF\xFEa\x00b"),
            Err(CfgError::Decode {
                offset: 4,
                encoding: "UTF-16LE"
            })
        );
        assert_eq!(
            parse_start_cfg(b"\xFF\xFEa\x00\x00\xD8"),
            Err(CfgError::Decode {
                offset: 4,
                encoding: "UTF-16LE"
            })
        );
        assert_eq!(
            parse_start_cfg(b"Common\xC1"),
            Err(CfgError::Decode {
                offset: 6,
                encoding: "UTF-8"
            })
        );
    }
}
