//! Tampering with a real log — written by the writer, in several segments, with signed checkpoints — is
//! detected at the right place; the untouched log verifies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rampart_audit::format::decode_line;
use rampart_audit::{
    log_files, verify_dir_with, AuditRecord, AuditWriter, CheckpointPolicy, Decision, Durability,
    Kind, Outcome, VerifyError, VerifyFailure, VerifyOptions, VerifyReport, WriterConfig,
};
use rampart_crypto::sign::{SigningKey, VerifyingKey};
use serde_json::json;

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        time: None,
        request_id: format!("req-{i}"),
        identity: format!("tenant-{}", i % 3),
        model: "iris".into(),
        model_version: "1".into(),
        input_sha256: AuditRecord::input_digest(&i.to_le_bytes()),
        decision: Decision {
            outcome: Outcome::Pass,
            reason: None,
            guard: None,
            status: 200,
        },
        flags: vec![],
        output: json!({"label": i % 3}),
        input: None,
        latency_us: i,
    }
}

struct Log {
    dir: tempfile::TempDir,
    public: VerifyingKey,
}

/// 120 decisions in segments of about 2 KiB, a checkpoint every 7 lines and one at shutdown.
async fn written_log() -> Log {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate());
    let public = key.verifying_key();
    let mut checkpoints = CheckpointPolicy::new(key);
    checkpoints.every_records = 7;
    let config = WriterConfig::new(Durability::Fsync)
        .segments(2048, Duration::from_secs(3600))
        .checkpoints(checkpoints);
    let writer = AuditWriter::open_with(dir.path(), config).unwrap();
    for i in 0..120 {
        writer.commit(record(i)).await.unwrap();
    }
    writer.shutdown().await.unwrap();
    Log { dir, public }
}

impl Log {
    fn verify(&self) -> Result<VerifyReport, VerifyError> {
        verify_dir_with(
            self.dir.path(),
            VerifyOptions {
                public_key: Some(&self.public),
                ..VerifyOptions::default()
            },
        )
    }

