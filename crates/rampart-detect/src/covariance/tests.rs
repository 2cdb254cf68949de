#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

use super::{CoMoments, CoMomentsError};
use crate::welford::Welford;

fn rows() -> Vec<[f64; 3]> {
    (0..500)
        .map(|i| {
            let t = f64::from(i);
            [
                1e4 + (t * 0.7).sin(),
                2.0 * (t * 0.7).sin() + (t * 1.3).cos(),
                5.0,
            ]
        })
        .collect()
}

#[test]
fn matches_two_pass_covariance() {
    let data = rows();
    let mut m = CoMoments::new(3);
    for r in &data {
        m.push(r).unwrap();
    }
    let n = data.len() as f64;
    let mean: Vec<f64> = (0..3)
        .map(|j| data.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let cov = m.covariance().unwrap();
    for i in 0..3 {
        assert!((m.mean().unwrap()[i] - mean[i]).abs() < 1e-9);
        for j in 0..3 {
            let two_pass: f64 = data
                .iter()
                .map(|r| (r[i] - mean[i]) * (r[j] - mean[j]))
                .sum::<f64>()
                / (n - 1.0);
            assert!(
                (cov[i][j] - two_pass).abs() <= 1e-9 * two_pass.abs() + 1e-12,
                "({i},{j})"
            );
        }
    }
}

#[test]
fn covariance_is_exactly_symmetric() {
    let mut m = CoMoments::new(3);
    for r in rows() {
        m.push(&r).unwrap();
    }
    let cov = m.covariance().unwrap();
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(cov[i][j].to_bits(), cov[j][i].to_bits());
        }
    }
}

#[test]
fn diagonal_equals_welford_variance() {
    let data = rows();
    let mut m = CoMoments::new(3);
    for r in &data {
        m.push(r).unwrap();
    }
    let cov = m.covariance().unwrap();
    for j in 0..3 {
        let w: Welford = data.iter().map(|r| r[j]).collect();
        assert_eq!(cov[j][j], w.variance_sample().unwrap());
    }
    assert_eq!(
        cov[2][2], 0.0,
        "a constant column has exactly zero variance"
    );
}

#[test]
fn rejects_wrong_width_and_stays_unchanged() {
    let mut m = CoMoments::new(2);
    m.push(&[1.0, 2.0]).unwrap();
    let before = m.clone();
    assert_eq!(
        m.push(&[1.0]),
        Err(CoMomentsError::WidthMismatch {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(m, before);
}

#[test]
fn needs_two_rows_for_sample_covariance() {
    let mut m = CoMoments::new(2);
    assert!(m.covariance().is_none());
    m.push(&[1.0, 2.0]).unwrap();
    assert!(m.covariance().is_none());
    assert_eq!(
        m.covariance_population().unwrap(),
        vec![vec![0.0, 0.0], vec![0.0, 0.0]]
    );
}

#[test]
fn merged_pieces_match_sequential() {
    let data = rows();
    let mut whole = CoMoments::new(3);
    for r in &data {
        whole.push(r).unwrap();
    }
    let mut merged = CoMoments::new(3);
    for chunk in data.chunks(77) {
        let mut part = CoMoments::new(3);
        for r in chunk {
            part.push(r).unwrap();
        }
        merged.merge(&part).unwrap();
    }
    assert_eq!(merged.count(), whole.count());
    let (a, b) = (merged.covariance().unwrap(), whole.covariance().unwrap());
    for i in 0..3 {
        assert!((merged.mean().unwrap()[i] - whole.mean().unwrap()[i]).abs() < 1e-9);
        for j in 0..3 {
            assert!((a[i][j] - b[i][j]).abs() <= 1e-9 * b[i][j].abs() + 1e-12);
        }
    }
    assert!(merged.merge(&CoMoments::new(2)).is_err());
}
