//! # rampart-pipeline
//!
//! The request path: the guards a prediction passes through, in the seed's order, and the one function that
//! stacks them ([`Pipeline::build`]).
//!
//! ```text
//! admit (rate limit) ─► parse (validation) ─► inspect (z-score, Mahalanobis) ─► model ─► shape (confidence gate)
//!     ─► sanitize
//! ```
//!
//! Each phase is a small trait ([`phase::Admit`], [`phase::Schema`], [`phase::Inspect`], [`phase::Shape`]) whose
//! argument type says what a guard may see: a guard before the model never sees a prediction, a guard after it
//! never sees the raw body. Decoding *is* validation: the JSON decoder streams numbers straight into a bounded
//! `f32` buffer and refuses anything the model cannot take, so no guard ever sees unvalidated input.
//!
//! This crate does no I/O and never awaits: the audit commit, the review queue's persistence and the HTTP edge
//! belong to `rampart-server`. Every guard's `Config` sits beside its runtime type
//! (`rate_limit::{Config, RateLimit}`), and each guard has `mode = "enforce" | "observe" | "off"`: in observe mode
//! the pipeline — not the guard — turns a rejection into a [`rampart_core::Finding`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anomaly;
pub mod confidence;
pub mod cx;
pub mod decode;
pub mod mode;
pub mod phase;
pub mod pipeline;
pub mod prediction;
pub mod rate_limit;
pub mod reverse_sigmoid;
pub mod sanitize;
pub mod validate;

pub use cx::{Protocol, RequestCx};
pub use mode::Mode;
pub use pipeline::{
    model_unavailable, BuildError, Decision, ModelAnswer, Outcome, Pipeline, PipelineConfig,
    Prepared, Smoothed, Timings,
};
pub use prediction::{Answer, Prediction, RowAnswer, RowPrediction};
