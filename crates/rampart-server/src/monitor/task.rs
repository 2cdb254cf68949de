//! The monitoring thread: drains the observation channel and drives every model's monitors.
//!
//! A plain OS thread rather than a tokio task: closing a drift window runs KS, PSI and an MMD permutation test
//! (tens of milliseconds of CPU), which would stall an async worker serving requests. The channel absorbs the
//! observations that arrive meanwhile. The thread ends when the gateway (every sender) is dropped.

use std::collections::HashSet;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use rampart_core::Severity;
use rampart_detect::monitor::{DriftConfig, MmdConfig, PredictionDriftConfig};
use rampart_detect::page_hinkley::{Config as PhConfig, Mode as PhMode};
use rampart_detect::prada::{Config as PradaConfig, Coverage, TrackerConfig};
use rampart_detect::{
    Baseline, DriftMonitor, DriftReport, PageHinkley, PradaTracker, PredictionDrift,
};

use super::config::{ModelMonitorConfig, MonitoringConfig};
use super::metrics::{self, MonitorMetrics};
use super::Observation;
use crate::alerts::{Alert, AlertSink};

/// One model's monitors, owned by the monitoring thread.
pub(crate) struct ModelState {
    name: Arc<str>,
    feature_names: Vec<String>,
    drift: Option<DriftMonitor>,
    predictions: Option<PredictionDrift>,
    latency: PageHinkley,
    rejections: PageHinkley,
    prada: Option<PradaTracker<Arc<str>>>,
    /// Identities already flagged, so the flag counter counts identities, not queries. Bounded like the
    /// tracker: cleared past `max_flagged` (at worst an identity is counted twice).
    flagged: HashSet<Arc<str>>,
    max_flagged: usize,
    row: Vec<f64>,
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
        metrics: &MonitorMetrics,
    ) -> Result<Self, String> {
        let drift = match baseline {
            Some(b) => Some(
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
            delta: c.latency_delta_ms,
            lambda: c.latency_lambda_ms,
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
        let feature_names: Vec<String> = baseline
            .map(|b| b.feature_names().map(str::to_owned).collect())
            .unwrap_or_default();
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
        metrics.latency_changes.get_or_create(&m).inc_by(0);
        metrics.rejection_rate_changes.get_or_create(&m).inc_by(0);
        if prada.is_some() {
            metrics.prada_flagged.get_or_create(&m).inc_by(0);
        }
        Ok(Self {
            name,
            feature_names,
            drift,
            predictions,
            latency,
            rejections,
            prada,
            flagged: HashSet::new(),
            max_flagged: g.max_identities.saturating_mul(4),
            row: Vec::new(),
        })
    }
}

/// Starts the thread.
pub(crate) fn spawn(
    mut rx: mpsc::Receiver<Observation>,
    mut states: Vec<ModelState>,
    alerts: AlertSink,
    metrics: MonitorMetrics,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("rampart-monitor".into())
        .spawn(move || {
            while let Some(obs) = rx.blocking_recv() {
                if let Some(state) = states.iter_mut().find(|s| s.name == obs.model) {
                    state.observe(&obs, &alerts, &metrics);
                }
            }
        })
        .map(|_| ())
}

impl ModelState {
    fn observe(&mut self, obs: &Observation, alerts: &AlertSink, metrics: &MonitorMetrics) {
        let m = metrics::model(&self.name);
        metrics.observations.get_or_create(&m).inc();
        let alert = |kind: &'static str, severity, identity: Option<&str>, detail: String| Alert {
            time: OffsetDateTime::now_utc(),
            kind,
            severity,
            model: Some(self.name.to_string()),
            identity: identity.map(str::to_owned),
            request_id: Some(obs.request_id.clone()),
            detail,
        };

        let ms = obs.latency.as_secs_f64() * 1e3;
        if self.latency.update(ms).is_ok_and(|s| s.alarm) {
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
                if let Ok(Some(report)) = drift.push(&self.row) {
                    if let Some(a) = self.drift_report(&report, metrics) {
                        alerts.raise(alert("data_drift", Severity::Medium, None, a));
                    }
                }
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
            if let Some(tracker) = &mut self.prada {
                let class = u32::try_from(class).unwrap_or(u32::MAX);
                if let Ok(report) = tracker.observe(&obs.identity, &self.row, class) {
                    if report.observation.alarm && !self.flagged.contains(&obs.identity) {
                        if self.flagged.len() >= self.max_flagged {
                            self.flagged.clear();
                        }
                        self.flagged.insert(obs.identity.clone());
                        metrics.prada_flagged.get_or_create(&m).inc();
                        alerts.raise(alert(
                            "model_extraction",
                            Severity::High,
                            Some(&obs.identity),
                            format!(
                                "PRADA: the identity's query distances are not normal (W = {:.3} after {} \
                                 queries{}): a model-extraction pattern",
                                report.observation.w.unwrap_or(f64::NAN),
                                report.queries,
                                report
                                    .coverage
                                    .map_or(String::new(), |c| format!(", coverage {c:.2}")),
                            ),
                        ));
                    }
                }
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

    /// Publishes a closed window; returns the alert text when it drifted.
    fn drift_report(&self, r: &DriftReport, metrics: &MonitorMetrics) -> Option<String> {
        let m = metrics::model(&self.name);
        metrics.drift_windows.get_or_create(&m).inc();
        let name = |j: usize| {
            self.feature_names
                .get(j)
                .cloned()
                .unwrap_or_else(|| j.to_string())
        };
        for f in &r.features {
            let label = metrics::feature(&self.name, &name(f.index));
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
            .map(|f| name(f.index))
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
}
