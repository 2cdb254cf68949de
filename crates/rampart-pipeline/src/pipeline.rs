//! [`Pipeline::build`] stacks a model's guards in the one order that is safe, and [`Pipeline::evaluate`] runs
//! them. Order is code, not config: a config enables, tunes and picks the mode of each guard, but cannot move
//! sanitization before the confidence gate or rate limiting after the detectors.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use rampart_core::{Features, Finding, GuardId, Reason, Rejection, Severity, Verdict};
use rampart_detect::Baseline;
use rampart_model::{Backend, ModelKind, Output};

use crate::anomaly::{self, BaselinePoint, MahalanobisGuard, Threshold, ZScoreGuard};
use crate::confidence::{self, ConfidenceGate};
use crate::phase::{Inspect, Schema, Shape};
use crate::prediction::{Answer, Prediction, RowPrediction};
use crate::rate_limit::{self, Quotas, RateLimit};
use crate::sanitize::{self, Sanitizer};
use crate::validate::{self, RangeSource, Validator};
use crate::{Mode, RequestCx};

/// Ridge added to the covariance diagonal before its Cholesky factorisation: real features are often
/// collinear (a radius and an area), which leaves the sample covariance singular.
const MAHALANOBIS_RIDGE: f64 = 1e-6;

/// The pipeline sections of one `[[models]]` entry.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    /// Rate limiting.
    pub rate_limit: rate_limit::Config,
    /// Validation.
    pub validate: validate::Config,
    /// Anomaly detection.
    pub anomaly: anomaly::Config,
    /// Confidence gate.
    pub confidence: confidence::Config,
    /// Output sanitization.
    pub output: sanitize::Config,
    /// Output sanitization for callers holding one of these roles, in place of `output`.
    pub output_by_role: BTreeMap<String, sanitize::Config>,
}

/// Why a pipeline cannot be built from a model, its baseline and its config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Baseline and model disagree on the number of features.
    #[error("the baseline has {baseline} features but the model takes {model}")]
    WidthMismatch {
        /// Baseline width.
        baseline: usize,
        /// Model width.
        model: usize,
    },
    /// `labels` does not name every class.
    #[error("`labels` names {labels} classes but the model has {model}")]
    LabelCount {
        /// Labels given.
        labels: usize,
        /// Classes of the model.
        model: usize,
    },
    /// A guard needs the baseline profile and none was given.
    #[error("{0} needs a baseline profile (`baseline = \"...\"`, made by `rampart profile`)")]
    NeedsBaseline(&'static str),
    /// The covariance cannot be factorised.
    #[error("the baseline's covariance cannot be used for Mahalanobis distance: {0}")]
    Mahalanobis(String),
    /// `anomaly.zscore` was given a baseline percentile, which only Mahalanobis has.
    #[error("anomaly.zscore takes a number, \"chi2:P\" or \"off\"")]
    ZScoreThreshold,
    /// The rate limit is zero.
    #[error("rate_limit: {0}")]
    RateLimit(#[from] rate_limit::InvalidQuota),
}

/// Time spent in each phase of one request, for the per-layer latency histograms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Decoding and validation.
    pub validate: Duration,
    /// All inspectors.
    pub inspect: Duration,
    /// The model call.
    pub model: Duration,
    /// Confidence gate and sanitization.
    pub shape: Duration,
}

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The sanitized answer (rows may be uncertain).
    Answered(Answer),
    /// Refused.
    Rejected(Rejection),
}

/// Everything the edge needs to audit and answer one request.
#[derive(Debug)]
pub struct Decision {
    /// The result.
    pub outcome: Outcome,
    /// Findings that did not change the result (guards in observe mode).
    pub flags: Vec<Finding>,
    /// The validated input, when decoding succeeded.
    pub features: Option<Features>,
    /// The raw prediction, when the model ran (the review queue stores it; it never leaves as is).
    pub prediction: Option<Prediction>,
    /// The OIP v2 request id to echo.
    pub echo_id: Option<String>,
    /// Per-phase latency.
    pub timings: Timings,
}

