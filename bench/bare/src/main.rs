//! `rampart-bench-bare MODEL.onnx ADDR`: the naive bare server the load benchmark measures Rampart against —
//! axum, a `serde_json::Value` body, the same tract model through `rampart-model`, the same response shape,
//! and none of Rampart's layers. It is the limit the full-defense gateway is compared with.
#![forbid(unsafe_code)]

use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use rampart_model::{Backend, TractModel};
use serde_json::{json, Value};

async fn predict(
    State(model): State<Arc<TractModel>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Some(features) = body.get("features").and_then(Value::as_array) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "features"})));
    };
    let row: Vec<f32> = features
        .iter()
        .filter_map(Value::as_f64)
        .map(|v| v as f32)
        .collect();
    match model.predict(&row, 1) {
        Ok(out) => {
            let (best, p) = out
                .values
                .iter()
                .copied()
                .enumerate()
                .fold((0, f32::MIN), |a, (i, v)| if v > a.1 { (i, v) } else { a });
            let confidence = (f64::from(p) * 100.0).round() / 100.0;
            (
                StatusCode::OK,
                Json(json!({"prediction": best.to_string(), "confidence": confidence})),
            )
        }
        Err(_) => (StatusCode::BAD_REQUEST, Json(json!({"error": "input"}))),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model_path = args
        .next()
        .context("usage: rampart-bench-bare MODEL.onnx ADDR")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8500".to_owned());
    let model = Arc::new(TractModel::load(std::path::Path::new(&model_path))?);
    let app = Router::new()
        .route("/v1/models/bench/predict", post(predict))
        .with_state(model);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare server on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
