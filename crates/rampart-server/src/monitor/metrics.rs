//! The monitors' Prometheus families, registered in the gateway's one registry.
//!
//! Labels are model and feature names from the config and the baseline, fixed at start-up, never anything a
//! client sends (label cardinality is a denial-of-service vector).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ModelLabel {
    pub(crate) model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FeatureLabel {
    pub(crate) model: String,
    pub(crate) feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FeedbackLabel {
    pub(crate) model: String,
    pub(crate) outcome: &'static str,
}

type FGauge = Gauge<f64, AtomicU64>;

/// Every monitoring family.
#[derive(Clone, Debug, Default)]
pub struct MonitorMetrics {
    /// Observations dropped because the monitor's channel was full.
    pub observations_dropped: Counter<u64, AtomicU64>,
    pub(crate) observations: Family<ModelLabel, Counter>,
    pub(crate) drift_windows: Family<ModelLabel, Counter>,
    pub(crate) drift_detected: Family<ModelLabel, Counter>,
    pub(crate) drift_skipped: Family<ModelLabel, Counter>,
    pub(crate) drift_features_drifted: Family<ModelLabel, Gauge>,
    pub(crate) drift_ks_pvalue: Family<FeatureLabel, FGauge>,
    pub(crate) drift_psi: Family<FeatureLabel, FGauge>,
    pub(crate) drift_chi2_pvalue: Family<FeatureLabel, FGauge>,
    pub(crate) drift_mmd_pvalue: Family<ModelLabel, FGauge>,
    pub(crate) drift_class_pvalue: Family<ModelLabel, FGauge>,
    pub(crate) drift_confidence_psi: Family<ModelLabel, FGauge>,
    pub(crate) prediction_drift_detected: Family<ModelLabel, Counter>,
    pub(crate) latency_changes: Family<ModelLabel, Counter>,
    pub(crate) rejection_rate_changes: Family<ModelLabel, Counter>,
    pub(crate) accuracy: Family<ModelLabel, FGauge>,
    pub(crate) accuracy_samples: Family<ModelLabel, Gauge>,
    pub(crate) feedback: Family<FeedbackLabel, Counter>,
    pub(crate) prada_flagged: Family<ModelLabel, Counter>,
    pub(crate) prada_identities: Family<ModelLabel, Gauge>,
    pub(crate) prada_evicted: Family<ModelLabel, Gauge>,
}

impl MonitorMetrics {
    /// Registers the families (names get the registry's `rampart_` prefix; counters get `_total`).
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "observations_dropped",
            "Observations dropped because the monitor's channel was full (the request was not delayed)",
            m.observations_dropped.clone(),
        );
        registry.register(
            "observations",
            "Observations processed by the monitors, by model",
            m.observations.clone(),
        );
        registry.register(
            "drift_windows",
            "Feature-drift windows closed, by model",
            m.drift_windows.clone(),
        );
        registry.register(
            "drift_detected",
            "Feature-drift windows in which drift was detected, by model",
            m.drift_detected.clone(),
        );
        registry.register(
            "drift_windows_skipped",
            "Feature-drift windows skipped because the previous one was still being tested, by model",
            m.drift_skipped.clone(),
        );
        registry.register(
            "drift_features_drifted",
            "Features found drifted in the last closed window, by model",
            m.drift_features_drifted.clone(),
        );
        registry.register(
            "drift_ks_pvalue",
            "Kolmogorov-Smirnov p-value of each continuous feature in the last closed window",
            m.drift_ks_pvalue.clone(),
        );
        registry.register(
            "drift_psi",
            "Population Stability Index of each continuous feature in the last closed window",
            m.drift_psi.clone(),
        );
        registry.register(
            "drift_chi2_pvalue",
            "Chi-square p-value of each categorical feature in the last closed window",
            m.drift_chi2_pvalue.clone(),
        );
        registry.register(
            "drift_mmd_pvalue",
            "Multivariate MMD permutation-test p-value of the last closed window",
            m.drift_mmd_pvalue.clone(),
        );
        registry.register(
            "drift_prediction_class_pvalue",
            "Chi-square p-value of the predicted-class mix of the last prediction window",
            m.drift_class_pvalue.clone(),
        );
        registry.register(
            "drift_prediction_confidence_psi",
            "PSI of the confidence histogram of the last prediction window",
            m.drift_confidence_psi.clone(),
        );
        registry.register(
            "drift_prediction_detected",
            "Prediction windows in which the class mix or the confidence histogram drifted",
            m.prediction_drift_detected.clone(),
        );
        registry.register(
            "latency_changes",
            "Page-Hinkley alarms on request latency, by model",
            m.latency_changes.clone(),
        );
        registry.register(
            "rejection_rate_changes",
            "Page-Hinkley alarms on the rejection rate, by model",
            m.rejection_rate_changes.clone(),
        );
        registry.register(
            "accuracy",
            "Rolling accuracy over the labelled predictions received through feedback",
            m.accuracy.clone(),
        );
        registry.register(
            "accuracy_samples",
            "Labelled predictions in the rolling accuracy window",
            m.accuracy_samples.clone(),
        );
        registry.register(
            "feedback",
            "Labelled predictions received, by model and outcome (correct, wrong)",
            m.feedback.clone(),
        );
        registry.register(
            "prada_flagged",
            "Identities flagged by PRADA as model-extraction suspects, by model",
            m.prada_flagged.clone(),
        );
        registry.register(
            "prada_identities",
            "Identities PRADA tracks now, by model",
            m.prada_identities.clone(),
        );
        registry.register(
            "prada_evicted",
            "Identities PRADA evicted (least recently seen) to stay within max_identities, by model",
            m.prada_evicted.clone(),
        );
        m
    }
}

pub(crate) fn model(name: &str) -> ModelLabel {
    ModelLabel {
        model: name.to_owned(),
    }
}

pub(crate) fn feature(model: &str, feature: &str) -> FeatureLabel {
    FeatureLabel {
        model: model.to_owned(),
        feature: feature.to_owned(),
    }
}
