//! Operator configuration: TOML in, a validated [`Config`] out, or a
//! [`ConfigReport`] with every problem, its key, line and column.
//!
//! [`load`] turns the text into sections, each with its own errors;
//! [`checks`] holds the named cross-field checks. `crossgate check` shows
//! every problem at once.

pub mod at_start;
mod checks;
pub mod conversions;
pub mod journeys;
mod load;
mod report;
mod schema;
pub mod segments;
pub mod shipped;

pub use report::{ConfigError, ConfigReport};
pub use schema::{
    ApiKeyConfig, BroadcastsConfig, CallbacksConfig, ClockConfig, ClockMode, ConnectorConfig,
    DispatchConfig, HealthConfig, InboxConfig, JourneyRunnerConfig, MessagesConfig, NamedKey,
    PluginsConfig, RetentionConfig, Scope, ServerConfig, StorageConfig, TemplatesConfig,
    UnsubscribeConfig,
};

use crate::routing::policy::{CategoryConfig, ConnectorRoute, Policy, RoutingConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The configuration the gateway starts from when none is given: the
/// commented `config/crossgate.toml`, built into the binary.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../config/crossgate.toml");

/// A validated configuration with secrets resolved.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub plugins: PluginsConfig,
    pub dispatch: DispatchConfig,
    pub messages: MessagesConfig,
    pub callbacks: CallbacksConfig,
    /// `[regions]`: region name to ISO 3166 countries.
    pub regions: BTreeMap<String, Vec<Spanned<String>>>,
    pub routing: RoutingConfig,
    /// `[categories.<name>]`
    pub categories: BTreeMap<String, CategoryConfig>,
    pub connectors: Vec<Connector>,
    pub templates: TemplatesConfig,
    /// `[journeys.<name>]`
    pub journeys: journeys::Journeys,
    pub journey_runner: JourneyRunnerConfig,
    pub clock: ClockConfig,
    /// `[segments.<name>]`
    pub segments: BTreeMap<String, segments::Segment>,
    pub broadcasts: BroadcastsConfig,
    /// `[conversions.<event>]`
    pub conversions: BTreeMap<String, conversions::Conversion>,
    /// `[experiments]`: the global control group.
    pub experiments: crate::routing::control::ExperimentsConfig,
    pub retention: RetentionConfig,
    /// `[health]`: connectors' circuits.
    pub health: HealthConfig,
    /// `[unsubscribe]`, its secret resolved.
    pub unsubscribe: UnsubscribeConfig,
    /// `[inbox]`, its secret resolved.
    pub inbox: InboxConfig,
    /// `server.api_keys`, secrets resolved.
    pub api_keys: Vec<ApiKey>,
    /// `storage.url`, resolved.
    pub database: Database,
    /// The file this was read from, which a reload reads again.
    pub source: Option<PathBuf>,
    /// What of it a running gateway reads only when it starts.
    pub at_start: at_start::AtStart,
}

/// A connector's `rate` and `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// `"30/s"`, `"600/m"`, `"3600/h"`.
    pub fn parse(text: &str, burst: u32) -> Result<Rate, String> {
        let (count, per) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: write a count per s, m or h, like \"30/s\""))?;
        let count: f64 = count
            .trim()
            .parse()
            .ok()
            .filter(|c: &f64| c.is_finite() && *c > 0.0)
            .ok_or_else(|| format!("{text:?}: the count must be a number above 0"))?;
        let seconds = match per.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("{text:?}: {other:?} is not s, m or h")),
        };
        if burst == 0 {
            return Err("burst must be at least 1".into());
        }
        Ok(Rate {
            per_second: count / seconds,
            burst,
        })
    }
}

/// Where state lives: one node's file, or a database nodes share.
#[derive(Clone)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` URL; it may hold a password, so it is never printed
    /// whole (see [`Database::describe`]).
    Postgres(String),
}

impl Default for Database {
    fn default() -> Self {
        Database::Sqlite(PathBuf::from(schema::DEFAULT_SQLITE_PATH))
    }
}

