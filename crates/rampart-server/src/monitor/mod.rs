//! Monitoring: what the gateway learns from the traffic it serves, after the fact.
//!
//! The request path emits one `Observation` per decided request (identity, model, decoded features,
//! per-row prediction and confidence, outcome, latency) with a non-blocking `try_send` into a bounded
//! channel; when the channel is full the observation is dropped and counted
//! (`rampart_observations_dropped_total`), so a slow monitor can never slow or fail a request.
//!
//! One dedicated thread (`task`) owns every model's monitors — feature drift, prediction drift, Page–Hinkley
//! on latency and on the rejection rate, PRADA per identity — because a drift window's MMD permutation test
//! costs tens of milliseconds of CPU and must not run on the async workers that serve requests. Its findings
//! become metrics (`rampart_drift_*`, …) and alerts on the alert bus.
//!
//! Labels arrive later through `POST /v1/models/{name}/feedback`: the gateway remembers the predicted labels
//! of the last `remember_requests` answered request ids (a bounded FIFO map filled on the request path), and a
//! feedback updates that model's rolling accuracy at once, under a short lock (O(1), no channel involved, so a
//! label is never lost to a full channel).
//!
//! The statistics themselves live in `rampart-detect`; this module only feeds them and acts on their reports.

pub mod config;
pub mod metrics;
mod task;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use rampart_audit::{AuditWriter, EventKind};
use rampart_core::{Identity, Severity};
use rampart_detect::RollingAccuracy;
use rampart_model::ModelKind;
use rampart_pipeline::{Decision, Outcome, RowPrediction};

use crate::alerts::{Alert, AlertSink};
use crate::config::RawConfig;
use crate::gateway::StartError;
pub use metrics::MonitorMetrics;

/// One decided request, as the monitors see it.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// The served model's name.
    pub(crate) model: Arc<str>,
    /// The real identity (alerts pseudonymize on their own; PRADA must tell callers apart).
    pub(crate) identity: Arc<str>,
    pub(crate) request_id: String,
    /// Features per row (0 when the input was not decoded).
    pub(crate) width: usize,
    /// Decoded rows, row-major; empty when the request was refused before decoding.
    pub(crate) features: Vec<f32>,
    /// Per row: winning class index and its confidence (classifiers that answered only).
    pub(crate) predictions: Vec<(usize, f32)>,
    /// Whether the request was refused.
    pub(crate) rejected: bool,
    /// Latency from the request's arrival to its decision (the audit commit excluded).
    pub(crate) latency: Duration,
}

/// What the monitoring thread is told.
#[derive(Debug)]
pub(crate) enum Event {
    /// A request this replica decided.
    Observed(Observation),
    /// A PRADA distance another replica measured (see `shared_state.rs`).
    Remote {
        model: Arc<str>,
        /// The identity's key in Redis (`shared_state::IdentityKeys::key`).
        key: String,
        dmin: f64,
    },
}

/// The sender side with its drop counter: what the request path holds.
#[derive(Clone)]
pub(crate) struct ObservationTx {
    tx: mpsc::Sender<Event>,
    dropped: prometheus_client::metrics::counter::Counter<u64, std::sync::atomic::AtomicU64>,
}

impl ObservationTx {
    /// Queues an observation or, when the channel is full (or the monitor has stopped), drops and counts it.
    /// Never waits.
    pub(crate) fn send(&self, event: Event) -> bool {
        if self.tx.try_send(event).is_ok() {
            true
        } else {
            self.dropped.inc();
            false
        }
    }
}

/// A bounded FIFO map request id → what was answered, for feedback.
///
/// Compact because it is large: 100,000 entries by default. Keys are request ids as the 128-bit UUIDs they
/// are (the gateway makes every id), predictions class indices; about 100 bytes an entry instead of the
/// ~300 that ids and labels as strings took (30 MB of the gateway's memory under load).
struct Recent {
    capacity: usize,
    map: HashMap<u128, Answered>,
    order: VecDeque<u128>,
}

#[derive(Debug, Clone)]
struct Answered {
    model: Arc<str>,
    /// Predicted class index of each row.
    classes: Box<[u32]>,
}

/// A request id as the key [`Recent`] files it under; `None` for anything that is not a UUID (no request
/// this gateway answered has such an id).
fn request_key(id: &str) -> Option<u128> {
    uuid::Uuid::parse_str(id).ok().map(|u| u.as_u128())
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, id: u128, answered: Answered) {
        if self.capacity == 0 {
            return;
        }
        // `order` holds every remembered id plus ids already taken by a feedback, so bounding it bounds both.
        while self.order.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
        }
        self.order.push_back(id);
        self.map.insert(id, answered);
    }

    /// Takes the entry: a request's label counts once.
    fn take(&mut self, id: u128) -> Option<Answered> {
        let answered = self.map.remove(&id)?;
        // The id stays in `order` until it reaches the front, where `insert` drops it.
        Some(answered)
    }
}

