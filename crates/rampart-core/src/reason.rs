//! The stable reason codes a client sees, and the HTTP status each one maps to.

use serde::Serialize;

/// Why a request was refused. The code ([`Reason::as_str`]) and the status ([`Reason::status`]) are part of the
/// public API: clients and dashboards key on them, so a variant's code never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The body is not JSON, or not the JSON document the endpoint expects.
    InvalidJson,
    /// A required field (`features`, `instances`, `inputs`, `data`) is absent.
    MissingField,
    /// The tensor's shape does not match the model's input (width, declared shape, element count, batch size).
    ShapeMismatch,
    /// A value is not a number, or a declared datatype is not one the model takes.
    DtypeMismatch,
    /// A number is NaN, infinite, or too large for the model's `f32` input.
    NonFinite,
    /// A feature lies outside the range the model was trained on (widened by the configured margin).
    OutOfRange,
    /// No valid credential was presented. The body is the same whatever was wrong.
    Unauthenticated,
    /// The caller is authenticated but its roles do not grant the permission the request needs.
    Forbidden,
    /// The caller's identity has been blocked by an operator or a responder.
    Blocked,
    /// The model named in the path is not served here (the name is never echoed).
    ModelNotFound,
    /// No route matches the path.
    NotFound,
    /// A feedback names a request id this gateway has not answered recently for that model (or whose label
    /// was already given).
    UnknownRequest,
    /// The route exists but not for this HTTP method.
    MethodNotAllowed,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The input is well-formed but far from the model's training distribution.
    AnomalousInput,
    /// The identity has exceeded its request rate for this model.
    RateLimited,
    /// The audit record could not be made durable, so the decision is not acknowledged (fail closed).
    AuditUnavailable,
    /// The model could not produce an answer for a well-formed request.
    ModelUnavailable,
    /// A dependency the decision needs (the shared rate-limit state) is unreachable, and the gateway is
    /// configured to fail closed rather than decide alone.
    Overloaded,
    /// The client took too long to send its request.
    RequestTimeout,
    /// A bug: nothing internal is shown, an alert is raised.
    Internal,
    /// An admin change conflicts with the current state (the version is already active, there is no previous
    /// version to roll back to, another change of the model is in progress, the model is not registry-backed).
    Conflict,
    /// A model version was refused because it does not verify against its signed manifest (the log and the
    /// audit name the file).
    VersionRefused,
    /// The input is in range and near the training data, but the model's answer changes under small
    /// perturbations that should not change it (feature squeezing), or the members of an ensemble disagree:
    /// the signature of an adversarial example.
    AdversarialInput,
    /// The upstream model server answered with an error or with something that is not a valid answer.
    UpstreamError,
    /// The upstream model server did not answer within the configured timeout.
    UpstreamTimeout,
}

