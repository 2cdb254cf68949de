#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{chi2_threshold, Mahalanobis, MahalanobisError, STACK_WIDTH};

fn identity(d: usize) -> Vec<Vec<f64>> {
    (0..d)
        .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

#[test]
fn identity_covariance_gives_euclidean_distance() {
    let m = Mahalanobis::new(&[1.0, 2.0, 3.0], &identity(3), 0.0).unwrap();
    assert_eq!(m.distance_sq(&[1.0, 2.0, 3.0]), 0.0);
    assert_eq!(m.distance_sq(&[4.0, 6.0, 3.0]), 25.0);
    assert_eq!(m.distance(&[4.0, 6.0, 3.0]), 5.0);
}

#[test]
fn diagonal_covariance_scales_each_feature() {
    let cov = vec![vec![4.0, 0.0], vec![0.0, 100.0]];
    let m = Mahalanobis::new(&[0.0, 0.0], &cov, 0.0).unwrap();
    // (2/2)^2 + (10/10)^2
    assert!((m.distance_sq_f64(&[2.0, 10.0]) - 2.0).abs() < 1e-15);
}

#[test]
fn correlated_pair_matches_explicit_inverse() {
    let (a, b, c) = (2.0, 0.8, 1.5);
    let cov = vec![vec![a, b], vec![b, c]];
    let m = Mahalanobis::new(&[1.0, -1.0], &cov, 0.0).unwrap();
    let (x, y) = (2.5 - 1.0, 0.25 + 1.0);
    let det = a * c - b * b;
    let expected = (c * x * x - 2.0 * b * x * y + a * y * y) / det;
    let got = m.distance_sq_f64(&[2.5, 0.25]);
    assert!(
        (got - expected).abs() < 1e-13 * expected,
        "{got} vs {expected}"
    );
    // The f32 path sees the same, exactly representable, numbers.
    assert_eq!(m.distance_sq(&[2.5, 0.25]), got);
}

#[test]
fn singular_covariance_without_ridge_is_refused() {
    let cov = vec![vec![1.0, 1.0], vec![1.0, 1.0]];
    assert_eq!(
        Mahalanobis::new(&[0.0, 0.0], &cov, 0.0),
        Err(MahalanobisError::NotPositiveDefinite { pivot: 1 })
    );
    assert!(Mahalanobis::new(&[0.0, 0.0], &cov, 1e-6).is_ok());
}

#[test]
fn ridge_makes_constant_feature_factorable() {
    let cov = vec![vec![1.0, 0.0], vec![0.0, 0.0]];
    assert!(Mahalanobis::new(&[0.0, 5.0], &cov, 0.0).is_err());
    let m = Mahalanobis::new(&[0.0, 5.0], &cov, 1e-6).unwrap();
    assert_eq!(m.distance_sq(&[0.0, 5.0]), 0.0);
    assert!(
        m.distance_sq(&[0.0, 5.01]) > 99.0,
        "a moved constant is far away"
    );
}

#[test]
fn wrong_width_scores_infinity() {
    let m = Mahalanobis::new(&[0.0, 0.0], &identity(2), 0.0).unwrap();
    assert_eq!(m.distance_sq(&[0.0]), f64::INFINITY);
    assert_eq!(m.distance_sq(&[0.0, 0.0, 0.0]), f64::INFINITY);
}

#[test]
fn nan_input_scores_infinity() {
    let m = Mahalanobis::new(&[0.0, 0.0], &identity(2), 0.0).unwrap();
    assert_eq!(m.distance_sq(&[f32::NAN, 0.0]), f64::INFINITY);
    assert_eq!(m.distance_sq(&[0.0, f32::INFINITY]), f64::INFINITY);
}

#[test]
fn wide_input_takes_heap_path_and_agrees() {
    let d = STACK_WIDTH + 36;
    let mean = vec![0.5; d];
    let cov: Vec<Vec<f64>> = (0..d)
        .map(|i| (0..d).map(|j| if i == j { 4.0 } else { 0.0 }).collect())
        .collect();
    let m = Mahalanobis::new(&mean, &cov, 0.0).unwrap();
    let x = vec![2.5_f32; d];
    assert!((m.distance_sq(&x) - d as f64).abs() < 1e-12);
}

#[test]
fn malformed_inputs_are_refused() {
    assert_eq!(
        Mahalanobis::new(&[], &[], 0.0),
        Err(MahalanobisError::Empty)
    );
    assert!(matches!(
        Mahalanobis::new(&[0.0, 0.0], &identity(3), 0.0),
        Err(MahalanobisError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        Mahalanobis::new(&[0.0, 0.0], &[vec![1.0, 0.0], vec![0.0]], 0.0),
        Err(MahalanobisError::DimensionMismatch { .. })
    ));
    assert_eq!(
        Mahalanobis::new(&[f64::NAN], &identity(1), 0.0),
        Err(MahalanobisError::NonFinite)
    );
    assert_eq!(
        Mahalanobis::new(&[0.0], &identity(1), -1.0),
        Err(MahalanobisError::InvalidRidge(-1.0))
    );
    assert_eq!(
        Mahalanobis::new(&[0.0, 0.0], &[vec![1.0, 0.5], vec![0.0, 1.0]], 0.0),
        Err(MahalanobisError::NotSymmetric { row: 1, col: 0 })
    );
}

#[test]
fn chi2_threshold_matches_scipy() {
    // scipy.stats.chi2.ppf(p, d) ** 0.5
    for (d, p, expected) in [
        (1, 0.95, 1.959_963_984_540_053_8),
        (2, 0.99, 3.034_854_258_770_292_5),
        (30, 0.99, 7.133_875_616_487_652),
        (30, 0.999, 7.726_775_802_650_802),
        (64, 0.9999, 10.716_049_724_023_02),
    ] {
        let got = chi2_threshold(d, p).unwrap();
        assert!(
            (got - expected).abs() < 1e-9 * expected,
            "d={d} p={p}: {got} vs {expected}"
        );
    }
}

#[test]
fn chi2_threshold_refuses_bad_arguments() {
    assert_eq!(
        chi2_threshold(0, 0.99),
        Err(MahalanobisError::InvalidDegreesOfFreedom)
    );
    for p in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
        assert!(matches!(
            chi2_threshold(3, p),
            Err(MahalanobisError::InvalidProbability(_))
        ));
    }
}
