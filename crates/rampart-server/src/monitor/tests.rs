//! Unit tests: the channel never blocks and counts what it drops, the feedback map is bounded, and the
//! monitoring config is validated with a path for every error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;

fn obs(i: usize) -> Observation {
    Observation {
        model: Arc::from("m"),
        identity: Arc::from("id"),
        request_id: i.to_string(),
        width: 0,
        features: Vec::new(),
        predictions: Vec::new(),
        rejected: false,
        latency: Duration::from_millis(1),
    }
}

#[test]
fn a_full_channel_drops_and_counts_without_waiting() {
    let (tx, mut rx) = mpsc::channel(4);
    let tx = ObservationTx {
        tx,
        dropped: Default::default(),
    };
    let sent = (0..10)
        .filter(|i| tx.send(Event::Observed(obs(*i))))
        .count();
    assert_eq!(sent, 4);
    assert_eq!(tx.dropped.get(), 6);
    // What was queued is the first four, in order.
    let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|e| match e {
            Event::Observed(o) => Some(o.request_id),
            Event::Remote { .. } => None,
        })
        .collect();
    assert_eq!(got, ["0", "1", "2", "3"]);
    // Room again: accepted again.
    assert!(tx.send(Event::Observed(obs(10))));
    drop(rx);
    // A stopped monitor is a full channel too: dropped and counted, never an error for the request.
    assert!(!tx.send(Event::Observed(obs(11))));
    assert_eq!(tx.dropped.get(), 7);
}

fn answered(classes: &[u32]) -> Answered {
    Answered {
        model: Arc::from("m"),
        classes: classes.into(),
    }
}

#[test]
fn the_feedback_map_is_bounded_and_a_label_counts_once() {
    let mut r = Recent::new(3);
    for i in 0..5 {
        r.insert(i, answered(&[0]));
    }
    assert_eq!(r.map.len(), 3);
    assert!(r.take(0).is_none() && r.take(1).is_none());
    assert!(r.take(4).is_some());
    assert!(r.take(4).is_none(), "taken once");
    // Taken ids do not let the order queue grow without bound.
    for i in 5..1000 {
        r.insert(i, answered(&[1]));
        r.take(i);
    }
    assert!(r.order.len() <= 3);
    assert!(Recent::new(0).take(7).is_none());
}

#[test]
fn request_keys_are_the_ids_uuids() {
    let id = crate::gateway::new_request_id();
    let key = request_key(&id);
    assert!(key.is_some());
    assert_eq!(key, request_key(&id.to_uppercase()));
    assert_eq!(request_key("r1"), None);
    assert_eq!(request_key(""), None);
}

fn parse(body: &str) -> RawConfig {
    RawConfig::parse(body, Path::new(".")).expect("parses")
}

const MODEL: &str = "[[models]]\nname = \"m\"\npath = \"m.onnx\"\nbaseline = \"b.json\"\n";

#[test]
fn defaults_are_valid_and_documented_values() {
    let cfg = parse(MODEL);
    assert!(config::validate(&cfg).is_empty());
    let g = &cfg.monitoring;
    assert!(g.enabled);
    assert_eq!(g.channel_capacity, 8192);
    assert_eq!(g.remember_requests, 100_000);
    let m = &cfg.models[0].monitor;
    assert_eq!(m.window, 500);
    assert!((m.alpha - 0.01).abs() < 1e-12);
    assert_eq!(m.mmd_permutations, 200);
    assert!((m.accuracy_floor - 0.8).abs() < 1e-12);
    assert_eq!(m.accuracy_window, 200);
    assert!((m.prada_delta - 0.95).abs() < 1e-12);
    assert_eq!(m.prada_min_queries, 100);
    assert_eq!(m.prada_test_every, 10);
}

#[test]
fn every_bad_value_is_reported_with_its_path() {
    let cfg = parse(&format!(
        "[monitoring]\nchannel_capacity = 0\nmax_identities = 0\n\n{MODEL}\
         monitor = {{ window = 1, alpha = 1.5, psi_threshold = -1.0, categorical = [1, 1], \
         accuracy_floor = 2.0, accuracy_window = 0, prada_delta = 0.0, prada_min_queries = 2, \
         prada_test_every = 0, latency_lambda = 0.0, rejection_delta = -1.0 }}\n"
    ));
    let paths: Vec<String> = config::validate(&cfg).into_iter().map(|e| e.path).collect();
    for p in [
        "monitoring.channel_capacity",
        "monitoring.max_identities",
        "models[0].monitor.window",
        "models[0].monitor.alpha",
        "models[0].monitor.psi_threshold",
        "models[0].monitor.categorical",
        "models[0].monitor.accuracy_floor",
        "models[0].monitor.accuracy_window",
        "models[0].monitor.prada_delta",
        "models[0].monitor.prada_min_queries",
        "models[0].monitor.prada_test_every",
        "models[0].monitor.latency_lambda",
        "models[0].monitor.rejection_delta",
    ] {
        assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
    }
    // And the gateway-wide validation includes them.
    assert!(cfg
        .validate()
        .iter()
        .any(|e| e.path == "models[0].monitor.window"));
}

#[test]
fn an_unknown_monitor_key_is_refused_with_its_path() {
    let err = RawConfig::parse(
        &format!("{MODEL}monitor = {{ windw = 5 }}\n"),
        Path::new("."),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("monitor"), "{err}");
}
