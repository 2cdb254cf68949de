//! Model hardening on the request path: randomized smoothing, ensembles with a disagreement check, and
//! feature squeezing, wired around a served model's [`Backend`] (`rampart_model::harden` holds the
//! algorithms; this module holds their `[[models]]` config and runs them).
//!
//! Every one of them multiplies the model calls of a request (smoothing by n, squeezing by the number of
//! squeezers plus one, an ensemble by its members), and a backend may be one whose synchronous `predict` is
//! legal only on a blocking thread (an upstream model server). So the whole hardened call runs on tokio's
//! blocking pool, never on an async worker, behind a `BlockingPool` that bounds how many run at once and
//! how many wait: a flood of smoothed requests gets 503 `overloaded`, it cannot starve the runtime or pile
//! up threads.
//!
//! Order inside one call, each step on the validated rows:
//! 1. feature squeezing (a detector: the prediction must not move when the input is squeezed),
//! 2. the ensemble's disagreement check on the clean input,
//! 3. the answer: smoothing (PREDICT or CERTIFY) over the model — the ensemble's aggregate when there is
//!    one — or one plain call.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::Semaphore;

use rampart_core::{Features, Finding, GuardId, Reason, Rejection, Severity, Verdict};
use rampart_model::harden::ensemble::{self, Aggregation};
use rampart_model::harden::smoothing::{
    self, noise_rng_stream, Decision, Mode as SmoothingMode, Smoother,
};
use rampart_model::harden::squeeze::{self, Squeezer};
use rampart_model::{Backend, ModelInfo, ModelKind, Output, RunError};
use rampart_pipeline::{model_unavailable, Mode, ModelAnswer, Smoothed};

/// `smoothing = { sigma = 0.25, n0 = 100, n = 1000, alpha = 0.001, mode = "predict", seed = 7 }`:
/// randomized smoothing (Cohen, Rosenfeld & Kolter 2019), classifiers only: the library's own config, read as
/// is from the model entry (`seed` fixes the noise of every request; for tests and experiments only).
pub type SmoothingConfig = smoothing::Config;

/// What an ensemble does when its members disagree more than `max_disagreement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDisagreement {
    /// 422 `adversarial_input`, and an alert (default).
    #[default]
    Reject,
    /// Answer, and record an `adversarial_input` flag in the audit.
    Flag,
}

/// `ensemble = { members = ["a.onnx", "b.onnx"], aggregation = "mean", max_disagreement = 0.5,
/// on_disagreement = "reject" }`: the entry is served by several ONNX classifiers instead of `path`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    /// The member ONNX files (at least two), all with the same input width and the same classes. They are
    /// plain files, not signed: allowed only with `[server] require_signatures = false`, like `path`.
    pub members: Vec<PathBuf>,
    /// `"mean"` (average of the members' probabilities) or `"vote"` (fraction of members voting each
    /// class). Default `"mean"`.
    #[serde(default = "default_aggregation")]
    pub aggregation: Aggregation,
    /// Largest allowed L1 distance between two members' probability vectors on a row, in [0, 2]. Required:
    /// how much honest members differ depends on the members.
    pub max_disagreement: f64,
    /// `"reject"` (422 `adversarial_input`) or `"flag"` (answer, flag in the audit). Default `"reject"`.
    #[serde(default)]
    pub on_disagreement: OnDisagreement,
}

fn default_aggregation() -> Aggregation {
    Aggregation::Mean
}

/// The only detection method `adversarial` has for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdversarialMethod {
    /// Xu, Evans & Qi (2018).
    FeatureSqueezing,
}

/// `adversarial = { mode = "enforce", method = "feature_squeezing", squeezers = ["bit_depth:4"],
/// threshold = 0.3 }`: refuse (or, observing, flag) rows whose prediction moves by more than `threshold`
/// (L1 distance of the probabilities) when the input is squeezed. Classifiers only.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdversarialConfig {
    /// `enforce` (422 `adversarial_input` and an alert), `observe` (a flag in the audit) or `off`. Default
    /// `enforce`.
    #[serde(default)]
    pub mode: Mode,
    /// `"feature_squeezing"`.
    pub method: AdversarialMethod,
    /// Squeezers, each `bit_depth:B` (inputs in [0, 1]), `round:D` (tabular), `median:S` (a square image)
    /// or `median:S:HxW`. At least one; no default, since the right one depends on what the features are.
    pub squeezers: Vec<String>,
    /// Largest allowed score, in [0, 2]: `rampart profile --model M --squeezers … --fpr 0.05` computes it
    /// from benign data for a target false-positive rate.
    pub threshold: f64,
}

