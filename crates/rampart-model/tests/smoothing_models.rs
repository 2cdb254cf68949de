//! Randomized smoothing end to end on a real model: the digits MLP through tract, batched.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use rampart_model::harden::smoothing::{noise_rng, Config, Decision, Mode, Smoother};
use rampart_model::harden::squeeze::{self, Squeezer};
use rampart_model::{Backend, TractModel};

fn digits() -> (TractModel, Vec<Vec<f32>>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models");
    let model = TractModel::load(&dir.join("digits_mlp.onnx")).unwrap();
    let text = std::fs::read_to_string(dir.join("digits_mlp.expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let data: Vec<f32> = v["sample_input"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    (model, data.chunks(64).map(<[f32]>::to_vec).collect())
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()
}

#[test]
fn small_noise_keeps_the_clean_answer_and_certifies() {
    let (model, rows) = digits();
    let predict = Smoother::new(Config {
        n: 500,
        alpha: 0.001,
        mode: Mode::Predict,
        max_batch: 128,
        ..Config::with_sigma(0.05)
    })
    .unwrap();
    let certify = Smoother::new(Config {
        n: 2000,
        mode: Mode::Certify,
        ..Config::with_sigma(0.05)
    })
    .unwrap();
    for (i, row) in rows.iter().enumerate() {
        let clean = argmax(model.predict(row, 1).unwrap().row(0).unwrap());
        let p = predict
            .predict(&model, row, &mut noise_rng(i as u64))
            .unwrap();
        if let Decision::Class(c) = p.decision {
            assert_eq!(
                c, clean,
                "row {i}: the smoothed answer at tiny σ is the clean one"
            );
        }
        let c = certify
            .certify(&model, row, &mut noise_rng(i as u64))
            .unwrap();
        if let Some(r) = c.radius {
            assert_eq!(c.decision, Decision::Class(c.top));
            assert!(r > 0.0 && r < 0.05 * 4.0, "row {i}: radius {r}");
        }
        // Reproducible.
        let again = predict
            .predict(&model, row, &mut noise_rng(i as u64))
            .unwrap();
        assert_eq!(p, again);
    }
}

#[test]
fn squeezing_a_digit_barely_moves_its_prediction() {
    let (model, rows) = digits();
    let squeezers = [
        Squeezer::BitDepth { bits: 4 },
        Squeezer::Median {
            height: 8,
            width: 8,
            size: 2,
        },
    ];
    let scores: Vec<f64> = rows
        .iter()
        .map(|r| squeeze::score(&model, r, &squeezers).unwrap())
        .collect();
    assert!(scores.iter().all(|s| (0.0..=2.0).contains(s)), "{scores:?}");
    let t = squeeze::threshold(&scores, 0.25).unwrap();
    assert!(scores.iter().filter(|&&s| s > t).count() <= rows.len() / 4 + 1);
}
