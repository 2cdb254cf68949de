#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn empty_samples_are_errors() {
    assert!(matches!(
        ks_2samp(&[], &[1.0]),
        Err(StatError::TooFew { .. })
    ));
    assert!(matches!(
        ks_2samp(&[1.0], &[]),
        Err(StatError::TooFew { .. })
    ));
}

#[test]
fn nan_is_an_error() {
    assert!(matches!(
        ks_2samp(&[1.0, f64::NAN], &[1.0]),
        Err(StatError::NonFinite { index: 1, .. })
    ));
}

#[test]
fn identical_samples_give_zero_and_p_one() {
    let a = [1.0, 2.0, 2.0, 3.0];
    let r = ks_2samp(&a, &a).unwrap();
    assert_eq!(r.statistic, 0.0);
    assert_eq!(r.p_value, 1.0);
}

#[test]
fn ties_across_samples_are_evaluated_at_the_tied_value() {
    // F_a(1) = 1, F_b(1) = 1/2 just at the tie; at 2 both are 1.
    let r = ks_2samp(&[1.0, 1.0], &[1.0, 2.0]).unwrap();
    assert!((r.statistic - 0.5).abs() < 1e-15);
}

#[test]
fn disjoint_samples_have_d_one_and_a_tiny_p() {
    let a: Vec<f64> = (0..30).map(f64::from).collect();
    let b: Vec<f64> = (100..140).map(f64::from).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.statistic, 1.0);
    assert_eq!(r.method, KsMethod::Exact);
    assert!(r.p_value < 1e-15);
}

#[test]
fn large_samples_use_the_asymptotic_p_value() {
    let a: Vec<f64> = (0..10_001).map(|i| f64::from(i) * 0.5).collect();
    let b: Vec<f64> = (0..200).map(|i| f64::from(i) * 25.0 + 0.25).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Asymptotic);
    assert!((0.0..=1.0).contains(&r.p_value));
}

#[test]
fn kolmogorov_series_matches_known_values() {
    // Q(1.36) ≈ 0.0494 (the classic 5% critical value), Q(0) = 1.
    assert!((kolmogorov_sf(1.3581) - 0.05).abs() < 1e-4);
    assert_eq!(kolmogorov_sf(0.0), 1.0);
    assert!(kolmogorov_sf(10.0) < 1e-80);
}

#[test]
fn kstwo_is_a_survival_function() {
    for n in [1_u64, 2, 5, 10, 50, 141, 500, 2000] {
        let mut last = 1.0;
        for i in 0..=100 {
            let x = f64::from(i) / 100.0;
            let p = kstwo_sf(n, x);
            assert!((0.0..=1.0).contains(&p), "n={n} x={x} p={p}");
            assert!(p <= last + 1e-9, "n={n} x={x}: {p} > {last}");
            last = p;
        }
    }
}

/// `scipy.stats.kstwo.sf(x, n)` (SciPy 1.17.1), one or more points in each of the regions that pick a
/// different method: Ruben–Gambino, Durbin matrix, Pomeranz, Smirnov tail, Pelz–Good.
#[test]
fn kstwo_matches_scipy_in_every_region() {
    let cases: [(u64, f64, f64); 23] = [
        (3, 0.2, 0.9982222222222222),
        (3, 0.5, 0.3333333333333333),
        (5, 0.3, 0.664),
        (10, 0.15, 0.95396527),
        (10, 0.25, 0.4841115325000003),
        (10, 0.6, 0.0005681672000000003),
        (40, 0.1, 0.7818109707182903),
        (40, 0.2, 0.07048187616884194),
        (40, 0.4, 2.7416081587210553e-06),
        (140, 0.05, 0.8576480297656114),
        (140, 0.12, 0.03252638258561632),
        (140, 0.2, 2.1981563302200222e-05),
        (141, 0.03, 0.9992107601012719),
        (300, 0.02, 0.9995956727697175),
        (300, 0.06, 0.221275575895042),
        (300, 0.1, 0.004595673656972621),
        (1000, 0.01, 0.9999496745370611),
        (1000, 0.03, 0.3226902143914636),
        (1000, 0.06, 0.001428597887952891),
        (5000, 0.005, 0.9995858441477996),
        (5000, 0.02, 0.03613941395325637),
        (200_000, 0.001, 0.9881500208855729),
        (200_000, 0.004, 0.003314212822560255),
    ];
    for (n, x, want) in cases {
        let got = kstwo_sf(n, x);
        assert!(
            (got - want).abs() <= 1e-10 + 1e-8 * want,
            "n={n} x={x}: {got:e} vs {want:e}"
        );
    }
}
