#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn labels() -> Vec<Arc<str>> {
    ["a", "b", "c"].into_iter().map(Arc::from).collect()
}

fn class_row(radius: Option<f64>) -> Prediction {
    Prediction {
        rows: vec![RowPrediction::Class {
            probabilities: vec![0.2, 0.7, 0.1],
            best: 1,
            confidence: 0.7,
            review_id: None,
            certified_radius: radius,
        }],
    }
}

#[test]
fn certified_radius_only_when_granted() {
    let s = Sanitizer::new(&Config::default(), labels());
    let p = class_row(Some(0.42));
    let shown = s.sanitize(&p, true);
    let hidden = s.sanitize(&p, false);
    assert!(matches!(
        &shown.rows[0],
        RowAnswer::Label { certified_radius: Some(r), .. } if (*r - 0.42).abs() < 1e-12
    ));
    assert!(matches!(
        &hidden.rows[0],
        RowAnswer::Label {
            certified_radius: None,
            ..
        }
    ));
}

#[test]
fn abstained_rows_answer_abstain() {
    let s = Sanitizer::new(&Config::default(), labels());
    let p = Prediction {
        rows: vec![RowPrediction::Abstained {
            probabilities: vec![0.4, 0.35, 0.25],
        }],
    };
    assert_eq!(s.sanitize(&p, true).rows, vec![RowAnswer::Abstain]);
}

#[test]
fn reverse_sigmoid_moves_scores_and_keeps_the_label() {
    let plain = Sanitizer::new(
        &Config {
            decimals: 6,
            ..Config::default()
        },
        labels(),
    );
    let perturbed = Sanitizer::new(
        &Config {
            decimals: 6,
            top_k: 3,
            reverse_sigmoid: Some(ReverseSigmoid::new(0.7, 0.4).unwrap()),
            ..Config::default()
        },
        labels(),
    );
    let p = class_row(None);
    let (
        RowAnswer::Label {
            label: l1,
            confidence: Some(c1),
            ..
        },
        RowAnswer::Label {
            label: l2,
            confidence: Some(c2),
            top,
            ..
        },
    ) = (
        &plain.sanitize(&p, false).rows[0],
        &perturbed.sanitize(&p, false).rows[0],
    )
    else {
        panic!("labels expected");
    };
    assert_eq!(l1, l2);
    assert!((c1 - c2).abs() > 1e-3, "{c1} vs {c2}");
    let sum: f64 = top.iter().map(|(_, p)| p).sum();
    assert!((sum - 1.0).abs() < 1e-5, "renormalized: {sum}");
}

#[test]
fn reverse_sigmoid_never_leaks_unperturbed_scores() {
    // A row the perturbation cannot take (non-finite) leaves as a label only.
    let s = Sanitizer::new(
        &Config {
            reverse_sigmoid: Some(ReverseSigmoid::new(0.7, 0.4).unwrap()),
            ..Config::default()
        },
        labels(),
    );
    let p = Prediction {
        rows: vec![RowPrediction::Class {
            probabilities: vec![f32::NAN, 0.7, 0.1],
            best: 1,
            confidence: 0.7,
            review_id: None,
            certified_radius: None,
        }],
    };
    assert!(matches!(
        &s.sanitize(&p, false).rows[0],
        RowAnswer::Label {
            confidence: None,
            ..
        }
    ));
}
