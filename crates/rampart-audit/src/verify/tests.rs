#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::format::{encode, file_name, AuditRecord, Decision, Outcome, PreviousSegment};

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        time: Some(datetime!(2024-05-01 12:00:00 UTC)),
        request_id: format!("req-{i}"),
        identity: "alice".into(),
        model: "iris".into(),
        model_version: "3".into(),
        input_sha256: AuditRecord::input_digest(&i.to_le_bytes()),
        decision: Decision {
            outcome: Outcome::Pass,
            reason: None,
            guard: None,
            status: 200,
        },
        flags: vec![],
        output: json!({"label": i}),
        input: None,
        latency_us: i,
    }
}

/// Lines of a valid segment with seqs `range`, starting from `prev`: a header naming the file that starts at
/// `previous` (none when `range` starts at 0), then decisions. Returns the lines and the head.
fn chain_lines(range: std::ops::Range<u64>, prev: ChainHash) -> (Vec<Vec<u8>>, ChainHash) {
    let previous = (range.start > 0).then(|| PreviousSegment {
        file: file_name(0),
        last_seq: range.start - 1,
        last_hash: prev,
    });
    chain_lines_after(range, prev, previous)
}

fn chain_lines_after(
    range: std::ops::Range<u64>,
    mut prev: ChainHash,
    previous: Option<PreviousSegment>,
) -> (Vec<Vec<u8>>, ChainHash) {
    let mut lines = Vec::new();
    let first = range.start;
    for seq in range {
        let mut line = Vec::new();
        let encoded = if seq == first {
            crate::format::encode_segment(previous.as_ref(), time::OffsetDateTime::UNIX_EPOCH)
        } else {
            encode(
                &record(seq),
                time::OffsetDateTime::UNIX_EPOCH,
                &crate::format::RecordPolicy::default(),
            )
        };
        encoded.unwrap().frame_into(seq, &prev, &mut line);
        prev = ChainHash::of_line(&line);
        lines.push(line);
    }
    (lines, prev)
}

fn write_file(dir: &Path, first_seq: u64, lines: &[Vec<u8>]) -> PathBuf {
    let path = dir.join(file_name(first_seq));
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    fs::write(&path, bytes).unwrap();
    path
}

fn ten_record_log() -> (tempfile::TempDir, Vec<Vec<u8>>, ChainHash) {
    let dir = tempfile::tempdir().unwrap();
    let (lines, head) = chain_lines(0..10, ChainHash::GENESIS);
    write_file(dir.path(), 0, &lines);
    (dir, lines, head)
}

fn fails_at(dir: &Path) -> VerifyError {
    verify_dir(dir).expect_err("tampered log verified")
}

#[test]
fn intact_log_verifies_with_its_head() {
    let (dir, _, head) = ten_record_log();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(
        report,
        VerifyReport {
            records: 10,
            decisions: 9,
            events: 0,
            checkpoints: 0,
            signatures_checked: false,
            last_checkpoint: None,
            unsigned_tail: 10,
            head_hash: head,
            files: 1,
            first_seq: 0,
            first_prev: ChainHash::GENESIS,
        }
    );
}

#[test]
fn empty_directory_is_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(
        (report.records, report.head_hash, report.files),
        (0, ChainHash::GENESIS, 0)
    );
}

#[test]
fn missing_directory_is_an_io_failure() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails_at(&dir.path().join("nope"));
    assert!(matches!(err.what, VerifyFailure::Io(_)));
}

#[test]
fn flipped_byte_inside_a_string_breaks_the_next_link() {
    let (dir, mut lines, _) = ten_record_log();
    let at = lines[4].windows(5).position(|w| w == b"req-4").unwrap();
    lines[4][at] = b'R';
    write_file(dir.path(), 0, &lines);
    let err = fails_at(dir.path());
    assert_eq!((err.seq, err.line), (5, 6));
    assert!(
        matches!(err.what, VerifyFailure::PrevMismatch { .. }),
        "{err}"
    );
}

#[test]
fn flipped_byte_that_breaks_json_is_named_at_its_own_record() {
    let (dir, mut lines, _) = ten_record_log();
    lines[4][0] = b'[';
    write_file(dir.path(), 0, &lines);
    let err = fails_at(dir.path());
    assert_eq!((err.seq, err.line), (4, 5));
    assert!(matches!(err.what, VerifyFailure::Format(_)), "{err}");
}

#[test]
fn flipped_byte_in_the_last_record_changes_the_head() {
    let (dir, mut lines, head) = ten_record_log();
    let at = lines[9].windows(5).position(|w| w == b"req-9").unwrap();
    lines[9][at] = b'R';
    write_file(dir.path(), 0, &lines);
    // The chain alone cannot see it; the head, compared with a copy kept elsewhere, does.
    assert_ne!(verify_dir(dir.path()).unwrap().head_hash, head);
}

#[test]
fn deleted_line_is_named_at_the_missing_seq() {
    let (dir, mut lines, _) = ten_record_log();
    lines.remove(4);
    write_file(dir.path(), 0, &lines);
    let err = fails_at(dir.path());
    assert_eq!((err.seq, err.line), (4, 5));
    assert!(
        matches!(err.what, VerifyFailure::SeqMismatch { found: 5 }),
        "{err}"
    );
}

#[test]
fn reordered_lines_are_named_at_the_first_moved_seq() {
    let (dir, mut lines, _) = ten_record_log();
    lines.swap(3, 4);
    write_file(dir.path(), 0, &lines);
    let err = fails_at(dir.path());
    assert_eq!((err.seq, err.line), (3, 4));
    assert!(
        matches!(err.what, VerifyFailure::SeqMismatch { found: 4 }),
        "{err}"
    );
}

