//! `upstream = { … }` in a `[[models]]` entry: the model server proxy mode forwards to.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::ConfigError;

/// `[[models]] upstream = { url = "https://triton:8000", model = "fraud", … }`: the model is served by an
/// Open Inference Protocol v2 server (Triton, KServe, MLServer, another Rampart) and every layer of the
/// pipeline runs here, in front of it. Give exactly one of `path`, `registry` or `upstream`.
///
/// ```toml
/// upstream = { url = "https://triton:8000", model = "fraud", version = "3", timeout_ms = 200,
///              ca_file = "upstream-ca.crt", client_cert_file = "proxy.crt", client_key_file = "proxy.key",
///              api_key_file = "upstream.key" }
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The server's base URL, `http://` or `https://`, with an optional path prefix (`https://h:8000/kserve`).
    /// Requests go to `{url}/v2/models/{model}[/versions/{version}]/infer`.
    pub url: String,
    /// The model's name on the upstream (it need not match this entry's `name`).
    pub model: String,
    /// The upstream version to call. Default: none, the upstream's default version. Also the version this
    /// entry reports when the entry sets none.
    #[serde(default)]
    pub version: Option<String>,
    /// Time one call may take, connecting, retries and reading the answer included; past it the request is
    /// answered 504 `upstream_timeout`. Default 1000 ms. Between 1 and 300 000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// PEM CA certificates the upstream's certificate must chain to (a private CA: only these are trusted).
    /// Default: Mozilla's roots compiled in. `https://` only.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate presented to the upstream (mTLS). Give `client_key_file` with it. `https://` only.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// The client certificate's private key: a file readable only by its owner, or `env:NAME`.
    #[serde(default)]
    pub client_key_file: Option<String>,
    /// A credential for the upstream: a file readable only by its owner, or `env:NAME` — never inline. Sent as
    /// `Authorization: Bearer <key>` (or in `api_key_header`). Never logged. Default: none.
    #[serde(default)]
    pub api_key_file: Option<String>,
    /// Send the key raw in this header instead of `Authorization: Bearer` (e.g. `x-api-key`).
    #[serde(default)]
    pub api_key_header: Option<String>,
    /// The output tensor read from the answer. Default `probabilities`: class probabilities, `[rows, classes]`,
    /// for a classifier (what scikit-learn ONNX exports on Triton and Rampart's own `output:full` answers
    /// carry); a regressor's values, `[rows, outputs]` or `[rows]`.
    #[serde(default = "default_output")]
    pub output: String,
    /// `classifier` (default) or `regressor`: how `output` is read.
    #[serde(default)]
    pub kind: UpstreamKind,
    /// Calls in flight at once; one more is refused at once with 503 `overloaded` (and `Retry-After`), not
    /// queued: a queue in front of a saturated server only adds latency to every request behind it. Default 64.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Extra connection attempts after a connect error (nothing was sent, so a retry cannot run the model
    /// twice). Other failures are never retried. Default 1, at most 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Largest answer body read; a larger one is 502 `upstream_error`. Default 1 MiB.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
    /// `breaker = { failures = 5, cool_down_ms = 5000 }`: the circuit breaker.
    #[serde(default)]
    pub breaker: BreakerConfig,
}

/// How the upstream's answer is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// Class probabilities.
    #[default]
    Classifier,
    /// Real values.
    Regressor,
}

/// The circuit breaker of one upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failed calls (connect errors, timeouts, 5xx, malformed answers) that open the breaker.
    /// Default 5.
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// How long the breaker stays open (every call refused with 503 `model_unavailable`) before one call is
    /// let through as a probe. Default 5000 ms.
    #[serde(default = "default_cool_down_ms")]
    pub cool_down_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: default_failures(),
            cool_down_ms: default_cool_down_ms(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    1000
}
fn default_output() -> String {
    "probabilities".to_owned()
}
fn default_max_in_flight() -> usize {
    64
}
fn default_retries() -> u32 {
    1
}
fn default_max_response() -> usize {
    1 << 20
}
fn default_failures() -> u32 {
    5
}
fn default_cool_down_ms() -> u64 {
    5000
}

