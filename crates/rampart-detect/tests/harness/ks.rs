//! `ks_two_sample.json`: statistic, `method='auto'` p-value and method, the exact, asymptotic and limiting
//! Kolmogorov p-values separately; for `multi_feature` cases the per-feature tests with Bonferroni.

use rampart_detect::ks::{self, KsMethod};
use serde::Deserialize;

use crate::common::{header, parse, Check, Tol, VectorFile};

type File = VectorFile<Tolerance, Case>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    statistic: Tol,
    pvalue: Tol,
    pvalue_exact: Tol,
    pvalue_asymp: Tol,
    pvalue_kolmogorov: Tol,
    #[serde(rename = "decision/flagged")]
    decision: String,
}

#[derive(Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
enum Case {
    #[serde(rename = "two_sample")]
    TwoSample {
        id: String,
        note: String,
        input: TwoInput,
        expected: TwoExpected,
    },
    #[serde(rename = "multi_feature")]
    Multi {
        id: String,
        note: String,
        input: MultiInput,
        expected: MultiExpected,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TwoInput {
    a: Vec<f64>,
    b: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TwoExpected {
    statistic: f64,
    pvalue: f64,
    method_auto: String,
    #[serde(deserialize_with = "crate::common::required")]
    pvalue_exact: Option<f64>,
    pvalue_asymp: f64,
    pvalue_kolmogorov: f64,
    has_ties: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MultiInput {
    reference: Vec<Vec<f64>>,
    current: Vec<Vec<f64>>,
    alpha: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MultiExpected {
    statistics: Vec<f64>,
    pvalues: Vec<f64>,
    methods: Vec<String>,
    min_pvalue: f64,
    threshold: f64,
    drift: bool,
    flagged: Vec<usize>,
}

fn method_name(m: KsMethod) -> &'static str {
    match m {
        KsMethod::Exact => "exact",
        KsMethod::Asymptotic => "asymp",
    }
}

fn column(rows: &[Vec<f64>], j: usize) -> Vec<f64> {
    rows.iter().map(|r| r[j]).collect()
}

pub fn run(text: &str, check: &mut Check) {
    let Some(file) = parse::<File>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    let t = &file.tolerance;
    check.exact("(file)", "decision tolerance", t.decision.as_str(), "exact");
    for case in &file.cases {
        check.cases += 1;
        match case {
            Case::TwoSample {
                id,
                input,
                expected: e,
                ..
            } => {
                let id = id.as_str();
                let r = match ks::ks_2samp(&input.a, &input.b) {
                    Ok(r) => r,
                    Err(err) => {
                        check.error(id, "ks_2samp", err);
                        continue;
                    }
                };
                let (n, m) = (input.a.len(), input.b.len());
                check.close(id, "statistic", r.statistic, e.statistic, &t.statistic);
                check.close(id, "pvalue", r.p_value, e.pvalue, &t.pvalue);
                check.exact(
                    id,
                    "method_auto",
                    method_name(r.method),
                    e.method_auto.as_str(),
                );
                check.close_opt(
                    id,
                    "pvalue_exact",
                    ks::p_value_exact(n, m, r.statistic),
                    e.pvalue_exact,
                    &t.pvalue_exact,
                );
                check.close(
                    id,
                    "pvalue_asymp",
                    ks::p_value_asymptotic(n, m, r.statistic),
                    e.pvalue_asymp,
                    &t.pvalue_asymp,
                );
                let en = (n * m) as f64 / (n + m) as f64;
                check.close(
                    id,
                    "pvalue_kolmogorov",
                    ks::kolmogorov_sf(en.sqrt() * r.statistic),
                    e.pvalue_kolmogorov,
                    &t.pvalue_kolmogorov,
                );
                let mut pooled: Vec<f64> = input.a.iter().chain(&input.b).copied().collect();
                pooled.sort_by(f64::total_cmp);
                let ties = pooled.windows(2).any(|w| w[0] == w[1]);
                check.exact(id, "has_ties", ties, e.has_ties);
            }
            Case::Multi {
                id,
                input,
                expected: e,
                ..
            } => {
                let id = id.as_str();
                let d = input.reference[0].len();
                let threshold = input.alpha / d as f64;
                let (mut stats, mut ps, mut methods, mut flagged) =
                    (vec![], vec![], vec![], vec![]);
                for j in 0..d {
                    match ks::ks_2samp(&column(&input.reference, j), &column(&input.current, j)) {
                        Ok(r) => {
                            stats.push(r.statistic);
                            ps.push(r.p_value);
                            methods.push(method_name(r.method).to_owned());
                            if r.p_value < threshold {
                                flagged.push(j);
                            }
                        }
                        Err(err) => check.error(id, format_args!("feature {j}"), err),
                    }
                }
                check.close_all(id, "statistics", &stats, &e.statistics, &t.statistic);
                check.close_all(id, "pvalues", &ps, &e.pvalues, &t.pvalue);
                check.exact(id, "methods", &methods, &e.methods);
                let min_p = ps.iter().copied().fold(f64::INFINITY, f64::min);
                check.close(id, "min_pvalue", min_p, e.min_pvalue, &t.pvalue);
                check.close(id, "threshold", threshold, e.threshold, &t.statistic);
                check.exact(id, "drift", min_p < threshold, e.drift);
                check.exact(id, "flagged", &flagged, &e.flagged);
            }
        }
    }
}
