#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn fewer_than_three_values_is_an_error() {
    assert!(matches!(
        shapiro_wilk(&[1.0, 2.0]),
        Err(StatError::TooFew {
            needed: 3,
            got: 2,
            ..
        })
    ));
    assert!(matches!(shapiro_wilk(&[]), Err(StatError::TooFew { .. })));
}

#[test]
fn nan_and_infinity_are_errors_not_panics() {
    assert!(matches!(
        shapiro_wilk(&[1.0, f64::NAN, 2.0, 3.0]),
        Err(StatError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        shapiro_wilk(&[1.0, 2.0, f64::INFINITY]),
        Err(StatError::NonFinite { index: 2, .. })
    ));
}

#[test]
fn identical_values_are_degenerate() {
    assert!(matches!(
        shapiro_wilk(&[4.2; 10]),
        Err(StatError::Degenerate { .. })
    ));
}

#[test]
fn order_and_shift_do_not_change_w() {
    let x = [3.1, 0.2, 5.5, 1.7, 2.2, 4.0, 0.9, 2.8];
    let a = shapiro_wilk(&x).unwrap();
    let mut y: Vec<f64> = x.iter().rev().map(|v| v + 1e6).collect();
    y.swap(0, 3);
    let b = shapiro_wilk(&y).unwrap();
    assert!((a.w - b.w).abs() < 1e-9, "{} vs {}", a.w, b.w);
}

#[test]
fn ties_are_fine() {
    let r = shapiro_wilk(&[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0]).unwrap();
    assert!(r.w > 0.0 && r.w <= 1.0);
    assert!((0.0..=1.0).contains(&r.p_value));
}

#[test]
fn a_skewed_sample_has_a_small_p_value() {
    let x: Vec<f64> = (1..=200).map(|i| f64::from(i).powi(4)).collect();
    let r = shapiro_wilk(&x).unwrap();
    assert!(r.w < 0.9 && r.p_value < 1e-6, "{r:?}");
}

#[test]
fn sorted_entry_point_agrees_and_refuses_unsorted_input() {
    let x = [3.1, 0.2, 5.5, 1.7, 2.2, 4.0, 0.9, 2.8, 7.5, 1.1];
    let mut y = x.to_vec();
    y.sort_by(f64::total_cmp);
    let a = shapiro_wilk(&x).unwrap();
    let b = shapiro_wilk_sorted(&y).unwrap();
    assert!((a.w - b.w).abs() < 1e-12, "{} vs {}", a.w, b.w);
    assert!((a.p_value - b.p_value).abs() < 1e-12);
    assert!(matches!(
        shapiro_wilk_sorted(&x),
        Err(StatError::InvalidParameter { .. })
    ));
    assert!(matches!(
        shapiro_wilk_sorted(&[1.0, 2.0]),
        Err(StatError::TooFew { .. })
    ));
}
