//! Alerts: JSON lines in `<data-dir>/alerts/alerts.jsonl` and a `WARN` line in the log. The queue to the file
//! writer is bounded; an alert that does not fit is counted (`rampart_alerts_dropped_total`) and still logged,
//! never allowed to block a request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use rampart_core::Severity;

/// Alerts waiting for the file writer before new ones are dropped.
const QUEUE: usize = 1024;

/// One alert.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// When (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// What kind (`anomalous_input`, `rate_limit_storm`, `audit_unavailable`, `internal`, …).
    pub kind: &'static str,
    /// How serious.
    pub severity: Severity,
    /// The model concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The identity concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The request that raised it (find its audit record by this id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Safe text.
    pub detail: String,
}

/// The sink alerts are raised into.
#[derive(Clone)]
pub struct AlertSink {
    tx: mpsc::Sender<Alert>,
    raised: Counter<u64, AtomicU64>,
    dropped: Counter<u64, AtomicU64>,
    storms: Arc<StormDetector>,
}

impl AlertSink {
    /// Opens (creates) the alerts file and starts its writer task.
    ///
    /// # Errors
    /// When the directory or file cannot be created.
    pub async fn open(
        path: &Path,
        storm_threshold: u32,
        raised: Counter<u64, AtomicU64>,
        dropped: Counter<u64, AtomicU64>,
    ) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_alerts(file, rx, path.to_path_buf()));
        Ok(Self {
            tx,
            raised,
            dropped,
            storms: Arc::new(StormDetector::new(storm_threshold)),
        })
    }

    /// Raises an alert: logged at once, written to the file when the queue has room.
    pub fn raise(&self, alert: Alert) {
        self.raised.inc();
        tracing::warn!(
            kind = alert.kind,
            severity = ?alert.severity,
            model = alert.model.as_deref().unwrap_or("-"),
            identity = alert.identity.as_deref().unwrap_or("-"),
            request_id = alert.request_id.as_deref().unwrap_or("-"),
            "alert: {}",
            alert.detail
        );
        if self.tx.try_send(alert).is_err() {
            self.dropped.inc();
        }
    }

    /// Notes one rate-limit refusal; returns true when it makes the identity's refusals in this minute reach
    /// the storm threshold (so the caller raises exactly one alert per identity per minute).
    pub fn rate_limited(&self, identity: &Arc<str>, unix_minute: u64) -> bool {
        self.storms.note(identity, unix_minute)
    }
}

async fn write_alerts(mut file: tokio::fs::File, mut rx: mpsc::Receiver<Alert>, path: PathBuf) {
    while let Some(alert) = rx.recv().await {
        let mut line = match serde_json::to_vec(&alert) {
            Ok(l) => l,
            Err(_) => continue,
        };
        line.push(b'\n');
        if let Err(e) = file.write_all(&line).await {
            tracing::error!(file = %path.display(), "cannot write alert: {e}");
        }
        let _ = file.flush().await;
    }
}

/// Counts rate-limit refusals per identity per minute. Bounded: the map is cleared when it grows past
/// `MAX_TRACKED` identities (at worst a storm alert is delayed by a minute).
struct StormDetector {
    threshold: u32,
    counts: Mutex<HashMap<Arc<str>, (u64, u32)>>,
}

const MAX_TRACKED: usize = 10_000;

impl StormDetector {
    fn new(threshold: u32) -> Self {
        Self {
            threshold,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn note(&self, identity: &Arc<str>, minute: u64) -> bool {
        let mut counts = self.counts.lock();
        if counts.len() >= MAX_TRACKED && !counts.contains_key(identity) {
            counts.clear();
        }
        let entry = counts.entry(identity.clone()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 == self.threshold
    }
}
