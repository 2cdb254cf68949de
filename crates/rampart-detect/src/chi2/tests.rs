#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn mismatched_or_empty_inputs_are_errors() {
    assert!(matches!(
        chi2_counts(&[1, 2], &[1]),
        Err(StatError::WidthMismatch { .. })
    ));
    assert!(matches!(
        chi2_counts(&[], &[]),
        Err(StatError::TooFew { .. })
    ));
    assert!(matches!(
        chi2_counts(&[0, 0], &[1, 2]),
        Err(StatError::TooFew { .. })
    ));
}

#[test]
fn negative_and_nan_counts_are_errors() {
    assert!(matches!(
        chi2_categorical(&[1.0, -1.0], &[1.0, 1.0]),
        Err(StatError::InvalidParameter { .. })
    ));
    assert!(matches!(
        chi2_categorical(&[1.0, f64::NAN], &[1.0, 1.0]),
        Err(StatError::NonFinite { .. })
    ));
}

#[test]
fn proportional_counts_are_no_drift() {
    let r = chi2_counts(&[500, 300, 200], &[250, 150, 100]).unwrap();
    assert_eq!(r.statistic, 0.0);
    assert_eq!(r.p_value, 1.0);
    assert_eq!(r.dof, 2);
    assert!(r.yates.is_none());
}

#[test]
fn a_single_category_has_nothing_to_compare() {
    let r = chi2_counts(&[10, 0], &[3, 0]).unwrap();
    assert_eq!(r.dof, 0);
    assert_eq!(r.dropped, vec![1]);
    assert_eq!(r.p_value, 1.0);
}

#[test]
fn two_categories_report_yates_too() {
    let r = chi2_counts(&[50, 50], &[30, 70]).unwrap();
    let (ys, yp) = r.yates.unwrap();
    assert!(ys < r.statistic && yp > r.p_value);
}
