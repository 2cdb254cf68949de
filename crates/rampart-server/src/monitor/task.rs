//! The monitoring thread: drains the observation channel and drives every model's monitors.
//!
//! Plain OS threads rather than tokio tasks, so no monitor ever runs on an async worker serving requests. The
//! per-observation work (Page–Hinkley, prediction counts, PRADA, collecting drift rows) is microseconds and
//! stays on the one monitor thread. Closing a feature-drift window (KS, PSI and an MMD permutation test: tens
//! to hundreds of milliseconds) runs on a per-model drift thread instead, fed whole windows through a
//! one-slot queue: if a window closes while the previous one is still being tested, the new one is skipped and
//! counted (`rampart_drift_windows_skipped_total`) rather than stall the monitor thread, whose falling behind
//! would drop observations for every monitor. The threads end when the gateway (every sender) is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use rampart_core::Severity;
use rampart_detect::monitor::{DriftConfig, MmdConfig, PredictionDriftConfig};
use rampart_detect::page_hinkley::{Config as PhConfig, Mode as PhMode};
use rampart_detect::prada::{Config as PradaConfig, Coverage, IdentityReport, TrackerConfig};
use rampart_detect::{
    Baseline, DriftMonitor, DriftReport, PageHinkley, PradaTracker, PredictionDrift,
};

use super::config::{ModelMonitorConfig, MonitoringConfig};
use super::metrics::{self, MonitorMetrics};
use super::{Event, Observation};
use crate::alerts::{Alert, AlertSink};
use crate::shared_state::{IdentityKeys, SharedDistance};

/// One model's monitors, owned by the monitoring thread.
pub(crate) struct ModelState {
    name: Arc<str>,
    drift: Option<DriftFeed>,
    predictions: Option<PredictionDrift>,
    latency: PageHinkley,
    rejections: PageHinkley,
    prada: Option<PradaTracker<Arc<str>>>,
    /// Identities already flagged, so the flag counter counts identities, not queries. Bounded like the
    /// tracker: cleared past `max_flagged` (at worst an identity is counted twice).
    flagged: HashSet<Arc<str>>,
    max_flagged: usize,
    row: Vec<f64>,
    /// `[state] backend = "redis"`: where this replica's PRADA distances go, for the other replicas.
    share: Option<(mpsc::Sender<SharedDistance>, IdentityKeys)>,
    /// Redis key → identity, for the identities this replica measured: a remote distance names only the key.
    /// Bounded as `flagged` (a cleared entry is learnt again at the identity's next local query).
    keys: HashMap<String, Arc<str>>,
}

