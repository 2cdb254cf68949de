#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{ZScore, ZScoreError};
use crate::baseline::BaselineBuilder;

fn scorer() -> ZScore {
    ZScore::from_mean_std(vec![10.0, 0.1, -3.0], &[2.0, 0.0, 0.5]).unwrap()
}

#[test]
fn picks_feature_with_largest_abs_z() {
    let z = scorer();
    assert_eq!(z.max_abs_z(&[14.0, 0.1, -3.5]), (0, 2.0));
    assert_eq!(z.max_abs_z(&[11.0, 0.1, -5.0]), (2, 4.0));
    assert_eq!(z.max_abs_z(&[10.0, 0.1, -3.0]), (0, 0.0));
}

#[test]
fn constant_feature_has_infinite_z_off_value() {
    let z = scorer();
    assert_eq!(z.max_abs_z(&[10.0, 0.2, -3.0]), (1, f64::INFINITY));
    assert_eq!(z.z(1, 0.100_000_1), Some(f64::INFINITY));
}

#[test]
fn constant_feature_has_zero_z_on_value() {
    let z = scorer();
    assert!(z.is_constant(1));
    assert_eq!(z.z(1, 0.1), Some(0.0));
    // 0.1 is not representable; an f32 request carrying the constant still matches it.
    assert_eq!(z.max_abs_z(&[10.0, 0.1_f32, -3.0]), (0, 0.0));
    assert_eq!(z.max_abs_z_f64(&[10.0, 0.1, -3.0]), (0, 0.0));
}

#[test]
fn nan_fails_closed() {
    let z = scorer();
    assert_eq!(z.max_abs_z(&[10.0, 0.1, f32::NAN]), (2, f64::INFINITY));
    assert_eq!(z.max_abs_z(&[10.0, f32::NAN, -3.0]), (1, f64::INFINITY));
    assert_eq!(z.z(0, f64::NAN), Some(f64::INFINITY));
}

#[test]
fn wrong_width_fails_closed() {
    let z = scorer();
    assert_eq!(z.max_abs_z(&[10.0, 0.1]), (2, f64::INFINITY));
    assert_eq!(z.max_abs_z(&[10.0, 0.1, -3.0, 1.0]), (3, f64::INFINITY));
    assert_eq!(z.z(3, 1.0), None);
}

#[test]
fn signed_z_keeps_direction() {
    let z = scorer();
    assert_eq!(z.z(0, 6.0), Some(-2.0));
    assert_eq!(z.z(2, -2.0), Some(2.0));
}

#[test]
fn refuses_bad_parameters() {
    assert_eq!(ZScore::from_mean_std(vec![], &[]), Err(ZScoreError::Empty));
    assert_eq!(
        ZScore::from_mean_std(vec![0.0], &[1.0, 2.0]),
        Err(ZScoreError::LengthMismatch { means: 1, stds: 2 })
    );
    assert_eq!(
        ZScore::from_mean_std(vec![0.0], &[-1.0]),
        Err(ZScoreError::InvalidFeature { feature: 0 })
    );
    assert_eq!(
        ZScore::from_mean_std(vec![f64::INFINITY], &[1.0]),
        Err(ZScoreError::InvalidFeature { feature: 0 })
    );
}

#[test]
fn uses_baseline_sample_std() {
    let mut b = BaselineBuilder::new(["a", "b"]);
    for r in [[1.0, 7.0], [2.0, 7.0], [3.0, 7.0]] {
        b.push(&r).unwrap();
    }
    let z = ZScore::new(&b.finish().unwrap());
    // mean 2, sample std 1; b constant at 7.
    assert_eq!(z.max_abs_z(&[5.0, 7.0]), (0, 3.0));
    assert_eq!(z.max_abs_z(&[2.0, 7.5]), (1, f64::INFINITY));
}