#[test]
fn renumbered_reorder_still_breaks_the_links() {
    // An attacker who swaps two records and fixes their seqs still cannot fix the hashes.
    let (dir, lines, _) = ten_record_log();
    let mut text: Vec<String> = lines
        .into_iter()
        .map(|l| String::from_utf8(l).unwrap())
        .collect();
    text.swap(3, 4);
    text[3] = text[3].replacen("\"seq\":4", "\"seq\":3", 1);
    text[4] = text[4].replacen("\"seq\":3", "\"seq\":4", 1);
    let lines: Vec<Vec<u8>> = text.into_iter().map(String::into_bytes).collect();
    write_file(dir.path(), 0, &lines);
    let err = fails_at(dir.path());
    assert_eq!(err.seq, 3);
    assert!(
        matches!(err.what, VerifyFailure::PrevMismatch { .. }),
        "{err}"
    );
}

#[test]
fn truncation_mid_line_is_a_torn_tail_at_that_seq() {
    let (dir, _, _) = ten_record_log();
    let path = dir.path().join(file_name(0));
    let bytes = fs::read(&path).unwrap();
    let seventh = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(6)
        .unwrap()
        .0
        + 1;
    fs::write(&path, &bytes[..seventh + 10]).unwrap();
    let err = fails_at(dir.path());
    assert_eq!((err.seq, err.line), (7, 8));
    assert!(
        matches!(err.what, VerifyFailure::TornTail { bytes: 10 }),
        "{err}"
    );
}

#[test]
fn truncation_at_a_line_boundary_shows_only_in_count_and_head() {
    let (dir, lines, head) = ten_record_log();
    write_file(dir.path(), 0, &lines[..7]);
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!(report.records, 7);
    assert_ne!(report.head_hash, head);
}

#[test]
fn first_record_must_link_to_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let (lines, _) = chain_lines(0..3, ChainHash::of_line(b"not genesis"));
    write_file(dir.path(), 0, &lines);
    let err = fails_at(dir.path());
    assert_eq!(err.seq, 0);
    assert!(
        matches!(err.what, VerifyFailure::PrevMismatch { expected, .. } if expected == ChainHash::GENESIS)
    );
}

#[test]
fn unknown_version_is_refused() {
    let (dir, mut lines, _) = ten_record_log();
    lines[2] = br#"{"v":3,"seq":2}"#.to_vec();
    write_file(dir.path(), 0, &lines);
    let err = fails_at(dir.path());
    assert_eq!(err.seq, 2);
    assert!(
        matches!(
            err.what,
            VerifyFailure::Format(FormatError::UnsupportedVersion(3))
        ),
        "{err}"
    );
}

#[test]
fn oversized_line_is_refused_without_a_newline_in_sight() {
    let (dir, mut lines, _) = ten_record_log();
    lines.truncate(2);
    let path = write_file(dir.path(), 0, &lines);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE_BYTES));
    fs::write(&path, bytes).unwrap();
    let err = fails_at(dir.path());
    assert_eq!(err.seq, 2);
    assert!(matches!(err.what, VerifyFailure::LineTooLong), "{err}");
}

#[test]
fn line_of_exactly_the_limit_is_parsed_and_one_more_byte_is_refused() {
    for (len, too_long) in [(MAX_LINE_BYTES, false), (MAX_LINE_BYTES + 1, true)] {
        let dir = tempfile::tempdir().unwrap();
        write_file(dir.path(), 0, &[vec![b' '; len]]);
        let err = fails_at(dir.path());
        assert_eq!(
            matches!(err.what, VerifyFailure::LineTooLong),
            too_long,
            "{len}: {err}"
        );
    }
}

#[test]
fn chain_runs_on_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let (first, mid) = chain_lines(0..5, ChainHash::GENESIS);
    let (second, head) = chain_lines(5..9, mid);
    write_file(dir.path(), 0, &first);
    write_file(dir.path(), 5, &second);
    assert_eq!(
        verify_dir(dir.path()).unwrap(),
        VerifyReport {
            records: 9,
            decisions: 7,
            events: 0,
            checkpoints: 0,
            signatures_checked: false,
            last_checkpoint: None,
            unsigned_tail: 9,
            head_hash: head,
            files: 2,
            first_seq: 0,
            first_prev: ChainHash::GENESIS,
        }
    );
}

#[test]
fn file_named_for_the_wrong_seq_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first, mid) = chain_lines(0..5, ChainHash::GENESIS);
    let (second, _) = chain_lines(5..9, mid);
    write_file(dir.path(), 0, &first);
    write_file(dir.path(), 6, &second);
    let err = fails_at(dir.path());
    assert_eq!((err.seq, err.line), (5, 0));
    assert!(
        matches!(err.what, VerifyFailure::FileStart { named: 6 }),
        "{err}"
    );
}

#[test]
fn log_not_starting_at_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (lines, _) = chain_lines(3..5, ChainHash::GENESIS);
    write_file(dir.path(), 3, &lines);
    assert!(matches!(
        fails_at(dir.path()).what,
        VerifyFailure::FileStart { named: 3 }
    ));
}

#[test]
fn other_files_in_the_directory_are_ignored() {
    let (dir, _, head) = ten_record_log();
    fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    fs::write(dir.path().join("audit-1.jsonl"), "garbage").unwrap();
    assert_eq!(verify_dir(dir.path()).unwrap().head_hash, head);
}
