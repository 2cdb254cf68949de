//! Identity (issue #3): JWTs minted in the test for every refusal, the RBAC matrix, blocked identities, the
//! keys-file reload, the admin routes. Plain HTTP on loopback (TLS itself is tested in `tls.rs`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rampart_testkit::{Setup, TestGateway, CONFIDENT, DEMO_MODEL_ENTRY, UNCERTAIN};
use rcgen::KeyPair;
use serde_json::{json, Value};

use crate::error_body;

pub(crate) struct Signer {
    kid: &'static str,
    alg: Algorithm,
    key: KeyPair,
}

impl Signer {
    pub(crate) fn ed(kid: &'static str) -> Self {
        Self {
            kid,
            alg: Algorithm::EdDSA,
            key: KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        }
    }

    fn es(kid: &'static str) -> Self {
        Self {
            kid,
            alg: Algorithm::ES256,
            key: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        let raw = self.key.public_key_raw();
        match self.alg {
            Algorithm::EdDSA => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": B64.encode(raw)})
            }
            _ => json!({
                "kty": "EC", "crv": "P-256", "kid": self.kid,
                "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..65]),
            }),
        }
    }

    fn encoding_key(&self) -> EncodingKey {
        let der = self.key.serialize_der();
        match self.alg {
            Algorithm::EdDSA => EncodingKey::from_ed_der(&der),
            _ => EncodingKey::from_ec_der(&der),
        }
    }

