//! Request-path cost of the two per-row scores at a typical tabular width (30 features), and the per-call cost
//! of the monitor-side statistics: MMD with its permutation test (window 200 × 30 against a 500-row reference,
//! the default 200 permutations), Shapiro–Wilk at n = 50, 200, 1000, and one PRADA step with `D` at its
//! 2,000-distance cap (the monitor thread's per-query cost for a busy client; a test on every query).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rampart_detect::mmd::{mmd_permutation_test, DEFAULT_PERMUTATIONS};
use rampart_detect::prada::{Config as PradaConfig, Prada};
use rampart_detect::{shapiro_wilk, BaselineBuilder, Mahalanobis, ZScore};

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

/// Deterministic pseudo-random rows (SplitMix64 → uniform), so runs compare.
fn rows(n: usize, d: usize, seed: u64, shift: f64) -> Vec<Vec<f64>> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1_u64 << 53) as f64
    };
    (0..n)
        .map(|_| (0..d).map(|_| next() + shift).collect())
        .collect()
}

fn mmd(c: &mut Criterion) {
    let reference = rows(500, WIDTH, 1, 0.0);
    let window = rows(200, WIDTH, 2, 0.05);
    let mut group = c.benchmark_group("mmd");
    group.sample_size(10);
    group.bench_function("mmd_perm200_window200_ref500_w30", |b| {
        b.iter(|| {
            mmd_permutation_test(
                black_box(&reference),
                black_box(&window),
                DEFAULT_PERMUTATIONS,
                7,
            )
        })
    });
    group.finish();
}

fn shapiro(c: &mut Criterion) {
    let mut group = c.benchmark_group("shapiro");
    for n in [50_usize, 200, 1000] {
        let x: Vec<f64> = rows(n, 1, 3, 0.0).into_iter().map(|r| r[0]).collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &x, |b, x| {
            b.iter(|| shapiro_wilk(black_box(x)))
        });
    }
    group.finish();
}

fn prada(c: &mut Criterion) {
    // Uniform distances with an outlier every 97th: the kept count moves as outliers enter and leave `D`.
    let distances: Vec<f64> = rows(4096, 1, 4, 0.0)
        .into_iter()
        .enumerate()
        .map(|(i, r)| if i % 97 == 0 { 25.0 } else { r[0] })
        .collect();
    let mut p = Prada::new(PradaConfig {
        test_every: 1,
        ..PradaConfig::default()
    })
    .unwrap();
    for d in &distances[..2000] {
        p.push_distance(*d).unwrap();
    }
    let mut next = distances.iter().cycle();
    c.bench_function("prada_push_and_test_d2000", |b| {
        b.iter(|| p.push_distance(black_box(*next.next().unwrap())))
    });
}

criterion_group!(benches, detect, mmd, shapiro, prada);
criterion_main!(benches);
