//! The writer end to end: concurrency, group commit, restarts, torn writes, and failing closed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use rampart_audit::format::{decode_line, file_name};
use rampart_audit::{
    verify_dir, AuditError, AuditRecord, AuditWriter, ChainHead, Decision, Durability, Flag,
    Outcome, VerifyFailure, WriterConfig,
};
use serde_json::json;

fn record(i: u64) -> AuditRecord {
    let reject = i % 7 == 0;
    AuditRecord {
        time: None,
        request_id: format!("req-{i}"),
        identity: format!("tenant-{}", i % 13),
        model: "iris".into(),
        model_version: "3".into(),
        input_sha256: AuditRecord::input_digest(format!("input {i}").as_bytes()),
        decision: if reject {
            Decision {
                outcome: Outcome::Reject,
                reason: Some("anomalous_input".into()),
                guard: Some("anomaly".into()),
                status: 422,
            }
        } else {
            Decision {
                outcome: Outcome::Pass,
                reason: None,
                guard: None,
                status: 200,
            }
        },
        flags: if i % 5 == 0 {
            vec![Flag {
                guard: "drift".into(),
                reason: "out_of_range".into(),
            }]
        } else {
            vec![]
        },
        output: if reject {
            json!(null)
        } else {
            json!({"label": "setosa", "p": [0.9, 0.05, 0.05]})
        },
        input: None,
        latency_us: 100 + i,
    }
}

async fn commit_concurrently(
    writer: &AuditWriter,
    ids: std::ops::Range<u64>,
) -> Vec<rampart_audit::Committed> {
    let tasks: Vec<_> = ids
        .map(|i| {
            let w = writer.clone();
            tokio::spawn(async move { w.commit(record(i)).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().unwrap());
    }
    out
}

fn lines(dir: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(dir.join(file_name(0))).unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thousand_concurrent_commits_land_once_each_in_one_chain_with_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    let committed = commit_concurrently(&writer, 0..1000).await;

    let mut seqs: Vec<u64> = committed.iter().map(|c| c.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=1000).collect::<Vec<_>>(),
        "seqs unique and contiguous, after the segment header at 0"
    );

    writer.shutdown().await.unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!((report.records, report.decisions), (1001, 1000));
    let head = committed.iter().find(|c| c.seq == 1000).unwrap().hash;
    assert_eq!(report.head_hash, head);

    // Every request's record is there exactly once.
    let ids: HashSet<String> = lines(dir.path())
        .iter()
        .filter_map(|l| Some(decode_line(l).unwrap().decision()?.request_id.clone()))
        .collect();
    assert_eq!(ids.len(), 1000);

    let stats = writer.stats();
    assert_eq!(stats.records_written, 1000);
    assert_eq!(stats.syncs, stats.groups);
    eprintln!("fsync groups for 1000 records: {}", stats.syncs);
    assert!(
        stats.syncs < 1000,
        "group commit: {} fsyncs for 1000 records",
        stats.syncs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3u64 {
        let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
        let committed = commit_concurrently(&writer, round * 100..round * 100 + 100).await;
        assert_eq!(committed.iter().map(|c| c.seq).min(), Some(round * 100 + 1));
        writer.shutdown().await.unwrap();
    }
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!((report.decisions, report.files), (300, 1));
}

#[tokio::test]
async fn torn_final_line_is_reported_by_verify_and_repaired_by_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    for i in 0..5 {
        writer.commit(record(i)).await.unwrap();
    }
    writer.shutdown().await.unwrap();
    drop(writer);

    // A crash in the middle of writing record 5.
    let path = dir.path().join(file_name(0));
    let full = fs::read(&path).unwrap();
    let mut torn = full.clone();
    let sixth = lines(dir.path())[5].clone();
    torn.extend_from_slice(&sixth[..sixth.len() / 2]);
    fs::write(&path, &torn).unwrap();
    let err = verify_dir(dir.path()).unwrap_err();
    assert_eq!(err.seq, 6);
    assert!(matches!(err.what, VerifyFailure::TornTail { .. }), "{err}");

    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        full,
        "only the torn bytes were cut"
    );
    let next = writer.commit(record(5)).await.unwrap();
    assert_eq!(next.seq, 6);
    writer.shutdown().await.unwrap();
    assert_eq!(verify_dir(dir.path()).unwrap().head_hash, next.hash);
}

#[tokio::test]
async fn buffered_durability_still_chains_and_syncs_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Buffered).unwrap();
    let committed = commit_concurrently(&writer, 0..200).await;
    assert_eq!(
        writer.stats().syncs,
        0,
        "buffered mode does not sync per group"
    );
    writer.shutdown().await.unwrap();
    let head = committed.iter().find(|c| c.seq == 200).unwrap().hash;
    assert_eq!(verify_dir(dir.path()).unwrap().head_hash, head);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn full_disk_fails_closed_with_unavailable() {
    // /dev/full fails every write with ENOSPC, even for root; it cannot be truncated either, so the writer
    // can never recover and every commit must be refused.
    let sink = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let writer =
        AuditWriter::from_sink(sink, ChainHead::GENESIS, 0, WriterConfig::default()).unwrap();
    for i in 0..3 {
        let err = writer.commit(record(i)).await.unwrap_err();
        assert!(matches!(err, AuditError::Unavailable(_)), "{err}");
    }
    let stats = writer.stats();
    assert!(!stats.available);
    assert_eq!((stats.records_written, stats.failed_groups), (0, 3));
    assert!(stats.last_error.is_some());
    assert!(matches!(
        writer.shutdown().await,
        Err(AuditError::Unavailable(_))
    ));
}
