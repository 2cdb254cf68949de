#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::format::{file_name, Decision, Kind, Outcome};
use crate::verify_dir;

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        time: None,
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

fn log_lines(dir: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(dir.join(file_name(0))).unwrap();
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "half line left in the log"
    );
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A file sink whose writes or syncs fail while told to; a failing write first writes half its buffer, as a
/// full disk does.
struct FlakySink {
    file: File,
    failing_writes: Arc<AtomicUsize>,
    failing_syncs: Arc<AtomicUsize>,
    failing_truncates: Arc<AtomicUsize>,
}

fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl Sink for FlakySink {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if take_one(&self.failing_writes) {
            Write::write_all(&mut self.file, &buf[..buf.len() / 2])?;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "disk full (test)",
            ));
        }
        Write::write_all(&mut self.file, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        if take_one(&self.failing_syncs) {
            return Err(io::Error::other("sync failed (test)"));
        }
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        if take_one(&self.failing_truncates) {
            return Err(io::Error::other("truncate failed (test)"));
        }
        Sink::truncate(&mut self.file, len)
    }
}

struct Flaky {
    dir: tempfile::TempDir,
    writer: AuditWriter,
    writes: Arc<AtomicUsize>,
    syncs: Arc<AtomicUsize>,
    truncates: Arc<AtomicUsize>,
}

fn flaky_writer() -> Flaky {
    let dir = tempfile::tempdir().unwrap();
    let file = create_file(&dir.path().join(file_name(0))).unwrap();
    let (writes, syncs, truncates) = Default::default();
    let sink = FlakySink {
        file,
        failing_writes: Arc::clone(&writes),
        failing_syncs: Arc::clone(&syncs),
        failing_truncates: Arc::clone(&truncates),
    };
    let writer =
        AuditWriter::from_sink(sink, ChainHead::GENESIS, 0, WriterConfig::default()).unwrap();
    Flaky {
        dir,
        writer,
        writes,
        syncs,
        truncates,
    }
}

#[tokio::test]
async fn commits_get_contiguous_seqs_and_the_hash_of_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    let mut committed = Vec::new();
    for i in 0..5 {
        committed.push(writer.commit(record(i)).await.unwrap());
    }
    writer.shutdown().await.unwrap();
    let lines = log_lines(dir.path());
    // Line 0 is the segment header.
    assert_eq!(
        format::decode_line(&lines[0]).unwrap().kind(),
        Kind::Segment
    );
    for (i, (c, line)) in committed.iter().zip(&lines[1..]).enumerate() {
        assert_eq!(c.seq, i as u64 + 1);
        assert_eq!(c.hash, ChainHash::of_line(line));
    }
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!((report.records, report.head_hash), (6, committed[4].hash));
    let stats = writer.stats();
    assert_eq!(
        (stats.records_written, stats.syncs, stats.available),
        (5, 5, true)
    );
}

#[cfg(unix)]
#[tokio::test]
async fn new_log_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a/b/audit");
    let writer = AuditWriter::open(&dir, Durability::Fsync).unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        fs::metadata(dir.join(file_name(0)))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let first = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    let last = first.commit(record(0)).await.unwrap();
    drop(first);
    let second = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    let next = second.commit(record(1)).await.unwrap();
    assert_eq!(next.seq, 2);
    drop(second);
    let lines = log_lines(dir.path());
    assert_eq!(format::decode_line(&lines[2]).unwrap().prev, last.hash);
    assert_eq!(verify_dir(dir.path()).unwrap().records, 3);
}

#[tokio::test]
async fn reopening_an_empty_file_starts_at_genesis() {
    let dir = tempfile::tempdir().unwrap();
    drop(AuditWriter::open(dir.path(), Durability::Fsync).unwrap());
    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    assert_eq!(writer.commit(record(0)).await.unwrap().seq, 1);
}

#[tokio::test]
async fn torn_tail_is_cut_away_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    writer.commit(record(0)).await.unwrap();
    writer.shutdown().await.unwrap();
    drop(writer);
    let path = dir.path().join(file_name(0));
    let mut bytes = fs::read(&path).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(br#"{"v":2,"seq":2,"ti"#);
    fs::write(&path, &bytes).unwrap();

    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len as u64);
    assert_eq!(writer.commit(record(1)).await.unwrap().seq, 2);
    drop(writer);
    assert_eq!(verify_dir(dir.path()).unwrap().records, 3);
}

