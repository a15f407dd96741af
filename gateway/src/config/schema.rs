//! The TOML schema, one struct per section. Unknown keys are errors, and the
//! doc comment of each field shows its TOML line.

use crate::message::Channel;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `listen = "127.0.0.1:8080"`
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `api_keys = ["env:CROSSGATE_API_KEY", { name = "shop", key = "env:SHOP_KEY", scopes = ["send", "read"] }]`:
    /// when set, every `/v1` request needs `Authorization: Bearer <key>`. A bare key has every scope.
    #[serde(default)]
    pub api_keys: Vec<Spanned<ApiKeyConfig>>,
    /// `max_body_bytes = 65536`
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// `max_webhook_body_bytes = 4194304`: provider callbacks are batches
    /// (SendGrid posts up to a thousand events at once), so they get more room
    /// than a platform's request; a refused batch would lose every bounce in it.
    #[serde(default = "default_max_webhook_body_bytes")]
    pub max_webhook_body_bytes: usize,
    /// `max_backlog = 100000`: deliveries waiting (due or in flight) past which new messages get `429`.
    #[serde(default = "default_max_backlog")]
    pub max_backlog: u64,
    /// `shutdown_grace_ms = 10000`: how long attempts in flight may finish after SIGTERM.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// `public_url = "https://gw.example.com"`: the gateway's URL as providers call it,
    /// which is what they sign webhooks over (default `http://<listen>`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// `header_timeout_ms = 10000`: a client must send a request's headers
    /// within this, and an idle keep-alive connection is closed after it.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// `max_connections = 1024`: connections served at once; more wait in
    /// the listen queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `node_name = "gw-1"`: this node's name in attempt histories and logs
    /// (default: host name and process id, unique among nodes sharing a database).
    #[serde(default)]
    pub node_name: Option<String>,
}

fn default_header_timeout_ms() -> u64 {
    10_000
}

fn default_max_connections() -> usize {
    1024
}

/// One entry of `server.api_keys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ApiKeyConfig {
    /// `"env:KEY"`: every scope, under the name `default`.
    Key(String),
    /// `{ name, key, scopes }`
    Named(NamedKey),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedKey {
    /// Names the caller in logs and scopes its idempotency keys.
    pub name: String,
    pub key: String,
    /// `["send", "read", "admin"]`; every scope when omitted.
    #[serde(default = "Scope::all")]
    pub scopes: Vec<Scope>,
}

/// What a key may do: `send` messages (and preview, cancel), `read`
/// messages, profiles, suppressions and metrics, `admin` change profiles,
/// consent and suppressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Send,
    Read,
    /// Segments and broadcasts: one request reaches every customer of a
    /// segment, so it is not part of `send`.
    Campaigns,
    Admin,
}

impl Scope {
    pub fn all() -> Vec<Scope> {
        vec![Scope::Send, Scope::Read, Scope::Campaigns, Scope::Admin]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Read => "read",
            Scope::Campaigns => "campaigns",
            Scope::Admin => "admin",
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            api_keys: Vec::new(),
            max_body_bytes: default_max_body_bytes(),
            max_webhook_body_bytes: default_max_webhook_body_bytes(),
            max_backlog: default_max_backlog(),
            shutdown_grace_ms: default_shutdown_grace_ms(),
            public_url: None,
            header_timeout_ms: default_header_timeout_ms(),
            max_connections: default_max_connections(),
            node_name: None,
        }
    }
}

fn default_shutdown_grace_ms() -> u64 {
    10_000
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body_bytes() -> usize {
    64 * 1024
}

fn default_max_webhook_body_bytes() -> usize {
    4 * 1024 * 1024
}

fn default_max_backlog() -> u64 {
    100_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `url = "sqlite://data/crossgate.db"` (relative paths are relative to the working directory)
    #[serde(default = "default_storage_url")]
    pub url: Spanned<String>,
    /// `max_connections = 16`: PostgreSQL connections this node keeps open at most.
    #[serde(default = "default_storage_connections")]
    pub max_connections: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: default_storage_url(),
            max_connections: default_storage_connections(),
        }
    }
}

fn default_storage_connections() -> usize {
    16
}

/// The SQLite file used when `storage.url` is not set.
pub const DEFAULT_SQLITE_PATH: &str = "data/crossgate.db";