/// One model's share of the monitor that the request path and feedback touch.
struct ModelHandle {
    name: Arc<str>,
    /// Class labels in model order (the indices as text when the config gives none); empty for regressors.
    labels: Vec<String>,
    accuracy: Mutex<RollingAccuracy>,
    /// Whether the monitor thread has state for this model (else its observations are not sent at all).
    monitored: bool,
    /// Whether the model runs PRADA (and so reads the other replicas' distances when they are shared).
    prada: bool,
}

/// Why a feedback was not taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FeedbackError {
    /// The request id is not one this gateway answered recently for this model.
    UnknownRequest,
    /// The number of labels differs from the request's rows.
    RowCount {
        /// Rows of the request.
        expected: usize,
    },
}

/// What a feedback did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeedbackResult {
    /// Rows whose label matched the prediction.
    pub(crate) correct: usize,
    /// Rows labelled.
    pub(crate) rows: usize,
    /// Rolling accuracy after this feedback.
    pub(crate) accuracy: f64,
    /// Labelled predictions in the window.
    pub(crate) samples: usize,
}

/// The monitoring layer of a gateway.
pub(crate) struct Monitor {
    tx: Option<ObservationTx>,
    models: HashMap<String, ModelHandle>,
    recent: Mutex<Recent>,
    alerts: AlertSink,
    audit: Option<AuditWriter>,
    metrics: MonitorMetrics,
}

impl Monitor {
    /// Builds every model's monitors and starts the monitoring thread.
    ///
    /// # Errors
    /// [`StartError`] when a baseline cannot be read or a monitor refuses its parameters (a categorical index
    /// beyond the baseline's width, say), naming the model.
    pub(crate) fn build(
        cfg: &RawConfig,
        models: &HashMap<String, Arc<crate::swap::ModelSlot>>,
        alerts: AlertSink,
        audit: Option<AuditWriter>,
        metrics: MonitorMetrics,
        share: Option<(
            mpsc::Sender<crate::shared_state::SharedDistance>,
            crate::shared_state::IdentityKeys,
        )>,
    ) -> Result<Self, StartError> {
        let g = &cfg.monitoring;
        let mut handles = HashMap::new();
        let mut states = Vec::new();
        for (index, m) in cfg.models.iter().enumerate() {
            let Some(served) = models.get(&m.name).map(|slot| slot.current()) else {
                continue;
            };
            let labels = match served.info.kind {
                ModelKind::Classifier { classes } => (0..classes)
                    .map(|i| m.labels.get(i).cloned().unwrap_or_else(|| i.to_string()))
                    .collect(),
                ModelKind::Regressor { .. } => Vec::new(),
            };
            let fail = |message: String| StartError::Model {
                index,
                name: m.name.clone(),
                message,
            };
            let accuracy =
                RollingAccuracy::new(m.monitor.accuracy_window, m.monitor.accuracy_floor)
                    .map_err(|e| fail(format!("monitor.accuracy_window/accuracy_floor: {e}")))?;
            let name: Arc<str> = Arc::from(m.name.as_str());
            let monitored = g.enabled && m.monitor.enabled;
            let prada = monitored && m.monitor.prada && !labels.is_empty();
            if monitored {
                let baseline = match &m.baseline {
                    Some(p) => Some(crate::gateway::load_baseline(&cfg.resolve(p)).map_err(fail)?),
                    None => None,
                };
                states.push(
                    task::ModelState::build(
                        name.clone(),
                        &m.monitor,
                        g,
                        baseline.as_ref(),
                        &labels,
                        &alerts,
                        &metrics,
                    )
                    .map_err(fail)?
                    .with_share(share.clone()),
                );
            } else {
                tracing::info!(model = %m.name, "monitoring is off for this model");
            }
            handles.insert(
                m.name.clone(),
                ModelHandle {
                    name,
                    labels,
                    accuracy: Mutex::new(accuracy),
                    monitored,
                    prada,
                },
            );
        }
        let tx = if g.enabled && !states.is_empty() {
            let (tx, rx) = mpsc::channel(g.channel_capacity.max(1));
            task::spawn(rx, states, alerts.clone(), metrics.clone()).map_err(|e| {
                StartError::File(format!("cannot start the monitoring thread: {e}"))
            })?;
            Some(ObservationTx {
                tx,
                dropped: metrics.observations_dropped.clone(),
            })
        } else {
            None
        };
        Ok(Self {
            tx,
            models: handles,
            recent: Mutex::new(Recent::new(g.remember_requests)),
            alerts,
            audit,
            metrics,
        })
    }