#[tokio::test]
async fn torn_tail_with_no_complete_line_leaves_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(file_name(0)), b"{\"v\":2,").unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    assert_eq!(writer.commit(record(0)).await.unwrap().seq, 1);
    drop(writer);
    assert_eq!(verify_dir(dir.path()).unwrap().records, 2);
}

#[test]
fn unparseable_last_line_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(file_name(0)), b"not json\n").unwrap();
    let err = AuditWriter::open(dir.path(), Durability::Fsync).unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");
}

#[test]
fn zero_queue_capacity_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        AuditWriter::open_with(dir.path(), WriterConfig::default().queue_capacity(0)).unwrap_err();
    assert!(matches!(err, AuditError::Config(_)));
}

#[tokio::test]
async fn bad_record_is_refused_without_touching_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Fsync).unwrap();
    let mut bad = record(0);
    bad.input_sha256 = "nope".into();
    assert!(matches!(
        writer.commit(bad).await,
        Err(AuditError::InvalidRecord(FormatError::BadInputDigest))
    ));
    assert_eq!(writer.commit(record(0)).await.unwrap().seq, 1);
    assert!(writer.stats().available);
}

#[tokio::test]
async fn failed_write_refuses_the_group_leaves_no_half_line_and_recovers() {
    let f = flaky_writer();
    f.writer.commit(record(0)).await.unwrap();
    f.writes.store(1, Ordering::SeqCst);
    let err = f.writer.commit(record(1)).await.unwrap_err();
    assert!(matches!(err, AuditError::Unavailable(_)), "{err}");
    let stats = f.writer.stats();
    assert!(!stats.available);
    assert_eq!(stats.failed_groups, 1);
    assert!(stats.last_error.unwrap().contains("disk full"));
    assert_eq!(log_lines(f.dir.path()).len(), 2);

    let next = f.writer.commit(record(1)).await.unwrap();
    assert_eq!(next.seq, 2, "a refused record does not use up a seq");
    assert!(f.writer.stats().available);
    f.writer.shutdown().await.unwrap();
    assert_eq!(verify_dir(f.dir.path()).unwrap().head_hash, next.hash);
}

#[tokio::test]
async fn failed_sync_refuses_the_group_and_removes_it() {
    let f = flaky_writer();
    f.writer.commit(record(0)).await.unwrap();
    f.syncs.store(1, Ordering::SeqCst);
    assert!(matches!(
        f.writer.commit(record(1)).await,
        Err(AuditError::Unavailable(_))
    ));
    assert_eq!(log_lines(f.dir.path()).len(), 2);
    assert_eq!(f.writer.commit(record(1)).await.unwrap().seq, 2);
    f.writer.shutdown().await.unwrap();
    assert_eq!(verify_dir(f.dir.path()).unwrap().records, 3);
}

#[tokio::test]
async fn later_commits_are_refused_until_the_sink_can_be_repaired() {
    let f = flaky_writer();
    f.writer.commit(record(0)).await.unwrap();
    // The write fails, then the cut after it and the cut the next group tries first.
    f.writes.store(1, Ordering::SeqCst);
    f.truncates.store(2, Ordering::SeqCst);
    assert!(matches!(
        f.writer.commit(record(1)).await,
        Err(AuditError::Unavailable(_))
    ));
    assert!(matches!(
        f.writer.commit(record(1)).await,
        Err(AuditError::Unavailable(_))
    ));
    assert_eq!(f.writer.stats().failed_groups, 2);
    // Repaired: the half line is gone and the chain continues.
    assert_eq!(f.writer.commit(record(1)).await.unwrap().seq, 2);
    f.writer.shutdown().await.unwrap();
    assert_eq!(log_lines(f.dir.path()).len(), 3);
    assert_eq!(verify_dir(f.dir.path()).unwrap().records, 3);
}

