//! `welford.json`: mean, population and sample variance (streaming and merged), against per-case absolute
//! tolerances, with the file's splitmix64 generator ported and checked first.

use rampart_detect::Welford;
use serde::Deserialize;

use crate::common::{header, parse, Check, Tol, Versions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    file: String,
    set: String,
    seed_family: String,
    definition: String,
    tolerance: Tolerance,
    generator: String,
    versions: Versions,
    worst_margin_used: f64,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    per_case: String,
    mean_atol: String,
    var_atol: String,
    checked: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    note: String,
    input: Input,
    expected: Expected,
    diagnostic: Diagnostic,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Input {
    #[serde(rename = "data")]
    Data(Vec<f64>),
    #[serde(rename = "generator")]
    Generator(Generator),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Generator {
    kind: String,
    seed: u64,
    n: usize,
    offset: f64,
    scale: f64,
    check: GenCheck,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenCheck {
    first: Vec<f64>,
    last: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    n: u64,
    mean: f64,
    var_population: f64,
    #[serde(deserialize_with = "crate::common::required")]
    var_sample: Option<f64>,
    tolerance: CaseTol,
    numpy_mean: f64,
    numpy_var_population: f64,
    #[serde(deserialize_with = "crate::common::required")]
    numpy_var_sample: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseTol {
    mean_atol: f64,
    var_population_atol: f64,
    #[serde(deserialize_with = "crate::common::required")]
    var_sample_atol: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Diagnostic {
    naive_one_pass_var_pop: f64,
    naive_fails: bool,
    worst_margin_used: f64,
}

/// The file's `splitmix64_uniform`: x_i = offset + scale * (u - 0.5), two separately rounded operations.
fn splitmix64_uniform(g: &Generator) -> Vec<f64> {
    let mut state = g.seed;
    (0..g.n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 * (1.0 / (1_u64 << 53) as f64);
            let t = u - 0.5;
            let p = g.scale * t;
            g.offset + p
        })
        .collect()
}

fn abs_tol(atol: f64) -> Tol {
    Tol {
        rtol: 0.0,
        atol,
        note: None,
    }
}

pub fn run(text: &str, check: &mut Check) {
    let Some(file) = parse::<File>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    for case in &file.cases {
        check.cases += 1;
        let id = case.id.as_str();
        let data = match &case.input {
            Input::Data(d) => d.clone(),
            Input::Generator(g) => {
                check.exact(id, "generator kind", g.kind.as_str(), "splitmix64_uniform");
                let data = splitmix64_uniform(g);
                for (i, want) in g.check.first.iter().enumerate() {
                    check.exact(
                        id,
                        format_args!("generator value {i}"),
                        data[i].to_bits(),
                        want.to_bits(),
                    );
                }
                check.exact(
                    id,
                    "generator last",
                    data.last().map(|v| v.to_bits()),
                    Some(g.check.last.to_bits()),
                );
                data
            }
        };
        let e = &case.expected;
        let t = &e.tolerance;
        let w: Welford = data.iter().copied().collect();
        check.exact(id, "n", w.count(), e.n);
        let mut merged = Welford::new();
        for piece in data.chunks(data.len().div_ceil(7).max(1)) {
            merged.merge(&piece.iter().copied().collect());
        }
        for (how, s) in [("", &w), ("merged ", &merged)] {
            check.close_opt(
                id,
                format_args!("{how}mean"),
                s.mean(),
                Some(e.mean),
                &abs_tol(t.mean_atol),
            );
            check.close_opt(
                id,
                format_args!("{how}var_population"),
                s.variance_population(),
                Some(e.var_population),
                &abs_tol(t.var_population_atol),
            );
            match (s.variance_sample(), e.var_sample, t.var_sample_atol) {
                (got, Some(want), Some(atol)) => {
                    check.close_opt(
                        id,
                        format_args!("{how}var_sample"),
                        got,
                        Some(want),
                        &abs_tol(atol),
                    );
                }
                (got, None, None) => check.exact(id, format_args!("{how}var_sample"), got, None),
                _ => check.fail(
                    id,
                    "var_sample and its tolerance must both be null or both be set",
                ),
            }
        }
        // Not the naive one-pass answer where the file says that answer is wrong.
        if case.diagnostic.naive_fails {
            let got = w.variance_population().unwrap_or(f64::NAN);
            if (got - case.diagnostic.naive_one_pass_var_pop).abs() <= t.var_population_atol {
                check.fail(id, "matches the naive one-pass formula");
            }
        }
    }
}
