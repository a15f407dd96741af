//! Helpers shared by the integration tests: a real gateway on loopback with
//! real wasm plugins, and a client that waits for messages to settle.

use crossgate::config::{self, Config};
pub use crossgate_tests::{
    default_twilio, fault_connector, twilio_connector, with_calls_per_instance,
};

pub mod browser;
pub mod child;
pub mod postgres;
pub mod runs;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a test waits for a message to reach a final status.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gateway/ has a parent")
        .to_path_buf()
}

pub fn plugin_dir() -> PathBuf {
    let dir = repo_root().join("plugins/target/wasm32-wasip2/release");
    assert!(
        dir.join("sms_twilio.wasm").exists(),
        "plugins are not built: run `make plugins` (or `make test`) first"
    );
    dir
}

/// A gateway serving in this process, stopped when dropped.
pub struct TestGateway {
    pub url: String,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    toml: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestGateway {
    /// Start on a fresh database with `toml` (without `[storage]` and
    /// `[plugins].dir`/`cache_dir`, which are filled in here).
    pub async fn start(toml: &str) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("crossgate.db");
        Self::start_with(toml, dir, db_path).await
    }

    /// Start on the SQLite file at `db_path` (which may exist), as
    /// [`TestGateway::start`] does otherwise.
    pub async fn start_on(toml: &str, db_path: PathBuf) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_with(toml, dir, db_path).await
    }

    /// Start on the PostgreSQL database at `url` (see [`postgres`]), as
    /// [`TestGateway::start`] does otherwise; `db_path` then names no file.
    pub async fn start_on_postgres(toml: &str, url: &str) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("unused.db");
        let config = config_on(toml, &format!("url = \"{url}\""));
        Self::serve(config, toml, dir, db_path).await
    }

    /// Stop gracefully and start again on the same database and config.
    pub async fn restart(mut self) -> TestGateway {
        self.shutdown().await;
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        Self::start_with(&self.toml.clone(), dir, self.db_path.clone()).await
    }

    async fn start_with(toml: &str, dir: tempfile::TempDir, db_path: PathBuf) -> TestGateway {
        let config = test_config(toml, &db_path);
        Self::serve(config, toml, dir, db_path).await
    }

    /// Start from a file, as `crossgate serve --config FILE` does, so that a
    /// reload reads it again; returns the file's path too. `toml` must not
    /// have `[storage]` or `[plugins]`: they are added here.
    pub async fn start_from_file(toml: &str) -> (TestGateway, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("crossgate.db");
        let path = dir.path().join("crossgate.toml");
        std::fs::write(&path, file_config(toml, &db_path)).expect("write config");
        let (config, _) =
            config::load(&path).unwrap_or_else(|report| panic!("test config invalid:\n{report}"));
        (Self::serve(config, toml, dir, db_path).await, path)
    }

    async fn serve(
        config: Config,
        toml: &str,
        dir: tempfile::TempDir,
        db_path: PathBuf,
    ) -> TestGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(crossgate::serve(listener, config, async {
            let _ = stopped.await;
        }));
        let gateway = TestGateway {
            url,
            client: reqwest::Client::new(),
            db_path,
            toml: toml.to_owned(),
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        };
        gateway.wait_ready().await;
        gateway
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(server) = &self.server {
                assert!(!server.is_finished(), "gateway exited during start-up");
            }
            let health = self
                .client
                .get(format!("{}/healthz", self.url))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gateway did not become ready");
    }

    /// `POST /v1/messages` with a JSON body; returns status and JSON answer.
    pub async fn send(&self, body: &Value) -> (u16, Value) {
        self.post("/v1/messages", body).await
    }

    /// `PUT /v1/customers/{id}`; returns status and JSON answer.
    pub async fn put_customer(&self, id: &str, profile: &Value) -> (u16, Value) {
        self.put(&format!("/v1/customers/{id}"), profile).await
    }

    /// `PUT` any JSON to a path; returns status and JSON answer.
    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .put(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {path}: {e}"));
        answer(response).await
    }

    /// `GET /v1/customers/{id}`: the stored profile.
    pub async fn customer(&self, id: &str) -> Value {
        self.get_ok(&format!("/v1/customers/{id}")).await
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    }

    /// `GET` a path that must answer `200` with JSON.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        assert!(!body.is_null(), "GET {path}: not a JSON answer");
        body
    }

    /// `GET` a path: the status and the JSON answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        get_at(&self.client, &self.url, path).await
    }

    /// Send and expect `202`; returns the message id.
    pub async fn send_ok(&self, body: &Value) -> String {
        let (status, answer) = self.send(body).await;
        assert_eq!(status, 202, "send failed: {answer}");
        assert_eq!(answer["status"], "queued");
        answer["id"].as_str().expect("id").to_owned()
    }

    pub async fn message(&self, id: &str) -> Value {
        self.get_ok(&format!("/v1/messages/{id}")).await
    }

    /// Poll until the message reaches a final status.
    pub async fn settled(&self, id: &str) -> Value {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let message = self.message(id).await;
            if ["sent", "failed", "cancelled", "expired"]
                .contains(&message["status"].as_str().unwrap_or(""))
            {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "message did not settle: {message}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until no work is due (`GET /v1/admin/work`): from then on
    /// nothing more is sent until the clock reaches what is scheduled, so a
    /// test may check that something did not happen.
    pub async fn quiesce(&self) {
        quiesce(&self.client, &self.url).await;
    }

    /// Rows in the messages table: proves what was (not) stored.
    pub fn stored_messages(&self) -> i64 {
        let conn = rusqlite::Connection::open(&self.db_path).expect("open db");
        conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .expect("count")
    }

    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("join").expect("gateway ran cleanly");
        }
    }

    /// `POST` any JSON to a path; returns status and JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        post_at(&self.client, &self.url, path, body).await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response's status and JSON answer (`null` when it has none).