fn default_storage_url() -> Spanned<String> {
    Spanned::new(0..0, format!("sqlite://{DEFAULT_SQLITE_PATH}"))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// `dir = "plugins/target/wasm32-wasip2/release"`: where `connectors.plugin` files are found.
    #[serde(default = "default_plugin_dir")]
    pub dir: PathBuf,
    /// `cache_dir = "data/plugin-cache"`: compiled components, reused across restarts.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
    /// `memory_limit_mb = 64`: linear memory one call may use.
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: u64,
    /// `cpu_budget_ms = 200`: guest CPU time one call may use.
    #[serde(default = "default_cpu_budget_ms")]
    pub cpu_budget_ms: u64,
    /// `timeout_ms = 10000`: wall-clock time one call may take, provider round trips included.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `max_response_bytes = 1048576`: the largest provider response a plugin may read.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// `max_instances = 1000`: sandboxes alive at once (the pooling allocator's size).
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// `max_requests_per_call = 8`: outbound requests one call may make (a
    /// token exchange and a send need two; a loop of requests is a fault).
    #[serde(default = "default_max_requests_per_call")]
    pub max_requests_per_call: u32,
    /// `max_requests_in_flight = 2`: outbound requests of one call open at once.
    #[serde(default = "default_max_requests_in_flight")]
    pub max_requests_in_flight: u32,
}

fn default_max_requests_per_call() -> u32 {
    8
}

fn default_max_requests_in_flight() -> u32 {
    2
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: default_plugin_dir(),
            cache_dir: default_cache_dir(),
            memory_limit_mb: default_memory_limit_mb(),
            cpu_budget_ms: default_cpu_budget_ms(),
            timeout_ms: default_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
            max_instances: default_max_instances(),
            max_requests_per_call: default_max_requests_per_call(),
            max_requests_in_flight: default_max_requests_in_flight(),
        }
    }
}

fn default_plugin_dir() -> PathBuf {
    PathBuf::from("plugins/target/wasm32-wasip2/release")
}
fn default_cache_dir() -> PathBuf {
    PathBuf::from("data/plugin-cache")
}
fn default_memory_limit_mb() -> u64 {
    64
}
fn default_cpu_budget_ms() -> u64 {
    200
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_response_bytes() -> u64 {
    1024 * 1024
}
fn default_max_instances() -> u32 {
    1000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// `concurrency = 256`: connector calls in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// `max_attempts = 5`: attempts per connector before the next one is tried.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// `backoff_base_ms = 500`: the first retry waits about this long, doubling after.
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// `backoff_max_ms = 60000`: no retry waits longer, `Retry-After` included.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// `lease_ms = 60000`: a delivery whose worker vanished is retried after this.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// `retry_window_ms = 86400000`: no retry is scheduled later than this after acceptance.
    #[serde(default = "default_retry_window_ms")]
    pub retry_window_ms: u64,
    /// `nice = 10`: the delivery threads' priority below the API's (0-19, 0 = equal).
    #[serde(default = "default_nice")]
    pub nice: i32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            concurrency: default_concurrency(),
            max_attempts: default_max_attempts(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            lease_ms: default_lease_ms(),
            retry_window_ms: default_retry_window_ms(),
            nice: default_nice(),
        }
    }
}

fn default_nice() -> i32 {
    10
}

fn default_retry_window_ms() -> u64 {
    24 * 3600 * 1000
}

/// `[messages]`: the consistency windows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    /// `idempotency_window_secs = 86400`: how long an `Idempotency-Key` is remembered.
    #[serde(default = "default_window_secs")]
    pub idempotency_window_secs: u64,
    /// `dedup_window_secs = 86400`: how long a `dedup_key` blocks another message.
    #[serde(default = "default_window_secs")]
    pub dedup_window_secs: u64,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        MessagesConfig {
            idempotency_window_secs: default_window_secs(),
            dedup_window_secs: default_window_secs(),
        }
    }
}

fn default_window_secs() -> u64 {
    86_400
}

