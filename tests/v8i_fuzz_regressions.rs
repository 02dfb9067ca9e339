//! Replays every input in `fixtures/v8i/fuzz-regressions` through the fuzz target's checks.
//! Each file is one the fuzzer once broke v8help with, named after what broke.

mod common;

use std::fs;

#[test]
fn every_input_the_fuzzer_broke_once_now_passes() {
    let dir = common::v8i::fixtures().join("fuzz-regressions");
    let mut inputs: Vec<_> = fs::read_dir(&dir)
        .expect("regression folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no regression inputs in {}", dir.display());
    for input in inputs {
        let data = fs::read(&input).expect("readable");
        let outcome = std::panic::catch_unwind(|| common::v8i::invariants::check(&data));
        assert!(outcome.is_ok(), "{} breaks an invariant again", input.display());
    }
}
