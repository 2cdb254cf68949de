#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn too_small_or_non_finite_inputs_are_errors() {
    assert!(matches!(psi(&[1.0], &[1.0]), Err(StatError::TooFew { .. })));
    assert!(matches!(
        psi(&[1.0, 2.0], &[]),
        Err(StatError::TooFew { .. })
    ));
    assert!(matches!(
        psi(&[1.0, f64::NAN], &[1.0]),
        Err(StatError::NonFinite { .. })
    ));
}

#[test]
fn same_sample_is_zero() {
    let r: Vec<f64> = (0..1000).map(f64::from).collect();
    let p = psi(&r, &r).unwrap();
    assert!(p.value.abs() < 1e-12);
    assert_eq!(p.ref_counts, p.cur_counts);
}

#[test]
fn a_constant_reference_keeps_every_value_in_one_bin_and_stays_finite() {
    let p = psi(&[5.0; 100], &[1.0, 5.0, 9.0]).unwrap();
    // Every edge is 5: below 5 is bin 0, 5 and above go to the top bin.
    assert_eq!(p.ref_counts[9], 100);
    assert_eq!(p.cur_counts[0], 1);
    assert_eq!(p.cur_counts[9], 2);
    assert!(p.value.is_finite() && p.value > 0.0);
}

#[test]
fn a_value_on_an_edge_goes_to_the_upper_bin() {
    let r: Vec<f64> = (0..=10).map(f64::from).collect();
    let reference = PsiReference::new(&r).unwrap();
    assert_eq!(reference.inner_edges()[0], 1.0);
    assert_eq!(reference.bin(1.0), 1);
    assert_eq!(reference.bin(0.999), 0);
}

#[test]
fn a_shift_raises_psi() {
    let r: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
    let c: Vec<f64> = r.iter().map(|v| v + 0.5).collect();
    assert!(psi(&r, &c).unwrap().value > 0.25);
}