impl ModelState {
    /// Builds the monitors a model can have: feature drift and prediction drift need a baseline; latency,
    /// rejection rate and PRADA do not. Says in the log which ones run.
    pub(crate) fn build(
        name: Arc<str>,
        c: &ModelMonitorConfig,
        g: &MonitoringConfig,
        baseline: Option<&Baseline>,
        labels: &[String],
        alerts: &AlertSink,
        metrics: &MonitorMetrics,
    ) -> Result<Self, String> {
        let drift = match baseline {
            Some(b) => Some(
                DriftFeed::start(
                    name.clone(),
                    c.window,
                    b.feature_names().map(str::to_owned).collect(),
                    DriftMonitor::new(
                        b,
                        DriftConfig {
                            window: c.window,
                            alpha: c.alpha,
                            psi_threshold: (c.psi_threshold > 0.0).then_some(c.psi_threshold),
                            categorical: c.categorical.clone(),
                            mmd: (c.mmd_permutations > 0).then(|| MmdConfig {
                                permutations: c.mmd_permutations,
                                ..MmdConfig::default()
                            }),
                        },
                    )
                    .map_err(|e| format!("monitor: feature drift against the baseline: {e}"))?,
                    alerts.clone(),
                    metrics.clone(),
                )
                .map_err(|e| format!("cannot start the drift thread: {e}"))?,
            ),
            None => None,
        };
        let predictions = match baseline {
            Some(b) if !labels.is_empty() => PredictionDrift::from_baseline(
                b,
                labels,
                PredictionDriftConfig {
                    window: c.window,
                    alpha: c.alpha,
                    psi_threshold: if c.psi_threshold > 0.0 {
                        c.psi_threshold
                    } else {
                        f64::INFINITY
                    },
                },
            )
            // A baseline without label or prediction counts leaves only this monitor out.
            .map_err(|e| tracing::info!(model = %name, "no prediction-drift monitor: {e}"))
            .ok(),
            _ => None,
        };
        let latency = PageHinkley::new(PhConfig {
            delta: c.latency_delta,
            lambda: c.latency_lambda,
            mode: PhMode::Up,
            ..PhConfig::default()
        })
        .map_err(|e| format!("monitor.latency_*: {e}"))?;
        let rejections = PageHinkley::new(PhConfig {
            delta: c.rejection_delta,
            lambda: c.rejection_lambda,
            mode: PhMode::Up,
            ..PhConfig::default()
        })
        .map_err(|e| format!("monitor.rejection_*: {e}"))?;
        let prada = if c.prada && !labels.is_empty() {
            Some(
                PradaTracker::new(TrackerConfig {
                    prada: PradaConfig {
                        delta: c.prada_delta,
                        min_distances: c.prada_min_queries,
                        test_every: c.prada_test_every,
                        ..PradaConfig::default()
                    },
                    max_identities: g.max_identities,
                    coverage: baseline.map(Coverage::from_baseline),
                })
                .map_err(|e| format!("monitor.prada_*: {e}"))?,
            )
        } else {
            None
        };
        if baseline.is_none() {
            tracing::info!(
                model = %name,
                "no baseline: feature and prediction drift are off; latency, rejection-rate and PRADA \
                 monitors run"
            );
        } else {
            tracing::info!(
                model = %name,
                window = c.window,
                alpha = c.alpha,
                prediction_drift = predictions.is_some(),
                prada = prada.is_some(),
                "monitors started"
            );
        }
        // Register the model's series at zero so dashboards see them before the first event.
        let m = metrics::model(&name);
        metrics.observations.get_or_create(&m).inc_by(0);
        metrics.drift_windows.get_or_create(&m).inc_by(0);
        metrics.drift_detected.get_or_create(&m).inc_by(0);
        metrics.drift_skipped.get_or_create(&m).inc_by(0);
        metrics.latency_changes.get_or_create(&m).inc_by(0);
        metrics.rejection_rate_changes.get_or_create(&m).inc_by(0);
        if prada.is_some() {
            metrics.prada_flagged.get_or_create(&m).inc_by(0);
        }
        Ok(Self {
            name,
            drift,
            predictions,
            latency,
            rejections,
            prada,
            flagged: HashSet::new(),
            max_flagged: g.max_identities.saturating_mul(4),
            row: Vec::new(),
            share: None,
            keys: HashMap::new(),
        })
    }

    /// Sends this model's PRADA distances to the other replicas (`[state] backend = "redis"`).
    pub(crate) fn with_share(
        mut self,
        share: Option<(mpsc::Sender<SharedDistance>, IdentityKeys)>,
    ) -> Self {
        self.share = share;
        self
    }
}

/// How long the monitor naps between drains while observations keep coming. The channel holds thousands, so
/// at tens of thousands of requests a second a nap this long never fills it.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(2);

/// Starts the thread.
pub(crate) fn spawn(
    mut rx: mpsc::Receiver<Event>,
    mut states: Vec<ModelState>,
    alerts: AlertSink,
    metrics: MonitorMetrics,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("rampart-monitor".into())
        .spawn(move || {
            let mut handle = |event: Event| match event {
                Event::Observed(obs) => {
                    if let Some(state) = states.iter_mut().find(|s| s.name == obs.model) {
                        state.observe(&obs, &alerts, &metrics);
                    }
                }
                Event::Remote { model, key, dmin } => {
                    if let Some(state) = states.iter_mut().find(|s| s.name == model) {
                        state.remote(&key, dmin, &alerts, &metrics);
                    }
                }
            };
            // Parked in `blocking_recv` while idle; under load, drain and nap instead, so senders find no
            // parked receiver to wake: a futex wake per request was a visible share of the gateway's CPU.
            while let Some(event) = rx.blocking_recv() {
                handle(event);
                loop {
                    let mut drained = 0usize;
                    while let Ok(event) = rx.try_recv() {
                        handle(event);
                        drained += 1;
                    }
                    if drained == 0 {
                        break;
                    }
                    std::thread::sleep(COALESCE);
                }
            }
        })
        .map(|_| ())
}

