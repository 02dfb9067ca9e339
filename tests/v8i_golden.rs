//! Golden outputs for the fixtures in `fixtures/v8i`: for every `NAME.v8i` (and every
//! `NAME.cfg`, read with `--cfg`), `bases list --format json --all` must print exactly
//! `NAME.json` and `bases check` exactly `NAME.check.txt`, run from the fixture folder so
//! the paths in the output are the relative ones given.
//!
//! Regenerate deliberately with `UPDATE_GOLDEN=1 cargo test --test v8i_golden`, then read
//! the diff before committing.

mod common;

use std::fs;
use std::path::Path;

use common::binary::{code, run_in as v8help, stdout};
use common::v8i::fixtures;

fn compare_or_update(golden: &Path, actual: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(golden, actual).map_err(|e| format!("{}: {e}", golden.display()))?;
        return Ok(());
    }
    let expected = fs::read_to_string(golden)
        .map_err(|e| format!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", golden.display()))?;
    if expected != actual {
        return Err(format!(
            "{} differs from the output:\n{}",
            golden.display(),
            similar::TextDiff::from_lines(expected.as_str(), actual)
                .unified_diff()
                .header("golden", "actual")
        ));
    }
    Ok(())
}

#[test]
fn every_fixture_lists_and_checks_as_its_golden_files_say() {
    let dir = fixtures();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("fixture folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".v8i") || n.ends_with(".cfg"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "expected the fixture set, found {names:?}");

    let mut failures = Vec::new();
    for name in &names {
        let (stem, source_args): (&str, Vec<&str>) = match name.strip_suffix(".cfg") {
            Some(stem) => (stem, vec!["--cfg", name]),
            None => (name.trim_end_matches(".v8i"), vec![name]),
        };
        let mut list_args = vec!["bases", "list", "--format", "json", "--all"];
        list_args.extend(&source_args);
        let listed = v8help(&dir, &list_args);
        assert_eq!(code(&listed), 0, "{name}: list failed: {listed:?}");
        let json = stdout(&listed);
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("list prints JSON");
        assert!(parsed.as_array().is_some_and(|a| !a.is_empty()), "{name}: empty list");

        let mut check_args = vec!["bases", "check"];
        check_args.extend(&source_args);
        let checked = v8help(&dir, &check_args);
        let report = format!("exit code {}\n{}", code(&checked), stdout(&checked));

        for (golden, actual) in [
            (dir.join(format!("{stem}.json")), json),
            (dir.join(format!("{stem}.check.txt")), report),
        ] {
            if let Err(failure) = compare_or_update(&golden, &actual) {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
