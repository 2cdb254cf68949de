//! `rampart serve` as a process: the Landlock sandbox it applies to itself, and its signals (SIGTERM drains
//! with readiness false first; SIGHUP reloads the keys without dropping a request). Signals are sent with
//! kill(1), since the tests forbid `unsafe` FFI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_server::auth::KeysFile;
use rampart_testkit::{CONFIDENT, DEMO_BASELINE, DEMO_MODEL};

const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// A config directory: the demo model and baseline, a keys file with one key, and a config with a generous
/// rate limit (the SIGHUP test sends a steady stream of requests).
struct Site {
    dir: tempfile::TempDir,
    key: String,
}

impl Site {
    fn new(keys_reload_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("demo.onnx"), DEMO_MODEL).unwrap();
        std::fs::write(dir.path().join("demo.baseline.json"), DEMO_BASELINE).unwrap();
        let mut keys = KeysFile::default();
        let key = keys.add("tester", vec!["predictor".into()], None).unwrap();
        keys.save(&dir.path().join("keys.toml")).unwrap();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
             insecure_plaintext = true\nrequire_signatures = false\n\n[auth]\napi_keys_file = \"keys.toml\"\nkeys_reload_ms = {keys_reload_ms}\n\n\
             [[models]]\nname = \"demo\"\npath = \"demo.onnx\"\nbaseline = \"demo.baseline.json\"\n\
             rate_limit = {{ per_minute = 1000000, burst = 100000 }}\n"
        );
        std::fs::write(dir.path().join("rampart.toml"), config).unwrap();
        Self { dir, key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds a key to a copy of this site's keys file and writes it to `to`; returns the new key.
    fn keys_with_new_key(&self, id: &str, to: &Path) -> String {
        let mut keys = KeysFile::load(&self.path("keys.toml"), false).unwrap();
        let key = keys.add(id, vec!["predictor".into()], None).unwrap();
        keys.save(to).unwrap();
        key
    }
}

/// A running `rampart serve`; killed if the test fails before stopping it.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(site: &Site, extra: &[&str]) -> Self {
        let log = site.path("stderr.log");
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(site.path("rampart.toml"))
            .args(crate::serve_root_args())
            .args(extra)
            .env("RAMPART_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut base = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("inference: ") {
                base = rest.to_owned();
                break;
            }
        }
        // Keep reading: the server prints more, and a closed pipe would make its `println!` panic.
        std::thread::spawn(move || lines.for_each(drop));
        assert!(
            !base.is_empty(),
            "serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self { child, base, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// Waits for the process to exit; its status must be success.
    fn wait_exit(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}: {}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "still running: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn predict(client: &reqwest::blocking::Client, base: &str, key: &str) -> u16 {
    client
        .post(format!("{base}/v1/models/demo/predict"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "features": CONFIDENT }))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Polls until `check` holds (or panics with `what` after 5 s).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The observable: after start-up, the process cannot open a file outside its allowed paths. The keys reloader
/// re-reads `keys.toml` in the config directory; when that name becomes a symlink to a file in another
/// directory, the kernel refuses the open (the link's target is checked, not its name), so the key in it never
/// works — while the same file written inside the config directory is picked up, which shows the reloader
/// itself works and only the location differs.
#[test]
fn landlock_keeps_the_process_from_reading_outside_its_paths() {
    let site = Site::new(100);
    let mut server = Server::start(&site, &["--drain-delay-ms", "0"]);
    let log = server.log();
    if log.contains("landlock: not supported") {
        eprintln!("skipped: this kernel lacks Landlock ({log})");
        return;
    }
    assert!(log.contains("landlock: applied"), "{log}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"])),
        "{status}"
    );

    let client = reqwest::blocking::Client::new();
    assert_eq!(predict(&client, &server.base, &site.key), 200);

    let outside = tempfile::tempdir().unwrap();
    let outside_keys = outside.path().join("keys.toml");
    let new_key = site.keys_with_new_key("newcomer", &outside_keys);
    // The test itself can read the file: only the sandboxed process cannot.
    assert!(std::fs::read(&outside_keys).is_ok());
    std::fs::remove_file(site.path("keys.toml")).unwrap();
    std::os::unix::fs::symlink(&outside_keys, site.path("keys.toml")).unwrap();
    server.signal("HUP");
    eventually("the refused reload to be logged", || {
        server.log().contains("keys file not reloaded")
    });
    assert_eq!(predict(&client, &server.base, &new_key), 401);
    assert_eq!(
        predict(&client, &server.base, &site.key),
        200,
        "the previous keys stay"
    );

    // The same content, inside the allowed directory: reloaded.
    std::fs::remove_file(site.path("keys.toml")).unwrap();
    std::fs::copy(&outside_keys, site.path("keys.toml")).unwrap();
    eventually("the new key to work once its file is inside", || {
        predict(&client, &server.base, &new_key) == 200
    });
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(20));
}

