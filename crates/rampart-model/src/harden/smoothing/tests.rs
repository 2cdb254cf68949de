#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::{ModelInfo, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A two-feature, two-class model: class 1 when x₀ > 0. Counts its calls.
struct Threshold {
    info: ModelInfo,
    calls: AtomicUsize,
    nan: bool,
}

impl Threshold {
    fn new(kind: ModelKind) -> Self {
        Self {
            info: ModelInfo {
                name: "threshold".into(),
                input_name: "x".into(),
                width: 2,
                kind,
                outputs: vec!["p".into()],
                values_output: "p".into(),
                labels_output: None,
                opset: 0,
                ops: vec![],
            },
            calls: AtomicUsize::new(0),
            nan: false,
        }
    }
    fn classifier() -> Self {
        Self::new(ModelKind::Classifier { classes: 2 })
    }
}

impl Backend for Threshold {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn predict(&self, rows: &[f32], n_rows: usize) -> Result<Output, RunError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        assert_eq!(rows.len(), n_rows * 2);
        let values = rows
            .chunks(2)
            .flat_map(|r| match (self.nan, r[0] > 0.0) {
                (true, _) => [f32::NAN, f32::NAN],
                (false, true) => [0.1, 0.9],
                (false, false) => [0.9, 0.1],
            })
            .collect();
        Ok(Output {
            n_rows,
            kind: self.info.kind,
            values,
            labels: None,
        })
    }
}

fn smoother(sigma: f64, n: usize, alpha: f64, mode: Mode) -> Smoother {
    Smoother::new(Config {
        sigma,
        n0: 50,
        n,
        alpha,
        mode,
        max_batch: 64,
        seed: None,
    })
    .unwrap()
}

#[test]
fn same_seed_same_answer() {
    let m = Threshold::classifier();
    let s = smoother(1.0, 500, 0.001, Mode::Predict);
    let x = [0.3, -1.0];
    let a = s.predict(&m, &x, &mut noise_rng(7)).unwrap();
    let b = s.predict(&m, &x, &mut noise_rng(7)).unwrap();
    assert_eq!(a, b);
    let c = s.predict(&m, &x, &mut noise_rng(8)).unwrap();
    assert_ne!(a.counts, c.counts, "another seed draws other noise");
    let ca = s.certify(&m, &x, &mut noise_rng(7)).unwrap();
    let cb = s.certify(&m, &x, &mut noise_rng(7)).unwrap();
    assert_eq!(ca, cb);
}

#[test]
fn batches_through_the_backend() {
    let m = Threshold::classifier();
    let s = smoother(0.1, 1000, 0.001, Mode::Predict);
    let p = s.predict(&m, &[5.0, 0.0], &mut noise_rng(1)).unwrap();
    assert_eq!(p.counts.iter().sum::<u64>(), 1000);
    // 1000 samples, 64 per call.
    assert_eq!(m.calls.load(Ordering::Relaxed), 16);
}

#[test]
fn far_from_the_boundary_predicts_and_certifies() {
    let m = Threshold::classifier();
    let p = smoother(0.5, 1000, 0.001, Mode::Predict)
        .predict(&m, &[3.0, 0.0], &mut noise_rng(1))
        .unwrap();
    assert_eq!(p.decision, Decision::Class(1));
    assert!(p.pvalue <= 0.001);
    let c = smoother(0.5, 1000, 0.001, Mode::Certify)
        .certify(&m, &[3.0, 0.0], &mut noise_rng(1))
        .unwrap();
    assert_eq!(c.decision, Decision::Class(1));
    let r = c.radius.unwrap();
    // The true distance to the boundary is 3; the certificate is a lower bound.
    assert!(r > 1.0 && r < 3.0, "{r}");
}

#[test]
fn on_the_boundary_abstains() {
    let m = Threshold::classifier();
    // x₀ = 0: each class gets half the votes.
    let p = smoother(1.0, 1000, 0.001, Mode::Predict)
        .predict(&m, &[0.0, 0.0], &mut noise_rng(3))
        .unwrap();
    assert_eq!(p.decision, Decision::Abstain);
    assert!(p.pvalue > 0.001);
    assert_eq!(p.n_a + p.n_b, 1000);
    let c = smoother(1.0, 1000, 0.001, Mode::Certify)
        .certify(&m, &[0.0, 0.0], &mut noise_rng(3))
        .unwrap();
    assert_eq!(c.decision, Decision::Abstain);
    assert!(c.radius.is_none() && c.pa_lower < 0.5);
}

#[test]
fn alpha_edges() {
    // Unanimous votes: p = 2·2⁻ⁿ. With n = 10 that is ≈ 0.00195: above 0.001, below 0.01.
    assert!(predict_from_counts(10, 0, 0.001).1);
    assert!(!predict_from_counts(10, 0, 0.01).1);
    // Tiny alpha: nothing is ever enough.
    assert!(predict_from_counts(1_000_000, 0, 1e-300).1 || binom_test_half(1_000_000, 0) <= 1e-300);
    assert!(predict_from_counts(100, 0, f64::MIN_POSITIVE).1);
    // Ties always abstain, whatever alpha below 1.
    assert_eq!(predict_from_counts(500, 500, 0.999), (1.0, true));
    // CERTIFY: all n votes give alpha^(1/n); below 1/2 abstains.
    let (lo, r) = certify_from_counts(10, 10, 0.001, 1.0);
    assert!((lo - 0.001f64.powf(0.1)).abs() < 1e-15 && r.is_some());
    let (lo, r) = certify_from_counts(10, 10, 1e-4, 1.0);
    assert!(lo < 0.5 && r.is_none());
    // Out-of-range inputs never certify.
    assert_eq!(certify_from_counts(11, 10, 0.001, 1.0).1, None);
    assert_eq!(certify_from_counts(10, 10, 0.0, 1.0).1, None);
    assert_eq!(certify_from_counts(10, 10, 1.0, 1.0).1, None);
    assert_eq!(certify_from_counts(10, 10, f64::NAN, 1.0).1, None);
    assert_eq!(certify_from_counts(10, 10, 0.001, f64::NAN).1, None);
    assert_eq!(certify_from_counts(0, 0, 0.001, 1.0).1, None);
}