    /// Records one decided request: remembers an answered one for feedback, and queues its observation
    /// for the monitors without waiting.
    pub(crate) fn observe(
        &self,
        model: &str,
        identity: &Identity,
        request_id: &str,
        decision: &Decision,
        latency: Duration,
    ) {
        let Some(handle) = self.models.get(model) else {
            return;
        };
        let predictions: Vec<(usize, f32)> = decision
            .prediction
            .as_ref()
            .map(|p| {
                p.rows
                    .iter()
                    .filter_map(|r| match r {
                        RowPrediction::Class {
                            best, confidence, ..
                        } => Some((*best, *confidence)),
                        RowPrediction::Value { .. } | RowPrediction::Abstained { .. } => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let answered = matches!(decision.outcome, Outcome::Answered(_));
        if answered && !predictions.is_empty() {
            let classes = predictions
                .iter()
                .map(|(c, _)| u32::try_from(*c).unwrap_or(u32::MAX))
                .collect();
            if let Some(key) = request_key(request_id) {
                self.recent.lock().insert(
                    key,
                    Answered {
                        model: handle.name.clone(),
                        classes,
                    },
                );
            }
        }
        let Some(tx) = self.tx.as_ref().filter(|_| handle.monitored) else {
            return;
        };
        let (width, features) = decision
            .features
            .as_ref()
            .map_or((0, Vec::new()), |f| (f.width(), f.as_slice().to_vec()));
        tx.send(Event::Observed(Observation {
            model: handle.name.clone(),
            identity: identity.id_arc().clone(),
            request_id: request_id.to_owned(),
            width,
            features,
            predictions: if answered { predictions } else { Vec::new() },
            rejected: !answered,
            latency,
        }));
    }

    /// The models whose PRADA takes the other replicas' distances.
    pub(crate) fn prada_models(&self) -> Vec<Arc<str>> {
        if self.tx.is_none() {
            return Vec::new();
        }
        self.models
            .values()
            .filter(|h| h.prada)
            .map(|h| h.name.clone())
            .collect()
    }

    /// Hands a distance another replica measured to the monitoring thread, without waiting (dropped and
    /// counted when the channel is full, as an observation).
    pub(crate) fn remote_distance(&self, model: &Arc<str>, key: String, dmin: f64) {
        if let Some(tx) = &self.tx {
            tx.send(Event::Remote {
                model: model.clone(),
                key,
                dmin,
            });
        }
    }

    /// Takes a label for an answered request: updates the model's rolling accuracy, and raises
    /// `accuracy_drop` when a full window falls below the floor.
    pub(crate) fn feedback(
        &self,
        model: &str,
        request_id: &str,
        labels: &[String],
    ) -> Result<FeedbackResult, FeedbackError> {
        let handle = self
            .models
            .get(model)
            .ok_or(FeedbackError::UnknownRequest)?;
        let key = request_key(request_id).ok_or(FeedbackError::UnknownRequest)?;
        let answered = {
            let mut recent = self.recent.lock();
            // Another model's request id is as unknown as a made-up one: nothing is revealed about it.
            match recent.map.get(&key) {
                Some(a) if *a.model == *model => {
                    if a.classes.len() != labels.len() {
                        return Err(FeedbackError::RowCount {
                            expected: a.classes.len(),
                        });
                    }
                }
                _ => return Err(FeedbackError::UnknownRequest),
            }
            recent.take(key).ok_or(FeedbackError::UnknownRequest)?
        };
        let mut correct = 0;
        let mut state = None;
        {
            let mut acc = handle.accuracy.lock();
            for (&predicted, label) in answered.classes.iter().zip(labels) {
                // The label the caller saw for that class: its configured name, or its index as text.
                let ok = match usize::try_from(predicted)
                    .ok()
                    .and_then(|c| handle.labels.get(c))
                {
                    Some(name) => name == label,
                    None => predicted.to_string() == *label,
                };
                correct += usize::from(ok);
                state = Some(acc.push(ok));
            }
        }
        let m = metrics::model(model);
        let fb = |outcome| metrics::FeedbackLabel {
            model: model.to_owned(),
            outcome,
        };
        self.metrics
            .feedback
            .get_or_create(&fb("correct"))
            .inc_by(correct as u64);
        self.metrics
            .feedback
            .get_or_create(&fb("wrong"))
            .inc_by((labels.len() - correct) as u64);
        let (accuracy, samples, below) =
            state.map_or((0.0, 0, false), |s| (s.accuracy, s.samples, s.below_floor));
        self.metrics.accuracy.get_or_create(&m).set(accuracy);
        self.metrics
            .accuracy_samples
            .get_or_create(&m)
            .set(i64::try_from(samples).unwrap_or(i64::MAX));
        if below {
            self.alerts.raise(Alert {
                time: OffsetDateTime::now_utc(),
                kind: "accuracy_drop",
                severity: Severity::High,
                model: Some(model.to_owned()),
                identity: None,
                request_id: Some(request_id.to_owned()),
                detail: format!(
                    "rolling accuracy {accuracy:.3} over the last {samples} labelled predictions is below the floor"
                ),
            });
        }
        Ok(FeedbackResult {
            correct,
            rows: labels.len(),
            accuracy,
            samples,
        })
    }

    /// Records a taken feedback in the audit log (an `action` event), when the audit is on.
    ///
    /// # Errors
    /// The audit error's text, when the event could not be made durable.
    pub(crate) async fn audit_feedback(
        &self,
        identity: &str,
        model: &str,
        request_id: &str,
        labels: &[String],
        result: &FeedbackResult,
    ) -> Result<(), String> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        let event = serde_json::json!({
            "action": "feedback",
            "identity": identity,
            "model": model,
            "request_id": request_id,
            "labels": labels,
            "correct": result.correct,
            "rows": result.rows,
        });
        audit
            .commit_event(EventKind::Action, &event)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