impl ModelState {
    fn observe(&mut self, obs: &Observation, alerts: &AlertSink, metrics: &MonitorMetrics) {
        let m = metrics::model(&self.name);
        metrics.observations.get_or_create(&m).inc();
        let name = self.name.clone();
        let alert = |kind: &'static str, severity, identity: Option<&str>, detail: String| Alert {
            time: OffsetDateTime::now_utc(),
            kind,
            severity,
            model: Some(name.to_string()),
            identity: identity.map(str::to_owned),
            request_id: Some(obs.request_id.clone()),
            detail,
        };

        let ms = obs.latency.as_secs_f64() * 1e3;
        // The log of latency (see `latency_delta`); the floor keeps a sub-microsecond answer finite.
        if self
            .latency
            .update(ms.max(1e-3).ln())
            .is_ok_and(|s| s.alarm)
        {
            metrics.latency_changes.get_or_create(&m).inc();
            alerts.raise(alert(
                "latency_change",
                Severity::Medium,
                None,
                format!("request latency rose (Page-Hinkley; last request {ms:.1} ms)"),
            ));
        }
        let rejected = if obs.rejected { 1.0 } else { 0.0 };
        if self.rejections.update(rejected).is_ok_and(|s| s.alarm) {
            metrics.rejection_rate_changes.get_or_create(&m).inc();
            alerts.raise(alert(
                "error_rate_change",
                Severity::Medium,
                None,
                "the rejection rate rose (Page-Hinkley)".into(),
            ));
        }