/// `[callbacks]`: status changes posted to the platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbacksConfig {
    /// `secret = "env:CROSSGATE_CALLBACK_SECRET"`: HMAC-SHA256 key; callbacks are off without it.
    #[serde(default)]
    pub secret: Option<Spanned<String>>,
    /// `default_url = "https://platform.example.com/crossgate"`: for messages without `callback_url`.
    #[serde(default)]
    pub default_url: Option<Spanned<String>>,
    /// `inbound_url = "https://platform.example.com/replies"`: where customers'
    /// replies (`message.received`) are posted when the message they answer
    /// has no `callback_url`; `default_url` when unset.
    #[serde(default)]
    pub inbound_url: Option<Spanned<String>>,
    /// `max_attempts = 10`
    #[serde(default = "default_callback_attempts")]
    pub max_attempts: u32,
    /// `backoff_base_ms = 1000`
    #[serde(default = "default_callback_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// `backoff_max_ms = 300000`
    #[serde(default = "default_callback_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// `timeout_ms = 5000`: one POST to the platform.
    #[serde(default = "default_callback_timeout_ms")]
    pub timeout_ms: u64,
    /// `allowed_hosts = ["http://hooks.internal:8080"]`: origins callbacks may
    /// reach although they are loopback, private or link-local; every other
    /// callback goes to public addresses only.
    #[serde(default)]
    pub allowed_hosts: Vec<crate::origin::Origin>,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig {
            secret: None,
            default_url: None,
            inbound_url: None,
            max_attempts: default_callback_attempts(),
            backoff_base_ms: default_callback_backoff_base_ms(),
            backoff_max_ms: default_callback_backoff_max_ms(),
            timeout_ms: default_callback_timeout_ms(),
            allowed_hosts: Vec::new(),
        }
    }
}

fn default_callback_attempts() -> u32 {
    10
}
fn default_callback_backoff_base_ms() -> u64 {
    1000
}
fn default_callback_backoff_max_ms() -> u64 {
    300_000
}
fn default_callback_timeout_ms() -> u64 {
    5000
}

fn default_concurrency() -> usize {
    256
}
fn default_max_attempts() -> u32 {
    5
}
fn default_backoff_base_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_lease_ms() -> u64 {
    60_000
}

/// `[[connectors]]`: one configured plugin instance.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// `name = "twilio"`: unique; used in attempts, logs and `/v1/webhooks/{name}`.
    pub name: Spanned<String>,
    /// `plugin = "sms_twilio.wasm"`: a file in `plugins.dir`.
    pub plugin: Spanned<PathBuf>,
    /// `channel = "sms"`
    pub channel: Channel,
    /// `allowed_hosts = ["https://api.twilio.com"]`: the only origins the plugin may call.
    pub allowed_hosts: Spanned<Vec<crate::origin::Origin>>,
    /// `max_attempts = 3`: overrides `dispatch.max_attempts` for this connector.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// `cost = { default = 0.0079, EU = 0.072 }`: price per message by region, for `strategy = "cheapest"`.
    #[serde(default)]
    pub cost: std::collections::BTreeMap<String, f64>,
    /// `regions = ["EU"]`: the only regions whose customers this connector
    /// serves (`default` for those in no region); without it, every region.
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    /// `[connectors.senders]` `NL = ["+3197010520001", ...]`: the numbers
    /// or sender IDs to send from, per destination country, region or
    /// `default` (see [`crate::routing::senders`]).
    #[serde(default)]
    pub senders: std::collections::BTreeMap<String, Vec<String>>,
    /// `expect_report_within = "10m"`: a message this connector sent and no
    /// report called delivered within this long goes to the plan's next
    /// delivery (failover on silence; a category may turn it off).
    #[serde(default, with = "super::journeys::optional_duration")]
    pub expect_report_within: Option<i64>,
    /// `rate = "30/s"` (or `/m`, `/h`): the provider account's limit, held
    /// by every node together (see [`crate::pacing`]).
    #[serde(default)]
    pub rate: Option<Spanned<String>>,
    /// `burst = 1`: turns that may be taken at once after a quiet spell.
    #[serde(default)]
    pub burst: Option<u32>,
    /// `push_format = "web-push"`: push connectors only; which push addresses
    /// the connector takes, `"token"` (the default, FCM) or `"web-push"`.
    #[serde(default)]
    pub push_format: Option<crate::customer::PushFormat>,
    /// `calls_per_instance = 1`: calls one sandbox instance may serve in a
    /// row. 1 (the default) is a fresh instance per call; more saves the
    /// instantiation but lets a call see what the one before left in memory.
    #[serde(default)]
    pub calls_per_instance: Option<Spanned<u32>>,
    /// `[connectors.config]`: handed to the plugin; `env:NAME` values are read from the environment.
    #[serde(default)]
    pub config: std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// Secrets may hide in `config`: never print it.
