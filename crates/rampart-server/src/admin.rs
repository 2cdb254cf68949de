//! The admin listener's routes — never mounted on the inference listener. Each one authenticates like an
//! inference request (API key, JWT or client certificate), refuses blocked identities, and requires its
//! `admin:<area>` permission; refusals are audited like any other. `/metrics` is the exception on a loopback
//! admin listener: a scraper on the same host needs no credential there, and the series hold no identity.
//!
//! - `GET  /metrics`                              `admin:metrics` (none on loopback)
//! - `GET  /admin/models`                         `admin:models`
//! - `GET  /admin/models/{name}/history`          `admin:models` (the registry's activations and rollbacks)
//! - `POST /admin/models/{name}/versions/{v}/activate`  `admin:deploy`, body optional `{"why": "..."}`
//! - `POST /admin/models/{name}/rollback`         `admin:deploy`, body optional `{"why": "..."}`
//! - `GET  /admin/review[?status=pending]`        `admin:review`
//! - `POST /admin/review/{review_id}/resolve`     `admin:review`, body `{"label": "...", "note": "..."}`
//! - `POST /admin/review/expire[?older_than_secs=N]`  `admin:review`
//! - `GET  /admin/incidents`                      `admin:incidents` (incident actions in force)
//! - `DELETE /admin/incidents/{id}`               `admin:incidents` (lift one, audited)
//! - `GET  /admin/identities/blocked`             `admin:identities`
//! - `POST /admin/identities/{id}/block|unblock`  `admin:identities`
//! - `POST /admin/audit/verify`                   `admin:audit`

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::Request;
use axum::extract::{Query, State};

use crate::routes::SafePath;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::{Extension, Router};
use http::StatusCode;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use rampart_core::{GuardId, Identity, Reason, Rejection};

use crate::auth::Peer;
use crate::gateway::{kind_name, new_request_id, Gateway};
use crate::rbac::AdminArea;
use crate::respond;
use crate::review::{Resolution, Resolved};
use crate::swap::{Change, SwapError};
use rampart_registry::Note;

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 16 * 1024;

/// The admin router.
pub(crate) fn router(gw: Gateway) -> Router {
    // Each route names the one area its caller must be granted; the gate runs before the handler.
    let gated = |area: AdminArea, route: MethodRouter<Gateway>| {
        let gw = gw.clone();
        route.route_layer(axum::middleware::from_fn(move |req, next| {
            gate(gw.clone(), area, req, next)
        }))
    };
    Router::new()
        .route("/metrics", gated(AdminArea::Metrics, get(metrics)))
        .route(
            "/v2/health/live",
            get(|| async { ok(json!({"live": true})) }),
        )
        .route("/admin/models", gated(AdminArea::Models, get(models)))
        .route(
            "/admin/models/{name}/history",
            gated(AdminArea::Models, get(model_history)),
        )
        .route(
            "/admin/models/{name}/versions/{version}/activate",
            gated(AdminArea::Deploy, post(model_activate)),
        )
        .route(
            "/admin/models/{name}/rollback",
            gated(AdminArea::Deploy, post(model_rollback)),
        )
        .route("/admin/review", gated(AdminArea::Review, get(review_list)))
        .route(
            "/admin/review/{review_id}/resolve",
            gated(AdminArea::Review, post(review_resolve)),
        )
        .route(
            "/admin/review/expire",
            gated(AdminArea::Review, post(review_expire)),
        )
        .route(
            "/admin/incidents",
            gated(AdminArea::Incidents, get(incidents_list)),
        )
        .route(
            "/admin/incidents/{id}",
            gated(AdminArea::Incidents, delete(incident_lift)),
        )
        .route(
            "/admin/identities/blocked",
            gated(AdminArea::Identities, get(blocked_list)),
        )
        .route(
            "/admin/identities/{id}/{action}",
            gated(AdminArea::Identities, post(set_blocked)),
        )
        .route(
            "/admin/audit/verify",
            gated(AdminArea::Audit, post(audit_verify)),
        )
        .fallback(|| async { not_found("no such route") })
        .with_state(gw)
}