impl Database {
    /// For logs and reports: the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite://{}", path.display()),
            Database::Postgres(url) => checks::without_password(url),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// An API key a caller may present, with what it may do.
#[derive(Clone)]
pub struct ApiKey {
    pub name: String,
    pub secret: String,
    pub scopes: Vec<Scope>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A `[[connectors]]` entry, resolved.
#[derive(Clone)]
pub struct Connector {
    pub name: String,
    pub plugin: PathBuf,
    pub channel: crate::message::Channel,
    pub allowed_hosts: Vec<crate::origin::Origin>,
    /// Attempts before the next connector is tried.
    pub max_attempts: u32,
    /// Price per message by region (`default` for the rest).
    pub cost: BTreeMap<String, f64>,
    /// The regions it serves; `None`: every region.
    pub regions: Option<Vec<String>>,
    /// Senders per destination country, region or `default`.
    pub senders: BTreeMap<String, Vec<String>>,
    /// Failover on silence after this long (ms).
    pub expect_report_within: Option<i64>,
    /// The provider account's pace: turns per second and burst.
    pub rate: Option<Rate>,
    pub push_format: crate::customer::PushFormat,
    /// Calls one sandbox instance serves before a fresh one (1: every call).
    pub calls_per_instance: u32,
    /// `[connectors.config]` with `env:` secrets resolved; never logged.
    pub settings: Vec<(String, String)>,
    /// Where each `[connectors.config]` key is in the source: the plugin's
    /// declared settings are checked against them when it loads.
    pub setting_spans: BTreeMap<String, std::ops::Range<usize>>,
    /// Settings whose value is written in the file itself, not read from
    /// `env:` or `file:`: a secret among them is worth a word.
    pub written_in_file: std::collections::BTreeSet<String>,
    /// Where the entry and its `plugin` value are in the source, for errors
    /// found later, when plugins load.
    pub span: std::ops::Range<usize>,
    pub plugin_span: std::ops::Range<usize>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("name", &self.name)
            .field("plugin", &self.plugin)
            .field("channel", &self.channel)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// `server.node_name`, or one made from the host name and process id:
    /// unique among the nodes sharing a database without configuring it.
    pub fn node_name(&self) -> String {
        self.server.node_name.clone().unwrap_or_else(|| {
            let mut host = [0u8; 256];
            // SAFETY: the buffer is writable for its whole length.
            let ok = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
            let end = host.iter().position(|&b| b == 0).unwrap_or(0);
            let host = if ok {
                String::from_utf8_lossy(&host[..end]).into_owned()
            } else {
                "node".to_owned()
            };
            format!("{host}:{}", std::process::id())
        })
    }

    /// The routing policy the planner applies.
    pub fn policy(&self) -> Policy {
        Policy {
            regions: self
                .regions
                .iter()
                .flat_map(|(region, countries)| {
                    countries
                        .iter()
                        .map(move |c| (c.get_ref().clone(), region.clone()))
                })
                .collect(),
            routing: self.routing.clone(),
            categories: {
                let mut categories = self.categories.clone();
                categories
                    .entry(crate::routing::policy::DEFAULT_CATEGORY.to_owned())
                    .or_insert_with(CategoryConfig::transactional);
                categories
            },
            connectors: self
                .connectors
                .iter()
                .map(|c| ConnectorRoute {
                    name: c.name.clone(),
                    channel: c.channel,
                    cost: c.cost.clone(),
                    push_format: c.push_format,
                    regions: c.regions.clone(),
                    senders: c.senders.clone(),
                    expect_report_within: c.expect_report_within,
                })
                .chain(self.feed_connectors())
                .collect(),
            in_app_ttl: self.inbox.in_app_ttl,
            control: crate::routing::control::ControlGroup::new(&self.experiments),
        }
    }

    /// The gateway's own connectors of the feed channels, named like them,
    /// when `[inbox]` has a secret (without one no customer could read a feed).
    pub fn feed_connectors(&self) -> Vec<ConnectorRoute> {
        if self.inbox.secret.is_none() {
            return Vec::new();
        }
        let cost = if self.inbox.cost.is_empty() {
            BTreeMap::from([("default".to_owned(), 0.0)])
        } else {
            self.inbox.cost.clone()
        };
        [
            crate::message::Channel::Inbox,
            crate::message::Channel::InApp,
        ]
        .into_iter()
        .map(|channel| ConnectorRoute {
            name: channel.as_str().to_owned(),
            channel,
            cost: cost.clone(),
            push_format: crate::customer::PushFormat::default(),
            regions: None,
            senders: BTreeMap::new(),
            expect_report_within: None,
        })
        .collect()
    }

    /// Where a connector's plugin file lives.
    pub fn plugin_path(&self, connector: &Connector) -> PathBuf {
        self.plugins.dir.join(&connector.plugin)
    }
}

/// Read and validate a file, reading `env:` secrets from the process environment.
pub fn load(path: &Path) -> Result<(Config, String), ConfigReport> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigReport::new(
            &name,
            "",
            vec![ConfigError::new("", None, format!("cannot read: {e}"))],
        )
    })?;
    let mut config = parse(&name, &text, &|var| std::env::var(var).ok())?;
    config.source = Some(path.to_path_buf());
    Ok((config, text))
}

/// Parse and validate TOML text. `env` looks up `env:NAME` secrets.
pub fn parse(
    source_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigReport> {
    let mut errors = Vec::new();
    let config = load::parse_sections(text, env, &mut errors);
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(ConfigReport::new(source_name, text, errors)),
    }
}

pub use checks::{callback_url, without_password};
