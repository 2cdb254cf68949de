//! The per-request cost of randomized smoothing: one `Smoother::predict` (n noisy copies, batched
//! through the backend, binomial test) on the breast-cancer and digits MLPs, for n = 100 and n = 1000,
//! beside one plain `predict` of the same row as the baseline: the ratio is what smoothing multiplies a
//! request's model time by.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{path, sample_row};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rampart_model::harden::smoothing::{noise_rng, Config, Mode, Smoother};
use rampart_model::{Backend, TractModel};
use std::time::Duration;

fn bench_smoothed_predict(c: &mut Criterion) {
    let mut group = c.benchmark_group("smoothed_predict");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    // breast_cancer_mlp takes raw features (its scaler is in the graph), so σ = 0.25 is small noise;
    // digits takes pixels in [0, 1], Cohen et al.'s setting.
    for name in ["breast_cancer_mlp", "digits_mlp"] {
        let model = TractModel::load(&path(name, "onnx")).unwrap();
        let row = sample_row(name, model.info().width);
        group.bench_function(format!("{name}/plain"), |b| {
            b.iter(|| model.predict(black_box(&row), 1).unwrap())
        });
        for n in [100, 1000] {
            let smoother = Smoother::new(Config {
                n,
                mode: Mode::Predict,
                ..Config::with_sigma(0.25)
            })
            .unwrap();
            let mut rng = noise_rng(0);
            group.bench_function(format!("{name}/n={n}"), |b| {
                b.iter(|| smoother.predict(&model, black_box(&row), &mut rng).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_smoothed_predict);
criterion_main!(benches);
