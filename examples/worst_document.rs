//! Memory and time of the worst valid message document: 64 languages (the limit) and the
//! rest of the 64 KiB file in one pass-through field, so every language body carries it.
//!
//! Run: `cargo run --release --example worst_document`
//!
//! Prints the resident memory before and after loading it 20 times over (each load kept,
//! as a reload keeps the new snapshot while requests still hold the old one), and the time
//! of one load (parse, validate, render, ETags). The figures go in the README's limits.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use v8help::document::{Document, MAX_FILE_BYTES, MAX_LANGUAGES};
use v8help::snapshot::Snapshot;
use v8help::time::Zone;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn worst() -> String {
    let langs: Vec<String> = (0..MAX_LANGUAGES).map(|i| format!("\"x-{i}\":\"t{i}\"")).collect();
    let shape = |fill: usize| {
        format!(
            r#"{{"userMessage":"x","userMessages":{{{}}},"blob":"{}"}}"#,
            langs.join(","),
            "b".repeat(fill)
        )
    };
    let fill = MAX_FILE_BYTES - shape(0).len();
    shape(fill)
}

fn main() {
    let doc = worst();
    assert_eq!(doc.len(), MAX_FILE_BYTES);
    let before = rss_kib();
    let started = Instant::now();
    let first = Snapshot::new(Document::parse(doc.as_bytes(), Zone::UTC).expect("the worst document is valid"));
    let one_load = started.elapsed();
    let mut kept = vec![first];
    for _ in 1..20 {
        kept.push(Snapshot::new(Document::parse(doc.as_bytes(), Zone::UTC).unwrap()));
    }
    let after = rss_kib();
    println!(
        "worst valid document ({} bytes, {} languages): {} KiB of rendered bodies per snapshot; \
         RSS {} KiB -> {} KiB for 20 snapshots ({} KiB each); one load {:.1} ms",
        doc.len(),
        MAX_LANGUAGES,
        kept[0].rendered_bytes() / 1024,
        before,
        after,
        (after.saturating_sub(before)) / 20,
        one_load.as_secs_f64() * 1000.0
    );
}
