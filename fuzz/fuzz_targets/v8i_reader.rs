//! Fuzz target for the base-list reader (and the writer and cfg reader on the same bytes).
//!
//! Run from the repository root with the stable toolchain:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run v8i_reader fuzz/corpus/v8i_reader fixtures/v8i -- -dict=fuzz/v8i.dict -max_total_time=300`
//!
//! The checks live in `tests/common/v8i/invariants.rs`, shared with
//! `tests/v8i_fuzz_regressions.rs`, which replays every input the fuzzer broke once.

#![no_main]

#[path = "../../tests/common/v8i/invariants.rs"]
mod invariants;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| invariants::check(data));
