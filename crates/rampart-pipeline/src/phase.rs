//! The phase traits: the seam every guard plugs into. Each argument type says what a guard at that point may see.

use rampart_core::{Features, GuardId, Rejection, Verdict};

use crate::prediction::Prediction;
use crate::RequestCx;

/// Before the body is read: identity and model are known.
pub trait Admit: Send + Sync {
    /// The guard's name.
    fn id(&self) -> GuardId;
    /// Decides on the request's metadata alone.
    fn admit(&self, cx: &RequestCx<'_>) -> Verdict;
}

/// Decoding is validation: the only way to obtain [`Features`] from a body.
pub trait Schema: Send + Sync {
    /// Decodes and validates the body.
    ///
    /// # Errors
    /// A 400/415 [`Rejection`] naming what is wrong, never echoing the input.
    fn parse(&self, cx: &RequestCx<'_>, body: &[u8]) -> Result<Parsed, Rejection>;
}

/// What a [`Schema`] produces: the features, anything it noticed without refusing, and the OIP v2 request `id`
/// to echo.
#[derive(Debug)]
pub struct Parsed {
    /// The validated rows.
    pub features: Features,
    /// Findings of guards in observe mode (out-of-range values).
    pub flags: Vec<rampart_core::Finding>,
    /// The v2 request's `id`, if it had one (bounded in length by the decoder).
    pub echo_id: Option<String>,
}

/// On validated features, before the model.
pub trait Inspect: Send + Sync {
    /// The guard's name.
    fn id(&self) -> GuardId;
    /// Decides on the features.
    fn inspect(&self, cx: &RequestCx<'_>, x: &Features) -> Verdict;
}

/// On the model's answer, before it is rendered.
pub trait Shape: Send + Sync {
    /// The guard's name.
    fn id(&self) -> GuardId;
    /// May change the prediction (mark rows for review) or refuse it.
    fn shape(&self, cx: &RequestCx<'_>, p: &mut Prediction) -> Verdict;
}