        if obs.width == 0 {
            return;
        }
        let rows = obs.features.chunks_exact(obs.width);
        for (i, x) in rows.enumerate() {
            self.row.clear();
            self.row.extend(x.iter().map(|v| f64::from(*v)));
            if let Some(drift) = &mut self.drift {
                drift.push(&self.row, &obs.request_id, metrics);
            }
            let Some(&(class, confidence)) = obs.predictions.get(i) else {
                continue;
            };
            if let Some(pd) = &mut self.predictions {
                if let Ok(Some(r)) = pd.push(class, f64::from(confidence).clamp(0.0, 1.0)) {
                    if let Some(t) = &r.classes {
                        metrics.drift_class_pvalue.get_or_create(&m).set(t.p_value);
                    }
                    if let Some(p) = r.confidence_psi {
                        metrics.drift_confidence_psi.get_or_create(&m).set(p);
                    }
                    if r.drifted {
                        metrics.prediction_drift_detected.get_or_create(&m).inc();
                        alerts.raise(alert(
                            "prediction_drift",
                            Severity::Medium,
                            None,
                            format!(
                                "prediction window {}: class-mix p = {}, confidence PSI = {}",
                                r.window,
                                r.classes
                                    .as_ref()
                                    .map_or("-".into(), |t| format!("{:.2e}", t.p_value)),
                                r.confidence_psi.map_or("-".into(), |p| format!("{p:.3}")),
                            ),
                        ));
                    }
                }
            }
            let class = u32::try_from(class).unwrap_or(u32::MAX);
            let report = match &mut self.prada {
                Some(tracker) => tracker.observe(&obs.identity, &self.row, class).ok(),
                None => continue,
            };
            if let Some(report) = report {
                if let (Some(dmin), true) = (report.observation.dmin, self.share.is_some()) {
                    let key = self.key_of(&obs.identity);
                    // Full: the distance is not shared (local detection is unaffected).
                    let _ = self.share.as_ref().map(|(share, _)| {
                        share.try_send(SharedDistance {
                            model: self.name.clone(),
                            key,
                            dmin,
                        })
                    });
                }
                self.prada_report(
                    &obs.identity,
                    &report,
                    Some(&obs.request_id),
                    alerts,
                    metrics,
                );
            }
        }
    }

    /// The identity's key in Redis, remembered so a remote distance finds the identity again.
    fn key_of(&mut self, identity: &Arc<str>) -> String {
        let key = match &self.share {
            Some((_, keys)) => keys.key(identity),
            None => IdentityKeys::default().key(identity),
        };
        if !self.keys.contains_key(&key) {
            if self.keys.len() >= self.max_flagged {
                self.keys.clear();
            }
            self.keys.insert(key.clone(), identity.clone());
        }
        key
    }

    /// A distance another replica measured for the identity with this key: it joins that identity's PRADA
    /// distances when this replica follows the identity (see `shared_state.rs`).
    fn remote(&mut self, key: &str, dmin: f64, alerts: &AlertSink, metrics: &MonitorMetrics) {
        let Some(identity) = self.keys.get(key).cloned() else {
            return;
        };
        let Some(tracker) = &mut self.prada else {
            return;
        };
        if let Ok(Some(report)) = tracker.push_distance(&identity, dmin) {
            self.prada_report(&identity, &report, None, alerts, metrics);
        }
    }

    /// Raises `model_extraction` the first time an identity alarms, and updates the PRADA gauges.
    fn prada_report(
        &mut self,
        identity: &Arc<str>,
        report: &IdentityReport,
        request_id: Option<&str>,
        alerts: &AlertSink,
        metrics: &MonitorMetrics,
    ) {
        let m = metrics::model(&self.name);
        if report.observation.alarm && !self.flagged.contains(identity) {
            if self.flagged.len() >= self.max_flagged {
                self.flagged.clear();
            }
            self.flagged.insert(identity.clone());
            metrics.prada_flagged.get_or_create(&m).inc();
            alerts.raise(Alert {
                time: OffsetDateTime::now_utc(),
                kind: "model_extraction",
                severity: Severity::High,
                model: Some(self.name.to_string()),
                identity: Some(identity.to_string()),
                request_id: request_id.map(str::to_owned),
                detail: format!(
                    "PRADA: the identity's query distances are not normal (W = {:.3} after {} \
                     queries{}): a model-extraction pattern",
                    report.observation.w.unwrap_or(f64::NAN),
                    report.queries,
                    report
                        .coverage
                        .map_or(String::new(), |c| format!(", coverage {c:.2}")),
                ),
            });
        }
        if let Some(tracker) = &self.prada {
            metrics
                .prada_identities
                .get_or_create(&m)
                .set(i64::try_from(tracker.len()).unwrap_or(i64::MAX));
            metrics
                .prada_evicted
                .get_or_create(&m)
                .set(i64::try_from(tracker.evicted()).unwrap_or(i64::MAX));
        }
    }
}

/// Rows of the current drift window, and the queue to the model's drift thread.
struct DriftFeed {
    name: Arc<str>,
    window: usize,
    rows: Vec<Vec<f64>>,
    tx: SyncSender<(Vec<Vec<f64>>, String)>,
}

/// After testing a window the drift thread rests this many times as long as the test took: at most a tenth
/// of one core.
const DRIFT_IDLE_FACTOR: u32 = 9;

/// The drift thread's nice value. Drift is judged over windows of thousands of requests, so a test finishing
/// later costs nothing, while the CPU it takes under load comes out of requests: the kernel gives a thread at
/// 19 about 1.5 % of a contended core and all of an idle one.
const DRIFT_NICE: i32 = 19;

