//! The in-process pipeline for the demo model: every layer but the model and the audit fsync ("layers"), and
//! the whole evaluate path with the real tract model ("total"). Aim: layers ≤ 5 µs p50.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rampart_core::Identity;
use rampart_detect::Baseline;
use rampart_model::{Backend, ModelInfo, ModelKind, Output, RunError, TractModel};
use rampart_pipeline::{Pipeline, PipelineConfig, Protocol, RequestCx};

const MODEL: &[u8] = include_bytes!("../../../examples/demo/demo.onnx");
const BASELINE: &[u8] = include_bytes!("../../../examples/demo/demo.baseline.json");
const BODY: &[u8] = br#"{"features": [5.1, 3.5, 1.4, 0.2]}"#;

/// A backend that answers instantly with the real model's answer for BODY, so the "layers" figure excludes
/// inference.
struct Fixed(ModelInfo);

impl Backend for Fixed {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    fn predict(&self, _rows: &[f32], n_rows: usize) -> Result<Output, RunError> {
        Ok(Output {
            n_rows,
            kind: self.0.kind,
            values: [0.98, 0.02, 0.0].repeat(n_rows),
            labels: None,
        })
    }
}

fn pipelines() -> (Pipeline, Pipeline) {
    let tract = TractModel::load_bytes("demo.onnx", MODEL).unwrap();
    let info = tract.info().clone();
    assert!(matches!(info.kind, ModelKind::Classifier { classes: 3 }));
    let baseline = Arc::new(Baseline::from_json(BASELINE).unwrap());
    let mut config = PipelineConfig::default();
    config.rate_limit.per_minute = u32::MAX / 2;
    let labels = vec![
        "setosa".to_owned(),
        "versicolor".to_owned(),
        "virginica".to_owned(),
    ];
    let layers = Pipeline::build(
        &config,
        Arc::new(Fixed(info)),
        Some(baseline.clone()),
        &labels,
    )
    .unwrap();
    let total = Pipeline::build(&config, Arc::new(tract), Some(baseline), &labels).unwrap();
    (layers, total)
}

fn bench(c: &mut Criterion) {
    let (layers, total) = pipelines();
    let identity = Identity::new("bench", vec![]);
    let cx = RequestCx {
        request_id: "r",
        identity: &identity,
        model: "demo",
        protocol: Protocol::V1,
        full_output: false,
        certificate: false,
    };
    let mut g = c.benchmark_group("pipeline_demo");
    g.bench_function("layers_only", |b| {
        b.iter(|| {
            let mut flags = Vec::new();
            let _ = layers.admit(&cx, &mut flags);
            black_box(layers.evaluate(&cx, black_box(BODY), flags))
        })
    });
    g.bench_function("total_with_tract", |b| {
        b.iter(|| {
            let mut flags = Vec::new();
            let _ = total.admit(&cx, &mut flags);
            black_box(total.evaluate(&cx, black_box(BODY), flags))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
