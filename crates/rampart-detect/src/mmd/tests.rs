#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn grid(n: usize, shift: f64) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            let t = i as f64;
            vec![(t * 0.37).sin() + shift, (t * 0.11).cos() * 2.0]
        })
        .collect()
}

#[test]
fn shape_errors_are_typed() {
    let x = grid(5, 0.0);
    assert!(matches!(mmd2(&x[..1], &x), Err(StatError::TooFew { .. })));
    let bad = vec![vec![1.0], vec![2.0, 3.0]];
    assert!(matches!(
        mmd2(&x, &bad),
        Err(StatError::WidthMismatch { .. })
    ));
    let nan = vec![vec![1.0, f64::NAN], vec![2.0, 3.0]];
    assert!(matches!(mmd2(&x, &nan), Err(StatError::NonFinite { .. })));
}

#[test]
fn all_identical_points_have_no_bandwidth() {
    let x = vec![vec![1.0, 1.0]; 4];
    assert!(matches!(mmd2(&x, &x), Err(StatError::Degenerate { .. })));
}

#[test]
fn identical_samples_have_zero_biased_mmd() {
    let x = grid(20, 0.0);
    let r = mmd2(&x, &x).unwrap();
    assert!(r.mmd2_biased.abs() < 1e-12);
}

#[test]
fn permutation_p_value_is_reproducible_and_separates_shift() {
    // Interleaved halves of one sequence: the same distribution.
    let all = grid(80, 0.0);
    let x: Vec<Vec<f64>> = all.iter().step_by(2).cloned().collect();
    let same: Vec<Vec<f64>> = all.iter().skip(1).step_by(2).cloned().collect();
    let shifted = grid(40, 1.5);
    let a = mmd_permutation_test(&x, &shifted, 99, 7).unwrap();
    let b = mmd_permutation_test(&x, &shifted, 99, 7).unwrap();
    assert_eq!(a, b);
    assert!((a.p_value - 0.01).abs() < 1e-12, "{}", a.p_value);
    let c = mmd_permutation_test(&x, &same, 99, 7).unwrap();
    assert!(c.p_value > 0.05, "{}", c.p_value);
    assert!(c.p_value > 0.0 && c.p_value <= 1.0);
}

#[test]
fn zero_permutations_give_p_one() {
    let x = grid(10, 0.0);
    let y = grid(10, 1.0);
    assert_eq!(mmd_permutation_test(&x, &y, 0, 1).unwrap().p_value, 1.0);
}

#[test]
fn shuffle_is_a_permutation() {
    let mut rng = SplitMix64(42);
    let mut v: Vec<usize> = (0..100).collect();
    rng.shuffle(&mut v);
    let mut s = v.clone();
    s.sort_unstable();
    assert_eq!(s, (0..100).collect::<Vec<_>>());
    assert_ne!(v, s);
}

#[test]
fn too_many_pooled_rows_are_refused_not_allocated() {
    let x = vec![vec![0.0]; MAX_POOLED_ROWS];
    let y = vec![vec![1.0]; 2];
    assert!(matches!(
        mmd2(&x, &y),
        Err(StatError::InvalidParameter { .. })
    ));
}
