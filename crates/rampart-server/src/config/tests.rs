#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::{LoadError, RawConfig};

const MINIMAL: &str = r#"
[server]
insecure_plaintext = true
require_signatures = false

[auth]
anonymous = true

[[models]]
name = "m"
path = "m.onnx"
baseline = "m.baseline.json"
"#;

#[test]
fn minimal_config_is_valid_with_safe_defaults() {
    let cfg = RawConfig::parse(MINIMAL, Path::new("/etc/rampart")).unwrap();
    assert!(cfg.validate().is_empty());
    let m = &cfg.models[0];
    assert_eq!(m.rate_limit.per_minute, 60);
    assert_eq!(m.confidence.min, 0.5);
    assert_eq!(m.output.decimals, 2);
    assert!(cfg.audit.enabled);
    assert_eq!(
        m.path.as_deref().map(|p| cfg.resolve(p)).as_deref(),
        Some(Path::new("/etc/rampart/m.onnx"))
    );
    assert_eq!(m.version(), "1");
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:8080");
}

#[test]
fn unknown_field_is_refused_with_its_path() {
    let text = MINIMAL.replace("baseline = ", "anomaly = { zscor = 3.0 }\nbaseline = ");
    match RawConfig::parse(&text, Path::new(".")) {
        Err(LoadError::Parse { path, message }) => {
            // serde_path_to_error names the table or, depending on the toml version, the field itself.
            assert!(path.starts_with("models[0].anomaly"), "{path}");
            assert!(message.contains("zscor"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn bad_threshold_is_refused() {
    let text = MINIMAL.replace(
        "baseline = ",
        "anomaly = { mahalanobis = \"chi2:2\" }\nbaseline = ",
    );
    assert!(matches!(
        RawConfig::parse(&text, Path::new(".")),
        Err(LoadError::Parse { .. })
    ));
}

#[test]
fn every_error_is_reported_at_once() {
    let text = r#"
[server]
listen = "127.0.0.1:9000"
admin_listen = "127.0.0.1:9000"

[[models]]
name = "Bad Name"
path = "a.onnx"
confidence = { min = 1.5 }
rate_limit = { per_minute = 0 }
output = { top_k = 0 }

[[models]]
name = "Bad Name"
path = "b.onnx"
validate = { ranges = "none" }
anomaly = { mode = "off" }
"#;
    let cfg = RawConfig::parse(text, Path::new(".")).unwrap();
    let paths: Vec<String> = cfg.validate().into_iter().map(|e| e.path).collect();
    for expected in [
        "server.admin_listen",
        "auth",
        "models[0].name",
        "models[0].confidence.min",
        "models[0].rate_limit.per_minute",
        "models[0].output.top_k",
        "models[0].baseline",
        "models[1].name",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(!paths.iter().any(|p| p == "models[1].baseline"));
}

#[test]
fn no_authentication_by_omission() {
    let text = MINIMAL.replace("anonymous = true", "");
    let cfg = RawConfig::parse(&text, Path::new(".")).unwrap();
    assert!(cfg.validate().iter().any(|e| e.path == "auth"));
}

fn paths(text: &str) -> Vec<String> {
    let cfg = RawConfig::parse(text, Path::new(".")).unwrap();
    cfg.validate().into_iter().map(|e| e.path).collect()
}

#[test]
fn tls_or_explicit_plaintext_is_required() {
    let none = MINIMAL.replace("insecure_plaintext = true", "");
    assert!(paths(&none).iter().any(|p| p == "server.tls"));
    let both = MINIMAL.replace(
        "insecure_plaintext = true",
        "insecure_plaintext = true\ntls = { cert_file = \"c.pem\", key_file = \"k.pem\" }",
    );
    assert!(paths(&both)
        .iter()
        .any(|p| p == "server.insecure_plaintext"));
    let tls = MINIMAL.replace(
        "insecure_plaintext = true",
        "tls = { cert_file = \"c.pem\", key_file = \"env:TLS_KEY\" }",
    );
    assert!(paths(&tls).is_empty(), "{:?}", paths(&tls));
}

#[test]
fn inline_secrets_are_refused() {
    let text = MINIMAL.replace(
        "insecure_plaintext = true",
        "tls = { cert_file = \"c.pem\", key_file = \"-----BEGIN PRIVATE KEY-----\\nMC4CAQ\" }",
    );
    assert!(paths(&text).iter().any(|p| p == "server.tls.key_file"));
}

#[test]
fn jwt_algorithms_and_permissions_are_checked() {
    let text = MINIMAL.replace(
        "anonymous = true",
        "jwt = { jwks_file = \"j.json\", issuer = \"i\", audience = \"a\", algorithms = [\"HS256\"] }",
    ) + "\n[roles]\nops = [\"admin:root\"]\n";
    let p = paths(&text);
    assert!(p.iter().any(|p| p == "auth.jwt.algorithms"), "{p:?}");
    assert!(p.iter().any(|p| p == "roles.ops"), "{p:?}");
}

/// See: issue 6. Signatures are required by default, and a plain path then names the fix.
#[test]
fn plain_path_is_refused_when_signatures_are_required() {
    let text = MINIMAL.replace("require_signatures = false\n", "");
    let cfg = RawConfig::parse(&text, Path::new(".")).unwrap();
    assert!(cfg.server.require_signatures);
    let errors = cfg.validate();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "models[0].path");
    assert!(errors[0].message.contains("registry"), "{}", errors[0]);
}

#[test]
fn registry_entry_needs_a_public_key_and_not_also_a_path() {
    let text = r#"
[server]
insecure_plaintext = true

[auth]
anonymous = true

[[models]]
name = "m"
registry = "models"

[[models]]
name = "n"
registry = "models"
path = "n.onnx"
version = "2"
baseline = "n.baseline.json"
"#;
    let cfg = RawConfig::parse(text, Path::new(".")).unwrap();
    let paths: Vec<String> = cfg.validate().into_iter().map(|e| e.path).collect();
    for expected in ["server.model_public_key_file", "models[1].registry"] {
        assert!(paths.iter().any(|p| p == expected), "{expected}: {paths:?}");
    }
    let ok = text.replace("[auth]", "model_public_key_file = \"k.pub\"\n\n[auth]");
    let ok = &ok[..ok.find("[[models]]\nname = \"n\"").unwrap()];
    let cfg = RawConfig::parse(ok, Path::new(".")).unwrap();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
}

// See: issue 11.
#[test]
fn upstream_entry_is_a_third_exclusive_source() {
    let upstream = MINIMAL.replace(
        "path = \"m.onnx\"",
        "upstream = { url = \"http://triton:8000\", model = \"fraud\", version = \"3\", timeout_ms = 200 }",
    );
    let cfg = RawConfig::parse(&upstream, Path::new(".")).unwrap();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    // The upstream's version is what the entry reports unless it sets its own.
    assert_eq!(cfg.models[0].version(), "3");
    let both = MINIMAL.replace(
        "path = \"m.onnx\"",
        "path = \"m.onnx\"\nupstream = { url = \"http://triton:8000\", model = \"fraud\" }",
    );
    assert!(paths(&both).contains(&"models[0].upstream".to_owned()));
    let typo = MINIMAL.replace(
        "path = \"m.onnx\"",
        "upstream = { url = \"http://t:8000\", model = \"m\", timout_ms = 5 }",
    );
    assert!(RawConfig::parse(&typo, Path::new(".")).is_err());
}

// See: issue 11.
#[test]
fn upstream_settings_are_checked() {
    let with = |table: &str| {
        MINIMAL.replace(
            "path = \"m.onnx\"",
            &format!("upstream = {{ url = \"https://t:8000\", model = \"m\", {table} }}"),
        )
    };
    let p = paths(&with(
        "timeout_ms = 0, retries = 9, api_key_file = \"rk_inline\", client_cert_file = \"c.crt\", \
         breaker = { failures = 0 }",
    ));
    for field in [
        "models[0].upstream.timeout_ms",
        "models[0].upstream.retries",
        "models[0].upstream.api_key_file",
        "models[0].upstream.client_key_file",
        "models[0].upstream.breaker.failures",
    ] {
        assert!(p.contains(&field.to_owned()), "{field} missing from {p:?}");
    }
    let bad_model = MINIMAL.replace(
        "path = \"m.onnx\"",
        "upstream = { url = \"ftp://t\", model = \"../x\" }",
    );
    let p = paths(&bad_model);
    assert!(p.contains(&"models[0].upstream.url".to_owned()), "{p:?}");
    assert!(p.contains(&"models[0].upstream.model".to_owned()), "{p:?}");
}

// See: issue 11.
#[test]
fn signatures_required_means_an_https_upstream() {
    let signed = MINIMAL.replace("require_signatures = false\n", "");
    let http = signed.replace(
        "path = \"m.onnx\"",
        "upstream = { url = \"http://triton:8000\", model = \"m\" }",
    );
    assert!(paths(&http).contains(&"models[0].upstream.url".to_owned()));
    // An upstream holds its own model bytes: require_signatures does not refuse an https:// one.
    let https = http.replace("http://", "https://");
    assert!(paths(&https).is_empty(), "{:?}", paths(&https));
}
