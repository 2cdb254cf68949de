//! The alert bus: one place every alert goes through, on its way to every sink.
//!
//! `raise` never blocks a request: it deduplicates (a repeat of the same kind, identity and model within
//! `[alerts] dedupe_secs` is counted in `rampart_alerts_suppressed_total`, not raised again), replaces the
//! identity by its keyed pseudonym when the audit pseudonymizes, logs a `WARN` line, and queues the alert.
//! One task drains the bounded queue into the sinks: the JSON-lines file (`<data-dir>/alerts/alerts.jsonl`),
//! the audit log (each alert is also an `alert` record, so the tamper-evident log holds it) and, when
//! configured, the webhook (`[alerts.webhook]`: POST JSON, retries with backoff, bounded queue, the URL from
//! a secret file; see [`crate::webhook`]). An alert that does not fit the queue is counted
//! (`rampart_alerts_dropped_total`) and still logged. When incident rules are configured, every alert is also
//! handed, before deduplication and with the real identity, to the incident responder ([`crate::incidents`]);
//! one that does not fit its queue is counted the same way.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use rampart_audit::{AuditWriter, EventKind};

use crate::webhook::WebhookHandle;
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

/// The counters the bus keeps.
#[derive(Clone, Default)]
pub struct AlertCounters {
    /// Alerts raised (after deduplication).
    pub raised: Counter<u64, AtomicU64>,
    /// Alerts that did not fit the queue.
    pub dropped: Counter<u64, AtomicU64>,
    /// Repeats suppressed within the deduplication window.
    pub suppressed: Counter<u64, AtomicU64>,
}

/// Where alerts go besides the log.
pub struct AlertSinks {
    /// The JSON-lines file.
    pub file: PathBuf,
    /// The audit log, when it is on: each alert becomes an `alert` record.
    pub audit: Option<AuditWriter>,
    /// The webhook, when configured.
    pub webhook: Option<WebhookHandle>,
}

/// The sink alerts are raised into.
#[derive(Clone)]
pub struct AlertSink {
    tx: mpsc::Sender<Alert>,
    counters: AlertCounters,
    storms: Arc<StormDetector>,
    dedupe: Arc<Dedupe>,
    audit: Option<AuditWriter>,
    /// The incident responder, once the gateway has started it (see [`crate::incidents`]).
    responder: Arc<std::sync::OnceLock<mpsc::Sender<Alert>>>,
}

