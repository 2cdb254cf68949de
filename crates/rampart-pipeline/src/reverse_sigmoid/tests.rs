#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// The formula written out once more, in f64, without clipping (for probabilities well inside (0, 1)).
fn by_hand(y: &[f64], beta: f64, gamma: f64) -> Vec<f64> {
    let p: Vec<f64> = y
        .iter()
        .map(|&v| v - beta * (1.0 / (1.0 + (-(gamma * (v / (1.0 - v)).ln())).exp()) - 0.5))
        .collect();
    let s: f64 = p.iter().sum();
    p.iter().map(|v| v / s).collect()
}

#[test]
fn matches_the_paper_formula() {
    let y = [0.7, 0.2, 0.1];
    let mut got = y.map(|v| v as f32);
    ReverseSigmoid::new(0.3, 0.5)
        .unwrap()
        .apply(&mut got)
        .unwrap();
    for (g, w) in got.iter().zip(by_hand(&y, 0.3, 0.5)) {
        assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?}");
    }
    assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    // The scores moved, the label did not.
    assert!(got[0] > got[1] && got[1] > got[2]);
    assert!((got[0] - 0.7).abs() > 1e-3);
}

#[test]
fn beta_zero_is_identity() {
    let mut p = [0.25f32, 0.75];
    ReverseSigmoid::new(0.0, 1.0)
        .unwrap()
        .apply(&mut p)
        .unwrap();
    assert_eq!(p, [0.25, 0.75]);
}

#[test]
fn extreme_probabilities_stay_finite() {
    let mut p = [1.0f32, 0.0, 0.0];
    ReverseSigmoid::new(0.5, 2.0)
        .unwrap()
        .apply(&mut p)
        .unwrap();
    assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    // A β large enough to clip everything to 0 degrades to label-only, not NaN.
    let mut q = [0.4f32, 0.6];
    ReverseSigmoid::new(1e6, 1.0)
        .unwrap()
        .apply(&mut q)
        .unwrap();
    assert!(q.iter().all(|v| v.is_finite()));
    assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert_eq!(
        ReverseSigmoid::new(-1.0, 1.0),
        Err(ReverseSigmoidError::Beta)
    );
    assert_eq!(
        ReverseSigmoid::new(f64::NAN, 1.0),
        Err(ReverseSigmoidError::Beta)
    );
    assert_eq!(
        ReverseSigmoid::new(0.1, 0.0),
        Err(ReverseSigmoidError::Gamma)
    );
    assert_eq!(
        ReverseSigmoid::new(0.1, f64::INFINITY),
        Err(ReverseSigmoidError::Gamma)
    );
    let rs = ReverseSigmoid::new(0.1, 1.0).unwrap();
    let mut nan = [f32::NAN, 0.5];
    assert_eq!(rs.apply(&mut nan), Err(ReverseSigmoidError::Probabilities));
    assert!(nan[0].is_nan() && nan[1] == 0.5, "left unchanged");
    assert_eq!(rs.apply(&mut []), Err(ReverseSigmoidError::Probabilities));
    let unchecked = ReverseSigmoid {
        beta: -1.0,
        gamma: 1.0,
    };
    assert_eq!(
        unchecked.apply(&mut [0.5, 0.5]),
        Err(ReverseSigmoidError::Beta)
    );
}
