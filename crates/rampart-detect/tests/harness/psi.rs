//! `psi.json`: PSI, the 9 inner edges and both count vectors; the file's bin count and floor must be the
//! crate's constants.

use rampart_detect::psi::{self, BINS, EPSILON};
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
    bins: usize,
    epsilon_floor: f64,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    psi: Tol,
    inner_edges: Tol,
    #[serde(rename = "ref_counts/cur_counts")]
    counts: String,
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
    reference: Vec<f64>,
    current: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    psi: f64,
    inner_edges: Vec<f64>,
    ref_counts: Vec<u64>,
    cur_counts: Vec<u64>,
}

pub fn run(text: &str, check: &mut Check) {
    let Some(file) = parse::<File>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    check.exact("(file)", "bins", file.bins, BINS);
    check.exact("(file)", "epsilon_floor", file.epsilon_floor, EPSILON);
    check.exact(
        "(file)",
        "counts tolerance",
        file.tolerance.counts.as_str(),
        "exact",
    );
    let t = &file.tolerance;
    for case in &file.cases {
        check.cases += 1;
        let id = case.id.as_str();
        let r = match psi::psi(&case.input.reference, &case.input.current) {
            Ok(r) => r,
            Err(err) => {
                check.error(id, "psi", err);
                continue;
            }
        };
        let e = &case.expected;
        check.close(id, "psi", r.value, e.psi, &t.psi);
        check.close_all(
            id,
            "inner_edges",
            &r.inner_edges,
            &e.inner_edges,
            &t.inner_edges,
        );
        check.exact(
            id,
            "ref_counts",
            r.ref_counts.to_vec(),
            e.ref_counts.clone(),
        );
        check.exact(
            id,
            "cur_counts",
            r.cur_counts.to_vec(),
            e.cur_counts.clone(),
        );
    }
}