/// One model's guards and backend, built once at start-up.
pub struct Pipeline {
    /// Shared between the versions of one model (see [`Pipeline::share_limiter_of`]); swappable, so a
    /// config reload changes the quota without rebuilding the pipeline ([`Pipeline::set_rate_limit`]).
    limiter: ArcSwapOption<RateLimit>,
    schema: Validator,
    /// Inspectors in order, each with its mode.
    inspectors: Vec<(Mode, Box<dyn Inspect>)>,
    backend: Arc<dyn Backend>,
    shapers: Vec<Box<dyn Shape>>,
    sanitizer: Sanitizer,
    /// `output_by_role`: the sanitizer of the caller's first role that has one.
    role_sanitizers: HashMap<String, Sanitizer>,
    /// For callers granted `output:full`: every class, same rounding.
    full_sanitizer: Sanitizer,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("rate_limit", &self.limiter.load().is_some())
            .field("inspectors", &self.inspectors.len())
            .field("shapers", &self.shapers.len())
            .finish()
    }
}

impl Pipeline {
    /// Stacks the guards for one model.
    ///
    /// # Errors
    /// [`BuildError`] when the model, its baseline and the config do not fit together.
    pub fn build(
        config: &PipelineConfig,
        backend: Arc<dyn Backend>,
        baseline: Option<Arc<Baseline>>,
        labels: &[String],
    ) -> Result<Self, BuildError> {
        let info = backend.info();
        let width = info.width;
        if let Some(b) = &baseline {
            if b.width() != width {
                return Err(BuildError::WidthMismatch {
                    baseline: b.width(),
                    model: width,
                });
            }
        }
        let labels: Vec<Arc<str>> = match info.kind {
            ModelKind::Classifier { classes } => {
                if !labels.is_empty() && labels.len() != classes {
                    return Err(BuildError::LabelCount {
                        labels: labels.len(),
                        model: classes,
                    });
                }
                labels.iter().map(|l| Arc::from(l.as_str())).collect()
            }
            _ => Vec::new(),
        };

        // 1. Rate limiting first: the cheapest refusal, before any byte of the body is parsed.
        let limiter = if config.rate_limit.mode.is_on() {
            Some(Arc::new(RateLimit::new(&config.rate_limit)?))
        } else {
            None
        };

        // 2. Validation: decoding is validation; ranges come from the baseline.
        let needs_ranges =
            config.validate.mode.is_on() && config.validate.ranges == RangeSource::Baseline;
        let bounds = match (&baseline, needs_ranges) {
            (Some(b), true) => b.features.iter().map(|f| (f.min, f.max)).collect(),
            (None, true) => {
                return Err(BuildError::NeedsBaseline("validate.ranges = \"baseline\""))
            }
            _ => Vec::new(),
        };
        let schema = Validator::new(&config.validate, width, &info.input_name, &bounds);

        // 3. Inspection: z-score (one feature far out), then Mahalanobis (a combination far out).
        let mut inspectors: Vec<(Mode, Box<dyn Inspect>)> = Vec::new();
        let a = &config.anomaly;
        if a.mode.is_on() {
            let Some(b) = &baseline else {
                return Err(BuildError::NeedsBaseline("anomaly detection"));
            };
            if let Some(t) = z_threshold(a.zscore)? {
                inspectors.push((
                    a.mode,
                    Box::new(ZScoreGuard::new(rampart_detect::ZScore::new(b), t)),
                ));
            }
            if a.mahalanobis != Threshold::Off {
                // Score with the ridge the baseline's own distances were computed with, so its percentiles
                // are thresholds on the same scale.
                let ridge = if b.mahalanobis.ridge > 0.0 {
                    b.mahalanobis.ridge
                } else {
                    MAHALANOBIS_RIDGE
                };
                let detector = rampart_detect::Mahalanobis::from_baseline(b, ridge)
                    .map_err(|e| BuildError::Mahalanobis(e.to_string()))?;
                let t = match a.mahalanobis {
                    Threshold::Value(v) => v,
                    Threshold::Chi2(p) => rampart_detect::chi2_threshold(width, p)
                        .map_err(|e| BuildError::Mahalanobis(e.to_string()))?,
                    Threshold::Baseline(point) => baseline_distance(b, point),
                    Threshold::Off => f64::INFINITY,
                };
                inspectors.push((a.mode, Box::new(MahalanobisGuard::new(detector, t))));
            }
        }

        // 4. Shaping: the confidence gate decides which rows a person must see…
        let mut shapers: Vec<Box<dyn Shape>> = Vec::new();
        if matches!(info.kind, ModelKind::Classifier { .. }) && config.confidence.min > 0.0 {
            shapers.push(Box::new(ConfidenceGate::new(&config.confidence)));
        }
        // 5. …and only then does sanitization decide what of the rest may leave.
        let full = sanitize::Config {
            decimals: config.output.decimals,
            top_k: usize::MAX,
            label_only: false,
            // `output:full` is granted to callers trusted with the real scores: no perturbation.
            reverse_sigmoid: None,
        };
        let full_sanitizer = Sanitizer::new(&full, labels.clone());
        let role_sanitizers = config
            .output_by_role
            .iter()
            .map(|(role, c)| (role.clone(), Sanitizer::new(c, labels.clone())))
            .collect();
        let sanitizer = Sanitizer::new(&config.output, labels);

        Ok(Self {
            limiter: ArcSwapOption::new(limiter),
            schema,
            inspectors,
            backend,
            shapers,
            sanitizer,
            role_sanitizers,
            full_sanitizer,
        })
    }