/// Why a model's hardening cannot be built; each message names the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HardenError {
    /// A member does not fit the others.
    #[error("ensemble.members[{member}] ({file}): {reason}")]
    Member {
        /// Index in `members`.
        member: usize,
        /// The file.
        file: String,
        /// What differs.
        reason: String,
    },
    /// A squeezer is invalid for this model.
    #[error("adversarial.squeezers[{index}] = {spec:?}: {reason}")]
    Squeezer {
        /// Index in `squeezers`.
        index: usize,
        /// As written.
        spec: String,
        /// Why.
        reason: String,
    },
    /// The smoothing parameters are invalid.
    #[error("{0}")]
    Smoothing(#[from] smoothing::SmoothingError),
    /// The defense needs class probabilities and the model is a regressor.
    #[error("{0} needs a classifier, the model is a regressor")]
    NotAClassifier(&'static str),
}

/// Several classifiers served as one: [`Backend::predict`] gives the aggregate, so smoothing and squeezing
/// work on the ensemble as on any model.
pub(crate) struct EnsembleBackend {
    info: ModelInfo,
    members: Vec<Arc<dyn Backend>>,
    aggregation: Aggregation,
}

impl EnsembleBackend {
    /// Checks that every member takes member 0's width and gives its number of classes.
    ///
    /// # Errors
    /// [`HardenError::Member`] naming the first member that does not fit.
    pub(crate) fn new(
        name: &str,
        members: Vec<(String, Arc<dyn Backend>)>,
        aggregation: Aggregation,
    ) -> Result<Self, HardenError> {
        let Some((_, first)) = members.first() else {
            return Err(HardenError::Member {
                member: 0,
                file: String::new(),
                reason: "an ensemble needs members".to_owned(),
            });
        };
        let mut info = first.info().clone();
        for (member, (file, m)) in members.iter().enumerate() {
            let mi = m.info();
            let fail = |reason: String| HardenError::Member {
                member,
                file: file.clone(),
                reason,
            };
            if !matches!(mi.kind, ModelKind::Classifier { .. }) {
                return Err(fail("ensemble members must be classifiers".to_owned()));
            }
            if mi.width != info.width {
                return Err(fail(format!(
                    "takes {} features, members[0] takes {}",
                    mi.width, info.width
                )));
            }
            if mi.kind != info.kind {
                return Err(fail(format!(
                    "has {} classes, members[0] has {}",
                    mi.kind.columns(),
                    info.kind.columns()
                )));
            }
        }
        info.name = format!("{name} (ensemble of {})", members.len());
        // The aggregate has no label output of its own: labels come from the probabilities.
        info.labels_output = None;
        Ok(Self {
            info,
            members: members.into_iter().map(|(_, m)| m).collect(),
            aggregation,
        })
    }

    /// The aggregate and, per row, the largest pairwise L1 distance between members.
    fn predict_with_disagreement(
        &self,
        rows: &[f32],
        n_rows: usize,
    ) -> Result<(Output, Vec<f64>), RunError> {
        let outs = self
            .members
            .iter()
            .map(|m| m.predict(rows, n_rows))
            .collect::<Result<Vec<_>, _>>()?;
        let classes = self.info.kind.columns();
        let mut values = Vec::with_capacity(n_rows * classes);
        let mut disagreement = Vec::with_capacity(n_rows);
        let bad = |reason: String| RunError::Model {
            model: self.info.name.clone(),
            reason,
        };
        for r in 0..n_rows {
            let row: Vec<&[f32]> = outs
                .iter()
                .map(|o| {
                    o.row(r)
                        .ok_or_else(|| bad(format!("member returned no row {r}")))
                })
                .collect::<Result<_, _>>()?;
            let agg =
                ensemble::aggregate(&row, self.aggregation).map_err(|e| bad(e.to_string()))?;
            let d = ensemble::disagreement(&row).map_err(|e| bad(e.to_string()))?;
            values.extend(agg);
            disagreement.push(d.max_pairwise_l1);
        }
        Ok((
            Output {
                n_rows,
                kind: self.info.kind,
                values,
                labels: None,
            },
            disagreement,
        ))
    }
}

impl Backend for EnsembleBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn predict(&self, rows: &[f32], n_rows: usize) -> Result<Output, RunError> {
        self.predict_with_disagreement(rows, n_rows).map(|(o, _)| o)
    }
}

/// Bounds the hardened model calls running at once (`workers`, each on a blocking thread) and waiting
/// (`queue`); beyond both a request is refused at once with 503 `overloaded`. One pool per gateway:
/// smoothing is CPU-bound, and the CPUs are shared by every model.
pub(crate) struct BlockingPool {
    running: Arc<Semaphore>,
    /// Requests admitted: running or waiting for a worker.
    admitted: AtomicUsize,
    capacity: usize,
}

