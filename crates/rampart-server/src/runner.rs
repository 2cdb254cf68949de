//! How the request path calls a served model's backend, between [`Pipeline::prepare`] and
//! [`Pipeline::complete`].
//!
//! The pipeline's guards are synchronous and cheap; the model call is the one step whose cost and shape differ
//! by backend, so it is the one step the gateway awaits. Each [`Runner`] decides where the call runs.
//!
//! [`Pipeline::prepare`]: rampart_pipeline::Pipeline::prepare
//! [`Pipeline::complete`]: rampart_pipeline::Pipeline::complete

use std::sync::Arc;

use rampart_core::{Features, Rejection};
use rampart_model::Backend;
use rampart_pipeline::{model_unavailable, ModelAnswer};

use crate::config::ModelConfig;
use crate::harden::{BlockingPool, EnsembleBackend, HardenError, HardenSpec, Hardened};

/// Where one served model's predictions are computed.
pub(crate) enum Runner {
    /// On the request's own task: a scikit-learn model on tract answers a row in microseconds, less than a
    /// hand-off to another thread would cost.
    Inline(Arc<dyn Backend>),
    /// Smoothing, an ensemble or feature squeezing around any backend: many model calls per request, all of
    /// them on a blocking thread behind the gateway's bounded pool (see [`crate::harden`]).
    Hardened(Arc<Hardened>),
}

impl Runner {
    /// The runner for a model whose backend answers in place.
    pub(crate) fn inline(backend: &Arc<dyn Backend>) -> Self {
        Runner::Inline(Arc::clone(backend))
    }

    /// The runner a `[[models]]` entry asks for: hardened when it configures smoothing, an ensemble or
    /// feature squeezing, inline otherwise. `ensemble` is the entry's ensemble backend (also `backend`).
    ///
    /// # Errors
    /// [`HardenError`] naming the field that does not fit the model.
    pub(crate) fn for_model(
        m: &ModelConfig,
        backend: &Arc<dyn Backend>,
        ensemble: Option<Arc<EnsembleBackend>>,
        pool: &Arc<BlockingPool>,
    ) -> Result<Self, HardenError> {
        let spec = HardenSpec {
            smoothing: m.smoothing.as_ref(),
            ensemble: match (&m.ensemble, ensemble) {
                (Some(c), Some(e)) => Some((c, e)),
                _ => None,
            },
            adversarial: m.adversarial.as_ref(),
        };
        if !spec.any() {
            return Ok(Self::inline(backend));
        }
        let hardened = Hardened::build(Arc::clone(backend), spec, Arc::clone(pool))?;
        Ok(Runner::Hardened(Arc::new(hardened)))
    }

    /// Scores the validated rows.
    ///
    /// # Errors
    /// The refusal the call ends in: 503 `model_unavailable` when the backend fails; for a hardened model
    /// also 422 `adversarial_input` and 503 `overloaded`.
    pub(crate) async fn run(&self, features: &Features) -> Result<ModelAnswer, Rejection> {
        match self {
            Runner::Inline(backend) => backend
                .predict(features.as_slice(), features.rows())
                .map(ModelAnswer::from)
                .map_err(|e| {
                    tracing::error!(model = %backend.info().name, "model failed: {e}");
                    model_unavailable()
                }),
            Runner::Hardened(h) => h.run(features).await,
        }
    }
}