    /// The model's input width.
    pub fn width(&self) -> usize {
        self.schema.width()
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The rate limiter, if on (for periodic sweeps).
    pub fn limiter(&self) -> Option<Arc<RateLimit>> {
        self.limiter.load_full()
    }

    /// Uses `other`'s rate limiter instead of this pipeline's own: a new version of a model takes over the
    /// quotas its callers have used, so a hot swap or rollback never hands anyone a fresh burst.
    pub fn share_limiter_of(&mut self, other: &Pipeline) {
        if self.limiter.load().is_some() {
            self.limiter.store(other.limiter.load_full());
        }
    }

    /// Replaces the rate limit (a config reload). Requests already admitted keep their decision; the next
    /// one meets the new quota, starting full (`governor` cannot carry one quota's state into another), and
    /// identities a responder tightened stay tightened.
    ///
    /// # Errors
    /// [`rate_limit::InvalidQuota`] for a zero rate or burst; the old limiter stays.
    pub fn set_rate_limit(
        &self,
        config: &rate_limit::Config,
    ) -> Result<(), rate_limit::InvalidQuota> {
        let next = if config.mode.is_on() {
            let limiter = RateLimit::new(config)?;
            if let Some(old) = self.limiter.load_full() {
                limiter.adopt_tightened(&old);
            }
            Some(Arc::new(limiter))
        } else {
            None
        };
        self.limiter.store(next);
        Ok(())
    }

    /// The admit phase: takes one request from the identity's quota.
    ///
    /// # Errors
    /// A 429 rejection (in enforce mode) with the quotas to advertise.
    pub fn admit(
        &self,
        cx: &RequestCx<'_>,
        flags: &mut Vec<Finding>,
    ) -> Result<Option<Quotas>, (Rejection, Option<Quotas>)> {
        let limiter = self.limiter.load();
        let Some(limiter) = limiter.as_ref() else {
            return Ok(None);
        };
        match limiter.acquire(cx.identity) {
            Ok(q) => Ok(Some(q)),
            Err((r, q)) => match limiter.mode().apply(Verdict::Reject(r)) {
                Verdict::Reject(r) => Err((r, Some(q))),
                Verdict::Flag(f) => {
                    flags.push(f);
                    Ok(Some(q))
                }
                Verdict::Pass => Ok(Some(q)),
            },
        }
    }

    /// Everything after admission, in one synchronous call: [`Pipeline::prepare`], the in-process backend,
    /// [`Pipeline::complete`]. The audit commit is the caller's.
    pub fn evaluate(&self, cx: &RequestCx<'_>, body: &[u8], flags: Vec<Finding>) -> Decision {
        let prepared = match self.prepare(cx, body, flags) {
            Ok(p) => p,
            Err(done) => return *done,
        };
        let t = Instant::now();
        let output = self
            .backend
            .predict(prepared.features.as_slice(), prepared.features.rows())
            .map(ModelAnswer::from)
            .map_err(|_| model_unavailable());
        let elapsed = t.elapsed();
        self.complete(cx, prepared, output, elapsed)
    }

    /// The phases before the model: parse and validate the body, then run the inspectors.
    ///
    /// Split from [`Pipeline::complete`] so the caller decides how the model is called: in place, through a
    /// batcher, on a blocking thread (smoothing), or over the network (an upstream model server).
    ///
    /// # Errors
    /// The finished [`Decision`] when a guard refused the request before the model.
    pub fn prepare(
        &self,
        cx: &RequestCx<'_>,
        body: &[u8],
        mut flags: Vec<Finding>,
    ) -> Result<Prepared, Box<Decision>> {
        let mut timings = Timings::default();
        let t0 = Instant::now();
        let parsed = match self.schema.parse(cx, body) {
            Ok(p) => p,
            Err(r) => {
                timings.validate = t0.elapsed();
                return Err(Box::new(Decision {
                    outcome: Outcome::Rejected(r),
                    flags,
                    features: None,
                    prediction: None,
                    echo_id: None,
                    timings,
                }));
            }
        };
        flags.extend(parsed.flags);
        let features = parsed.features;
        let echo_id = parsed.echo_id;
        let t1 = Instant::now();
        timings.validate = t1 - t0;

        for (mode, guard) in &self.inspectors {
            match mode.apply(guard.inspect(cx, &features)) {
                Verdict::Pass => {}
                Verdict::Flag(f) => flags.push(f),
                Verdict::Reject(r) => {
                    timings.inspect = t1.elapsed();
                    return Err(Box::new(Decision {
                        outcome: Outcome::Rejected(r),
                        flags,
                        features: Some(features),
                        prediction: None,
                        echo_id,
                        timings,
                    }));
                }
            }
        }
        timings.inspect = t1.elapsed();
        Ok(Prepared {
            features,
            flags,
            echo_id,
            timings,
        })
    }

    /// The phases after the model: the confidence gate, then sanitization for the caller's grants.
    ///
    /// `output` is what the model call gave: the backend's tensors (with what a hardening wrapper adds), or
    /// the refusal the call ended in ([`model_unavailable`] for a backend failure; an upstream or a hardening
    /// wrapper may refuse with its own reason). `model_time` is how long the call took, for the per-phase
    /// histograms.
    pub fn complete(
        &self,
        cx: &RequestCx<'_>,
        prepared: Prepared,
        output: Result<ModelAnswer, Rejection>,
        model_time: Duration,
    ) -> Decision {
        let Prepared {
            features,
            mut flags,
            echo_id,
            mut timings,
        } = prepared;
        timings.model = model_time;
        let t3 = Instant::now();
        let prediction = output.and_then(|answer| {
            let ModelAnswer {
                output: o,
                smoothed,
                flags: found,
            } = answer;
            flags.extend(found);
            if o.n_rows != features.rows() {
                return Err(model_unavailable());
            }
            let mut p = to_prediction(&o).ok_or_else(model_unavailable)?;
            if let Some(smoothed) = smoothed {
                if smoothed.len() != p.rows.len() {
                    return Err(model_unavailable());
                }
                apply_smoothing(&mut p, &smoothed);
            }
            Ok(p)
        });
        let mut prediction = match prediction {
            Ok(p) => p,
            Err(r) => {
                return Decision {
                    outcome: Outcome::Rejected(r),
                    flags,
                    features: Some(features),
                    prediction: None,
                    echo_id,
                    timings,
                };
            }
        };

        for guard in &self.shapers {
            match guard.shape(cx, &mut prediction) {
                Verdict::Pass => {}
                Verdict::Flag(f) => flags.push(f),
                Verdict::Reject(r) => {
                    timings.shape = t3.elapsed();
                    return Decision {
                        outcome: Outcome::Rejected(r),
                        flags,
                        features: Some(features),
                        prediction: Some(prediction),
                        echo_id,
                        timings,
                    };
                }
            }
        }
        let answer = self.sanitizer_for(cx).sanitize(&prediction, cx.certificate);
        timings.shape = t3.elapsed();
        Decision {
            outcome: Outcome::Answered(answer),
            flags,
            features: Some(features),
            prediction: Some(prediction),
            echo_id,
            timings,
        }
    }
}

impl Pipeline {
    /// `output:full` first (it is an explicit grant), then the first of the caller's roles that has an
    /// `output_by_role` entry, then the model's `output`.
    fn sanitizer_for(&self, cx: &RequestCx<'_>) -> &Sanitizer {
        if cx.full_output {
            return &self.full_sanitizer;
        }
        cx.identity
            .roles()
            .iter()
            .find_map(|r| self.role_sanitizers.get(r))
            .unwrap_or(&self.sanitizer)
    }
}

/// What randomized smoothing decided for one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Smoothed {
    /// The smoothed classifier named a class (the argmax of the output's vote fractions); in CERTIFY mode
    /// with its certified L2 radius.
    Answered {
        /// σ·Φ⁻¹(p_A lower), CERTIFY mode only.
        certified_radius: Option<f64>,
    },
    /// Not enough evidence at level α: the row is answered `abstain`.
    Abstained,
}