impl BlockingPool {
    pub(crate) fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            running: Arc::new(Semaphore::new(workers)),
            admitted: AtomicUsize::new(0),
            capacity: workers.saturating_add(queue),
        }
    }

    /// Runs `work` on a blocking thread once a worker is free.
    ///
    /// # Errors
    /// 503 `overloaded` when `workers + queue` requests are already admitted; 503 `model_unavailable` when
    /// the task panicked.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, Rejection>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::new(Reason::Overloaded, GuardId::MODEL)
                .with_retry_after(std::time::Duration::from_secs(1)));
        }
        // Counted out when this future ends, whether it finished or its request was dropped.
        let _admitted = Admitted(&self.admitted);
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| model_unavailable())?;
        // The permit moves into the task: a worker stays taken until the work is done, even when the client
        // has gone away meanwhile.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| {
            tracing::error!("hardened model call failed: {e}");
            model_unavailable()
        })
    }
}

struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct EnsembleCheck {
    backend: Arc<EnsembleBackend>,
    max_disagreement: f64,
    on_disagreement: OnDisagreement,
}

struct SqueezeCheck {
    mode: Mode,
    squeezers: Vec<Squeezer>,
    threshold: f64,
}

struct Smoothing {
    smoother: Smoother,
    seed: Option<u64>,
}

/// One model's hardening, ready to run (see the module docs for the order).
pub(crate) struct Hardened {
    /// The model answers come from: the ensemble's aggregate, or the single model.
    backend: Arc<dyn Backend>,
    ensemble: Option<EnsembleCheck>,
    squeeze: Option<SqueezeCheck>,
    smoothing: Option<Smoothing>,
    pool: Arc<BlockingPool>,
}

/// A model entry's hardening sections, as the runner needs them.
pub(crate) struct HardenSpec<'a> {
    pub(crate) smoothing: Option<&'a SmoothingConfig>,
    pub(crate) ensemble: Option<(&'a EnsembleConfig, Arc<EnsembleBackend>)>,
    pub(crate) adversarial: Option<&'a AdversarialConfig>,
}

impl HardenSpec<'_> {
    /// Whether any hardening is configured (otherwise the model runs inline).
    pub(crate) fn any(&self) -> bool {
        self.smoothing.is_some()
            || self.ensemble.is_some()
            || self.adversarial.is_some_and(|a| a.mode.is_on())
    }
}