impl AlertSink {
    /// Opens (creates) the alerts file and starts the task that feeds the sinks.
    ///
    /// # Errors
    /// When the directory or file cannot be created.
    pub async fn open(
        sinks: AlertSinks,
        storm_threshold: u32,
        dedupe_window: Duration,
        counters: AlertCounters,
    ) -> std::io::Result<Self> {
        let path = sinks.file;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver(file, rx, path, sinks.audit.clone(), sinks.webhook));
        Ok(Self {
            tx,
            counters,
            storms: Arc::new(StormDetector::new(storm_threshold)),
            dedupe: Arc::new(Dedupe::new(dedupe_window)),
            audit: sinks.audit,
            responder: Arc::new(std::sync::OnceLock::new()),
        })
    }

    /// Hands every alert raised from now on to the incident responder as well.
    pub(crate) fn set_responder(&self, tx: mpsc::Sender<Alert>) {
        let _ = self.responder.set(tx);
    }

    /// Raises an alert: deduplicated, pseudonymized, logged at once, delivered to the sinks when the queue
    /// has room.
    pub fn raise(&self, alert: Alert) {
        // The responder sees every alert, repeats included (an action may have expired since the first), and
        // the real identity: it must block the caller, not its pseudonym.
        if let Some(responder) = self.responder.get() {
            if responder.try_send(alert.clone()).is_err() {
                self.counters.dropped.inc();
            }
        }
        if self.dedupe.is_repeat(&alert, Instant::now()) {
            self.counters.suppressed.inc();
            return;
        }
        self.counters.raised.inc();
        let shown = shown_identity(self.audit.as_ref(), alert.identity.as_deref());
        tracing::warn!(
            kind = alert.kind,
            severity = ?alert.severity,
            model = alert.model.as_deref().unwrap_or("-"),
            identity = shown.as_deref().unwrap_or("-"),
            request_id = alert.request_id.as_deref().unwrap_or("-"),
            "alert: {}",
            alert.detail
        );
        if self.tx.try_send(alert).is_err() {
            self.counters.dropped.inc();
        }
    }

    /// Applies reloaded `[alerts] rate_limit_storm` and `dedupe_secs` (SIGHUP); the next alert uses them.
    pub(crate) fn set_limits(&self, storm_threshold: u32, dedupe_window: Duration) {
        self.storms
            .threshold
            .store(storm_threshold, Ordering::Relaxed);
        self.dedupe.window_ms.store(
            u64::try_from(dedupe_window.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Notes one rate-limit refusal; returns true when it makes the identity's refusals in this minute reach
    /// the storm threshold (so the caller raises exactly one alert per identity per minute).
    pub fn rate_limited(&self, identity: &Arc<str>, unix_minute: u64) -> bool {
        self.storms.note(identity, unix_minute)
    }
}

/// Drains the queue into the file, then the audit log. A sink that fails is logged; the others still get
/// the alert.
async fn deliver(
    mut file: tokio::fs::File,
    mut rx: mpsc::Receiver<Alert>,
    path: PathBuf,
    audit: Option<AuditWriter>,
    webhook: Option<WebhookHandle>,
) {
    /// Alerts taken per round: one file write and one audit group commit for all of them.
    const BATCH: usize = 64;
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut lines = Vec::new();
        let mut recorded = Vec::new();
        for alert in batch.drain(..) {
            let Ok(value) = serde_json::to_value(&alert) else {
                continue;
            };
            let mut shown = value.clone();
            if let Some(id) = shown_identity(audit.as_ref(), alert.identity.as_deref()) {
                shown["identity"] = serde_json::Value::String(id);
            }
            lines.extend_from_slice(shown.to_string().as_bytes());
            lines.push(b'\n');
            if let Some(hook) = &webhook {
                // Never blocks: a full webhook queue is counted there.
                hook.send(shown);
            }
            recorded.push((alert.kind, value));
        }
        // The file first, so an alert found in the audit log is in the file too.
        if let Err(e) = file.write_all(&lines).await {
            tracing::error!(file = %path.display(), "cannot write alerts: {e}");
        }
        let _ = file.flush().await;
        if let Some(audit) = &audit {
            // Committed concurrently so the batch shares one fsync; the writer pseudonymizes the identity
            // itself, as it does for decisions.
            let mut commits = tokio::task::JoinSet::new();
            for (kind, value) in recorded {
                let audit = audit.clone();
                commits.spawn(async move {
                    if let Err(e) = audit.commit_event(EventKind::Alert, &value).await {
                        tracing::error!("cannot record alert {kind} in the audit log: {e}");
                    }
                });
            }
            while commits.join_next().await.is_some() {}
        }
    }
}

/// The identity as it may be shown outside the process: its pseudonym when the audit pseudonymizes.
fn shown_identity(audit: Option<&AuditWriter>, identity: Option<&str>) -> Option<String> {
    let identity = identity?;
    Some(match audit {
        Some(a) => a.policy().identity(identity).into_owned(),
        None => identity.to_owned(),
    })
}

/// Kinds raised once per distinct event, never suppressed as repeats.
const NEVER_DEDUPED: &[&str] = &["incident_action", "model_version_changed"];

/// What makes two alerts the same alert: kind, identity, model.
type AlertKey = (&'static str, Option<String>, Option<String>);

/// Suppresses repeats of an alert (same kind, identity, model) within a window. Bounded like
/// [`StormDetector`]: past `MAX_TRACKED` keys the map is cleared (at worst a repeat is raised once more).
struct Dedupe {
    /// Milliseconds; atomic so a config reload can change it under live traffic.
    window_ms: AtomicU64,
    last: Mutex<HashMap<AlertKey, Instant>>,
}

impl Dedupe {
    fn new(window: Duration) -> Self {
        Self {
            window_ms: AtomicU64::new(u64::try_from(window.as_millis()).unwrap_or(u64::MAX)),
            last: Mutex::new(HashMap::new()),
        }
    }

    fn is_repeat(&self, alert: &Alert, now: Instant) -> bool {
        // Each incident action and each version change is its own event (an apply and its lift share kind,
        // identity and model), and they are few: never folded into an earlier one.
        let window = Duration::from_millis(self.window_ms.load(Ordering::Relaxed));
        if window.is_zero() || NEVER_DEDUPED.contains(&alert.kind) {
            return false;
        }
        let key = (alert.kind, alert.identity.clone(), alert.model.clone());
        let mut last = self.last.lock();
        if let Some(at) = last.get(&key) {
            if now.duration_since(*at) < window {
                return true;
            }
        }
        if last.len() >= MAX_TRACKED {
            last.clear();
        }
        last.insert(key, now);
        false
    }
}

/// Counts rate-limit refusals per identity per minute. Bounded: the map is cleared when it grows past
/// `MAX_TRACKED` identities (at worst a storm alert is delayed by a minute).
struct StormDetector {
    /// Atomic so a config reload can change it under live traffic.
    threshold: AtomicU32,
    counts: Mutex<HashMap<Arc<str>, (u64, u32)>>,
}

const MAX_TRACKED: usize = 10_000;

impl StormDetector {
    fn new(threshold: u32) -> Self {
        Self {
            threshold: AtomicU32::new(threshold),
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
        entry.1 == self.threshold.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::{Duration, Instant};

    use super::{Alert, Dedupe};

    fn alert(kind: &'static str) -> Alert {
        Alert {
            time: time::OffsetDateTime::now_utc(),
            kind,
            severity: rampart_core::Severity::High,
            model: Some("m".into()),
            identity: Some("mallory".into()),
            request_id: None,
            detail: String::new(),
        }
    }

    #[test]
    fn repeats_are_suppressed_but_incident_actions_never_are() {
        let d = Dedupe::new(Duration::from_secs(60));
        let now = Instant::now();
        assert!(!d.is_repeat(&alert("anomalous_input"), now));
        assert!(d.is_repeat(&alert("anomalous_input"), now));
        assert!(!d.is_repeat(&alert("incident_action"), now));
        assert!(!d.is_repeat(&alert("incident_action"), now));
    }
}