/// What the model call gave: the tensors, and what a hardening wrapper (smoothing, ensemble, squeezing) adds.
#[derive(Debug, Clone)]
pub struct ModelAnswer {
    /// The tensors (for a smoothed model: the vote fractions per class).
    pub output: Output,
    /// One entry per row when the model is smoothed.
    pub smoothed: Option<Vec<Smoothed>>,
    /// Findings of the wrapper in observe (or `flag`) mode: recorded, never changing the answer.
    pub flags: Vec<Finding>,
}

impl From<Output> for ModelAnswer {
    fn from(output: Output) -> Self {
        Self {
            output,
            smoothed: None,
            flags: Vec::new(),
        }
    }
}

/// Marks abstained rows and attaches certified radii.
fn apply_smoothing(p: &mut Prediction, smoothed: &[Smoothed]) {
    for (row, s) in p.rows.iter_mut().zip(smoothed) {
        match (s, &mut *row) {
            (Smoothed::Abstained, RowPrediction::Class { probabilities, .. }) => {
                let probabilities = std::mem::take(probabilities);
                *row = RowPrediction::Abstained { probabilities };
            }
            (
                Smoothed::Answered {
                    certified_radius: r,
                },
                RowPrediction::Class {
                    certified_radius, ..
                },
            ) => *certified_radius = *r,
            _ => {}
        }
    }
}

