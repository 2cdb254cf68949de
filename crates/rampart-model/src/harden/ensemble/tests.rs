#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn mean_averages_and_vote_counts() {
    let a = [0.6f32, 0.4];
    let b = [0.2f32, 0.8];
    let c = [0.7f32, 0.3];
    let m = aggregate(&[&a, &b, &c], Aggregation::Mean).unwrap();
    assert!((m[0] - 0.5).abs() < 1e-6 && (m[1] - 0.5).abs() < 1e-6);
    let v = aggregate(&[&a, &b, &c], Aggregation::Vote).unwrap();
    assert!((v[0] - 2.0 / 3.0).abs() < 1e-6 && (v[1] - 1.0 / 3.0).abs() < 1e-6);
}

#[test]
fn agreement_is_zero_disagreement() {
    let a = [0.1f32, 0.9];
    let d = disagreement(&[&a, &a, &a]).unwrap();
    assert_eq!(d.max_pairwise_l1, 0.0);
    assert_eq!(d.vote_disagreement, 0.0);
    let one = disagreement(&[&a]).unwrap();
    assert_eq!(one.max_pairwise_l1, 0.0);
}

#[test]
fn disagreement_measures_the_worst_pair_and_the_minority() {
    let a = [1.0f32, 0.0, 0.0];
    let b = [0.0f32, 1.0, 0.0];
    let c = [0.9f32, 0.1, 0.0];
    let d = disagreement(&[&a, &b, &c]).unwrap();
    assert!((d.max_pairwise_l1 - 2.0).abs() < 1e-9);
    assert!((d.vote_disagreement - 1.0 / 3.0).abs() < 1e-9);
}

#[test]
fn bad_members_are_errors() {
    assert_eq!(aggregate(&[], Aggregation::Mean), Err(EnsembleError::Empty));
    let a = [0.5f32, 0.5];
    let b = [1.0f32];
    assert!(matches!(
        aggregate(&[&a, &b], Aggregation::Vote),
        Err(EnsembleError::ClassMismatch { member: 1, .. })
    ));
    let n = [f32::NAN, 0.5];
    assert_eq!(
        disagreement(&[&a, &n]),
        Err(EnsembleError::NonFinite { member: 1 })
    );
    let e: [f32; 0] = [];
    assert_eq!(
        aggregate(&[&e], Aggregation::Mean),
        Err(EnsembleError::NoClasses)
    );
}