impl fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorConfig")
            .field("name", self.name.get_ref())
            .field("plugin", self.plugin.get_ref())
            .field("channel", &self.channel)
            .field("allowed_hosts", self.allowed_hosts.get_ref())
            .field(
                "config",
                &self.config.keys().map(|k| k.get_ref()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// `[templates]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatesConfig {
    /// `dir = "config/templates"`: one folder per template; without it, no templates.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// `[unsubscribe]`: one-click unsubscribe links (RFC 8058) in email of
/// opt-in categories.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeConfig {
    /// `secret = "env:CROSSGATE_UNSUBSCRIBE_SECRET"`: signs the links; without it, no links.
    #[serde(default)]
    pub secret: Option<Spanned<String>>,
    /// `mailto = "unsubscribe@shop.example"`: also offered in `List-Unsubscribe`.
    #[serde(default)]
    pub mailto: Option<Spanned<String>>,
    /// `valid_for = "60d"`: how long a link works after the mail was sent.
    #[serde(
        default = "default_unsubscribe_valid_for",
        deserialize_with = "crate::routing::policy::duration_ms"
    )]
    pub valid_for: i64,
}

impl Default for UnsubscribeConfig {
    fn default() -> Self {
        UnsubscribeConfig {
            secret: None,
            mailto: None,
            valid_for: default_unsubscribe_valid_for(),
        }
    }
}

fn default_unsubscribe_valid_for() -> i64 {
    60 * 86_400_000
}

/// `[broadcasts]`: how broadcasts fan out, below transactional sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastsConfig {
    /// `rate_per_second = 200`: members planned per second when the
    /// broadcast names no rate.
    #[serde(default = "default_broadcast_rate")]
    pub rate_per_second: u32,
    /// `max_backlog = 1000`: no further members are planned while more
    /// deliveries than this wait to go out.
    #[serde(default = "default_broadcast_backlog")]
    pub max_backlog: u64,
    /// `tick_ms = 250`: how often broadcasts due are looked for.
    #[serde(default = "default_broadcast_tick_ms")]
    pub tick_ms: u64,
    /// `lease_ms = 60000`: how long a dead node's broadcast waits before
    /// another node resumes it.
    #[serde(default = "default_broadcast_lease_ms")]
    pub lease_ms: u64,
}

impl Default for BroadcastsConfig {
    fn default() -> Self {
        BroadcastsConfig {
            rate_per_second: default_broadcast_rate(),
            max_backlog: default_broadcast_backlog(),
            tick_ms: default_broadcast_tick_ms(),
            lease_ms: default_broadcast_lease_ms(),
        }
    }
}

fn default_broadcast_rate() -> u32 {
    200
}

fn default_broadcast_backlog() -> u64 {
    1000
}

fn default_broadcast_tick_ms() -> u64 {
    250
}

fn default_broadcast_lease_ms() -> u64 {
    60_000
}

/// `[retention]`: how long finished history is kept. What is still open
/// (a queued or scheduled message, an event journeys have not applied) is
/// kept however old it is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// `messages = "400d"`: finished messages (sent, delivered, failed,
    /// suppressed, ...) older than this go, with their deliveries,
    /// attempts and status history.
    #[serde(default = "default_retention", with = "super::journeys::duration")]
    pub messages: i64,
    /// `events = "400d"`: customer events journeys have applied, older
    /// than this, go.
    #[serde(default = "default_retention", with = "super::journeys::duration")]
    pub events: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            messages: default_retention(),
            events: default_retention(),
        }
    }
}

/// 400 days: a year's reports and attribution, with a month to spare.
fn default_retention() -> i64 {
    400 * 86_400_000
}

/// `[journey_runner]`: how runs are moved on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyRunnerConfig {
    /// `tick_ms = 500`: how often due timers and new events are looked for
    /// (an event also wakes the runner at once).
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// `max_event_delay = "1d"`: an event that reached the gateway longer
    /// than this after it occurred starts no journey (a day-old cart is no
    /// reason for a reminder now); it still ends runs and counts for waits.
    #[serde(
        default = "default_max_event_delay",
        with = "crate::config::journeys::duration"
    )]
    pub max_event_delay: i64,
}

fn default_max_event_delay() -> i64 {
    86_400_000
}

impl Default for JourneyRunnerConfig {
    fn default() -> Self {
        JourneyRunnerConfig {
            tick_ms: default_tick_ms(),
            max_event_delay: default_max_event_delay(),
        }
    }
}

/// `[clock]`: the gateway's time (see [`crate::clock`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// `mode = "system"`; `"manual"` is for tests and rehearsals on loopback:
    /// it starts at `start` and `POST /v1/admin/clock` moves it forward.
    #[serde(default)]
    pub mode: ClockMode,
    /// `start = "2026-03-02T03:30:00Z"`: where a manual clock starts (default:
    /// now), so a test pins the hour it depends on.
    #[serde(default)]
    pub start: Option<jiff::Timestamp>,
}