/// A request that passed every guard before the model: its validated input, waiting for the model call.
#[derive(Debug)]
pub struct Prepared {
    /// The validated rows the model is to score.
    pub features: Features,
    /// Findings so far (guards in observe mode).
    pub flags: Vec<Finding>,
    /// The OIP v2 request id to echo.
    pub echo_id: Option<String>,
    /// Validation and inspection time so far.
    pub timings: Timings,
}

/// The refusal for a model call that failed or returned tensors of the wrong shape: 503 `model_unavailable`,
/// high severity (an operator must look).
pub fn model_unavailable() -> Rejection {
    Rejection::new(Reason::ModelUnavailable, GuardId::MODEL).with_severity(Severity::High)
}

fn z_threshold(t: Threshold) -> Result<Option<f64>, BuildError> {
    match t {
        Threshold::Off => Ok(None),
        Threshold::Value(v) => Ok(Some(v)),
        // A z-score is one standard normal: "chi2:P" with one degree of freedom is |z| at two-sided P.
        Threshold::Chi2(p) => rampart_detect::chi2_threshold(1, p)
            .map(Some)
            .map_err(|e| BuildError::Mahalanobis(e.to_string())),
        Threshold::Baseline(_) => Err(BuildError::ZScoreThreshold),
    }
}

fn baseline_distance(b: &Baseline, point: BaselinePoint) -> f64 {
    let m = &b.mahalanobis;
    match point {
        BaselinePoint::P99 => m.p99,
        BaselinePoint::P999 => m.p999,
        BaselinePoint::Max => m.max,
    }
}

/// Turns the backend's tensors into per-row predictions; `None` if they are not the shape the kind promises.
fn to_prediction(o: &Output) -> Option<Prediction> {
    match o.kind {
        ModelKind::Classifier { classes } => {
            if classes == 0 || o.values.len() != o.n_rows * classes {
                return None;
            }
            let rows = o
                .values
                .chunks_exact(classes)
                .map(|p| {
                    let (best, confidence) = p.iter().copied().enumerate().fold(
                        (0, f32::NEG_INFINITY),
                        |acc, (i, v)| if v > acc.1 { (i, v) } else { acc },
                    );
                    RowPrediction::Class {
                        probabilities: p.to_vec(),
                        best,
                        confidence,
                        review_id: None,
                        certified_radius: None,
                    }
                })
                .collect();
            Some(Prediction { rows })
        }
        ModelKind::Regressor { outputs } => {
            if outputs == 0 || o.values.len() != o.n_rows * outputs {
                return None;
            }
            let rows = o
                .values
                .chunks_exact(outputs)
                .map(|v| RowPrediction::Value { values: v.to_vec() })
                .collect();
            Some(Prediction { rows })
        }
    }
}
