//! Manifest hashing throughput (SHA-256 + BLAKE3 per file, all cores) over a generated directory read
//! from the page cache.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart_data::manifest::Manifest;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let files = 64;
    let size = 1 << 20;
    for i in 0..files {
        let data: Vec<u8> = (0..size).map(|j| ((i * 7 + j) % 251) as u8).collect();
        std::fs::write(dir.path().join(format!("part-{i:03}.bin")), data).unwrap();
    }
    let mut g = c.benchmark_group("manifest");
    g.throughput(Throughput::Bytes((files * size) as u64));
    g.sample_size(10);
    g.bench_function("build_64x1MiB", |b| {
        b.iter(|| Manifest::build(dir.path(), None, &()).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
