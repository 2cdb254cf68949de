//! `mmd.json`: bandwidth, both MMD² estimates and the three kernel means. The file has no p-value (a
//! permutation p-value depends on the generator's random stream); the crate's permutation test is checked by
//! unit tests instead (valid range, reproducible for a seed, small for shifted samples).

use rampart_detect::mmd;
use serde::Deserialize;

use crate::common::{header, parse, Check, Tol, VectorFile};

type File = VectorFile<Tolerance, Case>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    sigma: Tol,
    #[serde(rename = "mmd2_biased/mmd2_unbiased")]
    mmd2: Tol,
    #[serde(rename = "kxx_offdiag_mean/kyy_offdiag_mean/kxy_mean")]
    means: Tol,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    note: String,
    input: Input,
    expected: Expected,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    x: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    sigma: f64,
    n_pairs: usize,
    mmd2_biased: f64,
    mmd2_unbiased: f64,
    kxx_offdiag_mean: f64,
    kyy_offdiag_mean: f64,
    kxy_mean: f64,
}

pub fn run(text: &str, check: &mut Check) {
    let Some(file) = parse::<File>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    let t = &file.tolerance;
    for case in &file.cases {
        check.cases += 1;
        let id = case.id.as_str();
        let e = &case.expected;
        let big_n = case.input.x.len() + case.input.y.len();
        check.exact(id, "n_pairs", big_n * (big_n - 1) / 2, e.n_pairs);
        let r = match mmd::mmd2(&case.input.x, &case.input.y) {
            Ok(r) => r,
            Err(err) => {
                check.error(id, "mmd2", err);
                continue;
            }
        };
        check.close(id, "sigma", r.sigma, e.sigma, &t.sigma);
        check.close(id, "mmd2_biased", r.mmd2_biased, e.mmd2_biased, &t.mmd2);
        check.close(
            id,
            "mmd2_unbiased",
            r.mmd2_unbiased,
            e.mmd2_unbiased,
            &t.mmd2,
        );
        check.close(
            id,
            "kxx_offdiag_mean",
            r.kxx_offdiag_mean,
            e.kxx_offdiag_mean,
            &t.means,
        );
        check.close(
            id,
            "kyy_offdiag_mean",
            r.kyy_offdiag_mean,
            e.kyy_offdiag_mean,
            &t.means,
        );
        check.close(id, "kxy_mean", r.kxy_mean, e.kxy_mean, &t.means);
    }
}
