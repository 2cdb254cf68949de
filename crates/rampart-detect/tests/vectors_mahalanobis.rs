//! Reference vectors: `tests/vectors/mahalanobis.json` (copied from `shared/vectors/public`).
//!
//! For every case: mean and covariance from [`CoMoments`], population and sample standard deviations, z-scores
//! against both (constant columns, `null` in the file, must be detected as constant and follow the crate's
//! rule), and Mahalanobis distance and its square with the file's ridge. Tolerances are read from the file's
//! top-level `tolerance` object: `|got - expected| <= atol + rtol * |expected|`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_detect::{CoMoments, Mahalanobis, ZScore};
use serde_json::Value;

const FILE: &str = include_str!("vectors/mahalanobis.json");

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn vec_of(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn mat_of(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(vec_of).collect()
}

#[derive(Clone, Copy)]
struct Tol {
    rtol: f64,
    atol: f64,
}

impl Tol {
    fn from(v: &Value) -> Self {
        Self {
            rtol: f(&v["rtol"]),
            atol: f(&v["atol"]),
        }
    }

    fn check(self, id: &Value, what: &str, got: f64, want: f64) -> usize {
        let allowed = self.atol + self.rtol * want.abs();
        assert!(
            (got - want).abs() <= allowed,
            "{id}: {what} = {got:e}, expected {want:e} (off by {:e}, allowed {allowed:e})",
            (got - want).abs()
        );
        1
    }
}

#[test]
fn every_mahalanobis_vector_matches() {
    let file: Value = serde_json::from_str(FILE).unwrap();
    assert_eq!(file["file"], "mahalanobis.json");
    let t = &file["tolerance"];
    let (t_mean, t_cov, t_std, t_z, t_maha) = (
        Tol::from(&t["mean"]),
        Tol::from(&t["cov"]),
        Tol::from(&t["std_ddof0/std_ddof1"]),
        Tol::from(&t["z_ddof0/z_ddof1"]),
        Tol::from(&t["mahalanobis/mahalanobis_sq"]),
    );
    let cases = file["cases"].as_array().unwrap();
    let (mut checked, mut values, mut constant_z) = (0, 0, 0);
    for case in cases {
        let id = &case["id"];
        let reference = mat_of(&case["input"]["reference"]);
        let queries = mat_of(&case["input"]["queries"]);
        let ridge = f(&case["input"]["ridge"]);
        let e = &case["expected"];
        let d = reference[0].len();

        let mut m = CoMoments::new(d);
        for row in &reference {
            m.push(row).unwrap();
        }
        let mean = m.mean().unwrap().to_vec();
        for (j, want) in vec_of(&e["mean"]).into_iter().enumerate() {
            values += t_mean.check(id, &format!("mean[{j}]"), mean[j], want);
        }
        let cov = m.covariance().unwrap();
        let want_cov = mat_of(&e["cov"]);
        assert_eq!(want_cov.len(), d, "{id}: cov rows");
        for (i, row) in want_cov.iter().enumerate() {
            assert_eq!(row.len(), d, "{id}: cov[{i}]");
            for (j, &want) in row.iter().enumerate() {
                values += t_cov.check(id, &format!("cov[{i}][{j}]"), cov[i][j], want);
            }
        }

        let cov0 = m.covariance_population().unwrap();
        let std0: Vec<f64> = (0..d).map(|j| cov0[j][j].sqrt()).collect();
        let std1: Vec<f64> = (0..d).map(|j| cov[j][j].sqrt()).collect();
        for (name, got, key) in [
            ("std_ddof0", &std0, "std_ddof0"),
            ("std_ddof1", &std1, "std_ddof1"),
        ] {
            for (j, want) in vec_of(&e[key]).into_iter().enumerate() {
                values += t_std.check(id, &format!("{name}[{j}]"), got[j], want);
            }
        }

        for (std, key) in [(&std0, "z_ddof0"), (&std1, "z_ddof1")] {
            let z = ZScore::from_mean_std(mean.clone(), std).unwrap();
            let want = e[key].as_array().unwrap();
            assert_eq!(want.len(), queries.len(), "{id}: {key} rows");
            for (qi, (q, want_row)) in queries.iter().zip(want).enumerate() {
                let want_row = want_row.as_array().unwrap();
                assert_eq!(want_row.len(), d, "{id}: {key}[{qi}]");
                for (j, w) in want_row.iter().enumerate() {
                    let got = z.z(j, q[j]).unwrap();
                    if w.is_null() {
                        // Constant column: the file leaves z undefined; the crate defines it.
                        assert!(
                            z.is_constant(j),
                            "{id}: {key}[{qi}][{j}] should be constant"
                        );
                        let rule = if q[j] == mean[j] { 0.0 } else { f64::INFINITY };
                        assert_eq!(got, rule, "{id}: {key}[{qi}][{j}] constant rule");
                        constant_z += 1;
                    } else {
                        t_z.check(id, &format!("{key}[{qi}][{j}]"), got, f(w));
                    }
                    values += 1;
                }
            }
        }

        let maha = Mahalanobis::new(&mean, &cov, ridge).unwrap_or_else(|err| panic!("{id}: {err}"));
        let want_d = vec_of(&e["mahalanobis"]);
        let want_sq = vec_of(&e["mahalanobis_sq"]);
        assert_eq!(want_d.len(), queries.len(), "{id}: mahalanobis");
        assert_eq!(want_sq.len(), queries.len(), "{id}: mahalanobis_sq");
        for (qi, q) in queries.iter().enumerate() {
            values += t_maha.check(
                id,
                &format!("mahalanobis[{qi}]"),
                maha.distance_f64(q),
                want_d[qi],
            );
            values += t_maha.check(
                id,
                &format!("mahalanobis_sq[{qi}]"),
                maha.distance_sq_f64(q),
                want_sq[qi],
            );
        }
        checked += 1;
    }
    assert_eq!(checked, cases.len());
    assert_eq!(checked, 28, "the public file has 28 cases");
    assert!(constant_z > 0, "the constant-column case was exercised");
    println!("mahalanobis.json: {checked} cases, {values} values checked ({constant_z} constant-column z)");
}
