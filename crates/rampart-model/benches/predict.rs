//! One-row predict latency through [`TractModel`], beside raw stock tract on the same file as the
//! baseline (for the models stock tract can run): the ratio is the wrapper's overhead, or for tree
//! ensembles the gain from Rampart's own translator.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{path, sample_row};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rampart_model::{Backend, TractModel};
use std::time::Duration;
use tract_onnx::prelude::*;

/// Stock tract, no Rampart translators, fixed batch of one: the fastest plain tract can do.
fn stock_tract(name: &str, width: usize) -> Arc<TypedRunnableModel> {
    tract_onnx::onnx()
        .model_for_path(path(name, "onnx"))
        .unwrap()
        .with_input_fact(0, f32::fact([1, width]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap()
}

fn bench_one_row(c: &mut Criterion) {
    let mut group = c.benchmark_group("predict_1_row");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for name in [
        "breast_cancer_folded",
        "iris_logreg",
        "iris_forest",
        "wine_gb",
        "diabetes_gbr",
    ] {
        let model = TractModel::load(&path(name, "onnx")).unwrap();
        let width = model.info().width;
        let row = sample_row(name, width);
        group.bench_function(format!("rampart/{name}"), |b| {
            b.iter(|| model.predict(black_box(&row), 1).unwrap())
        });
        if name != "diabetes_gbr" {
            let plan = stock_tract(name, width);
            let input = Tensor::from_shape(&[1, width], &row).unwrap();
            group.bench_function(format!("stock_tract/{name}"), |b| {
                b.iter(|| plan.run(tvec!(black_box(input.clone()).into())).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_one_row);
criterion_main!(benches);
