//! `[state] backend = "redis"`: two gateways sharing one real redis-server (each test starts its own on a free
//! loopback port, so it can stop and restart it mid-run): rate limits, blocks and extraction statistics are
//! shared, and an outage follows `on_unavailable`. Skipped, saying so, only when redis-server cannot be
//! started (`.ci/run` installs it). Propagation is waited for by polling, never timed.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_testkit::{Setup, TestGateway, CONFIDENT, DEMO_MODEL_ENTRY};
use serde_json::{json, Value};

struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis-server on a free loopback port; `None` (after saying why) when it cannot be started.
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut redis = Self {
            child: None,
            port,
            dir: tempfile::tempdir().ok()?,
        };
        match redis.spawn() {
            Ok(()) => Some(redis),
            Err(e) => {
                eprintln!(
                    "skipped: redis-server cannot be started here ({e}); .ci/run installs it"
                );
                None
            }
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("not listening on port {} after 5 s", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGKILL: Redis vanishes mid-run, as in a crash or a lost network.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A gateway whose demo model allows bursts of 3 (then one per 20 s), its limits shared through `redis`.
async fn gateway(redis: &Redis, on_unavailable: &str) -> TestGateway {
    let body = format!(
        "{DEMO_MODEL_ENTRY}rate_limit = {{ per_minute = 3, burst = 3 }}\n\n\
         [state]\nbackend = \"redis\"\nurl_file = \"redis.url\"\non_unavailable = \"{on_unavailable}\"\n\
         timeout_ms = 200\nretry_ms = 200\n"
    );
    let url = redis.url();
    TestGateway::start_with(Setup {
        body: &body,
        files: &[("redis.url", url.as_bytes())],
        ..Setup::default()
    })
    .await
    .expect("gateway starts")
}

async fn predict(gw: &TestGateway) -> reqwest::Response {
    gw.post("/v1/models/demo/predict", &json!({ "features": CONFIDENT }))
        .await
}

async fn status(gw: &TestGateway) -> u16 {
    predict(gw).await.status().as_u16()
}

async fn wait_for_alert(gw: &TestGateway, kind: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.alerts().iter().any(|a| a["kind"] == kind) {
        assert!(
            Instant::now() < deadline,
            "no {kind} alert: {:?}",
            gw.alerts()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_limited_on_one_replica_is_limited_on_all() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = (
        gateway(&redis, "fail_closed").await,
        gateway(&redis, "fail_closed").await,
    );
    // Same identity ("tester") on both; the burst of 3 is spent across them, as the in-memory limiter would
    // spend it on one.
    assert_eq!(status(&a).await, 200);
    assert_eq!(status(&a).await, 200);
    let third = predict(&b).await;
    assert_eq!(third.status().as_u16(), 200);
    assert_eq!(third.headers()["ratelimit-remaining"], "0");
    let refused = predict(&b).await;
    assert!(refused.headers().contains_key("retry-after"));
    crate::error_body(refused, 429, "rate_limited").await;
    crate::error_body(predict(&a).await, 429, "rate_limited").await;
    // Another identity has its own bucket.
    let other = a
        .http
        .post(format!("{}/v1/models/demo/predict", a.base))
        .bearer_auth(&a.other_key)
        .json(&json!({ "features": CONFIDENT }))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_answers_overloaded_while_redis_is_down_and_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let gw = gateway(&redis, "fail_closed").await;
    assert_eq!(status(&gw).await, 200);

    redis.stop();
    crate::error_body(predict(&gw).await, 503, "overloaded").await;
    wait_for_alert(&gw, "shared_state_unavailable").await;
    // Within the retry interval Redis is not tried again: the refusal is immediate.
    let started = Instant::now();
    crate::error_body(predict(&gw).await, 503, "overloaded").await;
    assert!(started.elapsed() < Duration::from_millis(150));

    redis.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&gw).await != 200 {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_alert(&gw, "shared_state_recovered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_falls_back_to_the_replica_limiter_and_recovers() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let gw = gateway(&redis, "local").await;
    assert_eq!(status(&gw).await, 200);

    redis.stop();
    // The replica's own limiter decides now: its burst of 3, then 429 — never 503.
    for _ in 0..3 {
        assert_eq!(status(&gw).await, 200);
    }
    crate::error_body(predict(&gw).await, 429, "rate_limited").await;
    wait_for_alert(&gw, "shared_state_unavailable").await;

    // Redis is back (empty: a restarted Redis has forgotten the buckets) and decides again.
    redis.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&gw).await != 200 {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_alert(&gw, "shared_state_recovered").await;
}

/// The `[state]` section of a replica that syncs blocks and distances every 50 ms.
fn state_section(on_unavailable: &str) -> String {
    format!(
        "\n[state]\nbackend = \"redis\"\nurl_file = \"redis.url\"\non_unavailable = \"{on_unavailable}\"\n\
         timeout_ms = 200\nretry_ms = 200\nblock_sync_ms = 50\n"
    )
}

/// A replica of the demo without a rate limit (so only blocks can refuse), with an `ops` admin key and the
/// identities `attacker` and `alice`; `extra` is appended to the config.
async fn replica(redis: &Redis, on_unavailable: &str, model: &str, extra: &str) -> TestGateway {
    let body = format!("{model}{}{extra}", state_section(on_unavailable));
    let url = redis.url();
    TestGateway::start_with(Setup {
        body: &body,
        files: &[("redis.url", url.as_bytes())],
        keys: &[
            ("ops", &["admin"]),
            ("attacker", &["predictor"]),
            ("alice", &["predictor"]),
        ],
        ..Setup::default()
    })
    .await
    .expect("gateway starts")
}

fn unlimited_demo() -> String {
    format!("{DEMO_MODEL_ENTRY}rate_limit = {{ mode = \"off\" }}\n")
}

/// `POST /admin/identities/{id}/{action}` with the replica's own admin key.
async fn admin_block(gw: &TestGateway, id: &str, action: &str) {
    let r = gw
        .http
        .post(format!("{}/admin/identities/{id}/{action}", gw.admin))
        .bearer_auth(&gw.keys["ops"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{action} {id}");
}

async fn predict_as(gw: &TestGateway, key: &str, features: &Value) -> reqwest::Response {
    gw.http
        .post(format!("{}/v1/models/demo/predict", gw.base))
        .bearer_auth(key)
        .json(&json!({ "features": features }))
        .send()
        .await
        .unwrap()
}

async fn status_of(gw: &TestGateway, who: &str) -> u16 {
    let key = match who {
        "tester" => gw.key.clone(),
        "other" => gw.other_key.clone(),
        id => gw.keys[id].clone(),
    };
    predict_as(gw, &key, &json!(CONFIDENT))
        .await
        .status()
        .as_u16()
}

/// Polls until `who` gets `status` from `gw` (or fails after 10 s, naming `what`).
async fn until_status(gw: &TestGateway, who: &str, status: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = status_of(gw, who).await;
        if got == status {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {got}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// See: Issue 10. A block set through one replica's admin API is refused by the other (which never held it in
/// its own file), and an unblock through either replica lifts it on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_set_on_one_replica_is_refused_by_the_other_and_unblocks_propagate() {
    let Some(redis) = Redis::start() else { return };
    let (a, b) = (
        replica(&redis, "fail_closed", &unlimited_demo(), "").await,
        replica(&redis, "fail_closed", &unlimited_demo(), "").await,
    );
    assert_eq!(status_of(&b, "tester").await, 200);

    admin_block(&a, "tester", "block").await;
    until_status(&b, "tester", 403, "the block to reach the other replica").await;
    crate::error_body(predict(&b).await, 403, "blocked").await;
    assert_eq!(status_of(&b, "other").await, 200);
    // Shared, not copied: the other replica's own file does not list it.
    assert!(!b.data_dir().join("blocked.json").exists());

    admin_block(&a, "tester", "unblock").await;
    until_status(&b, "tester", 200, "the unblock to reach the other replica").await;
    assert_eq!(status_of(&a, "tester").await, 200);

    // Lifted through the replica that did not set it: both serve again.
    admin_block(&a, "tester", "block").await;
    until_status(&b, "tester", 403, "the second block to propagate").await;
    admin_block(&b, "tester", "unblock").await;
    until_status(
        &a,
        "tester",
        200,
        "an unblock on the other replica to lift it",
    )
    .await;
    until_status(&b, "tester", 200, "the unblock to apply where it was made").await;
}

/// See: Issue 10. The PRADA line search of the monitoring tests, split evenly over two replicas: each serves
/// fewer queries than PRADA needs before it tests (100 distances), so neither could flag it alone; merged,
/// the distances are tested as one stream and `model_extraction` is raised. Its `block_identity` rule then
/// refuses the attacker on both replicas, while a benign identity is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extraction_split_over_two_replicas_is_flagged_and_blocked_on_both() {
    let Some(redis) = Redis::start() else { return };
    let model = crate::monitoring::model("window = 100000, prada_delta = 0.8");
    let rule = "\n[[incidents.rules]]\non = \"model_extraction\"\naction = \"block_identity\"\n\
                duration_secs = 600\n";
    let (a, b) = (
        replica(&redis, "fail_closed", &model, rule).await,
        replica(&redis, "fail_closed", &model, rule).await,
    );
    let (reference, _) = crate::monitoring::reference();
    let (lo, hi) = (reference[0].clone(), reference[100].clone());
    let mut rng = crate::monitoring::Rng(0xA77A_C4E5);
    // 95 queries per replica: below PRADA's 100 distances on either alone.
    for i in 0..190 {
        let t = rng.uniform();
        let row: Vec<f64> = lo.iter().zip(&hi).map(|(x, y)| x + (y - x) * t).collect();
        let gw = if i % 2 == 0 { &a } else { &b };
        let status = predict_as(gw, &gw.keys["attacker"], &json!(row))
            .await
            .status()
            .as_u16();
        if status == 403 {
            break;
        }
        assert_eq!(status, 200, "query {i}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let flagged = loop {
        let found: Vec<Value> = a
            .alerts()
            .into_iter()
            .chain(b.alerts())
            .filter(|x| x["kind"] == "model_extraction")
            .collect();
        if !found.is_empty() {
            break found;
        }
        assert!(Instant::now() < deadline, "no model_extraction alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        flagged.iter().all(|x| x["identity"] == "attacker"),
        "{flagged:?}"
    );
    // The detector counted the queries of both replicas.
    let queries: u64 = flagged[0]["detail"]
        .as_str()
        .and_then(|d| d.split("after ").nth(1))
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(queries > 100, "{flagged:?}");

    until_status(
        &a,
        "attacker",
        403,
        "the attacker blocked on the first replica",
    )
    .await;
    until_status(
        &b,
        "attacker",
        403,
        "the attacker blocked on the second replica",
    )
    .await;
    assert_eq!(status_of(&a, "alice").await, 200);
    assert_eq!(status_of(&b, "alice").await, 200);
}

/// See: Issue 10. `fail_closed`: while the shared blocks cannot be read, inference is refused with 503
/// `overloaded` (another replica may have blocked the caller), with an alert; when Redis is back — empty, as
/// after a crash — the replica that set a block shares it again and the other refuses it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_while_blocks_cannot_be_read_and_blocks_survive_a_redis_restart() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (a, b) = (
        replica(&redis, "fail_closed", &unlimited_demo(), "").await,
        replica(&redis, "fail_closed", &unlimited_demo(), "").await,
    );
    admin_block(&a, "tester", "block").await;
    until_status(&b, "tester", 403, "the block to propagate").await;

    redis.stop();
    until_status(&b, "other", 503, "fail_closed to refuse during the outage").await;
    crate::error_body(
        predict_as(&b, &b.other_key, &json!(CONFIDENT)).await,
        503,
        "overloaded",
    )
    .await;
    wait_for_alert(&b, "shared_state_unavailable").await;

    redis.spawn().unwrap();
    until_status(&b, "other", 200, "recovery").await;
    wait_for_alert(&b, "shared_state_recovered").await;
    until_status(
        &b,
        "tester",
        403,
        "the block re-shared after the Redis restart",
    )
    .await;
}

/// See: Issue 10. `local`: during an outage each replica keeps its own blocks and the shared ones it last
/// read, and serves everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_keeps_the_last_shared_blocks_during_an_outage() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (a, b) = (
        replica(&redis, "local", &unlimited_demo(), "").await,
        replica(&redis, "local", &unlimited_demo(), "").await,
    );
    admin_block(&a, "tester", "block").await;
    until_status(&b, "tester", 403, "the block to propagate").await;

    redis.stop();
    wait_for_alert(&b, "shared_state_unavailable").await;
    for _ in 0..3 {
        assert_eq!(status_of(&b, "tester").await, 403);
        assert_eq!(status_of(&b, "other").await, 200);
    }
    assert_eq!(status_of(&a, "tester").await, 403);
}

#[test]
fn redis_config_errors_are_reported_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[state]\nbackend = \"redis\"\n";
    let cfg = rampart_server::config::RawConfig::parse(text, dir.path()).unwrap();
    let errors: Vec<String> = cfg.validate().iter().map(ToString::to_string).collect();
    assert!(
        errors.iter().any(|e| e.contains("state.url_file")),
        "{errors:?}"
    );
    let text = "[state]\nbackend = \"redis\"\nurl_file = \"redis://h:1\"\n";
    let cfg = rampart_server::config::RawConfig::parse(text, Path::new(".")).unwrap();
    let errors: Vec<String> = cfg.validate().iter().map(ToString::to_string).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("state.url_file") && e.contains("secret")),
        "{errors:?}"
    );
}

/// See: Issue 10. With `[state] identity_key_file` (one `hmac` key shared by the replicas) identities are
/// keyed in Redis with HMAC instead of plain SHA-256, and the replicas still agree: a block set on one is
/// refused by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_identities_are_shared_between_replicas_holding_the_same_key() {
    let Some(redis) = Redis::start() else { return };
    let keys = tempfile::tempdir().unwrap();
    let key_path = keys.path().join("identity.key");
    let (code, _, err) = crate::run(&[
        "keygen",
        "--kind",
        "hmac",
        "--out",
        key_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let key = std::fs::read(&key_path).unwrap();
    let body = format!(
        "{}{}identity_key_file = \"identity.key\"\n",
        unlimited_demo(),
        state_section("fail_closed")
    );
    let url = redis.url();
    let files: [(&str, &[u8]); 2] = [("redis.url", url.as_bytes()), ("identity.key", &key)];
    let keys: [(&str, &[&str]); 1] = [("ops", &["admin"])];
    let setup = || Setup {
        body: &body,
        files: &files,
        keys: &keys,
        ..Setup::default()
    };
    let a = TestGateway::start_with(setup())
        .await
        .expect("gateway starts");
    let b = TestGateway::start_with(setup())
        .await
        .expect("gateway starts");
    assert_eq!(status_of(&b, "tester").await, 200);
    admin_block(&a, "tester", "block").await;
    until_status(
        &b,
        "tester",
        403,
        "the keyed block to reach the other replica",
    )
    .await;
    assert_eq!(status_of(&b, "other").await, 200);
    admin_block(&b, "tester", "unblock").await;
    until_status(
        &a,
        "tester",
        200,
        "the keyed unblock to reach the first replica",
    )
    .await;
}