#[tokio::test]
async fn shutdown_writes_what_was_queued_and_refuses_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Buffered).unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let w = writer.clone();
            tokio::spawn(async move { w.commit(record(i)).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    writer.shutdown().await.unwrap();
    assert!(matches!(
        writer.commit(record(99)).await,
        Err(AuditError::Closed)
    ));
    writer.shutdown().await.unwrap();
    assert_eq!(verify_dir(dir.path()).unwrap().decisions, ok);
}

#[tokio::test]
async fn dropping_the_last_handle_flushes_queued_records() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Buffered).unwrap();
    // Queue a record and stop waiting for it: the writer still owes it to the log.
    let queued = {
        let w = writer.clone();
        tokio::spawn(async move { w.commit(record(0)).await })
    };
    queued.await.unwrap().unwrap();
    let pending = writer.commit(record(1));
    let _ = tokio::time::timeout(Duration::from_nanos(1), pending).await;
    drop(writer);
    // `timeout` polls the commit once before its deadline, which queues the record.
    assert_eq!(verify_dir(dir.path()).unwrap().decisions, 2);
}

/// A sink that blocks each write until the test lets it through.
struct GatedSink {
    gate: std::sync::mpsc::Receiver<()>,
}

impl Sink for GatedSink {
    fn write_all(&mut self, _: &[u8]) -> io::Result<()> {
        self.gate
            .recv()
            .map_err(|_| io::Error::other("gate closed"))
    }
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn truncate(&mut self, _: u64) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_makes_callers_wait_instead_of_dropping() {
    let (open, gate) = std::sync::mpsc::channel();
    let config = WriterConfig::new(Durability::Fsync).queue_capacity(2);
    let writer = AuditWriter::from_sink(GatedSink { gate }, ChainHead::GENESIS, 0, config).unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let w = writer.clone();
            tokio::spawn(async move { w.commit(record(i)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "nothing can finish while the sink is blocked"
    );
    assert_eq!(writer.stats().records_written, 0);
    for _ in 0..20 {
        let _ = open.send(());
    }
    let mut seqs: Vec<u64> = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    assert!(
        writer.stats().groups >= 10,
        "a group is at most the queue capacity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_records_are_split_across_groups() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(dir.path(), Durability::Buffered).unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let w = writer.clone();
            let mut rec = record(i);
            rec.output = json!("x".repeat(900 * 1024));
            tokio::spawn(async move { w.commit(rec).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    writer.shutdown().await.unwrap();
    // 40 records of ~0.9 MiB cannot fit in fewer than five 8 MiB groups.
    assert!(writer.stats().groups >= 5, "{:?}", writer.stats());
    assert_eq!(verify_dir(dir.path()).unwrap().decisions, 40);
}

#[tokio::test]
async fn a_quiet_log_still_gets_its_checkpoint_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate());
    let public = key.verifying_key();
    let mut cp = CheckpointPolicy::new(key);
    cp.every_records = 1_000_000;
    cp.every = Duration::from_millis(50);
    let writer =
        AuditWriter::open_with(dir.path(), WriterConfig::default().checkpoints(cp)).unwrap();
    writer.commit(record(0)).await.unwrap();
    // No more records: the timer, not a group, must write the checkpoint.
    let mut report = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = crate::verify_dir_with(
            dir.path(),
            crate::VerifyOptions {
                public_key: Some(&public),
                ..crate::VerifyOptions::default()
            },
        )
        .unwrap();
        if r.checkpoints > 0 {
            report = Some(r);
            break;
        }
    }
    let report = report.expect("no checkpoint written while the log was quiet");
    assert_eq!(report.unsigned_tail, 0);
    drop(writer);
}

#[tokio::test]
async fn old_segment_is_closed_at_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = WriterConfig::default().segments(1 << 30, Duration::from_millis(20));
    let writer = AuditWriter::open_with(dir.path(), config).unwrap();
    writer.commit(record(0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let second = writer.commit(record(1)).await.unwrap();
    writer.shutdown().await.unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert_eq!((report.files, report.decisions), (2, 2));
    // The new segment starts with its header, then the record.
    assert_eq!(second.seq, 3);
    assert!(dir.path().join(file_name(2)).exists());
}

#[test]
fn raw_inputs_without_an_encryption_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = RecordPolicy {
        store_input: true,
        ..RecordPolicy::default()
    };
    let err =
        AuditWriter::open_with(dir.path(), WriterConfig::default().policy(policy)).unwrap_err();
    assert!(
        err.to_string().contains("requires an encryption key"),
        "{err}"
    );
}
