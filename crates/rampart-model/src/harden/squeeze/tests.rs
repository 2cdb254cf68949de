#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::{ModelInfo, Output};

fn squeeze(s: Squeezer, x: &[f32]) -> Vec<f32> {
    let mut out = Vec::new();
    s.apply(x, &mut out).unwrap();
    out
}

#[test]
fn bit_depth_keeps_two_to_the_b_levels() {
    let x = [0.0, 0.2, 0.26, 0.5, 0.74, 1.0, 1.7, -0.3];
    assert_eq!(
        squeeze(Squeezer::BitDepth { bits: 1 }, &x),
        [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    );
    let three = squeeze(Squeezer::BitDepth { bits: 2 }, &x);
    assert_eq!(three[1], 1.0 / 3.0);
    assert_eq!(three[4], 2.0 / 3.0);
}

#[test]
fn round_rounds_to_decimals() {
    assert_eq!(
        squeeze(Squeezer::Round { decimals: 1 }, &[1.24, 1.26, -0.04]),
        [1.2, 1.3, -0.0]
    );
}

#[test]
fn median_matches_scipy() {
    // scipy.ndimage.median_filter(np.arange(9.).reshape(3, 3), size=3)
    //   → [[1, 2, 2], [3, 4, 5], [6, 6, 7]]
    let x: Vec<f32> = (0..9).map(|v| v as f32).collect();
    let m3 = Squeezer::Median {
        height: 3,
        width: 3,
        size: 3,
    };
    assert_eq!(
        squeeze(m3, &x),
        [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 7.0]
    );
    // size=2 → [[0, 1, 2], [3, 3, 4], [6, 6, 7]]: the window is (r-1..=r, c-1..=c), upper median.
    let m2 = Squeezer::Median {
        height: 3,
        width: 3,
        size: 2,
    };
    assert_eq!(
        squeeze(m2, &x),
        [0.0, 1.0, 2.0, 3.0, 3.0, 4.0, 6.0, 6.0, 7.0]
    );
    // x = [[5, 1, 7], [2, 9, 3], [8, 4, 6]], also from scipy.
    let y = [5.0, 1.0, 7.0, 2.0, 9.0, 3.0, 8.0, 4.0, 6.0];
    assert_eq!(
        squeeze(m2, &y),
        [5.0, 5.0, 7.0, 5.0, 5.0, 7.0, 8.0, 8.0, 6.0]
    );
    assert_eq!(
        squeeze(m3, &y),
        [5.0, 5.0, 7.0, 5.0, 5.0, 6.0, 8.0, 6.0, 6.0]
    );
    // A lone bright pixel disappears.
    let mut spot = vec![0.0; 9];
    spot[4] = 1.0;
    assert!(squeeze(m3, &spot).iter().all(|&v| v == 0.0));
}

#[test]
fn bad_squeezers_and_inputs_are_errors() {
    let mut out = Vec::new();
    for s in [
        Squeezer::BitDepth { bits: 0 },
        Squeezer::BitDepth { bits: 17 },
        Squeezer::Round { decimals: 10 },
        Squeezer::Median {
            height: 2,
            width: 2,
            size: 4,
        },
    ] {
        assert!(matches!(
            s.apply(&[0.0; 4], &mut out),
            Err(SqueezeError::InvalidSqueezer { .. })
        ));
    }
    let m = Squeezer::Median {
        height: 3,
        width: 3,
        size: 2,
    };
    assert!(matches!(
        m.apply(&[0.0; 8], &mut out),
        Err(SqueezeError::WrongWidth { .. })
    ));
    assert!(matches!(
        Squeezer::Round { decimals: 2 }.apply(&[0.0, f32::NAN], &mut out),
        Err(SqueezeError::NonFinite { index: 1 })
    ));
}

/// Probabilities (x₀, 1 − x₀): a model whose output moves exactly as much as its first feature.
struct Identity(ModelInfo);

impl Backend for Identity {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    fn predict(&self, rows: &[f32], n_rows: usize) -> Result<Output, RunError> {
        Ok(Output {
            n_rows,
            kind: self.0.kind,
            values: rows.chunks(2).flat_map(|r| [r[0], 1.0 - r[0]]).collect(),
            labels: None,
        })
    }
}

fn identity() -> Identity {
    Identity(ModelInfo {
        name: "id".into(),
        input_name: "x".into(),
        width: 2,
        kind: ModelKind::Classifier { classes: 2 },
        outputs: vec![],
        values_output: String::new(),
        labels_output: None,
        opset: 0,
        ops: vec![],
    })
}

#[test]
fn score_is_the_largest_l1_move() {
    let m = identity();
    let s = [
        Squeezer::BitDepth { bits: 1 },
        Squeezer::Round { decimals: 1 },
    ];
    // 0.3 → 0.0 (1 bit) moves p by 0.3 in each class: L1 = 0.6; rounding to 0.3 moves nothing.
    let got = score(&m, &[0.3, 0.0], &s).unwrap();
    assert!((got - 0.6).abs() < 1e-6, "{got}");
    assert!(matches!(
        score(&m, &[0.3, 0.0], &[]),
        Err(SqueezeError::NoSqueezers)
    ));
    assert!(matches!(
        score(&m, &[0.3], &s),
        Err(SqueezeError::WrongWidth { .. })
    ));
    assert!(matches!(
        score(&m, &[f32::NAN, 0.0], &s),
        Err(SqueezeError::NonFinite { .. })
    ));
}

#[test]
fn threshold_is_the_benign_quantile() {
    let scores: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    assert!((threshold(&scores, 0.05).unwrap() - 0.95).abs() < 1e-12);
    assert_eq!(threshold(&scores, 0.0).unwrap(), 1.0);
    assert_eq!(threshold(&scores, 1.0).unwrap(), 0.0);
    // numpy.quantile([1, 2, 3, 4], 0.9) = 3.7
    assert!((threshold(&[4.0, 1.0, 3.0, 2.0], 0.1).unwrap() - 3.7).abs() < 1e-12);
    assert!(threshold(&[f64::NAN, 0.5], 0.05).unwrap() == 0.5);
    assert!(threshold(&[f64::INFINITY, f64::INFINITY], 0.5)
        .unwrap()
        .is_infinite());
    assert!(threshold(&[], 0.05).is_err());
    assert!(threshold(&[f64::NAN], 0.05).is_err());
    assert!(threshold(&scores, 1.5).is_err());
    assert!(threshold(&scores, f64::NAN).is_err());
}

#[test]
fn parses_the_config_form() {
    assert_eq!(
        Squeezer::parse("bit_depth:4", 64).unwrap(),
        Squeezer::BitDepth { bits: 4 }
    );
    assert_eq!(
        Squeezer::parse("round:1", 30).unwrap(),
        Squeezer::Round { decimals: 1 }
    );
    assert_eq!(
        Squeezer::parse("median:2", 64).unwrap(),
        Squeezer::Median {
            height: 8,
            width: 8,
            size: 2
        }
    );
    assert_eq!(
        Squeezer::parse("median:3:2x3", 6).unwrap(),
        Squeezer::Median {
            height: 2,
            width: 3,
            size: 3
        }
    );
    for bad in [
        "",
        "blur:2",
        "bit_depth",
        "bit_depth:0",
        "bit_depth:x",
        "round:10",
        "median:2",
        "median:4:2x3",
        "median:2:3x3",
        "median:2:3y2",
        "round:1:2",
        "round:1:2:3",
    ] {
        assert!(
            matches!(
                Squeezer::parse(bad, 6),
                Err(SqueezeError::InvalidSqueezer { .. }) | Err(SqueezeError::WrongWidth { .. })
            ),
            "{bad}"
        );
    }
}