impl DriftFeed {
    /// Starts the model's drift thread, which owns its [`DriftMonitor`].
    fn start(
        name: Arc<str>,
        window: usize,
        feature_names: Vec<String>,
        mut monitor: DriftMonitor,
        alerts: AlertSink,
        metrics: MonitorMetrics,
    ) -> std::io::Result<Self> {
        // One slot: a window may wait while the previous one is tested; a third is skipped.
        let (tx, rx) = sync_channel::<(Vec<Vec<f64>>, String)>(1);
        let thread_name = name.clone();
        std::thread::Builder::new()
            .name(format!("rampart-drift-{thread_name}"))
            .spawn(move || {
                // Linux applies a nice value to one thread when given its id. Failing is harmless (the duty
                // cycle still bounds the thread), so it is only logged.
                if let Err(e) =
                    rustix::process::setpriority_process(Some(rustix::thread::gettid()), DRIFT_NICE)
                {
                    tracing::debug!("drift thread keeps its priority: {e}");
                }
                while let Ok((rows, request_id)) = rx.recv() {
                    let started = std::time::Instant::now();
                    for row in &rows {
                        // A row the monitor refuses (a width the baseline does not have) is left out.
                        let Ok(Some(report)) = monitor.push(row) else {
                            continue;
                        };
                        if let Some(detail) =
                            publish_drift(&thread_name, &feature_names, &report, &metrics)
                        {
                            alerts.raise(Alert {
                                time: OffsetDateTime::now_utc(),
                                kind: "data_drift",
                                severity: Severity::Medium,
                                model: Some(thread_name.to_string()),
                                identity: None,
                                request_id: Some(request_id.clone()),
                                detail,
                            });
                        }
                    }
                    // A duty cycle of at most a tenth of one core: on a small machine a back-to-back MMD
                    // permutation test would take a core away from the requests. Windows closing meanwhile
                    // wait in the one slot or are skipped and counted.
                    std::thread::sleep(started.elapsed().saturating_mul(DRIFT_IDLE_FACTOR));
                }
            })?;
        Ok(Self {
            name,
            window,
            rows: Vec::with_capacity(window),
            tx,
        })
    }

    fn push(&mut self, row: &[f64], request_id: &str, metrics: &MonitorMetrics) {
        self.rows.push(row.to_vec());
        if self.rows.len() < self.window {
            return;
        }
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(self.window));
        match self.tx.try_send((rows, request_id.to_owned())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics
                    .drift_skipped
                    .get_or_create(&metrics::model(&self.name))
                    .inc();
            }
            // The drift thread is gone (it cannot panic on input; this is shutdown): nothing to do.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Publishes a closed window; returns the alert text when it drifted.
fn publish_drift(
    name: &str,
    feature_names: &[String],
    r: &DriftReport,
    metrics: &MonitorMetrics,
) -> Option<String> {
    let m = metrics::model(name);
    metrics.drift_windows.get_or_create(&m).inc();
    let feature = |j: usize| {
        feature_names
            .get(j)
            .cloned()
            .unwrap_or_else(|| j.to_string())
    };
    for f in &r.features {
        let label = metrics::feature(name, &feature(f.index));
        if let Some(ks) = &f.ks {
            metrics
                .drift_ks_pvalue
                .get_or_create(&label)
                .set(ks.p_value);
        }
        if let Some(p) = f.psi {
            metrics.drift_psi.get_or_create(&label).set(p);
        }
        if let Some(t) = &f.chi2 {
            metrics
                .drift_chi2_pvalue
                .get_or_create(&label)
                .set(t.p_value);
        }
    }
    if let Some(mmd) = &r.mmd {
        metrics.drift_mmd_pvalue.get_or_create(&m).set(mmd.p_value);
    }
    let drifted: Vec<String> = r
        .features
        .iter()
        .filter(|f| f.drifted)
        .map(|f| feature(f.index))
        .collect();
    metrics
        .drift_features_drifted
        .get_or_create(&m)
        .set(i64::try_from(drifted.len()).unwrap_or(i64::MAX));
    if !r.drifted {
        return None;
    }
    metrics.drift_detected.get_or_create(&m).inc();
    Some(format!(
        "feature drift in window {} ({} rows, per-test level {:.2e}): drifted features [{}], MMD p = {}",
        r.window,
        r.rows,
        r.threshold,
        drifted.join(", "),
        r.mmd
            .as_ref()
            .map_or("-".into(), |m| format!("{:.3}", m.p_value)),
    ))
}
