//! The v8i reader's work on a generated list of 10,000 bases, counted in instructions under
//! `valgrind --tool=callgrind` (bench/v8i_instructions.sh): a figure that, unlike
//! `cargo bench --bench v8i`, does not depend on what else the machine is doing.
//! `cargo run --release --example v8i_instructions -- plain|diagnostics [ROUNDS]`.

#[path = "../tests/common/v8i/mod.rs"]
#[allow(dead_code)]
mod common_v8i;

use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let text = common_v8i::generated_list(10_000);
    let bytes = text.as_bytes();
    let mut total = 0;
    for _ in 0..rounds {
        let list = v8help::v8i::parse(black_box(bytes));
        total += list.entries().filter_map(|e| e.connect_kind()).count();
        if mode == "diagnostics" {
            total += list.diagnostics().len();
        }
    }
    println!("{mode}: {} bytes x {rounds} rounds, {total}", bytes.len());
}
