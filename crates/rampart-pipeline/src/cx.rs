//! The per-request context every guard receives.

use rampart_core::Identity;

/// Which wire format carried the request; decoding differs, validation does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `POST /v1/models/{name}/predict` with `{"features": [...]}` or `{"instances": [[...], ...]}`.
    V1,
    /// Open Inference Protocol v2 `POST /v2/models/{name}/infer`.
    V2,
}

/// What is known about a request before its body is read.
#[derive(Debug, Clone, Copy)]
pub struct RequestCx<'a> {
    /// The id sent back in `X-Request-Id` and written to the audit record.
    pub request_id: &'a str,
    /// The authenticated caller.
    pub identity: &'a Identity,
    /// The model's configured name.
    pub model: &'a str,
    /// The wire format.
    pub protocol: Protocol,
    /// The caller's roles grant `output:full`: every class with its probability instead of the model's
    /// configured sanitization (still rounded to its decimals; the confidence gate still applies).
    pub full_output: bool,
    /// The caller's roles grant `output:certificate`: randomized smoothing's certified radius is included in
    /// the answer (a model in CERTIFY mode only).
    pub certificate: bool,
}
