//! Request-path cost of the two per-row scores at a typical tabular width (30 features).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rampart_detect::{BaselineBuilder, Mahalanobis, ZScore};

const WIDTH: usize = 30;

fn detect(c: &mut Criterion) {
    let names: Vec<String> = (0..WIDTH).map(|j| format!("f{j}")).collect();
    let mut builder = BaselineBuilder::new(names);
    // Correlated columns, so the Cholesky factor is dense.
    for i in 0..5000_u32 {
        let t = f64::from(i);
        let row: Vec<f64> = (0..WIDTH)
            .map(|j| (t * (0.37 + j as f64 * 0.011)).sin() + 0.3 * (t * 0.05).cos() * j as f64)
            .collect();
        builder.push(&row).unwrap();
    }
    let baseline = builder.finish().unwrap();
    let zscore = ZScore::new(&baseline);
    let maha = Mahalanobis::from_baseline(&baseline, baseline.mahalanobis.ridge).unwrap();
    let x: Vec<f32> = (0..WIDTH).map(|j| 0.1 * j as f32).collect();

    c.bench_function("zscore_max_abs_z_w30", |b| {
        b.iter(|| zscore.max_abs_z(black_box(&x)))
    });
    c.bench_function("mahalanobis_distance_sq_w30", |b| {
        b.iter(|| maha.distance_sq(black_box(&x)))
    });
}

criterion_group!(benches, detect);
criterion_main!(benches);
