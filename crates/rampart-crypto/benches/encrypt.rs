//! Encryption and decryption throughput of the container (64 KiB chunks), in memory.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart_crypto::container::{encrypt, open, AeadKey};
use rampart_crypto::keyfile::{generate, KeyKind};

fn bench(c: &mut Criterion) {
    let key = AeadKey::from_key_file(&generate(KeyKind::Aes256).unwrap());
    let plain = vec![0x5au8; 16 << 20];
    let mut sealed = Vec::with_capacity(plain.len() + 8192);
    encrypt(&key, &plain[..], &mut sealed).unwrap();
    let mut g = c.benchmark_group("container");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.sample_size(10);
    g.bench_function("encrypt_16MiB", |b| {
        let mut out = Vec::with_capacity(sealed.len());
        b.iter(|| {
            out.clear();
            encrypt(&key, &plain[..], &mut out).unwrap()
        });
    });
    g.bench_function("decrypt_16MiB", |b| {
        b.iter(|| open(&key, &sealed[..], |_| Ok(())).unwrap());
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
