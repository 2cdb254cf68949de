//! The deployment files stay in step with the code: the config embedded in `deploy/k8s/configmap.yaml`
//! parses and validates, and the Deployment keeps the seed's pod security context. (Their Kubernetes schemas
//! are checked by `.ci/run` with kubernetes-validate.)

use std::path::{Path, PathBuf};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The block scalar under `rampart.toml: |`, de-indented. A YAML parser would be a dependency for one test;
/// the ConfigMap is ours and keeps this one shape.
fn embedded_config(yaml: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "rampart.toml: |");
    lines
        .next()
        .expect("a `rampart.toml: |` key in the ConfigMap");
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .collect();
    body.iter()
        .map(|l| l.get(4..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_configmap_config_parses_and_validates() {
    let yaml = std::fs::read_to_string(deploy_dir().join("k8s/configmap.yaml")).unwrap();
    let text = embedded_config(&yaml);
    assert!(text.contains("[server]"), "{text}");
    let cfg = rampart_server::config::RawConfig::parse(&text, Path::new("/etc/rampart"))
        .unwrap_or_else(|e| panic!("deploy config does not parse: {e}"));
    let errors = cfg.validate();
    assert!(
        errors.is_empty(),
        "deploy config does not validate: {errors:?}"
    );
    assert_eq!(cfg.server.data_dir, Path::new("/var/lib/rampart"));
}

#[test]
fn the_deployment_keeps_the_seed_security_context() {
    let yaml = std::fs::read_to_string(deploy_dir().join("k8s/deployment.yaml")).unwrap();
    for needle in [
        "runAsNonRoot: true",
        "runAsUser: 1000",
        "fsGroup: 2000",
        "type: RuntimeDefault",
        "allowPrivilegeEscalation: false",
        "readOnlyRootFilesystem: true",
        "drop: [\"ALL\"]",
        "sizeLimit:",
        "readOnly: true",
    ] {
        assert!(yaml.contains(needle), "deployment.yaml lost `{needle}`");
    }
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 1000:1000"));
    assert!(dockerfile.contains("HEALTHCHECK"));
}
