//! The inference listener's routes: OIP v2 and `/v1`. The admin listener's are in [`crate::admin`], never
//! mounted here.

use std::any::Any;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::{HeaderMap, StatusCode};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

use rampart_core::{GuardId, Reason, Rejection};
use rampart_pipeline::Protocol;

use crate::auth::Peer;
use crate::gateway::{kind_name, new_request_id, Gateway};
use crate::respond;

/// Path parameters whose extraction failure (invalid percent-encoding, say) is the one error body — audited,
/// with a request id — rather than axum's plain-text rejection.
pub(crate) struct SafePath<T>(pub(crate) T);

impl<T> axum::extract::FromRequestParts<Gateway> for SafePath<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        gw: &Gateway,
    ) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, gw).await {
            Ok(Path(v)) => Ok(SafePath(v)),
            Err(_) => {
                let id = new_request_id();
                let r = Rejection::new(Reason::NotFound, GuardId::ROUTE);
                Err(gw
                    .shared
                    .refuse(r, &id, "-", None, Instant::now(), &[])
                    .await)
            }
        }
    }
}

fn ok_json(value: serde_json::Value) -> Response {
    let id = new_request_id();
    respond::json(
        StatusCode::OK,
        serde_json::to_vec(&value).unwrap_or_default(),
        &id,
    )
}

/// The inference router.
pub(crate) fn inference(gw: Gateway) -> Router {
    let panic_gw = gw.clone();
    Router::new()
        .route(
            "/v2/health/live",
            get(|| async { ok_json(json!({"live": true})) }),
        )
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_version_metadata),
        )
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer_v2))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(infer_v2_version),
        )
        .route("/v1/models/{name}/predict", post(predict_v1))
        .route("/v1/models/{name}/feedback", post(feedback_v1))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gw)
        .layer(CatchPanicLayer::custom(
            move |payload: Box<dyn Any + Send>| {
                // The panic message may hold internal state: it goes to the alert, never to the client.
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                panic_gw
                    .shared
                    .raise_internal(format!("a request handler panicked: {what}"));
                let id = new_request_id();
                respond::rejection(&Rejection::new(Reason::Internal, GuardId::ROUTE), &id)
            },
        ))
}

/// 200 when models are loaded and the gateway is not draining, 503 otherwise: orchestrators route by the
/// status code, and a draining replica must leave the load balancer before its listener closes.
async fn ready(State(gw): State<Gateway>) -> Response {
    let ready = gw.shared.has_models() && !gw.is_draining();
    let mut resp = ok_json(json!({ "ready": ready }));
    if !ready {
        *resp.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    }
    resp
}

async fn server_metadata() -> Response {
    ok_json(json!({
        "name": "rampart",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": [],
    }))
}

async fn not_found(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let id = new_request_id();
    let r = Rejection::new(Reason::NotFound, GuardId::ROUTE);
    let resp = gw
        .shared
        .refuse(r, &id, "-", None, Instant::now(), &[])
        .await;
    respond::close_if(resp, respond::has_body(&headers))
}

async fn method_not_allowed(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let id = new_request_id();
    let r = Rejection::new(Reason::MethodNotAllowed, GuardId::ROUTE);
    let resp = gw
        .shared
        .refuse(r, &id, "-", None, Instant::now(), &[])
        .await;
    respond::close_if(resp, respond::has_body(&headers))
}

/// Metadata endpoints require a credential: input shapes and labels help an attacker craft inputs.
async fn metadata(
    gw: &Gateway,
    peer: &Peer,
    headers: &HeaderMap,
    name: &str,
    version: Option<&str>,
) -> Response {
    let id = new_request_id();
    let started = Instant::now();
    let (identity, grants) = match gw
        .shared
        .admit_model(headers, peer, name, &id, started)
        .await
    {
        Ok(g) => g,
        Err(resp) => return resp,
    };
    let Some(m) = gw
        .shared
        .model(name)
        .filter(|m| version.is_none_or(|v| v == m.version))
    else {
        let r = Rejection::new(Reason::ModelNotFound, GuardId::ROUTE);
        return gw
            .shared
            .refuse(r, &id, identity.id(), None, started, &[])
            .await;
    };
    // A caller granted output:full also sees every class's probability (the `probabilities` output) and the
    // labels: what a Rampart in proxy mode in front of this one checks its config against at start-up.
    let full = grants.output_full();
    let mut parameters = json!({"kind": kind_name(&m.info.kind)});
    let outputs = match m.info.kind {
        rampart_model::ModelKind::Classifier { classes } if full => {
            if let Some(labels) = gw.shared.slot(name).map(|s| s.labels()) {
                if !labels.is_empty() {
                    parameters["labels"] = json!(labels);
                }
            }
            json!([
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
                {"name": "confidence", "datatype": "FP64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, classes]},
            ])
        }
        rampart_model::ModelKind::Classifier { .. } => json!([
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "confidence", "datatype": "FP64", "shape": [-1]},
        ]),
        rampart_model::ModelKind::Regressor { outputs } => json!([
            {"name": "prediction", "datatype": "FP64", "shape": [-1, outputs]},
        ]),
    };
    let body = json!({
        "name": m.name,
        "versions": [m.version],
        "platform": "onnx",
        "parameters": parameters,
        "inputs": [{"name": m.info.input_name, "datatype": "FP32", "shape": [-1, m.info.width]}],
        "outputs": outputs,
    });
    respond::json(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
        &id,
    )
}

async fn model_metadata(
    State(gw): State<Gateway>,
    Extension(peer): Extension<Peer>,
    SafePath(name): SafePath<String>,
    headers: HeaderMap,
) -> Response {
    metadata(&gw, &peer, &headers, &name, None).await
}

