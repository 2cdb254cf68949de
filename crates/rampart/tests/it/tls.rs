//! Identity and transport over real TLS (issue #3): TLS 1.3 only, mTLS, start-up refusals, admin over TLS.
//! Certificates are made in the test with rcgen; the client is tokio-rustls speaking HTTP/1.1 by hand.

use std::sync::Arc;

use rampart_testkit::{Setup, TestGateway, DEMO_MODEL_ENTRY};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// A certificate authority.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf (certificate PEM, key PEM) with a CN and SANs.
    pub(crate) fn leaf(&self, cn: &str, sans: Vec<SanType>) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub(crate) fn server(&self) -> (String, String) {
        self.leaf(
            "localhost",
            vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ],
        )
    }
}

/// A TLS client trusting `ca`, with an optional client certificate, offering only `versions`.
pub(crate) fn connector(
    ca: &Ca,
    client: Option<&(String, String)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

pub(crate) fn tls13(ca: &Ca, client: Option<&(String, String)>) -> TlsConnector {
    connector(ca, client, &[&rustls::version::TLS13])
}

/// A response read off the wire.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: serde_json::Value,
}

/// One HTTP/1.1 request over a fresh TLS connection. `Err` when the handshake fails or the server sends no
/// response (a TLS 1.3 server refuses a client certificate after the client thinks the handshake is done).
pub(crate) async fn https(
    tls: &TlsConnector,
    base: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<Resp, String> {
    let addr = base.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut s = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = bearer
        .map(|k| format!("authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n{auth}\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf).await;
    if buf.is_empty() {
        return Err(format!("no response: {read:?}"));
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok(Resp {
        status,
        head: head.to_ascii_lowercase(),
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_owned())),
    })
}

fn predict_body() -> serde_json::Value {
    serde_json::json!({"features": rampart_testkit::CONFIDENT})
}

/// `POST /v1/models/demo/predict` with a confident row.
async fn predict(tls: &TlsConnector, base: &str, bearer: Option<&str>) -> Result<Resp, String> {
    let body = predict_body();
    https(
        tls,
        base,
        "POST",
        "/v1/models/demo/predict",
        bearer,
        Some(&body),
    )
    .await
}

/// `GET /v2/health/live`, which needs no credential: only the transport can refuse it.
async fn live(tls: &TlsConnector, base: &str) -> Result<Resp, String> {
    https(tls, base, "GET", "/v2/health/live", None, None).await
}

async fn tls_gateway(ca: &Ca, mtls: Option<&Ca>, keys: &[(&str, &[&str])]) -> TestGateway {
    let (cert, key) = ca.server();
    let client_ca = mtls.map(Ca::pem).unwrap_or_default();
    let server = if mtls.is_some() {
        "tls = { cert_file = \"tls.crt\", key_file = \"tls.key\", client_ca_file = \"clients.crt\" }"
    } else {
        "tls = { cert_file = \"tls.crt\", key_file = \"tls.key\" }"
    };
    TestGateway::start_with(Setup {
        server,
        body: DEMO_MODEL_ENTRY,
        files: &[
            ("tls.crt", cert.as_bytes()),
            ("tls.key", key.as_bytes()),
            ("clients.crt", client_ca.as_bytes()),
        ],
        keys,
        ..Setup::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn tls13_serves_and_tls12_is_refused() {
    let ca = Ca::new("server ca");
    let gw = tls_gateway(&ca, None, &[]).await;
    assert!(gw.base.starts_with("https://"));
    let ok = predict(&tls13(&ca, None), &gw.base, Some(&gw.key))
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body["prediction"], "setosa");
    assert!(ok.head.contains("cache-control: no-store"), "{}", ok.head);

    let tls12 = connector(&ca, None, &[&rustls::version::TLS12]);
    let refused = live(&tls12, &gw.base).await;
    assert!(refused.is_err(), "a TLS 1.2 client was served: {refused:?}");

    // Plain HTTP to a TLS listener gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(gw.base.replace("https://", "http://") + "/v2/health/live")
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));

    // The admin listener speaks TLS too.
    let admin = https(&tls13(&ca, None), &gw.admin, "GET", "/metrics", None, None)
        .await
        .unwrap();
    assert_eq!(admin.status, 200);
}

#[tokio::test]
async fn mtls_identity_comes_from_the_certificate() {
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let gw = tls_gateway(&server_ca, Some(&client_ca), &[]).await;

    let by_cn = client_ca.leaf("svc-billing", vec![]);
    let resp = predict(&tls13(&server_ca, Some(&by_cn)), &gw.base, None)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");

    let by_uri = client_ca.leaf(
        "ignored-cn",
        vec![SanType::URI(
            "spiffe://example/ns/prod/sa/scorer".try_into().unwrap(),
        )],
    );
    let resp = predict(&tls13(&server_ca, Some(&by_uri)), &gw.base, None)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");

    // A bearer key still works over mTLS and names its own identity.
    let with_key = predict(&tls13(&server_ca, Some(&by_cn)), &gw.base, Some(&gw.key))
        .await
        .unwrap();
    assert_eq!(with_key.status, 200);

    let no_cert = live(&tls13(&server_ca, None), &gw.base).await;
    assert!(
        no_cert.is_err(),
        "served without a client certificate: {no_cert:?}"
    );

    let stranger = Ca::new("another ca").leaf("svc-billing", vec![]);
    let foreign = live(&tls13(&server_ca, Some(&stranger)), &gw.base).await;
    assert!(
        foreign.is_err(),
        "served a certificate from another CA: {foreign:?}"
    );

    let dir = gw.stop().await;
    let ids: Vec<String> = rampart_testkit::read_jsonl_dir(&dir.path().join("data/audit"))
        .iter()
        .filter_map(|r| r["identity"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        ids,
        [
            "svc-billing",
            "spiffe://example/ns/prod/sa/scorer",
            "tester"
        ]
    );
}

#[tokio::test]
async fn unusable_tls_files_refuse_to_start() {
    let ca = Ca::new("server ca");
    let (cert, key) = ca.server();
    let start = |server: &'static str, files: Vec<(&'static str, Vec<u8>)>| async move {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        TestGateway::start_with(Setup {
            server,
            body: DEMO_MODEL_ENTRY,
            files: &files,
            ..Setup::default()
        })
        .await
        .err()
        .unwrap_or_default()
    };
    let tls = "tls = { cert_file = \"tls.crt\", key_file = \"tls.key\" }";
    let missing = start(tls, vec![("tls.crt", cert.clone().into_bytes())]).await;
    assert!(missing.contains("tls.key"), "{missing}");
    let wrong_kind = start(
        tls,
        vec![
            ("tls.crt", cert.clone().into_bytes()),
            ("tls.key", cert.clone().into_bytes()),
        ],
    )
    .await;
    assert!(wrong_kind.contains("private key"), "{wrong_kind}");
    let not_a_cert = start(
        tls,
        vec![
            ("tls.crt", key.clone().into_bytes()),
            ("tls.key", key.clone().into_bytes()),
        ],
    )
    .await;
    assert!(not_a_cert.contains("certificate"), "{not_a_cert}");

    // A key readable by others, referenced by absolute path.
    let open = tempfile::tempdir().unwrap();
    let open_key = open.path().join("open.key");
    std::fs::write(&open_key, &key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server: &'static str = Box::leak(
        format!(
            "tls = {{ cert_file = \"tls.crt\", key_file = \"{}\" }}",
            open_key.display()
        )
        .into_boxed_str(),
    );
    let too_open = start(server, vec![("tls.crt", cert.into_bytes())]).await;
    assert!(too_open.contains("group or others"), "{too_open}");
    assert!(
        !too_open.contains("BEGIN"),
        "no key material in the message"
    );
}

/// The log of a full run — start-up, TLS, API-key, JWT and refused requests, at debug level — holds no key
/// material: not the TLS private key, not an API key, not a token.
#[tokio::test]
async fn a_full_run_logs_no_key_material() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let ca = Ca::new("server ca");
    let (cert, key_pem) = ca.server();
    let signer = crate::identity::Signer::ed("ed-1");
    let jwks = serde_json::json!({"keys": [signer.jwk()]}).to_string();
    for (name, bytes) in [
        ("tls.crt", cert.as_bytes()),
        ("tls.key", key_pem.as_bytes()),
        ("jwks.json", jwks.as_bytes()),
        ("demo.onnx", rampart_testkit::DEMO_MODEL),
        ("demo.baseline.json", rampart_testkit::DEMO_BASELINE),
    ] {
        rampart_testkit::write_private(&p(name), bytes).unwrap();
    }
    let mut keys = rampart_server::auth::KeysFile::default();
    let api_key = keys.add("alice", vec!["predictor".into()], None).unwrap();
    keys.save(&p("keys.toml")).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
         tls = {{ cert_file = \"tls.crt\", key_file = \"tls.key\" }}\nrequire_signatures = false\n\n\
         [auth]\napi_keys_file = \"keys.toml\"\n\
         jwt = {{ jwks_file = \"jwks.json\", issuer = \"https://idp.test\", audience = \"rampart\" }}\n\
         {DEMO_MODEL_ENTRY}"
    );
    std::fs::write(p("rampart.toml"), config).unwrap();
    let log = std::fs::File::create(p("stderr.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--config"])
        .arg(p("rampart.toml"))
        .args(crate::serve_root_args())
        .env("RAMPART_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (base, admin) = tokio::task::spawn_blocking(move || {
        let mut base = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("inference: ") {
                base = rest.to_owned();
            }
            if let Some(rest) = line.strip_prefix("admin:     ") {
                return (base, rest.trim_end_matches("/metrics").to_owned());
            }
        }
        (base, String::new())
    })
    .await
    .unwrap();
    assert!(base.starts_with("https://"), "{base}");

    let tls = tls13(&ca, None);
    let token = signer.sign(&crate::identity::claims("jwt-user"));
    for credential in [api_key.as_str(), token.as_str(), "rk_0000", "not-a-token"] {
        let _ = predict(&tls, &base, Some(credential)).await.unwrap();
    }
    let ok = predict(&tls, &base, Some(&api_key)).await.unwrap();
    assert_eq!(ok.status, 200);
    let _ = https(&tls, &admin, "GET", "/metrics", None, None)
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();

    let text = std::fs::read_to_string(p("stderr.log")).unwrap();
    assert!(text.contains("model loaded"), "the log was written: {text}");
    let key_body: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect();
    assert!(!key_body.is_empty());
    for secret in key_body
        .iter()
        .copied()
        .chain([api_key.as_str(), &api_key[3..], token.as_str()])
        .chain(token.split('.'))
    {
        assert!(!text.contains(secret), "the log holds key material");
    }
}
