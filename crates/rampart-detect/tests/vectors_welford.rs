//! Reference vectors: `tests/vectors/welford.json` (copied from `shared/vectors/public`).
//!
//! Every case is checked: the generator port against the file's check values, then n, mean, population and
//! sample variance against the per-case absolute tolerances in `expected.tolerance`. The merged (Chan et al.)
//! form is held to the same tolerances.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_detect::Welford;
use serde_json::Value;

const FILE: &str = include_str!("vectors/welford.json");

/// The file's `splitmix64_uniform`: x_i = offset + scale * (u - 0.5), two separately rounded operations.
fn splitmix64_uniform(seed: u64, n: usize, offset: f64, scale: f64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 * (1.0 / (1_u64 << 53) as f64);
            let t = u - 0.5;
            let p = scale * t;
            offset + p
        })
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn input(case: &Value) -> Vec<f64> {
    let id = &case["id"];
    if let Some(data) = case["input"]["data"].as_array() {
        return data.iter().map(f).collect();
    }
    let g = &case["input"]["generator"];
    assert_eq!(g["kind"], "splitmix64_uniform", "{id}");
    let data = splitmix64_uniform(
        g["seed"].as_u64().unwrap(),
        usize::try_from(g["n"].as_u64().unwrap()).unwrap(),
        f(&g["offset"]),
        f(&g["scale"]),
    );
    let first = g["check"]["first"].as_array().unwrap();
    for (i, want) in first.iter().enumerate() {
        assert_eq!(
            data[i].to_bits(),
            f(want).to_bits(),
            "{id}: generator value {i}"
        );
    }
    assert_eq!(
        data.last().unwrap().to_bits(),
        f(&g["check"]["last"]).to_bits(),
        "{id}: generator last value"
    );
    data
}

fn check(id: &Value, what: &str, got: Option<f64>, want: &Value, atol: &Value) -> usize {
    if want.is_null() {
        assert_eq!(got, None, "{id}: {what} should be undefined");
        assert!(atol.is_null(), "{id}: {what} tolerance");
        return 1;
    }
    let (got, want, atol) = (got.unwrap(), f(want), f(atol));
    assert!(
        (got - want).abs() <= atol,
        "{id}: {what} = {got:e}, expected {want:e} ± {atol:e} (off by {:e})",
        (got - want).abs()
    );
    1
}

#[test]
fn every_welford_vector_matches() {
    let file: Value = serde_json::from_str(FILE).unwrap();
    assert_eq!(file["file"], "welford.json");
    assert!(file["tolerance"]["per_case"].is_string());
    let cases = file["cases"].as_array().unwrap();
    let (mut checked, mut fields) = (0, 0);
    for case in cases {
        let id = &case["id"];
        let data = input(case);
        let e = &case["expected"];
        let tol = &e["tolerance"];
        assert_eq!(data.len() as u64, e["n"].as_u64().unwrap(), "{id}: n");

        let w: Welford = data.iter().copied().collect();
        assert_eq!(w.count(), e["n"].as_u64().unwrap(), "{id}: count");
        fields += check(id, "mean", w.mean(), &e["mean"], &tol["mean_atol"]);
        fields += check(
            id,
            "var_population",
            w.variance_population(),
            &e["var_population"],
            &tol["var_population_atol"],
        );
        fields += check(
            id,
            "var_sample",
            w.variance_sample(),
            &e["var_sample"],
            &tol["var_sample_atol"],
        );

        // Not the naive one-pass answer where the file says that answer is wrong.
        if case["diagnostic"]["naive_fails"] == Value::Bool(true) {
            let naive = f(&case["diagnostic"]["naive_one_pass_var_pop"]);
            let atol = f(&tol["var_population_atol"]);
            assert!(
                (w.variance_population().unwrap() - naive).abs() > atol,
                "{id}: matches the naive formula"
            );
        }

        // Chan et al.: the same statistics from uneven pieces merged together.
        let mut merged = Welford::new();
        for piece in data.chunks(data.len().div_ceil(7).max(1)) {
            merged.merge(&piece.iter().copied().collect());
        }
        assert_eq!(merged.count(), w.count(), "{id}: merged count");
        check(
            id,
            "merged mean",
            merged.mean(),
            &e["mean"],
            &tol["mean_atol"],
        );
        check(
            id,
            "merged var_population",
            merged.variance_population(),
            &e["var_population"],
            &tol["var_population_atol"],
        );
        check(
            id,
            "merged var_sample",
            merged.variance_sample(),
            &e["var_sample"],
            &tol["var_sample_atol"],
        );
        checked += 1;
    }
    assert_eq!(checked, cases.len());
    assert_eq!(checked, 30, "the public file has 30 cases");
    assert_eq!(fields, 3 * cases.len());
    println!("welford.json: {checked} cases, {fields} fields checked");
}
