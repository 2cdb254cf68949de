#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use super::{set_entry, ActionKind, Config, Incidents};

fn parse(text: &str) -> Config {
    #[derive(serde::Deserialize)]
    struct Doc {
        incidents: Config,
    }
    toml::from_str::<Doc>(text).unwrap().incidents
}

#[test]
fn rules_parse_with_their_actions() {
    let c = parse(
        r#"
[[incidents.rules]]
on = "model_extraction"
action = "block_identity"
duration_secs = 600

[[incidents.rules]]
on = "rate_limit_storm"
action = "tighten_rate_limit"
duration_secs = 60
factor = 4

[[incidents.rules]]
on = "data_drift"
action = "quarantine_model"
"#,
    );
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    assert_eq!(c.rules[0].action, ActionKind::BlockIdentity);
    assert_eq!(c.rules[1].factor, Some(4));
    assert_eq!(c.rules[2].action, ActionKind::QuarantineModel);
}

#[test]
fn unknown_action_is_a_parse_error() {
    let text = "[[incidents.rules]]\non = \"internal\"\naction = \"ban\"\nduration_secs = 1\n";
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        incidents: Config,
    }
    assert!(toml::from_str::<Doc>(text).is_err());
}

#[test]
fn every_rule_problem_is_reported_with_its_path() {
    let c = parse(
        r#"
[[incidents.rules]]
on = "anomalus_input"
action = "block_identity"

[[incidents.rules]]
on = "incident_action"
action = "quarantine_model"
duration_secs = 5

[[incidents.rules]]
on = "anomalous_input"
action = "tighten_rate_limit"
duration_secs = 0

[[incidents.rules]]
on = "anomalous_input"
action = "label_only_model"
duration_secs = 10
factor = 2
"#,
    );
    let paths: Vec<String> = c.validate().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "incidents.rules[0].on",
            "incidents.rules[0].duration_secs",
            "incidents.rules[1].on",
            "incidents.rules[1].duration_secs",
            "incidents.rules[2].duration_secs",
            "incidents.rules[2].factor",
            "incidents.rules[3].factor",
        ]
    );
}

#[test]
fn label_only_applies_until_it_expires() {
    let inc = Incidents::new(&parse(
        "[[incidents.rules]]\non = \"internal\"\naction = \"label_only_model\"\nduration_secs = 1\n",
    ));
    assert!(!inc.label_only("mallory", "fraud"));
    set_entry(
        &inc.label_only_identities,
        "mallory",
        Some(Instant::now() + Duration::from_millis(50)),
    );
    set_entry(
        &inc.label_only_models,
        "churn",
        Some(Instant::now() + Duration::from_secs(60)),
    );
    assert!(inc.label_only("mallory", "fraud"));
    assert!(inc.label_only("alice", "churn"));
    assert!(!inc.label_only("alice", "fraud"));
    std::thread::sleep(Duration::from_millis(60));
    assert!(
        !inc.label_only("mallory", "fraud"),
        "expired without a sweep"
    );
    set_entry(&inc.label_only_models, "churn", None);
    assert!(!inc.label_only("alice", "churn"));
}
