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

use crate::batch::Batcher;

/// Where one served model's predictions are computed.
pub(crate) enum Runner {
    /// On the request's own task: a scikit-learn model on tract answers a row in microseconds, less than a
    /// hand-off to another thread would cost.
    Inline(Arc<dyn Backend>),
    /// Through the model's dynamic batcher (`[[models]] batch`; see [`crate::batch`]).
    Batched(Batcher),
    /// Over the network, on an upstream model server (proxy mode): awaited, so the worker serves other
    /// requests while the upstream thinks. The call's own failures map to their reasons (502, 503, 504).
    Upstream(Arc<crate::upstream::Upstream>),
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
    /// feature squeezing; otherwise batched (the default) unless `batch.max_batch = 1`. `ensemble` is the entry's
    /// ensemble backend (also `backend`).
    ///
    /// # Errors
    /// The field that does not fit the model, or a batching thread that cannot start.
    pub(crate) fn for_model(
        m: &ModelConfig,
        backend: &Arc<dyn Backend>,
        ensemble: Option<Arc<EnsembleBackend>>,
        pool: &Arc<BlockingPool>,
    ) -> Result<Self, String> {
        if let Some(hardened) = Self::hardened(m, backend, ensemble, pool)? {
            return Ok(hardened);
        }
        match m.batch.unwrap_or_default() {
            c if c.max_batch > 1 => Batcher::spawn(Arc::clone(backend), c)
                .map(Runner::Batched)
                .map_err(|e| format!("cannot start the batching thread: {e}")),
            _ => Ok(Self::inline(backend)),
        }
    }

    /// The runner of an `upstream` entry: hardened around the upstream (whose `Backend::predict` the pool
    /// calls on a blocking thread) when the entry asks for it, the awaited remote call otherwise.
    ///
    /// # Errors
    /// The field that does not fit the model.
    pub(crate) fn for_upstream(
        m: &ModelConfig,
        upstream: &Arc<crate::upstream::Upstream>,
        pool: &Arc<BlockingPool>,
    ) -> Result<Self, String> {
        let backend: Arc<dyn Backend> = upstream.clone();
        Ok(match Self::hardened(m, &backend, None, pool)? {
            Some(hardened) => hardened,
            None => Runner::Upstream(Arc::clone(upstream)),
        })
    }

    fn hardened(
        m: &ModelConfig,
        backend: &Arc<dyn Backend>,
        ensemble: Option<Arc<EnsembleBackend>>,
        pool: &Arc<BlockingPool>,
    ) -> Result<Option<Self>, String> {
        let spec = HardenSpec {
            smoothing: m.smoothing.as_ref(),
            ensemble: match (&m.ensemble, ensemble) {
                (Some(c), Some(e)) => Some((c, e)),
                _ => None,
            },
            adversarial: m.adversarial.as_ref(),
        };
        if !spec.any() {
            return Ok(None);
        }
        let hardened = Hardened::build(Arc::clone(backend), spec, Arc::clone(pool))
            .map_err(|e: HardenError| e.to_string())?;
        Ok(Some(Runner::Hardened(Arc::new(hardened))))
    }

    /// For a batched model, counts the request as in flight until the guard drops (see
    /// [`Batcher::track`]); `None` for every other runner.
    pub(crate) fn track(&self) -> Option<crate::batch::InFlight<'_>> {
        match self {
            Runner::Batched(b) => Some(b.track()),
            _ => None,
        }
    }

    /// Scores the validated rows.
    ///
    /// # Errors
    /// The refusal the call ends in: 503 `model_unavailable` when the backend fails; for an upstream, the
    /// reason its failure maps to ([`crate::upstream::CallError::rejection`]); for a hardened model also 422
    /// `adversarial_input`; 503 `overloaded` when a batching queue or the hardening pool is full.
    pub(crate) async fn run(&self, features: &Features) -> Result<ModelAnswer, Rejection> {
        match self {
            Runner::Inline(backend) => backend
                .predict(features.as_slice(), features.rows())
                .map(ModelAnswer::from)
                .map_err(|e| {
                    tracing::error!(model = %backend.info().name, "model failed: {e}");
                    model_unavailable()
                }),
            Runner::Batched(batcher) => batcher
                .predict(features.as_slice(), features.rows())
                .await
                .map(ModelAnswer::from)
                .map_err(|e| {
                    tracing::error!(model = %batcher.name(), "batched model call failed: {e}");
                    e.rejection()
                }),
            // `infer` logs the failure (with its cause) and counts it.
            Runner::Upstream(upstream) => upstream
                .infer(features.as_slice(), features.rows())
                .await
                .map(ModelAnswer::from)
                .map_err(|e| e.rejection()),
            Runner::Hardened(h) => h.run(features).await,
        }
    }
}
