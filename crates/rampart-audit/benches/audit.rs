//! Audit throughput, measured end to end on this machine's disk (not a criterion bench: one run is tens of
//! thousands of fsyncs, and the figure that matters is records per second under concurrency).
//!
//! `cargo bench -p rampart-audit --bench audit` prints:
//! - durable records/s: 64 tasks committing concurrently with fsync group commit and signed checkpoints;
//! - verify records/s: `verify_dir_with` over a log of `VERIFY_RECORDS` records, signatures checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_audit::{
    verify_dir_with, AuditRecord, AuditWriter, CheckpointPolicy, Decision, Durability, Outcome,
    VerifyOptions, WriterConfig,
};
use rampart_crypto::sign::SigningKey;

const WRITERS: u64 = 64;
const DURABLE_RECORDS: u64 = 64_000;
const VERIFY_RECORDS: u64 = 1_000_000;

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        time: None,
        request_id: format!("0193a7c2-5b1e-7c3d-8e4f-{i:012x}"),
        identity: format!("tenant-{}", i % 97),
        model: "breast_cancer".into(),
        model_version: "3".into(),
        input_sha256: AuditRecord::input_digest(&i.to_le_bytes()),
        decision: Decision {
            outcome: Outcome::Pass,
            reason: None,
            guard: None,
            status: 200,
        },
        flags: vec![],
        output: serde_json::json!({"prediction": "benign", "confidence": 0.97}),
        input: None,
        latency_us: 180,
    }
}

async fn fill(writer: &AuditWriter, total: u64) -> Duration {
    let started = Instant::now();
    let per_task = total / WRITERS;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|t| {
            let w = writer.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    w.commit(record(t * per_task + i)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = Arc::new(SigningKey::generate());
    let public = key.verifying_key();

    // `AUDIT_BENCH=verify` runs the verify measurement alone (for a profiler).
    if std::env::var("AUDIT_BENCH").is_ok_and(|v| v == "verify") {
        verify(&runtime, key, &public);
        return;
    }
    durable(&runtime, &key);
    verify(&runtime, key, &public);
}

fn durable(runtime: &tokio::runtime::Runtime, key: &Arc<SigningKey>) {
    let dir = tempfile::tempdir().unwrap();
    let config =
        WriterConfig::new(Durability::Fsync).checkpoints(CheckpointPolicy::new(key.clone()));
    let writer = AuditWriter::open_with(dir.path(), config).unwrap();
    let elapsed = runtime.block_on(fill(&writer, DURABLE_RECORDS));
    let stats = writer.stats();
    runtime.block_on(writer.shutdown()).unwrap();
    println!(
        "durable (fsync) commits, {WRITERS} writers: {DURABLE_RECORDS} records in {:.2} s = {:.0} records/s, {} fsyncs ({:.1} records per group)",
        elapsed.as_secs_f64(),
        DURABLE_RECORDS as f64 / elapsed.as_secs_f64(),
        stats.syncs,
        DURABLE_RECORDS as f64 / stats.syncs.max(1) as f64
    );
}

fn verify(
    runtime: &tokio::runtime::Runtime,
    key: Arc<SigningKey>,
    public: &rampart_crypto::sign::VerifyingKey,
) {
    let started = Instant::now();

    let dir = tempfile::tempdir().unwrap();
    let config = WriterConfig::new(Durability::Buffered).checkpoints(CheckpointPolicy::new(key));
    let writer = AuditWriter::open_with(dir.path(), config).unwrap();
    runtime.block_on(fill(&writer, VERIFY_RECORDS));
    runtime.block_on(writer.shutdown()).unwrap();
    eprintln!("log written in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let report = verify_dir_with(
        dir.path(),
        VerifyOptions {
            public_key: Some(public),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    let elapsed = started.elapsed();
    let bytes: u64 = rampart_audit::log_files(dir.path())
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    println!(
        "verify: {} lines ({} segments, {} checkpoints, {:.0} MB) in {:.2} s = {:.0} records/s",
        report.records,
        report.files,
        report.checkpoints,
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        report.records as f64 / elapsed.as_secs_f64()
    );
}