/// The identity an admin request was admitted as, for handlers that record who acted.
#[derive(Clone)]
struct Admin(Identity);

/// Authenticates, checks the blocklist and the area's permission; refusals are audited and rendered.
async fn gate(gw: Gateway, area: AdminArea, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<Peer>().cloned().unwrap_or_default();
    match gw.shared.admit_admin(req.headers(), &peer, area).await {
        Ok(identity) => {
            req.extensions_mut().insert(Admin(identity));
            next.run(req).await
        }
        Err(resp) => resp,
    }
}

fn ok(value: serde_json::Value) -> Response {
    respond::json(
        StatusCode::OK,
        serde_json::to_vec(&value).unwrap_or_default(),
        &new_request_id(),
    )
}

/// A failure of the gateway's own files: logged with its cause, answered as 500 `internal` (no detail).
fn internal(gw: &Gateway, what: &str, e: &dyn std::fmt::Display) -> Response {
    gw.shared.raise_internal(format!("admin {what}: {e}"));
    respond::rejection(
        &Rejection::new(Reason::Internal, GuardId::ROUTE),
        &new_request_id(),
    )
}

async fn metrics(State(gw): State<Gateway>) -> Response {
    let mut resp = gw.shared.metrics_text().into_response();
    if let Ok(v) = "application/openmetrics-text; version=1.0.0; charset=utf-8".parse() {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

async fn models(State(gw): State<Gateway>) -> Response {
    let mut list: Vec<_> = gw
        .shared
        .slots()
        .map(|slot| {
            let m = slot.current();
            json!({
                "name": m.name,
                "version": m.version,
                "kind": kind_name(&m.info.kind),
                "width": m.info.width,
                "registry": slot.registry().is_some(),
            })
        })
        .collect();
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    ok(json!({ "models": list }))
}

/// The optional body of activate and rollback.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WhyBody {
    #[serde(default)]
    why: Option<String>,
}

/// Reads a small optional JSON body; `Err` is the 400 to answer.
async fn small_json<T: serde::de::DeserializeOwned + Default>(body: Body) -> Result<T, Response> {
    let bad = |detail: &'static str| {
        respond::rejection(
            &Rejection::new(Reason::InvalidJson, GuardId::ROUTE).with_detail(detail),
            &new_request_id(),
        )
    };
    let Ok(bytes) = http_body_util::Limited::new(body, MAX_ADMIN_BODY)
        .collect()
        .await
    else {
        return Err(bad("the body could not be read or is too large"));
    };
    let bytes = bytes.to_bytes();
    if bytes.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|_| bad("the body is not the JSON this route expects"))
}

fn refused(r: &Rejection) -> Response {
    respond::rejection(r, &new_request_id())
}

async fn model_history(State(gw): State<Gateway>, SafePath(name): SafePath<String>) -> Response {
    let Some(slot) = gw.shared.slot(&name) else {
        return refused(&Rejection::new(Reason::ModelNotFound, GuardId::ROUTE));
    };
    let Some((registry, model)) = slot.registry() else {
        return refused(&SwapError::NotRegistry.rejection());
    };
    let (registry, model) = (registry.clone(), model.clone());
    let serving = slot.current().version.clone();
    match blocking(&gw, "model history", move || registry.history(&model)).await {
        Ok(entries) => ok(json!({"name": name, "serving": serving, "history": entries})),
        Err(resp) => resp,
    }
}

/// `POST /admin/models/{name}/versions/{version}/activate`.
async fn model_activate(
    State(gw): State<Gateway>,
    SafePath((name, version)): SafePath<(String, String)>,
    Extension(Admin(who)): Extension<Admin>,
    body: Body,
) -> Response {
    let Ok(version) = rampart_registry::Version::new(&version) else {
        return refused(
            &Rejection::new(Reason::NotFound, GuardId::ROUTE).with_detail("no such version"),
        );
    };
    change_model(gw, name, Change::Activate(version), who, body).await
}