fn default_tick_ms() -> u64 {
    500
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    #[default]
    System,
    Manual,
}

/// `[inbox]`: the two channels the gateway delivers itself (`inbox`,
/// `in_app`) and the customer's own feed API. Off without `secret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// `secret = "env:CROSSGATE_INBOX_SECRET"`: the key customer feed
    /// tokens are signed with (by the platform's backend, or the gateway's
    /// `POST /v1/inbox/tokens`). Without it the feed channels are off.
    #[serde(default)]
    pub secret: Option<Spanned<String>>,
    /// `allowed_origins = ["https://app.shop.example"]`: web pages that
    /// may call the feed API from the browser (CORS). None: only apps that
    /// are not browsers, and pages the gateway serves itself.
    #[serde(default)]
    pub allowed_origins: Vec<crate::origin::Origin>,
    /// `reachable_within = "30d"`: a customer whose feed was not opened
    /// within this is not reachable on `inbox` or `in_app`: the planner
    /// moves on to the next channel.
    #[serde(
        default = "default_reachable_within",
        deserialize_with = "crate::routing::policy::duration_ms"
    )]
    pub reachable_within: i64,
    /// `in_app_ttl = "24h"`: how long an in-app message waits to be seen;
    /// unseen by then, it is gone and the plan's next channel goes.
    #[serde(
        default = "default_in_app_ttl",
        deserialize_with = "crate::routing::policy::duration_ms"
    )]
    pub in_app_ttl: i64,
    /// `max_token_age = "30d"`: a feed token valid for longer than this
    /// from now is refused, so a leaked token cannot be made to live forever.
    #[serde(
        default = "default_max_token_age",
        deserialize_with = "crate::routing::policy::duration_ms"
    )]
    pub max_token_age: i64,
    /// `cost = { default = 0.0 }`: price per message by region of both
    /// feed channels, for `strategy = "cheapest"` and reports.
    #[serde(default)]
    pub cost: std::collections::BTreeMap<String, f64>,
    /// `max_streams = 10000`: live feed connections this node serves at once.
    #[serde(default = "default_max_streams")]
    pub max_streams: usize,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            secret: None,
            allowed_origins: Vec::new(),
            reachable_within: default_reachable_within(),
            in_app_ttl: default_in_app_ttl(),
            max_token_age: default_max_token_age(),
            cost: std::collections::BTreeMap::new(),
            max_streams: default_max_streams(),
        }
    }
}

fn default_reachable_within() -> i64 {
    30 * 86_400_000
}

fn default_in_app_ttl() -> i64 {
    86_400_000
}

fn default_max_token_age() -> i64 {
    30 * 86_400_000
}

fn default_max_streams() -> usize {
    10_000
}

/// `[health]`: each connector's circuit (see [`crate::health`]). Its
/// attempts are counted over a sliding window by every node together (in
/// the store); past `open_at` of them failing, the circuit opens and the
/// connector is skipped, then probed again after `open_for`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// `enabled = true`: `false` keeps every circuit closed.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `window = "60s"`: how far back attempts count.
    #[serde(default = "default_health_window", with = "super::journeys::duration")]
    pub window: i64,
    /// `min_attempts = 20`: fewer attempts in the window say nothing.
    #[serde(default = "default_min_attempts")]
    pub min_attempts: u32,
    /// `open_at = 0.5`: the share of failed attempts that opens the circuit.
    #[serde(default = "default_open_at")]
    pub open_at: f64,
    /// `open_for = "30s"`: how long an open circuit skips its connector
    /// before letting probes through.
    #[serde(default = "default_open_for", with = "super::journeys::duration")]
    pub open_for: i64,
    /// `probes = 3`: successful probes that close a half-open circuit (and
    /// how many may be in flight on one node at once).
    #[serde(default = "default_probes")]
    pub probes: u32,
    /// `sync_ms = 1000`: how often a node adds its counts to the store's
    /// and reads every node's.
    #[serde(default = "default_sync_ms")]
    pub sync_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            enabled: true,
            window: default_health_window(),
            min_attempts: default_min_attempts(),
            open_at: default_open_at(),
            open_for: default_open_for(),
            probes: default_probes(),
            sync_ms: default_sync_ms(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_health_window() -> i64 {
    60_000
}
fn default_min_attempts() -> u32 {
    20
}
fn default_open_at() -> f64 {
    0.5
}
fn default_open_for() -> i64 {
    30_000
}
fn default_probes() -> u32 {
    3
}
fn default_sync_ms() -> u64 {
    1_000
}
