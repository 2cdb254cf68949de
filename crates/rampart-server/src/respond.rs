//! The one place a [`Rejection`] becomes an HTTP response: status and code from [`rampart_core::Reason`], the
//! body `{"error", "code", "reason", "request_id"}` everywhere (OIP v2 keeps its `error` key), `Retry-After`
//! for 429 and 503, `WWW-Authenticate` for 401.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

use rampart_core::{Reason, Rejection};

/// The header carrying the request id on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: u16,
    reason: &'static str,
    request_id: &'a str,
}

/// A JSON response with the request id header.
pub fn json(status: StatusCode, body: Vec<u8>, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, v);
    }
    resp
}

/// The error body for a rejection.
pub fn error_body(rejection: &Rejection, request_id: &str) -> Vec<u8> {
    let body = ErrorBody {
        error: &rejection.detail,
        code: rejection.reason.status(),
        reason: rejection.reason.as_str(),
        request_id,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The response for a rejection.
pub fn rejection(rejection: &Rejection, request_id: &str) -> Response {
    let status = StatusCode::from_u16(rejection.reason.status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json(status, error_body(rejection, request_id), request_id);
    let headers = resp.headers_mut();
    if let Some(after) = rejection.retry_after {
        let secs = after.as_secs().max(1);
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    } else if matches!(rejection.reason.status(), 503) {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if rejection.reason == Reason::Unauthenticated {
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"rampart\""),
        );
    }
    resp
}

/// Whether the request announces a body (chunked, or a non-zero Content-Length).
pub(crate) fn has_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Adds `Connection: close` when `close`: a refusal made before the body was read must not leave that body on
/// the connection to be parsed as the next request.
pub(crate) fn close_if(mut resp: Response, close: bool) -> Response {
    if close {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