impl Hardened {
    /// Builds the hardening of one model over `backend` (the ensemble's aggregate, when there is one).
    ///
    /// # Errors
    /// [`HardenError`] naming the field: invalid smoothing parameters, a squeezer that does not fit the
    /// model, a regressor under a defense that needs probabilities.
    pub(crate) fn build(
        backend: Arc<dyn Backend>,
        spec: HardenSpec<'_>,
        pool: Arc<BlockingPool>,
    ) -> Result<Self, HardenError> {
        let info = backend.info();
        let classifier = matches!(info.kind, ModelKind::Classifier { .. });
        let smoothing = match spec.smoothing {
            Some(s) => {
                if !classifier {
                    return Err(HardenError::NotAClassifier("smoothing"));
                }
                Some(Smoothing {
                    smoother: Smoother::new(s.clone())?,
                    seed: s.seed,
                })
            }
            None => None,
        };
        let squeeze = match spec.adversarial.filter(|a| a.mode.is_on()) {
            Some(a) => {
                if !classifier {
                    return Err(HardenError::NotAClassifier("feature squeezing"));
                }
                let squeezers = a
                    .squeezers
                    .iter()
                    .enumerate()
                    .map(|(index, spec)| {
                        Squeezer::parse(spec, info.width).map_err(|e| HardenError::Squeezer {
                            index,
                            spec: spec.clone(),
                            reason: e.to_string(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(SqueezeCheck {
                    mode: a.mode,
                    squeezers,
                    threshold: a.threshold,
                })
            }
            None => None,
        };
        let ensemble = spec.ensemble.map(|(c, backend)| EnsembleCheck {
            backend,
            max_disagreement: c.max_disagreement,
            on_disagreement: c.on_disagreement,
        });
        Ok(Self {
            backend,
            ensemble,
            squeeze,
            smoothing,
            pool,
        })
    }

    /// Runs the hardened call for the validated rows on the blocking pool.
    ///
    /// # Errors
    /// 422 `adversarial_input` (squeezing in enforce mode, an ensemble that rejects on disagreement),
    /// 503 `overloaded` (the pool is full) or 503 `model_unavailable` (a model call failed).
    pub(crate) async fn run(
        self: &Arc<Self>,
        features: &Features,
    ) -> Result<ModelAnswer, Rejection> {
        let this = Arc::clone(self);
        // Copied once: the blocking task must own its input ('static), and the features stay with the
        // request for the audit.
        let rows = features.as_slice().to_vec();
        let n_rows = features.rows();
        self.pool
            .run(move || this.run_blocking(&rows, n_rows))
            .await?
    }

    /// The whole hardened call; only ever on a blocking thread.
    fn run_blocking(&self, rows: &[f32], n_rows: usize) -> Result<ModelAnswer, Rejection> {
        let width = self.backend.info().width;
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(model = %self.backend.info().name, "{what} failed: {e}");
            model_unavailable()
        };
        let mut flags = Vec::new();

        // 1. Feature squeezing: a detector on the input, before anything is answered.
        if let Some(sq) = &self.squeeze {
            for x in rows.chunks_exact(width) {
                let score = squeeze::score(self.backend.as_ref(), x, &sq.squeezers)
                    .map_err(|e| failed("feature squeezing", &e))?;
                // A NaN score counts as over the threshold.
                if score.is_nan() || score > sq.threshold {
                    let r = Rejection::new(Reason::AdversarialInput, GuardId::SQUEEZE)
                        .with_severity(Severity::Medium)
                        .with_detail("the prediction is unstable under feature squeezing");
                    match sq.mode.apply(Verdict::Reject(r)) {
                        Verdict::Reject(r) => return Err(r),
                        Verdict::Flag(f) => {
                            flags.push(f);
                            break;
                        }
                        Verdict::Pass => {}
                    }
                }
            }
        }

        // 2. The ensemble's disagreement on the clean input; its aggregate is the answer without smoothing.
        let mut plain = None;
        if let Some(e) = &self.ensemble {
            let (output, disagreement) = e
                .backend
                .predict_with_disagreement(rows, n_rows)
                .map_err(|err| failed("ensemble", &err))?;
            // A NaN distance counts as disagreement.
            if disagreement
                .iter()
                .any(|d| d.is_nan() || *d > e.max_disagreement)
            {
                let r = Rejection::new(Reason::AdversarialInput, GuardId::ENSEMBLE)
                    .with_severity(Severity::Medium)
                    .with_detail("the ensemble's members disagree on this input");
                match e.on_disagreement {
                    OnDisagreement::Reject => return Err(r),
                    OnDisagreement::Flag => flags.push(Finding::from(r)),
                }
            }
            plain = Some(output);
        }

        // 3. The answer.
        let Some(s) = &self.smoothing else {
            let output = match plain {
                Some(o) => o,
                None => self
                    .backend
                    .predict(rows, n_rows)
                    .map_err(|e| failed("model", &e))?,
            };
            return Ok(ModelAnswer {
                output,
                smoothed: None,
                flags,
            });
        };
        let info = self.backend.info();
        let classes = info.kind.columns();
        let mut values = Vec::with_capacity(n_rows * classes);
        let mut smoothed = Vec::with_capacity(n_rows);
        // A fresh seed per request from the OS-seeded generator, unless the config fixes one; row i draws
        // from stream i, so a row's noise does not depend on the rows before it.
        let seed = s.seed.unwrap_or_else(rand::random);
        for (i, x) in rows.chunks_exact(width).enumerate() {
            let mut rng = noise_rng_stream(seed, i as u64);
            let (counts, total, decision) = match s.smoother.config().mode {
                SmoothingMode::Predict => {
                    let p = s
                        .smoother
                        .predict(self.backend.as_ref(), x, &mut rng)
                        .map_err(|e| failed("smoothing", &e))?;
                    let answer = match p.decision {
                        Decision::Class(_) => Smoothed::Answered {
                            certified_radius: None,
                        },
                        Decision::Abstain => Smoothed::Abstained,
                    };
                    (p.counts, s.smoother.config().n, answer)
                }
                SmoothingMode::Certify => {
                    let c = s
                        .smoother
                        .certify(self.backend.as_ref(), x, &mut rng)
                        .map_err(|e| failed("smoothing", &e))?;
                    let answer = match (c.decision, c.radius) {
                        (Decision::Class(_), Some(r)) => Smoothed::Answered {
                            certified_radius: Some(r),
                        },
                        _ => Smoothed::Abstained,
                    };
                    (c.counts, s.smoother.config().n, answer)
                }
            };
            // The smoothed classifier's "probabilities" are its vote fractions: what the confidence gate,
            // the sanitizer and the audit see.
            let total = total.max(1) as f64;
            values.extend(counts.iter().map(|&c| (c as f64 / total) as f32));
            smoothed.push(decision);
        }
        Ok(ModelAnswer {
            output: Output {
                n_rows,
                kind: info.kind,
                values,
                labels: None,
            },
            smoothed: Some(smoothed),
            flags,
        })
    }
}

#[cfg(test)]
mod tests;
