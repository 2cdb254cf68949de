//! Reference vectors for randomized smoothing: every case of every `tests/vectors/*.json` (copies of
//! `shared/vectors/public/randomized_smoothing.json`, unchanged; drop more files in to add cases).
//!
//! The files give the Monte Carlo *counts* (n, n_A, n_B), not the noise: they were drawn with NumPy's
//! generator, which Rampart does not reimplement. So what is checked exactly is everything from the counts
//! on, the part that decides abstention and radius: [`predict_from_counts`] (two-sided binomial p-value,
//! abstain iff p > α) and [`certify_from_counts`] (Clopper–Pearson lower bound, abstain iff it is below ½,
//! radius σ·Φ⁻¹). Sampling itself is covered by the unit tests (reproducibility, batching, abstention).
//!
//! The schema is strict: an unknown or missing field anywhere fails the test, so a format change cannot
//! silently skip a check. Tolerances come from each file: `|got − want| ≤ atol + rtol·|want|`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;

use rampart_model::harden::smoothing::{certify_from_counts, predict_from_counts};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorFile {
    file: String,
    set: String,
    seed_family: String,
    definition: String,
    tolerance: Tolerance,
    generator: String,
    versions: BTreeMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    #[serde(rename = "pA_lower")]
    pa_lower: Tol,
    radius: Tol,
    pvalue: Tol,
    abstain: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct Tol {
    rtol: f64,
    atol: f64,
}

impl Tol {
    fn check(self, id: &str, what: &str, got: f64, want: f64) {
        let allowed = self.atol + self.rtol * want.abs();
        assert!(
            (got - want).abs() <= allowed,
            "{id}: {what} = {got:e}, expected {want:e} (off by {:e}, allowed {allowed:e})",
            (got - want).abs()
        );
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    kind: Kind,
    note: String,
    /// Read again below, strictly, as the kind's own input and expected types.
    input: Value,
    expected: Value,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Certify,
    Predict,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertifyInput {
    n: u64,
    #[serde(rename = "nA")]
    n_a: u64,
    alpha: f64,
    sigma: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertifyExpected {
    #[serde(rename = "pA_lower")]
    pa_lower: f64,
    abstain: bool,
    /// `null` on abstention, but the key must be there.
    #[serde(deserialize_with = "present_option")]
    radius: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictInput {
    #[serde(rename = "nA")]
    n_a: u64,
    #[serde(rename = "nB")]
    n_b: u64,
    alpha: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictExpected {
    pvalue: f64,
    abstain: bool,
}

/// An `Option` whose key is required (serde would otherwise take a missing key as `None`).
fn present_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(d)
}

fn strict<T: for<'de> Deserialize<'de>>(id: &str, what: &str, v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{id}: {what}: {e}"))
}

/// Checks one file; returns the number of cases checked.
fn check_file(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let file: VectorFile =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: schema: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy();
    assert_eq!(file.file, name, "the file names itself");
    assert!(!file.set.is_empty() && !file.seed_family.is_empty() && !file.generator.is_empty());
    assert!(
        file.definition.contains("Clopper-Pearson"),
        "{name}: definition"
    );
    assert!(!file.versions.is_empty());
    assert_eq!(file.tolerance.abstain, "exact", "{name}: abstain tolerance");
    assert!(!file.cases.is_empty(), "{name}: no cases");
    let t = &file.tolerance;
    for case in &file.cases {
        let id = case.id.as_str();
        let _ = &case.note;
        match case.kind {
            Kind::Certify => {
                let i: CertifyInput = strict(id, "input", &case.input);
                let e: CertifyExpected = strict(id, "expected", &case.expected);
                let (pa_lower, radius) = certify_from_counts(i.n_a, i.n, i.alpha, i.sigma);
                t.pa_lower.check(id, "pA_lower", pa_lower, e.pa_lower);
                assert_eq!(radius.is_none(), e.abstain, "{id}: abstain");
                assert_eq!(
                    e.radius.is_none(),
                    e.abstain,
                    "{id}: the file's own radius/abstain"
                );
                if let (Some(got), Some(want)) = (radius, e.radius) {
                    t.radius.check(id, "radius", got, want);
                }
            }
            Kind::Predict => {
                let i: PredictInput = strict(id, "input", &case.input);
                let e: PredictExpected = strict(id, "expected", &case.expected);
                assert!(i.n_a >= i.n_b, "{id}: nA >= nB");
                let (pvalue, abstain) = predict_from_counts(i.n_a, i.n_b, i.alpha);
                t.pvalue.check(id, "pvalue", pvalue, e.pvalue);
                assert_eq!(abstain, e.abstain, "{id}: abstain");
            }
        }
    }
    file.cases.len()
}

#[test]
fn every_smoothing_vector_matches() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no vector files in {}", dir.display());
    let mut total = 0;
    for p in &paths {
        let n = check_file(p);
        eprintln!("{}: {n}/{n} cases", p.display());
        total += n;
    }
    // The public file alone has 36; fewer means cases went missing.
    assert!(total >= 36, "{total} cases");
}

#[test]
fn schema_is_strict() {
    let good = r#"{"n": 10, "nA": 10, "alpha": 0.05, "sigma": 0.5}"#;
    assert!(serde_json::from_str::<CertifyInput>(good).is_ok());
    let extra = r#"{"n": 10, "nA": 10, "alpha": 0.05, "sigma": 0.5, "nB": 0}"#;
    assert!(serde_json::from_str::<CertifyInput>(extra).is_err());
    let missing = r#"{"pA_lower": 0.1, "abstain": true}"#;
    assert!(serde_json::from_str::<CertifyExpected>(missing).is_err());
    let null = r#"{"pA_lower": 0.1, "abstain": true, "radius": null}"#;
    assert!(serde_json::from_str::<CertifyExpected>(null).is_ok());
}