/// SIGTERM: readiness turns false at once while requests are still served; after the drain delay the listener
/// closes, a request that was in flight (its body half sent) still completes with 200, and the process exits 0.
#[test]
fn sigterm_reports_not_ready_then_drains_in_flight_requests() {
    let site = Site::new(1000);
    let mut server = Server::start(&site, &["--drain-delay-ms", "1500"]);
    let client = reqwest::blocking::Client::new();
    let ready = client
        .get(format!("{}/v2/health/ready", server.base))
        .send()
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    // A request in flight: headers and half the body sent.
    let body = serde_json::json!({ "features": CONFIDENT }).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /v1/models/demo/predict HTTP/1.1\r\nHost: rampart\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        site.key,
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    server.signal("TERM");
    eventually("readiness to turn false", || {
        client
            .get(format!("{}/v2/health/ready", server.base))
            .send()
            .is_ok_and(|r| r.status().as_u16() == 503)
    });
    // Still serving during the delay: liveness and predictions answer.
    let live = client
        .get(format!("{}/v2/health/live", server.base))
        .send()
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(predict(&client, &server.base, &site.key), 200);

    // Past the delay the listener is closed to new connections ...
    eventually("the listener to close", || {
        TcpStream::connect(server.addr()).is_err()
    });
    // ... and the request in flight completes.
    conn.write_all(rest.as_bytes()).unwrap();
    let mut response = Vec::new();
    // Bounded by `take`; the ban targets unbounded reads.
    #[allow(clippy::disallowed_methods)]
    conn.take(64 * 1024).read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.wait_exit(Duration::from_secs(20));
    let log = server.log();
    assert!(log.contains("readiness is false"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

/// The config of the SIGHUP test: `demo` (served to the steady stream, a quota it never reaches) and `small`
/// (the same model, whose quota the reload shrinks), `[roles]` as given, and `server_extra` in `[server]`.
fn reload_config(site: &Site, roles: &str, small_limit: &str, server_extra: &str) {
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
         insecure_plaintext = true\nrequire_signatures = false\n{server_extra}\n\n\
         [auth]\napi_keys_file = \"keys.toml\"\nkeys_reload_ms = 3600000\n\n[roles]\n{roles}\n\n\
         [[models]]\nname = \"demo\"\npath = \"demo.onnx\"\nbaseline = \"demo.baseline.json\"\n\
         rate_limit = {{ per_minute = 1000000, burst = 100000 }}\n\n\
         [[models]]\nname = \"small\"\npath = \"demo.onnx\"\nbaseline = \"demo.baseline.json\"\n\
         rate_limit = {small_limit}\n"
    );
    // Written whole and renamed, as a config manager does: the signal never meets half a file.
    std::fs::write(site.path("rampart.toml.new"), config).unwrap();
    std::fs::rename(site.path("rampart.toml.new"), site.path("rampart.toml")).unwrap();
}

fn predict_model(client: &reqwest::blocking::Client, base: &str, model: &str, key: &str) -> u16 {
    client
        .post(format!("{base}/v1/models/{model}/predict"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "features": CONFIDENT }))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// See: Issue 10. SIGHUP applies a changed role and a changed quota live, while a steady stream of requests
/// sees no failure; a change that cannot apply live (`[server]`) is logged as needing a restart and ignored.
#[test]
fn sighup_applies_roles_and_quotas_live_and_names_what_needs_a_restart() {
    let site = Site::new(3_600_000);
    let mut keys = KeysFile::load(&site.path("keys.toml"), false).unwrap();
    let reader = keys.add("reader", vec!["reader".into()], None).unwrap();
    keys.save(&site.path("keys.toml")).unwrap();
    let big = "{ per_minute = 1000000, burst = 100000 }";
    reload_config(&site, "predictor = [\"predict:*\"]\nreader = []", big, "");
    let mut server = Server::start(&site, &["--drain-delay-ms", "0"]);
    let client = reqwest::blocking::Client::new();
    assert_eq!(
        predict_model(&client, &server.base, "demo", &reader),
        403,
        "a role without permissions"
    );

    let load = Load::start(&client, &server.base, &site.key);

    reload_config(
        &site,
        "predictor = [\"predict:*\"]\nreader = [\"predict:demo\"]",
        "{ per_minute = 1, burst = 2 }",
        "max_body_bytes = 4096",
    );
    server.signal("HUP");
    eventually("the reader role to be granted after SIGHUP", || {
        predict_model(&client, &server.base, "demo", &reader) == 200
    });
    // Still only `demo`: the new role grants that model alone.
    assert_eq!(predict_model(&client, &server.base, "small", &reader), 403);
    // The shrunk quota: a burst of 2 from a fresh limiter, then 429.
    eventually("the smaller quota to refuse", || {
        predict_model(&client, &server.base, "small", &site.key) == 429
    });
    eventually("the reload to be logged", || {
        let log = server.log();
        log.contains("roles")
            && log.contains("models[small].rate_limit")
            && log.contains("now in force")
    });
    eventually("the server change to be named as needing a restart", || {
        let log = server.log();
        log.contains("need a restart") && log.contains("server")
    });

    let (sent, failed) = load.finish();
    assert!(sent > 10, "the load ran ({sent} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed across the reload"
    );
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(20));
}

/// SIGHUP: a key added to the keys file works after the signal (the poll interval is an hour, so only the
/// signal can have loaded it), while a steady stream of requests sees no failure; a config file that no longer
/// validates is reported and the server keeps serving the one it started with.
#[test]
fn sighup_reloads_keys_without_dropping_a_request() {
    let site = Site::new(3_600_000);
    let mut server = Server::start(&site, &["--drain-delay-ms", "0"]);
    let client = reqwest::blocking::Client::new();

    let load = Load::start(&client, &server.base, &site.key);

    let new_key = site.keys_with_new_key("newcomer", &site.path("keys.toml.new"));
    std::fs::rename(site.path("keys.toml.new"), site.path("keys.toml")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        predict(&client, &server.base, &new_key),
        401,
        "not before the signal"
    );
    for _ in 0..3 {
        server.signal("HUP");
        std::thread::sleep(Duration::from_millis(100));
    }
    eventually("the new key to work after SIGHUP", || {
        predict(&client, &server.base, &new_key) == 200
    });
    eventually("the config check to be logged", || {
        server.log().contains("config file unchanged")
    });

    // A broken config on disk: reported, not applied.
    std::fs::write(site.path("rampart.toml"), "[server]\nlisten = 12\n").unwrap();
    server.signal("HUP");
    eventually("the broken config to be reported", || {
        server.log().contains("no longer parses")
    });
    assert_eq!(predict(&client, &server.base, &new_key), 200);

    let (sent, failed) = load.finish();
    assert!(sent > 10, "the load ran ({sent} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed across SIGHUPs"
    );
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(20));
}

/// Predictions sent back to back from a thread until [`Load::finish`], counting those not answered 200.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Load {
    fn start(client: &reqwest::blocking::Client, base: &str, key: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let thread = {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            let (client, base, key) = (client.clone(), base.to_owned(), key.to_owned());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    if predict(&client, &base, &key) != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        Load {
            stop,
            sent,
            failed,
            thread,
        }
    }

    /// Stops the load; returns (requests sent, requests not answered 200).
    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