/// `GET` a path of the gateway at `base`: the status and the JSON answer.
pub async fn get_at(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    answer(response).await
}

/// `POST` JSON to a path of the gateway at `base`: the status and the JSON answer.
pub async fn post_at(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let response = client
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    answer(response).await
}

pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The outcome of each attempt of a message, in order.
pub fn outcomes(message: &Value) -> Vec<String> {
    message["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().expect("outcome").to_owned())
        .collect()
}

/// Compiled plugins, shared by every test gateway of the run.
fn plugin_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

/// A whole configuration file around `toml`: storage at `db_path`, plugins
/// from the build, a small instance pool.
pub fn file_config(toml: &str, db_path: &Path) -> String {
    let cache = plugin_cache();
    format!(
        "{toml}\n[storage]\nurl = \"sqlite://{}\"\n[plugins]\ndir = \"{}\"\ncache_dir = \"{}\"\nmax_instances = 64\n",
        db_path.display(),
        plugin_dir().display(),
        cache.display()
    )
}

/// Parse a test config, pointing storage at `db_path` and plugins at the build.
pub fn test_config(toml: &str, db_path: &Path) -> Config {
    config_on(toml, &format!("url = \"sqlite://{}\"", db_path.display()))
}

/// Parse a test config with `storage` as its `[storage]` section's body.
fn config_on(toml: &str, storage: &str) -> Config {
    let cache = plugin_cache();
    let full = format!("{toml}\n[storage]\n{storage}\n");
    let mut config = config::parse("test.toml", &full, &|_| None)
        .unwrap_or_else(|report| panic!("test config invalid:\n{report}"));
    config.plugins.dir = plugin_dir();
    config.plugins.cache_dir = cache;
    // Small pools: many test gateways share this machine.
    config.plugins.max_instances = 64;
    config
}

/// Polls `GET /v1/admin/work` on the gateway at `url` until it says
/// `quiet`, for at most [`SETTLE_TIMEOUT`].
pub async fn quiesce(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let work: Value = client
            .get(format!("{url}/v1/admin/work"))
            .send()
            .await
            .expect("GET /v1/admin/work")
            .json()
            .await
            .expect("its JSON");
        if work["quiet"] == true {
            return;
        }
        assert!(Instant::now() < deadline, "never quiet: {work}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fast retries for tests.
pub const FAST_DISPATCH: &str = r#"
[dispatch]
max_attempts = 3
backoff_base_ms = 20
backoff_max_ms = 2000
"#;

/// The day tests that depend on the hour pin their clock on: a Wednesday
/// with no change of daylight-saving time within days of it in Europe,
/// the Americas or New Zealand.
pub const PINNED_DAY: &str = "2026-03-04";

/// `hh:mm` UTC on [`PINNED_DAY`].
pub fn pinned(utc: &str) -> jiff::Timestamp {
    format!("{PINNED_DAY}T{utc}:00Z").parse().unwrap()
}

/// `[clock]` for a gateway whose time starts at `hh:mm` UTC on
/// [`PINNED_DAY`] and runs on from there, whatever the hour the test runs.
pub fn clock_at(utc: &str) -> String {
    format!(
        "\n[clock]\nmode = \"manual\"\nstart = \"{}\"\n",
        pinned(utc)
    )
}

/// What a message's plan says of its SMS channel.
pub fn sms_plan(message: &Value) -> Value {
    message["plan"]["channels"]
        .as_array()
        .and_then(|channels| channels.iter().find(|c| c["channel"] == "sms"))
        .cloned()
        .unwrap_or_else(|| panic!("no SMS in the plan of {message}"))
}

pub fn sms(phone: &str, text: &str) -> Value {
    serde_json::json!({"channel": "sms", "to": {"phone": phone}, "content": {"text": text}})
}

/// A WhatsApp Cloud API connector entry against the simulator.
pub fn whatsapp_connector(name: &str, sim_url: &str) -> String {
    format!(
        r#"
[[connectors]]
name = "{name}"
plugin = "whatsapp_cloud.wasm"
channel = "whatsapp"
allowed_hosts = ["{sim_url}"]
[connectors.config]
access_token = "{}"
phone_number_id = "{}"
base_url = "{sim_url}"
"#,
        crossgate_tests::DEFAULT_WHATSAPP_TOKEN,
        crossgate_tests::DEFAULT_WHATSAPP_PHONE_NUMBER_ID,
    )
}

/// A SendGrid connector entry against the simulator.
pub fn sendgrid_connector(name: &str, sim_url: &str) -> String {
    format!(
        r#"
[[connectors]]
name = "{name}"
plugin = "email_sendgrid.wasm"
channel = "email"
allowed_hosts = ["{sim_url}"]
[connectors.config]
api_key = "{}"
from = "orders@shop.example"
from_name = "Example Shop"
base_url = "{sim_url}"
"#,
        crossgate_tests::DEFAULT_SENDGRID_KEY,
    )
}

/// An FCM connector against the simulator, with the test service account.
pub fn fcm_connector(name: &str, sim_url: &str) -> String {
    let key = repo_root().join("config/simulator/fcm-service-account.json");
    format!(
        r#"
[[connectors]]
name = "{name}"
plugin = "push_fcm.wasm"
channel = "push"
allowed_hosts = ["{sim_url}"]
[connectors.config]
service_account = "file:{}"
token_uri = "{sim_url}/token"
base_url = "{sim_url}"
"#,
        key.display()
    )
}

/// A Web Push connector; the simulator's push service is on `sim_url`.
pub fn webpush_connector(name: &str, sim_url: &str) -> String {
    format!(
        r#"
[[connectors]]
name = "{name}"
plugin = "push_webpush.wasm"
channel = "push"
push_format = "web-push"
allowed_hosts = ["{sim_url}"]
[connectors.config]
vapid_private_key = "{}"
vapid_subject = "mailto:ops@shop.example"
ttl_secs = 600
"#,
        crossgate_tests::DEFAULT_VAPID_PRIVATE_KEY
    )
}

/// The value of the sample `name{...}` whose labels include all of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
