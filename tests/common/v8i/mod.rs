//! Base-list material for the v8i and `bases` tests, the benchmark (`benches/v8i.rs`) and
//! the fuzz target (`fuzz/`): fixture paths, the invariants every input must keep, and a
//! generator of realistic lists. Self-contained (std and the library only), so the bench
//! and the fuzz target can include it by path.

pub mod invariants;

use std::path::{Path, PathBuf};

/// `fixtures/v8i` in the source tree.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("v8i")
}

/// A realistic list of `bases` bases in `bases / 10` groups, CRLF, with a BOM — the shape
/// the launcher writes — used by the benchmark. Deterministic.
pub fn generated_list(bases: usize) -> String {
    let mut out = String::from("\u{feff}");
    let groups = (bases / 10).max(1);
    for g in 0..groups {
        out.push_str(&format!(
            "[Отдел {g}]\r\nID=00000000-0000-4000-8000-{g:012}\r\nOrderInList={}\r\nFolder=/\r\nExternal=0\r\n\r\n",
            g * 16384
        ));
    }
    for b in 0..bases {
        let connect = match b % 3 {
            0 => format!("Srvr=\"srv1c-{:02}.corp.local:1541\";Ref=\"base_{b}\";", b % 7),
            1 => format!("File=\"\\\\fs-{:02}\\1c$\\База {b}\";", b % 5),
            _ => format!("ws=\"https://web1c.corp.local/base_{b}?x=1;y=2\";"),
        };
        out.push_str(&format!(
            "[База номер {b}]\r\nConnect={connect}\r\nID={b:08x}-1111-4222-8333-444455556666\r\nOrderInList={}.5\r\nFolder=/Отдел {}\r\nOrderInTree={b}\r\nExternal=0\r\nClientConnectionSpeed=Normal\r\nApp=Auto\r\nWA=1\r\nVersion=8.3\r\n",
            b * 8,
            b % groups
        ));
        if b % 4 != 0 {
            out.push_str(&format!(
                "StartupErrorHelpText=Сервер недоступен; звоните #{b}: +7 (495) 123-45-67\r\nStartupErrorHelpURL=https://help.corp.local/1c?base={b}&lang=ru#status\r\n"
            ));
        }
        out.push_str("\r\n");
    }
    out
}