#[test]
fn bad_params_are_typed_errors() {
    let base = Config::with_sigma(0.25);
    let cases: Vec<(Config, &str)> = vec![
        (
            Config {
                sigma: 0.0,
                ..base.clone()
            },
            "sigma",
        ),
        (
            Config {
                sigma: -1.0,
                ..base.clone()
            },
            "sigma",
        ),
        (
            Config {
                sigma: f64::NAN,
                ..base.clone()
            },
            "sigma",
        ),
        (
            Config {
                sigma: f64::INFINITY,
                ..base.clone()
            },
            "sigma",
        ),
        (
            Config {
                sigma: 1e300,
                ..base.clone()
            },
            "sigma",
        ),
        (
            Config {
                n: 0,
                ..base.clone()
            },
            "n",
        ),
        (
            Config {
                n0: 0,
                ..base.clone()
            },
            "n0",
        ),
        (
            Config {
                alpha: 0.0,
                ..base.clone()
            },
            "alpha",
        ),
        (
            Config {
                alpha: 1.0,
                ..base.clone()
            },
            "alpha",
        ),
        (
            Config {
                alpha: f64::NAN,
                ..base.clone()
            },
            "alpha",
        ),
        (
            Config {
                max_batch: 0,
                ..base.clone()
            },
            "max_batch",
        ),
        (
            Config {
                max_batch: MAX_BATCH + 1,
                ..base.clone()
            },
            "max_batch",
        ),
        (
            Config {
                n: MAX_SAMPLES + 1,
                ..base.clone()
            },
            "n",
        ),
        (
            Config {
                n0: usize::MAX,
                ..base.clone()
            },
            "n0",
        ),
    ];
    for (config, want) in cases {
        match Smoother::new(config.clone()) {
            Err(SmoothingError::InvalidParam { field, .. }) => {
                assert_eq!(field, want, "{config:?}")
            }
            other => panic!("{config:?}: {other:?}"),
        }
    }
    assert!(Smoother::new(base).is_ok());
}

#[test]
fn nan_never_panics() {
    let m = Threshold::classifier();
    let s = smoother(0.25, 100, 0.001, Mode::Predict);
    let err = s
        .predict(&m, &[f32::NAN, 0.0], &mut noise_rng(0))
        .unwrap_err();
    assert!(
        matches!(err, SmoothingError::NonFinite { index: 0 }),
        "{err}"
    );
    let err = s
        .certify(&m, &[0.0, f32::INFINITY], &mut noise_rng(0))
        .unwrap_err();
    assert!(
        matches!(err, SmoothingError::NonFinite { index: 1 }),
        "{err}"
    );
    let err = s.predict(&m, &[0.0], &mut noise_rng(0)).unwrap_err();
    assert!(matches!(
        err,
        SmoothingError::WrongWidth {
            expected: 2,
            got: 1
        }
    ));

    let mut nan_model = Threshold::classifier();
    nan_model.nan = true;
    let err = s
        .predict(&nan_model, &[0.0, 0.0], &mut noise_rng(0))
        .unwrap_err();
    assert!(matches!(err, SmoothingError::NoVote), "{err}");

    let reg = Threshold::new(ModelKind::Regressor { outputs: 1 });
    let err = s.predict(&reg, &[0.0, 0.0], &mut noise_rng(0)).unwrap_err();
    assert!(matches!(err, SmoothingError::NotAClassifier));

    // The statistics return NaN or abstain rather than panic on nonsense.
    assert!(clopper_pearson_lower(5, 3, 0.01).is_nan());
    assert!(clopper_pearson_lower(5, 10, f64::NAN).is_nan());
    assert!(normal_ppf(f64::NAN).is_nan() && normal_ppf(1.5).is_nan());
    assert!(predict_from_counts(3, 1, f64::NAN).1);
}

#[test]
fn config_parses_with_defaults_and_refuses_unknown_fields() {
    let c: Config = serde_json::from_str(r#"{"sigma": 0.25, "mode": "certify"}"#).unwrap();
    assert_eq!(c.n0, 100);
    assert_eq!(c.n, 1000);
    assert_eq!(c.alpha, 0.001);
    assert_eq!(c.mode, Mode::Certify);
    assert!(serde_json::from_str::<Config>(r#"{"sigma": 0.25, "sigmaa": 1}"#).is_err());
    assert!(serde_json::from_str::<Config>(r#"{"n": 10}"#).is_err());
}

#[test]
fn statistics_agree_with_closed_forms() {
    // P(X ≤ 0) for n = 56 is 2⁻⁵⁶; two-sided doubles it.
    let want = 2.0 * 0.5f64.powi(56);
    assert!((binom_test_half(56, 0) / want - 1.0).abs() < 1e-12);
    // n = 10, k = 3: P(X ≤ 3) = 176/1024.
    assert!((binom_test_half(7, 3) - 2.0 * 176.0 / 1024.0).abs() < 1e-14);
    assert_eq!(binom_test_half(0, 0), 1.0);
    // Φ⁻¹(0.975) ≈ 1.959963984540054.
    assert!((normal_ppf(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
}
