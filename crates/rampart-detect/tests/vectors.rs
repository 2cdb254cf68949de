//! The one reference-vector harness: every case of every `tests/vectors/*.json` (copies of
//! `shared/vectors/public`), each checked within the tolerance its file states.
//!
//! Dispatch is on the file name. A file this harness does not know fails the test (a new vector file must get
//! a checker, never be skipped), and every case and header is parsed into structs with
//! `deny_unknown_fields` and no defaults, so a field missing from or added to a file fails too. Failures are
//! collected per file so one run shows all of them.
// Header fields (definition, versions …) are parsed to pin the schema, not compared: hence dead_code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub,
    dead_code
)]

#[path = "harness/changepoint.rs"]
mod changepoint;
#[path = "harness/chi2.rs"]
mod chi2;
#[path = "harness/common.rs"]
mod common;
#[path = "harness/ks.rs"]
mod ks;
#[path = "harness/mahalanobis.rs"]
mod mahalanobis;
#[path = "harness/mmd.rs"]
mod mmd;
#[path = "harness/prada.rs"]
mod prada;
#[path = "harness/psi.rs"]
mod psi;
#[path = "harness/welford.rs"]
mod welford;

use std::path::Path;

use common::Check;

/// A file's checker: parses the text and records every comparison in the `Check`.
type Checker = fn(&str, &mut Check);

/// Every file the harness knows, with its checker and the number of cases the public file has.
const KNOWN: &[(&str, Checker, usize)] = &[
    ("welford.json", welford::run, 30),
    ("mahalanobis.json", mahalanobis::run, 28),
    ("ks_two_sample.json", ks::run, 28),
    ("psi.json", psi::run, 28),
    ("chi2_categorical.json", chi2::run, 30),
    ("mmd.json", mmd::run, 28),
    ("shapiro_wilk.json", prada::run_shapiro_file, 22),
    ("prada.json", prada::run, 28),
    ("page_hinkley.json", changepoint::run_page_hinkley, 28),
    ("cusum.json", changepoint::run_cusum, 28),
];

/// The schema is closed in both directions: for every file, dropping any one field of the first case's
/// `expected` or `input`, or adding one, makes its checker fail.
#[test]
fn a_missing_or_extra_field_fails_every_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    for (name, run, _) in KNOWN {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        for part in ["expected", "input"] {
            let keys: Vec<String> = file["cases"][0][part]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            for key in &keys {
                let mut broken = file.clone();
                broken["cases"][0][part]
                    .as_object_mut()
                    .unwrap()
                    .remove(key);
                let mut check = Check::new(name);
                run(&broken.to_string(), &mut check);
                assert!(
                    !check.failures.is_empty(),
                    "{name}: no failure without {part}.{key}"
                );
            }
            let mut extra = file.clone();
            extra["cases"][0][part]
                .as_object_mut()
                .unwrap()
                .insert("unexpected".into(), serde_json::Value::Null);
            let mut check = Check::new(name);
            run(&extra.to_string(), &mut check);
            assert!(
                !check.failures.is_empty(),
                "{name}: no failure with an extra {part} field"
            );
        }
    }
}

#[test]
fn every_case_of_every_vector_file_matches() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let mut failures = Vec::new();
    let mut seen = 0;
    for name in &names {
        let Some((_, run, public_cases)) = KNOWN.iter().find(|(n, _, _)| n == name) else {
            failures.push(format!(
                "{name}: no checker for this file (unknown files fail, never skip)"
            ));
            continue;
        };
        seen += 1;
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let mut check = Check::new(name);
        run(&text, &mut check);
        println!(
            "{name}: {}/{} cases passed, {} values checked",
            check.cases_passed(),
            check.cases,
            check.values
        );
        if check.cases != *public_cases {
            failures.push(format!(
                "{name}: {} cases, the public file has {public_cases}",
                check.cases
            ));
        }
        failures.extend(check.failures);
    }
    assert_eq!(
        seen,
        KNOWN.len(),
        "a known vector file is missing from tests/vectors"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