/// `POST /admin/models/{name}/rollback`.
async fn model_rollback(
    State(gw): State<Gateway>,
    SafePath(name): SafePath<String>,
    Extension(Admin(who)): Extension<Admin>,
    body: Body,
) -> Response {
    change_model(gw, name, Change::Rollback, who, body).await
}

async fn change_model(
    gw: Gateway,
    name: String,
    change: Change,
    who: Identity,
    body: Body,
) -> Response {
    let why: WhyBody = match small_json(body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Some(slot) = gw.shared.slot(&name).cloned() else {
        return refused(&Rejection::new(Reason::ModelNotFound, GuardId::ROUTE));
    };
    let note = Note::now(who.id(), why.why.unwrap_or_default());
    match slot.change(change.clone(), note).await {
        Ok(changed) => {
            gw.shared
                .record_model_change(&name, &change, &changed, who.id())
                .await;
            ok(json!({
                "name": name,
                "action": change.name(),
                "from": changed.from,
                "to": changed.to,
                "history": changed.entry,
            }))
        }
        Err(e) => {
            tracing::warn!(model = %name, by = %who.id(), action = change.name(), "model change refused: {e}");
            if matches!(e, SwapError::Refused(_) | SwapError::Failed(_)) {
                gw.shared
                    .raise_model_alert(&name, "model_version_refused", e.to_string());
            }
            refused(&e.rejection())
        }
    }
}

async fn review_list(
    State(gw): State<Gateway>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pending_only = q.get("status").is_some_and(|s| s == "pending");
    let queue = gw.shared.review.clone();
    match blocking(&gw, "review list", move || queue.list(pending_only)).await {
        Ok(items) => ok(json!({ "items": items })),
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

async fn review_resolve(
    State(gw): State<Gateway>,
    SafePath(review_id): SafePath<String>,
    Extension(Admin(who)): Extension<Admin>,
    body: Body,
) -> Response {
    let bad = |detail: &'static str| {
        respond::rejection(
            &Rejection::new(Reason::InvalidJson, GuardId::ROUTE).with_detail(detail),
            &new_request_id(),
        )
    };
    let Ok(bytes) = http_body_util::Limited::new(body, MAX_ADMIN_BODY)
        .collect()
        .await
    else {
        return bad("the body could not be read or is too large");
    };
    let bytes = bytes.to_bytes();
    let parsed: ResolveBody = if bytes.is_empty() {
        ResolveBody {
            label: None,
            note: None,
        }
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(_) => return bad("expected {\"label\": string, \"note\": string}"),
        }
    };
    let resolution = Resolution {
        review_id: review_id.clone(),
        time: OffsetDateTime::now_utc(),
        by: who.id().to_owned(),
        label: parsed.label.clone(),
        note: parsed.note,
        expired: false,
    };
    let queue = gw.shared.review.clone();
    match blocking(&gw, "review resolve", move || queue.resolve(resolution)).await {
        Ok(Resolved::Now(item)) => {
            tracing::info!(review_id = %review_id, by = %who.id(), "review item resolved");
            // The label is feedback on the model's answer (accuracy monitoring reads it from the audit):
            // recorded with what it is feedback on.
            let fields = json!({
                "action": "review_resolve",
                "review_id": review_id,
                "request_id": item["request_id"],
                "model": item["model"],
                "model_version": item["model_version"],
                "probabilities": item["probabilities"],
                "label": parsed.label,
                "by": who.id(),
            });
            if let Err(e) = gw.shared.audit_action(&fields).await {
                return internal(&gw, "review resolve", &e);
            }
            ok(json!({"review_id": review_id, "resolved": true}))
        }
        Ok(Resolved::Already) => {
            ok(json!({"review_id": review_id, "resolved": true, "already": true}))
        }
        Ok(Resolved::Unknown) => not_found("no such review item"),
        Err(resp) => resp,
    }
}

/// `POST /admin/review/expire[?older_than_secs=N]`: expires pending items older than N seconds (default
/// `[review] max_age_secs`).
async fn review_expire(
    State(gw): State<Gateway>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let asked = match q.get("older_than_secs").map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return refused(
                &Rejection::new(Reason::InvalidJson, GuardId::ROUTE)
                    .with_detail("older_than_secs must be a whole number of seconds"),
            )
        }
    };
    let age = asked.or(gw.shared.review_max_age.map(|d| d.as_secs()));
    let Some(age) = age else {
        return refused(
            &Rejection::new(Reason::Conflict, GuardId::ROUTE)
                .with_detail("no [review] max_age_secs: give ?older_than_secs=N"),
        );
    };
    let age = std::time::Duration::from_secs(age);
    match gw.shared.expire_review(age).await {
        Ok(ids) => ok(json!({"expired": ids})),
        Err(e) => internal(&gw, "review expire", &e),
    }
}

