//! `mahalanobis.json`: mean and covariance ([`CoMoments`]), both standard deviations, z-scores against each
//! (a constant column, `null` in the file, must follow the crate's rule: 0 at the mean, infinite elsewhere),
//! and the Mahalanobis distance and its square with the file's ridge.

use rampart_detect::{CoMoments, Mahalanobis, ZScore};
use serde::Deserialize;

use crate::common::{header, parse, Check, Tol, VectorFile};

type File = VectorFile<Tolerance, Case>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    mean: Tol,
    cov: Tol,
    #[serde(rename = "std_ddof0/std_ddof1")]
    std: Tol,
    #[serde(rename = "z_ddof0/z_ddof1")]
    z: Tol,
    #[serde(rename = "mahalanobis/mahalanobis_sq")]
    maha: Tol,
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
    reference: Vec<Vec<f64>>,
    queries: Vec<Vec<f64>>,
    ridge: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    mean: Vec<f64>,
    cov: Vec<Vec<f64>>,
    #[serde(rename = "cond_S")]
    cond_s: f64,
    mahalanobis: Vec<f64>,
    mahalanobis_sq: Vec<f64>,
    std_ddof0: Vec<f64>,
    std_ddof1: Vec<f64>,
    z_ddof0: Vec<Vec<Option<f64>>>,
    z_ddof1: Vec<Vec<Option<f64>>>,
}

pub fn run(text: &str, check: &mut Check) {
    let Some(file) = parse::<File>(text, check) else {
        return;
    };
    header(check, &file.file, &file.set);
    let t = &file.tolerance;
    let mut constant_z = 0;
    for case in &file.cases {
        check.cases += 1;
        let id = case.id.as_str();
        let e = &case.expected;
        let d = case.input.reference[0].len();
        let mut m = CoMoments::new(d);
        for row in &case.input.reference {
            m.push(row).unwrap();
        }
        let mean = m.mean().unwrap().to_vec();
        check.close_all(id, "mean", &mean, &e.mean, &t.mean);
        let cov = m.covariance().unwrap();
        check.exact(id, "cov rows", cov.len(), e.cov.len());
        for (i, (got, want)) in cov.iter().zip(&e.cov).enumerate() {
            check.close_all(id, &format!("cov[{i}]"), got, want, &t.cov);
        }
        let cov0 = m.covariance_population().unwrap();
        let std0: Vec<f64> = (0..d).map(|j| cov0[j][j].sqrt()).collect();
        let std1: Vec<f64> = (0..d).map(|j| cov[j][j].sqrt()).collect();
        check.close_all(id, "std_ddof0", &std0, &e.std_ddof0, &t.std);
        check.close_all(id, "std_ddof1", &std1, &e.std_ddof1, &t.std);

        for (std, key, want) in [
            (&std0, "z_ddof0", &e.z_ddof0),
            (&std1, "z_ddof1", &e.z_ddof1),
        ] {
            let z = ZScore::from_mean_std(mean.clone(), std).unwrap();
            check.exact(
                id,
                format_args!("{key} rows"),
                want.len(),
                case.input.queries.len(),
            );
            for (qi, (q, want_row)) in case.input.queries.iter().zip(want).enumerate() {
                check.exact(id, format_args!("{key}[{qi}] width"), want_row.len(), d);
                for (j, w) in want_row.iter().enumerate() {
                    let got = z.z(j, q[j]).unwrap();
                    match w {
                        None => {
                            // Constant column: the file leaves z undefined; the crate defines it.
                            check.exact(
                                id,
                                format_args!("{key}[{qi}][{j}] constant"),
                                z.is_constant(j),
                                true,
                            );
                            let rule = if q[j] == mean[j] { 0.0 } else { f64::INFINITY };
                            check.exact(
                                id,
                                format_args!("{key}[{qi}][{j}] constant rule"),
                                got,
                                rule,
                            );
                            constant_z += 1;
                        }
                        Some(w) => check.close(id, format_args!("{key}[{qi}][{j}]"), got, *w, &t.z),
                    }
                }
            }
        }

        let maha = match Mahalanobis::new(&mean, &cov, case.input.ridge) {
            Ok(m) => m,
            Err(err) => {
                check.error(id, "Mahalanobis::new", err);
                continue;
            }
        };
        let got_d: Vec<f64> = case
            .input
            .queries
            .iter()
            .map(|q| maha.distance_f64(q))
            .collect();
        let got_sq: Vec<f64> = case
            .input
            .queries
            .iter()
            .map(|q| maha.distance_sq_f64(q))
            .collect();
        check.close_all(id, "mahalanobis", &got_d, &e.mahalanobis, &t.maha);
        check.close_all(id, "mahalanobis_sq", &got_sq, &e.mahalanobis_sq, &t.maha);
    }
    if constant_z == 0 {
        check.fail("(file)", "the constant-column case was not exercised");
    }
}
