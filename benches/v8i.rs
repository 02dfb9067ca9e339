//! Base-list reader throughput: v8help's lossless reader against configparser (a generic
//! INI reader, set up to keep `;` and `#` like v8help does) on the same generated list of
//! 10,000 bases in 1,000 groups.
//!
//! Run: `cargo bench --bench v8i` (figures in the README, Benchmarks). `cargo test --benches`
//! runs each benchmark once, as a smoke test.

#[path = "../tests/common/v8i/mod.rs"]
#[allow(dead_code)]
mod common_v8i;

use std::hint::black_box;
use std::time::Duration;

use configparser::ini::{Ini, IniDefault};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn configparser_like_v8i() -> Ini {
    let mut defaults = IniDefault::default();
    defaults.case_sensitive = true;
    defaults.comment_symbols = Vec::new();
    defaults.enable_inline_comments = false;
    defaults.delimiters = vec!['='];
    Ini::new_from_defaults(defaults)
}

fn readers(c: &mut Criterion) {
    let text = common_v8i::generated_list(10_000);
    let bytes = text.as_bytes();

    let mut group = c.benchmark_group("v8i reader, 10000 bases");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));

    // What `bases list` reads: lines, sections, the typed entries with their Connect kind.
    group.bench_function("v8help", |b| {
        b.iter(|| {
            let list = v8help::v8i::parse(black_box(bytes));
            let connects = list.entries().filter_map(|e| e.connect_kind()).count();
            black_box(connects)
        })
    });

    // What `bases check` does per file on top: every diagnostic (duplicate names and IDs,
    // key spelling, URLs, missing help).
    group.bench_function("v8help with diagnostics", |b| {
        b.iter(|| {
            let list = v8help::v8i::parse(black_box(bytes));
            let connects = list.entries().filter_map(|e| e.connect_kind()).count();
            black_box((connects, list.diagnostics().len()))
        })
    });

    // configparser takes an owned String; the copy is made outside the measurement.
    group.bench_function("configparser", |b| {
        b.iter_batched(
            || text.clone(),
            |input| {
                let mut ini = configparser_like_v8i();
                let map = ini.read(input).map(|m| m.len());
                black_box(map)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, readers);
criterion_main!(benches);