async fn incidents_list(State(gw): State<Gateway>) -> Response {
    ok(json!({"actions": gw.shared.incidents.list()}))
}

/// `DELETE /admin/incidents/{id}`: lifts an action in force.
async fn incident_lift(
    State(gw): State<Gateway>,
    SafePath(id): SafePath<String>,
    Extension(Admin(who)): Extension<Admin>,
) -> Response {
    match crate::incidents::lift(&gw.shared, &id, who.id()).await {
        Ok(a) => ok(json!({"lifted": a})),
        Err(crate::incidents::LiftError::Unknown) => not_found("no such incident action in force"),
        Err(crate::incidents::LiftError::Io(e)) => internal(&gw, "incident lift", &e),
    }
}

async fn blocked_list(State(gw): State<Gateway>) -> Response {
    ok(json!({ "blocked": gw.shared.blocked.list() }))
}

/// `POST /admin/identities/{id}/block` and `…/unblock`.
async fn set_blocked(
    State(gw): State<Gateway>,
    SafePath((id, action)): SafePath<(String, String)>,
    Extension(Admin(who)): Extension<Admin>,
) -> Response {
    let blocked = match action.as_str() {
        "block" => true,
        "unblock" => false,
        _ => return not_found("no such route"),
    };
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return not_found("not an identity");
    }
    match gw.shared.blocked.set_blocked(&id, blocked) {
        Ok(changed) => {
            tracing::warn!(identity = %id, by = %who.id(), blocked, changed, "identity block changed");
            ok(json!({"identity": id, "blocked": blocked, "changed": changed}))
        }
        Err(e) => internal(&gw, "block list", &e),
    }
}

fn not_found(detail: &'static str) -> Response {
    respond::rejection(
        &Rejection::new(Reason::NotFound, GuardId::ROUTE).with_detail(detail),
        &new_request_id(),
    )
}

/// Runs file work on a blocking thread; a failure is logged and answered as 500 `internal`.
async fn blocking<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    gw: &Gateway,
    what: &str,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal(gw, what, &e)),
        Err(e) => Err(internal(gw, what, &e)),
    }
}

async fn audit_verify(State(gw): State<Gateway>) -> Response {
    let Some(dir) = gw.shared.audit_dir.clone() else {
        return ok(json!({"enabled": false}));
    };
    // Verifying reads the whole log: on a blocking thread, and a finding is a 200 with `ok: false` — the
    // request worked, the log did not verify.
    // With signed checkpoints, their signatures are checked too, with the key the gateway signs with.
    let public = gw.shared.audit_public_key.clone();
    let verified = blocking(&gw, "audit verify", move || {
        let options = rampart_audit::VerifyOptions {
            public_key: public.as_deref(),
            ..rampart_audit::VerifyOptions::default()
        };
        Ok::<_, std::convert::Infallible>(rampart_audit::verify_dir_with(&dir, options))
    });
    match verified.await {
        Ok(Ok(report)) => ok(json!({
            "ok": true,
            "records": report.records,
            "decisions": report.decisions,
            "events": report.events,
            "checkpoints": report.checkpoints,
            "signatures_checked": report.signatures_checked,
            "unsigned_tail": report.unsigned_tail,
            "files": report.files,
            "head_hash": report.head_hash.to_string(),
        })),
        Ok(Err(e)) => ok(json!({"ok": false, "seq": e.seq, "error": e.to_string()})),
        Err(resp) => resp,
    }
}