    fn files(&self) -> Vec<PathBuf> {
        log_files(self.dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    fs::read(path)
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    fs::write(path, out).unwrap();
}

fn seq_of(line: &[u8]) -> u64 {
    decode_line(line).unwrap().seq
}

/// A decision line in the middle of the second file: not its first, not its last.
fn middle_decision(path: &Path) -> usize {
    let lines = lines(path);
    (1..lines.len() - 1)
        .find(|&i| decode_line(&lines[i]).unwrap().kind() == Kind::Decision)
        .unwrap()
}

#[tokio::test]
async fn untouched_log_verifies_with_every_signature() {
    let log = written_log().await;
    let report = log.verify().unwrap();
    assert!(report.files >= 4, "{report:?}");
    assert_eq!(report.decisions, 120);
    assert!(report.checkpoints >= 120 / 7, "{report:?}");
    assert!(report.signatures_checked);
    assert_eq!(report.unsigned_tail, 0, "shutdown signs the tail");
    assert_eq!(report.last_checkpoint, Some(report.records - 1));
}

#[tokio::test]
async fn flipped_byte_is_caught_at_the_next_link() {
    let log = written_log().await;
    let file = &log.files()[1];
    let mut all = lines(file);
    let i = middle_decision(file);
    let seq = seq_of(&all[i]);
    let at = all[i].windows(4).position(|w| w == b"req-").unwrap() + 4;
    all[i][at] = if all[i][at] == b'9' { b'8' } else { b'9' };
    write_lines(file, &all);
    let err = log.verify().unwrap_err();
    assert_eq!(err.seq, seq + 1, "{err}");
    assert!(
        matches!(err.what, VerifyFailure::PrevMismatch { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn deleted_record_is_a_gap_at_its_seq() {
    let log = written_log().await;
    let file = &log.files()[1];
    let mut all = lines(file);
    let i = middle_decision(file);
    let seq = seq_of(&all[i]);
    all.remove(i);
    write_lines(file, &all);
    let err = log.verify().unwrap_err();
    assert_eq!(err.seq, seq, "{err}");
    assert!(
        matches!(err.what, VerifyFailure::SeqMismatch { found } if found == seq + 1),
        "{err}"
    );
}

#[tokio::test]
async fn reordered_records_fail_at_the_first_moved_one() {
    let log = written_log().await;
    let file = &log.files()[1];
    let mut all = lines(file);
    let i = middle_decision(file);
    let seq = seq_of(&all[i]);
    all.swap(i, i + 1);
    write_lines(file, &all);
    let err = log.verify().unwrap_err();
    assert_eq!(err.seq, seq, "{err}");
    assert!(
        matches!(err.what, VerifyFailure::SeqMismatch { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn deleted_middle_segment_is_named_where_it_was() {
    let log = written_log().await;
    let files = log.files();
    let first_of_deleted = seq_of(&lines(&files[1])[0]);
    fs::remove_file(&files[1]).unwrap();
    let err = log.verify().unwrap_err();
    assert_eq!(err.seq, first_of_deleted, "{err}");
    assert_eq!(err.file, files[2]);
    assert!(matches!(err.what, VerifyFailure::FileStart { .. }), "{err}");
}

#[tokio::test]
async fn deleted_first_segment_is_named_at_seq_zero() {
    let log = written_log().await;
    let files = log.files();
    fs::remove_file(&files[0]).unwrap();
    let err = log.verify().unwrap_err();
    assert_eq!(err.seq, 0, "{err}");
    assert!(matches!(err.what, VerifyFailure::FileStart { .. }), "{err}");
}

#[tokio::test]
async fn renamed_segment_breaks_the_next_header() {
    let log = written_log().await;
    let files = log.files();
    // Replace segment 1 by a copy of segment 2 renamed into its place: seqs and links no longer fit.
    let first = seq_of(&lines(&files[1])[0]);
    fs::remove_file(&files[1]).unwrap();
    fs::copy(&files[2], &files[1]).unwrap();
    let err = log.verify().unwrap_err();
    assert_eq!(err.seq, first, "{err}");
}

#[tokio::test]
async fn truncated_tail_is_reported_as_torn() {
    let log = written_log().await;
    let last = log.files().last().unwrap().clone();
    let all = lines(&last);
    let seq = seq_of(all.last().unwrap());
    let mut bytes = fs::read(&last).unwrap();
    bytes.truncate(bytes.len() - 20);
    fs::write(&last, bytes).unwrap();
    let err = log.verify().unwrap_err();
    assert_eq!(err.seq, seq, "{err}");
    assert!(matches!(err.what, VerifyFailure::TornTail { .. }), "{err}");
}

fn first_checkpoint(path: &Path) -> usize {
    lines(path)
        .iter()
        .position(|l| decode_line(l).unwrap().kind() == Kind::Checkpoint)
        .unwrap()
}

#[tokio::test]
async fn replaced_checkpoint_signature_is_caught_at_the_checkpoint() {
    let log = written_log().await;
    let file = &log.files()[1];
    let mut all = lines(file);
    let i = first_checkpoint(file);
    let seq = seq_of(&all[i]);
    let text = String::from_utf8(all[i].clone()).unwrap();
    let at = text.find("\"sig\":\"").unwrap() + 7;
    let mut forged = text.into_bytes();
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    all[i] = forged;
    write_lines(file, &all);
    let err = log.verify().unwrap_err();
    assert_eq!(err.seq, seq, "{err}");
    assert!(matches!(err.what, VerifyFailure::BadSignature), "{err}");
}

#[tokio::test]
async fn checkpoint_signed_by_another_key_is_named() {
    let log = written_log().await;
    let other = SigningKey::generate().verifying_key();
    let err = verify_dir_with(
        log.dir.path(),
        VerifyOptions {
            public_key: Some(&other),
            ..VerifyOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err.what, VerifyFailure::UnknownKey { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn without_a_key_the_chain_is_checked_and_signatures_are_said_unchecked() {
    let log = written_log().await;
    let report = verify_dir_with(log.dir.path(), VerifyOptions::default()).unwrap();
    assert!(!report.signatures_checked);
    assert_eq!(report.decisions, 120);
}

#[tokio::test]
async fn a_range_of_segments_verifies_as_partial_from_its_first_line() {
    let log = written_log().await;
    let files = log.files();
    fs::remove_file(&files[0]).unwrap();
    assert!(log.verify().is_err());
    let report = verify_dir_with(
        log.dir.path(),
        VerifyOptions {
            public_key: Some(&log.public),
            partial: true,
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(report.first_seq > 0);
    assert_eq!(
        report.first_prev,
        decode_line(&lines(&files[1])[0]).unwrap().prev
    );
    // A gap further on is still caught.
    fs::remove_file(&files[2]).unwrap();
    let err = verify_dir_with(
        log.dir.path(),
        VerifyOptions {
            partial: true,
            ..VerifyOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err.what, VerifyFailure::FileStart { .. }), "{err}");
}