async fn model_version_metadata(
    State(gw): State<Gateway>,
    Extension(peer): Extension<Peer>,
    SafePath((name, version)): SafePath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    metadata(&gw, &peer, &headers, &name, Some(&version)).await
}

async fn model_ready(
    State(gw): State<Gateway>,
    Extension(peer): Extension<Peer>,
    SafePath(name): SafePath<String>,
    headers: HeaderMap,
) -> Response {
    let id = new_request_id();
    let started = Instant::now();
    let identity = match gw
        .shared
        .admit_model(&headers, &peer, &name, &id, started)
        .await
    {
        Ok((i, _)) => i,
        Err(resp) => return resp,
    };
    match gw.shared.model(&name) {
        Some(m) => respond::json(
            StatusCode::OK,
            serde_json::to_vec(&json!({"name": m.name, "ready": true})).unwrap_or_default(),
            &id,
        ),
        None => {
            let r = Rejection::new(Reason::ModelNotFound, GuardId::ROUTE);
            gw.shared
                .refuse(r, &id, identity.id(), None, started, &[])
                .await
        }
    }
}

async fn infer_v2(
    State(gw): State<Gateway>,
    Extension(peer): Extension<Peer>,
    SafePath(name): SafePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    gw.shared
        .predict(&name, None, Protocol::V2, &peer, headers, body)
        .await
}

async fn infer_v2_version(
    State(gw): State<Gateway>,
    Extension(peer): Extension<Peer>,
    SafePath((name, version)): SafePath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    gw.shared
        .predict(&name, Some(&version), Protocol::V2, &peer, headers, body)
        .await
}

async fn predict_v1(
    State(gw): State<Gateway>,
    Extension(peer): Extension<Peer>,
    SafePath(name): SafePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    gw.shared
        .predict(&name, None, Protocol::V1, &peer, headers, body)
        .await
}

/// `POST /v1/models/{name}/feedback` body: the label of an answered request (one per row for a batch).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    request_id: String,
    label: LabelField,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum LabelField {
    One(String),
    Many(Vec<String>),
}

/// Longest request id or label taken: ids are UUIDs and labels are class names; anything longer is not one.
const MAX_FEEDBACK_FIELD: usize = 256;

/// Labels arriving after the fact: behind the same gate as predict (authentication, the blocklist, RBAC on
/// the model), for a request id this gateway answered recently for this model. Updates the rolling accuracy
/// and is recorded in the audit log as an `action` event before it is acknowledged.
async fn feedback_v1(
    State(gw): State<Gateway>,
    Extension(peer): Extension<Peer>,
    SafePath(name): SafePath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = new_request_id();
    let started = Instant::now();
    let has_body = respond::has_body(&headers);
    let shared = &gw.shared;
    let (identity, _) = match shared
        .admit_model(&headers, &peer, &name, &id, started)
        .await
    {
        Ok(g) => g,
        Err(resp) => return respond::close_if(resp, has_body),
    };
    let Some(model) = shared.model(&name) else {
        let r = Rejection::new(Reason::ModelNotFound, GuardId::ROUTE);
        let resp = shared
            .refuse(r, &id, identity.id(), None, started, &[])
            .await;
        return respond::close_if(resp, has_body);
    };
    let refuse = |r: Rejection| {
        let shared = gw.shared.clone();
        let (id, who, model) = (id.clone(), identity.id().to_owned(), model.clone());
        async move {
            shared
                .refuse(r, &id, &who, Some(&model), started, &[])
                .await
        }
    };
    let bytes = match shared.read_body(&headers, body).await {
        Ok(b) => b,
        Err(r) => return respond::close_if(refuse(r).await, true),
    };
    let fb: FeedbackBody = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(_) => {
            let r = Rejection::new(Reason::InvalidJson, GuardId::ROUTE).with_detail(
                "expected {\"request_id\": \"...\", \"label\": \"...\"} (label: a string, or one per row)",
            );
            return refuse(r).await;
        }
    };
    let labels = match fb.label {
        LabelField::One(l) => vec![l],
        LabelField::Many(v) => v,
    };
    if fb.request_id.len() > MAX_FEEDBACK_FIELD
        || labels.iter().any(|l| l.len() > MAX_FEEDBACK_FIELD)
    {
        let r = Rejection::new(Reason::InvalidJson, GuardId::ROUTE)
            .with_detail("request_id and labels are at most 256 bytes");
        return refuse(r).await;
    }
    let result = match shared.monitor.feedback(&name, &fb.request_id, &labels) {
        Ok(r) => r,
        Err(crate::monitor::FeedbackError::UnknownRequest) => {
            return refuse(Rejection::new(Reason::UnknownRequest, GuardId::ROUTE)).await;
        }
        Err(crate::monitor::FeedbackError::RowCount { expected }) => {
            let r = Rejection::new(Reason::ShapeMismatch, GuardId::ROUTE).with_detail(format!(
                "the request had {expected} row(s): give one label per row"
            ));
            return refuse(r).await;
        }
    };
    if let Err(e) = shared
        .monitor
        .audit_feedback(identity.id(), &name, &fb.request_id, &labels, &result)
        .await
    {
        tracing::error!("feedback not recorded in the audit log: {e}");
        let r = Rejection::new(Reason::AuditUnavailable, GuardId::AUDIT);
        return respond::rejection(&r, &id);
    }
    respond::json(
        StatusCode::OK,
        serde_json::to_vec(&json!({
            "request_id": fb.request_id,
            "accepted": true,
            "rows": result.rows,
        }))
        .unwrap_or_default(),
        &id,
    )
}
