//! `[state] backend = "redis"`: two gateways sharing one real redis-server (each test starts its own on a free
//! loopback port, so it can stop and restart it mid-run). Skipped, saying so, only when redis-server cannot be
//! started (`.ci/run` installs it).

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_testkit::{Setup, TestGateway, CONFIDENT, DEMO_MODEL_ENTRY};
use serde_json::json;

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
