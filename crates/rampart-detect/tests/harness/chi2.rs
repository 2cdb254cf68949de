//! `chi2_categorical.json`: Pearson's statistic, dof and p-value, SciPy's default (Yates at dof 1), the
//! dropped categories, the expected counts and the decision at 0.05.

use rampart_detect::chi2;
use serde::Deserialize;

use crate::common::{header, parse, Check, Tol, VectorFile};

type File = VectorFile<Tolerance, Case>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    statistic: Tol,
    pvalue: Tol,
    #[serde(rename = "dof/dropped_categories/drift_at_0.05")]
    exact: String,
    expected_freq: Tol,
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
    reference_counts: Vec<u64>,
    current_counts: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    dropped_categories: Vec<usize>,
    dof: usize,
    pearson: Pearson,
    scipy_default: ScipyDefault,
    expected_freq: Vec<Vec<f64>>,
    #[serde(rename = "drift_at_0.05")]
    drift: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pearson {
    statistic: f64,
    pvalue: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScipyDefault {
    statistic: f64,
    pvalue: f64,
    yates_applied: bool,
}

pub fn run(text: &str, check: &mut Check) {
    let Some(file) = parse::<File>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    let t = &file.tolerance;
    check.exact("(file)", "exact tolerance", t.exact.as_str(), "exact");
    for case in &file.cases {
        check.cases += 1;
        let id = case.id.as_str();
        let r = match chi2::chi2_counts(&case.input.reference_counts, &case.input.current_counts) {
            Ok(r) => r,
            Err(err) => {
                check.error(id, "chi2_counts", err);
                continue;
            }
        };
        let e = &case.expected;
        check.exact(id, "dof", r.dof, e.dof);
        check.exact(id, "dropped_categories", &r.dropped, &e.dropped_categories);
        check.close(
            id,
            "pearson.statistic",
            r.statistic,
            e.pearson.statistic,
            &t.statistic,
        );
        check.close(id, "pearson.pvalue", r.p_value, e.pearson.pvalue, &t.pvalue);
        check.exact(
            id,
            "yates_applied",
            r.yates.is_some(),
            e.scipy_default.yates_applied,
        );
        let (ys, yp) = r.yates.unwrap_or((r.statistic, r.p_value));
        check.close(
            id,
            "scipy_default.statistic",
            ys,
            e.scipy_default.statistic,
            &t.statistic,
        );
        check.close(
            id,
            "scipy_default.pvalue",
            yp,
            e.scipy_default.pvalue,
            &t.pvalue,
        );
        check.exact(id, "expected_freq rows", e.expected_freq.len(), 2);
        for (i, (got, want)) in r.expected.iter().zip(&e.expected_freq).enumerate() {
            check.close_all(
                id,
                &format!("expected_freq[{i}]"),
                got,
                want,
                &t.expected_freq,
            );
        }
        check.exact(id, "drift_at_0.05", r.p_value < 0.05, e.drift);
    }
}