    fn sign_as(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).unwrap()
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_as(Some(self.kid), claims)
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn claims(sub: &str) -> Value {
    json!({
        "sub": sub, "iss": "https://idp.test", "aud": "rampart",
        "exp": now() + 300, "iat": now(), "roles": ["predictor"],
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

async fn jwt_gateway(signers: &[&Signer]) -> TestGateway {
    let jwks = json!({"keys": signers.iter().map(|s| s.jwk()).collect::<Vec<_>>()}).to_string();
    TestGateway::start_with(Setup {
        auth: "jwt = { jwks_file = \"jwks.json\", issuer = \"https://idp.test\", audience = \"rampart\", leeway_s = 5 }",
        body: DEMO_MODEL_ENTRY,
        files: &[("jwks.json", jwks.as_bytes())],
        ..Setup::default()
    })
    .await
    .unwrap()
}

async fn predict(gw: &TestGateway, credential: &str) -> reqwest::Response {
    gw.post_raw(
        "/v1/models/demo/predict",
        serde_json::to_vec(&json!({"features": CONFIDENT})).unwrap(),
        Some(credential),
    )
    .await
}

#[tokio::test]
async fn jwt_refusals_are_one_and_the_same_401() {
    let ed = Signer::ed("ed-1");
    let es = Signer::es("es-1");
    let gw = jwt_gateway(&[&ed, &es]).await;

    for (signer, sub) in [(&ed, "jwt-ed"), (&es, "jwt-es")] {
        let resp = predict(&gw, &signer.sign(&claims(sub))).await;
        assert_eq!(resp.status(), 200, "{sub}");
    }

    let stranger = Signer::ed("ed-1");
    let hs_with_public_key = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("ed-1".into());
        let secret = ed.key.public_key_raw().to_vec();
        jsonwebtoken::encode(&h, &claims("mallory"), &EncodingKey::from_secret(&secret)).unwrap()
    };
    let alg_none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT","kid":"ed-1"}"#),
        B64.encode(claims("mallory").to_string())
    );
    let tampered = {
        let t = ed.sign(&claims("alice"));
        let (rest, _) = t.rsplit_once('.').unwrap();
        let forged = B64.encode(with(claims("admin"), "roles", json!(["admin"])).to_string());
        let (head, _) = rest.split_once('.').unwrap();
        format!("{head}.{forged}.{}", t.rsplit_once('.').unwrap().1)
    };
    let cases = [
        (
            "expired",
            ed.sign(&with(claims("a"), "exp", json!(now() - 60))),
        ),
        (
            "not yet valid",
            ed.sign(&with(claims("a"), "nbf", json!(now() + 120))),
        ),
        (
            "wrong issuer",
            ed.sign(&with(claims("a"), "iss", json!("https://evil.test"))),
        ),
        (
            "wrong audience",
            ed.sign(&with(claims("a"), "aud", json!("other"))),
        ),
        (
            "no exp",
            ed.sign(&{
                let mut c = claims("a");
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
        ("unknown kid", ed.sign_as(Some("nope"), &claims("a"))),
        ("no kid", ed.sign_as(None, &claims("a"))),
        (
            "kid of another family",
            es.sign_as(Some("ed-1"), &claims("a")),
        ),
        ("signed by another key", stranger.sign(&claims("a"))),
        ("HS256 with the public key", hs_with_public_key),
        ("alg none", alg_none),
        ("tampered claims", tampered),
        ("garbage", "a.b.c".to_owned()),
    ];
    let mut bodies = Vec::new();
    for (what, token) in &cases {
        let resp = predict(&gw, token).await;
        assert_eq!(resp.status(), 401, "{what}");
        assert!(resp.headers().contains_key("www-authenticate"), "{what}");
        let mut body = error_body(resp, 401, "unauthenticated").await;
        body["request_id"] = Value::Null;
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

const ROLES: &str = r#"
[roles]
app      = ["predict:*"]
analyst  = ["predict:demo", "output:full"]
fraudish = ["predict:fraud"]
ops      = ["admin:*"]
auditor  = ["admin:audit"]
"#;

#[tokio::test]
async fn rbac_matrix() {
    let body = format!("{DEMO_MODEL_ENTRY}{ROLES}");
    let gw = TestGateway::start_with(Setup {
        body: &body,
        keys: &[
            ("app", &["app"]),
            ("analyst", &["analyst"]),
            ("fraudish", &["fraudish"]),
            ("ops", &["ops"]),
            ("auditor", &["auditor"]),
            ("nobody", &[]),
        ],
        ..Setup::default()
    })
    .await
    .unwrap();
    // With [roles] present, the old `predictor` role grants nothing.
    let cases: &[(&str, u16, u16, u16)] = &[
        // identity, predict demo, POST /admin/audit/verify, GET /admin/models
        ("tester", 403, 403, 403),
        ("app", 200, 403, 403),
        ("analyst", 200, 403, 403),
        ("fraudish", 403, 403, 403),
        ("ops", 403, 200, 200),
        ("auditor", 403, 200, 403),
        ("nobody", 403, 403, 403),
    ];
    for &(who, predict_status, verify_status, models_status) in cases {
        let key = if who == "tester" {
            gw.key.clone()
        } else {
            gw.keys[who].clone()
        };
        let resp = predict(&gw, &key).await;
        assert_eq!(resp.status(), predict_status, "{who} predict");
        if predict_status == 403 {
            error_body(resp, 403, "forbidden").await;
        }
        for (method, path, expected) in [
            (reqwest::Method::POST, "/admin/audit/verify", verify_status),
            (reqwest::Method::GET, "/admin/models", models_status),
        ] {
            let resp = gw
                .http
                .request(method, format!("{}{path}", gw.admin))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), expected, "{who} {path}");
        }
    }
    // A model the caller may not use is 403 whether or not it exists (no probing).
    let resp = gw
        .post_raw(
            "/v1/models/fraud/predict",
            serde_json::to_vec(&json!({"features": CONFIDENT})).unwrap(),
            Some(&gw.keys["analyst"]),
        )
        .await;
    error_body(resp, 403, "forbidden").await;

    // output:full names every class; the default sanitization names only the prediction.
    let full: Value = predict(&gw, &gw.keys["analyst"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full["top_k"].as_array().map(Vec::len), Some(3), "{full}");
    let plain: Value = predict(&gw, &gw.keys["app"]).await.json().await.unwrap();
    assert!(plain.get("top_k").is_none(), "{plain}");

    // Refusals are audited like the others.
    let dir = gw.stop().await;
    let records = rampart_testkit::read_jsonl_dir(&dir.path().join("data/audit"));
    assert!(records
        .iter()
        .any(|r| r["identity"] == "fraudish" && r["decision"]["reason"] == "forbidden"));
}

#[tokio::test]
async fn keys_file_reloads_without_restart() {
    let gw = TestGateway::demo().await;
    let path = gw.dir.path().join("keys.toml");
    let mut file = rampart_server::auth::KeysFile::load(&path, false).unwrap();
    let new_key = file.add("late", vec!["predictor".into()], None).unwrap();
    assert_eq!(predict(&gw, &new_key).await.status(), 401);
    file.save(&path).unwrap();
    let mut ok = false;
    for _ in 0..50 {
        if predict(&gw, &new_key).await.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "the new key never worked");
    file.revoke("tester").unwrap();
    file.save(&path).unwrap();
    let mut revoked = false;
    for _ in 0..50 {
        if predict(&gw, &gw.key).await.status() == 401 {
            revoked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(revoked, "the revoked key kept working");
    // A broken file keeps the last good keys.
    std::fs::write(&path, "this is not toml [").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(predict(&gw, &new_key).await.status(), 200);
}

/// An admin request with `key`, its JSON body.
async fn admin_json(gw: &TestGateway, method: reqwest::Method, path: &str, key: &str) -> Value {
    gw.http
        .request(method, format!("{}{path}", gw.admin))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_routes_block_review_and_verify() {
    let gw = TestGateway::start_with(Setup {
        body: DEMO_MODEL_ENTRY,
        keys: &[("ops", &["admin"])],
        ..Setup::default()
    })
    .await
    .unwrap();
    let ops = gw.keys["ops"].clone();
    let admin = |method: reqwest::Method, path: &str, key: Option<&str>| {
        let mut req = gw.http.request(method, format!("{}{path}", gw.admin));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send()
    };

    // Without a credential: 401; with a predictor key: 403; never on the inference listener.
    error_body(
        admin(reqwest::Method::GET, "/admin/models", None)
            .await
            .unwrap(),
        401,
        "unauthenticated",
    )
    .await;
    error_body(
        admin(reqwest::Method::GET, "/admin/models", Some(&gw.key))
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    error_body(gw.get("/admin/models").await, 404, "not_found").await;

    let models: Value = admin_json(&gw, reqwest::Method::GET, "/admin/models", &ops).await;
    assert_eq!(models["models"][0]["name"], "demo");

    // Block, refuse, unblock.
    let r = admin(
        reqwest::Method::POST,
        "/admin/identities/tester/block",
        Some(&ops),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    error_body(predict(&gw, &gw.key).await, 403, "blocked").await;
    assert_eq!(predict(&gw, &gw.other_key).await.status(), 200);
    let list: Value =
        admin_json(&gw, reqwest::Method::GET, "/admin/identities/blocked", &ops).await;
    assert_eq!(list["blocked"], json!(["tester"]));
    assert!(gw.data_dir().join("blocked.json").exists());
    admin(
        reqwest::Method::POST,
        "/admin/identities/tester/unblock",
        Some(&ops),
    )
    .await
    .unwrap();
    assert_eq!(predict(&gw, &gw.key).await.status(), 200);

    // Review queue: list, resolve once.
    let uncertain: Value = gw
        .post("/v1/models/demo/predict", &json!({"features": UNCERTAIN}))
        .await
        .json()
        .await
        .unwrap();
    let review_id = uncertain["review_id"].as_str().unwrap().to_owned();
    let pending: Value = admin_json(
        &gw,
        reqwest::Method::GET,
        "/admin/review?status=pending",
        &ops,
    )
    .await;
    assert_eq!(pending["items"][0]["review_id"], review_id.as_str());
    let resolved = gw
        .http
        .post(format!("{}/admin/review/{review_id}/resolve", gw.admin))
        .bearer_auth(&ops)
        .json(&json!({"label": "virginica", "note": "checked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let pending: Value = admin_json(
        &gw,
        reqwest::Method::GET,
        "/admin/review?status=pending",
        &ops,
    )
    .await;
    assert_eq!(pending["items"], json!([]));
    let all: Value = admin_json(&gw, reqwest::Method::GET, "/admin/review", &ops).await;
    assert_eq!(all["items"][0]["status"], "resolved");
    assert_eq!(all["items"][0]["resolution"]["by"], "ops");
    let unknown = admin(
        reqwest::Method::POST,
        "/admin/review/nope/resolve",
        Some(&ops),
    )
    .await
    .unwrap();
    error_body(unknown, 404, "not_found").await;

    // Audit verification.
    let verify: Value = admin_json(&gw, reqwest::Method::POST, "/admin/audit/verify", &ops).await;
    assert_eq!(verify["ok"], true, "{verify}");
    assert!(verify["records"].as_u64().unwrap() >= 5);
}