/// A secret source shown in `Debug`: a pasted secret is redacted.
fn shown(source: &Option<String>) -> Option<&str> {
    source.as_deref().map(|s| {
        if crate::secret::looks_inline(s) {
            "<inline secret, redacted>"
        } else {
            s
        }
    })
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("version", &self.version)
            .field("timeout_ms", &self.timeout_ms)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &shown(&self.client_key_file))
            .field("api_key_file", &shown(&self.api_key_file))
            .field("api_key_header", &self.api_key_header)
            .field("output", &self.output)
            .field("kind", &self.kind)
            .field("max_in_flight", &self.max_in_flight)
            .field("retries", &self.retries)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("breaker", &self.breaker)
            .finish()
    }
}

/// A name that goes into a URL path as is: no escaping needed, nothing to traverse.
fn path_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl UpstreamConfig {
    /// Whether the URL is `https://`.
    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }

    /// Every problem, each with its path under `path` (e.g. `models[0].upstream`). Reads no file.
    pub fn validate(&self, path: &str, errors: &mut Vec<ConfigError>) {
        let mut err = |field: &str, message: &str| {
            errors.push(ConfigError {
                path: format!("{path}.{field}"),
                message: message.to_owned(),
            })
        };
        match self.url.parse::<http::Uri>() {
            Ok(uri) => {
                if !matches!(uri.scheme_str(), Some("http" | "https")) {
                    err("url", "must start with http:// or https://");
                }
                match uri.authority() {
                    None => err("url", "names no host"),
                    Some(a) if a.as_str().contains('@') => err(
                        "url",
                        "credentials before the host (user:password@) are refused: use api_key_file",
                    ),
                    Some(a) if a.host().is_empty() => err("url", "names no host"),
                    Some(_) => {}
                }
                if uri.query().is_some() {
                    err("url", "must not carry a query");
                }
            }
            Err(_) => err("url", "is not a valid URL"),
        }
        if !path_safe(&self.model) {
            err(
                "model",
                "must be 1-128 characters of A-Z, a-z, 0-9, _, - and .",
            );
        }
        if let Some(v) = &self.version {
            if !path_safe(v) {
                err(
                    "version",
                    "must be 1-128 characters of A-Z, a-z, 0-9, _, - and .",
                );
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > 300_000 {
            err("timeout_ms", "must be between 1 and 300000");
        }
        let https = self.is_https();
        if self.ca_file.is_some() && !https {
            err("ca_file", "is only used with an https:// url");
        }
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(_), None) => err("client_key_file", "give it with client_cert_file"),
            (None, Some(_)) => err("client_cert_file", "give it with client_key_file"),
            (Some(_), Some(_)) if !https => {
                err(
                    "client_cert_file",
                    "client certificates need an https:// url",
                );
            }
            _ => {}
        }
        for (field, source) in [
            ("client_key_file", &self.client_key_file),
            ("api_key_file", &self.api_key_file),
        ] {
            if let Some(s) = source {
                if crate::secret::looks_inline(s) {
                    err(
                        field,
                        "an inline secret is refused: give a file path or env:NAME",
                    );
                } else if s == "env:" {
                    err(field, "env: needs a variable name");
                }
            }
        }
        if let Some(h) = &self.api_key_header {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                err("api_key_header", "is not a valid header name");
            }
            if self.api_key_file.is_none() {
                err("api_key_header", "is only used with api_key_file");
            }
        }
        if self.output.is_empty() || self.output.len() > 128 {
            err("output", "must be 1-128 characters");
        }
        if self.max_in_flight == 0 || self.max_in_flight > 100_000 {
            err("max_in_flight", "must be between 1 and 100000");
        }
        if self.retries > 3 {
            err("retries", "must be at most 3");
        }
        if self.max_response_bytes < 1024 || self.max_response_bytes > 64 << 20 {
            err("max_response_bytes", "must be between 1024 and 67108864");
        }
        if self.breaker.failures == 0 || self.breaker.failures > 1000 {
            err("breaker.failures", "must be between 1 and 1000");
        }
        if self.breaker.cool_down_ms == 0 || self.breaker.cool_down_ms > 3_600_000 {
            err("breaker.cool_down_ms", "must be between 1 and 3600000");
        }
    }
}