impl Reason {
    /// Every reason, in the order of the README's table.
    pub const ALL: &'static [Reason] = &[
        Reason::InvalidJson,
        Reason::MissingField,
        Reason::ShapeMismatch,
        Reason::DtypeMismatch,
        Reason::NonFinite,
        Reason::OutOfRange,
        Reason::Unauthenticated,
        Reason::Forbidden,
        Reason::Blocked,
        Reason::ModelNotFound,
        Reason::NotFound,
        Reason::UnknownRequest,
        Reason::MethodNotAllowed,
        Reason::RequestTimeout,
        Reason::Conflict,
        Reason::PayloadTooLarge,
        Reason::UnsupportedMediaType,
        Reason::AnomalousInput,
        Reason::VersionRefused,
        Reason::AdversarialInput,
        Reason::RateLimited,
        Reason::Internal,
        Reason::UpstreamError,
        Reason::AuditUnavailable,
        Reason::ModelUnavailable,
        Reason::Overloaded,
        Reason::UpstreamTimeout,
    ];

    /// The stable snake_case code sent as `reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::MissingField => "missing_field",
            Reason::ShapeMismatch => "shape_mismatch",
            Reason::DtypeMismatch => "dtype_mismatch",
            Reason::NonFinite => "non_finite",
            Reason::OutOfRange => "out_of_range",
            Reason::Unauthenticated => "unauthenticated",
            Reason::Forbidden => "forbidden",
            Reason::Blocked => "blocked",
            Reason::ModelNotFound => "model_not_found",
            Reason::NotFound => "not_found",
            Reason::UnknownRequest => "unknown_request",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::AnomalousInput => "anomalous_input",
            Reason::RateLimited => "rate_limited",
            Reason::AuditUnavailable => "audit_unavailable",
            Reason::ModelUnavailable => "model_unavailable",
            Reason::Overloaded => "overloaded",
            Reason::RequestTimeout => "request_timeout",
            Reason::Internal => "internal",
            Reason::Conflict => "conflict",
            Reason::VersionRefused => "version_refused",
            Reason::AdversarialInput => "adversarial_input",
            Reason::UpstreamError => "upstream_error",
            Reason::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The HTTP status this reason is always sent with.
    pub const fn status(self) -> u16 {
        match self {
            Reason::InvalidJson
            | Reason::MissingField
            | Reason::ShapeMismatch
            | Reason::DtypeMismatch
            | Reason::NonFinite
            | Reason::OutOfRange => 400,
            Reason::Unauthenticated => 401,
            Reason::Forbidden | Reason::Blocked => 403,
            Reason::ModelNotFound | Reason::NotFound | Reason::UnknownRequest => 404,
            Reason::MethodNotAllowed => 405,
            Reason::RequestTimeout => 408,
            Reason::Conflict => 409,
            Reason::PayloadTooLarge => 413,
            Reason::UnsupportedMediaType => 415,
            Reason::AnomalousInput | Reason::VersionRefused | Reason::AdversarialInput => 422,
            Reason::RateLimited => 429,
            Reason::Internal => 500,
            Reason::UpstreamError => 502,
            Reason::AuditUnavailable | Reason::ModelUnavailable | Reason::Overloaded => 503,
            Reason::UpstreamTimeout => 504,
        }
    }

    /// What the reason means, in words fit for the client and the README.
    pub const fn describe(self) -> &'static str {
        match self {
            Reason::InvalidJson => "the body is not the JSON document this endpoint expects",
            Reason::MissingField => "a required field is missing",
            Reason::ShapeMismatch => "the input's shape does not match the model's input",
            Reason::DtypeMismatch => "a value or declared datatype is not a number the model takes",
            Reason::NonFinite => "a value is NaN, infinite or too large for the model",
            Reason::OutOfRange => "a feature is outside the range the model was trained on",
            Reason::Unauthenticated => "missing or invalid credentials",
            Reason::Forbidden => "the caller's roles do not permit this request",
            Reason::Blocked => "the caller's identity is blocked",
            Reason::ModelNotFound => "no such model",
            Reason::NotFound => "no such route",
            Reason::UnknownRequest => "no recently answered request has this id",
            Reason::MethodNotAllowed => "method not allowed on this route",
            Reason::RequestTimeout => "the request was not received in time",
            Reason::PayloadTooLarge => "the body is larger than allowed",
            Reason::UnsupportedMediaType => "the body must be application/json",
            Reason::AnomalousInput => "the input is far from the model's training distribution",
            Reason::RateLimited => "too many requests",
            Reason::Internal => "internal error",
            Reason::AuditUnavailable => {
                "the audit log is unavailable; the request was not processed"
            }
            Reason::ModelUnavailable => "the model could not answer",
            Reason::Conflict => "the change conflicts with the current state",
            Reason::VersionRefused => "the model version does not verify against its signature",
            Reason::Overloaded => "the gateway cannot decide right now; retry shortly",
            Reason::AdversarialInput => {
                "the model's answer is unstable around this input, a sign of an adversarial example"
            }
            Reason::UpstreamError => "the upstream model server failed to answer",
            Reason::UpstreamTimeout => "the upstream model server did not answer in time",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
