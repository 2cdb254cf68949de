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
use rampart_model::{Backend, Output};
use rampart_pipeline::model_unavailable;

use crate::batch::{BatchConfig, Batcher};

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
}

impl Runner {
    /// The runner for a model whose backend answers in place.
    pub(crate) fn inline(backend: &Arc<dyn Backend>) -> Self {
        Runner::Inline(Arc::clone(backend))
    }

    /// The runner a model entry asks for: batched when it has a `batch` table, inline otherwise.
    ///
    /// # Errors
    /// When the batching thread cannot be started.
    pub(crate) fn new(
        backend: &Arc<dyn Backend>,
        batch: Option<BatchConfig>,
    ) -> std::io::Result<Self> {
        Ok(match batch {
            Some(c) => Runner::Batched(Batcher::spawn(Arc::clone(backend), c)?),
            None => Runner::inline(backend),
        })
    }

    /// Scores the validated rows.
    ///
    /// # Errors
    /// The refusal the call ends in: 503 `model_unavailable` when the backend fails; for an upstream, the
    /// reason its failure maps to ([`crate::upstream::CallError::rejection`]).
    pub(crate) async fn run(&self, features: &Features) -> Result<Output, Rejection> {
        match self {
            Runner::Inline(backend) => backend
                .predict(features.as_slice(), features.rows())
                .map_err(|e| {
                    tracing::error!(model = %backend.info().name, "model failed: {e}");
                    model_unavailable()
                }),
            Runner::Batched(batcher) => batcher
                .predict(features.as_slice(), features.rows())
                .await
                .map_err(|e| {
                    tracing::error!(model = %batcher.name(), "batched model call failed: {e}");
                    e.rejection()
                }),
            // `infer` logs the failure (with its cause) and counts it.
            Runner::Upstream(upstream) => upstream
                .infer(features.as_slice(), features.rows())
                .await
                .map_err(|e| e.rejection()),
        }
    }
}
