//! Operator configuration: TOML in, a validated [`Config`] out, or a
//! [`ConfigReport`] with every problem, its key, line and column.
//!
//! Each top-level section (and each `[[connectors]]` entry) is deserialised on
//! its own, so one typo does not hide the next: `crossgate check` shows them all.

mod report;
mod schema;

pub use report::{ConfigError, ConfigReport};
pub use schema::{
    AllowedHost, CallbacksConfig, ConnectorConfig, DispatchConfig, MessagesConfig, PluginsConfig,
    ServerConfig, StorageConfig,
};

use crate::routing::policy::{CategoryConfig, ConnectorRoute, Policy, RoutingConfig};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

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
}

/// A `[[connectors]]` entry, resolved.
#[derive(Clone)]
pub struct Connector {
    pub name: String,
    pub plugin: PathBuf,
    pub channel: crate::message::Channel,
    pub allowed_hosts: Vec<AllowedHost>,
    /// Attempts before the next connector is tried.
    pub max_attempts: u32,
    /// Price per message by region (`default` for the rest).
    pub cost: BTreeMap<String, f64>,
    pub push_format: crate::routing::PushFormat,
    /// `[connectors.config]` with `env:` secrets resolved; never logged.
    pub settings: Vec<(String, String)>,
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
    /// The SQLite file named by `storage.url`.
    pub fn sqlite_path(&self) -> PathBuf {
        sqlite_path(self.storage.url.get_ref()).unwrap_or_else(|| PathBuf::from("crossgate.db"))
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
            categories: self.categories.clone(),
            connectors: self
                .connectors
                .iter()
                .map(|c| ConnectorRoute {
                    name: c.name.clone(),
                    channel: c.channel,
                    cost: c.cost.clone(),
                    push_format: c.push_format,
                })
                .collect(),
        }
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
    let config = parse(&name, &text, &|var| std::env::var(var).ok())?;
    Ok((config, text))
}

/// Parse and validate TOML text. `env` looks up `env:NAME` secrets.
pub fn parse(
    source_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigReport> {
    let mut errors = Vec::new();
    let config = parse_sections(text, env, &mut errors);
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(ConfigReport::new(source_name, text, errors)),
    }
}

fn parse_sections(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<Config> {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            errors.push(ConfigError::new("", e.span(), e.message().trim_end()));
            return None;
        }
    };
    let mut config = Config::default();
    let mut raw_connectors = Vec::new();
    for (key, value) in root.get_ref().iter() {
        let name = key.get_ref().as_ref();
        match name {
            "server" => section(name, value, errors).map(|s| config.server = s),
            "storage" => section(name, value, errors).map(|s| config.storage = s),
            "plugins" => section(name, value, errors).map(|s| config.plugins = s),
            "dispatch" => section(name, value, errors).map(|s| config.dispatch = s),
            "messages" => section(name, value, errors).map(|s| config.messages = s),
            "callbacks" => section(name, value, errors).map(|s| config.callbacks = s),
            "regions" => section(name, value, errors).map(|s| config.regions = s),
            "routing" => section(name, value, errors).map(|s| config.routing = s),
            "categories" => match value.get_ref() {
                // One category at a time, so a mistake in one does not hide the next.
                DeValue::Table(categories) => {
                    for (category, body) in categories.iter() {
                        let key = format!("categories.{}", category.get_ref());
                        if let Some(c) = section::<CategoryConfig>(&key, body, errors) {
                            config.categories.insert(category.get_ref().to_string(), c);
                        }
                    }
                    Some(())
                }
                _ => section(name, value, errors).map(|s| config.categories = s),
            },
            "connectors" => match value.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = format!("connectors[{i}]");
                        if let Some(c) = section::<ConnectorConfig>(&key, item, errors) {
                            raw_connectors.push((key, item.span(), c));
                        }
                    }
                    Some(())
                }
                _ => {
                    errors.push(ConfigError::new(
                        name,
                        Some(value.span()),
                        "must be an array of tables: write [[connectors]]",
                    ));
                    None
                }
            },
            _ => {
                errors.push(ConfigError::new(
                    name,
                    Some(key.span()),
                    "unknown section, expected one of server, storage, plugins, dispatch, messages, callbacks, regions, routing, categories, connectors",
                ));
                None
            }
        };
    }
    validate(&mut config, raw_connectors, env, errors);
    Some(config)
}

/// Deserialise one section on its own so its errors do not stop the others.
fn section<T: DeserializeOwned>(
    key: &str,
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    T::deserialize(ValueDeserializer::from(value.clone()))
        .map_err(|e| {
            let span = e.span().unwrap_or_else(|| value.span());
            let key = format!("{key}{}", key_at(value, &span));
            errors.push(ConfigError::new(key, Some(span), e.message().trim_end()));
        })
        .ok()
}

/// The path below `value` whose key or value covers `span`, e.g. `.listen`
/// or `.allowed_hosts[1]`, so an error names the exact key.
fn key_at(value: &Spanned<DeValue<'_>>, span: &std::ops::Range<usize>) -> String {
    let covers = |outer: std::ops::Range<usize>| outer.start <= span.start && span.end <= outer.end;
    match value.get_ref() {
        DeValue::Table(table) => table
            .iter()
            .find(|(k, v)| covers(k.span()) || covers(v.span()))
            .map(|(k, v)| format!(".{}{}", k.get_ref(), key_at(v, span)))
            .unwrap_or_default(),
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .find(|(_, v)| covers(v.span()))
            .map(|(i, v)| format!("[{i}]{}", key_at(v, span)))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Cross-field checks and secret resolution; every problem is collected.
fn validate(
    config: &mut Config,
    raw_connectors: Vec<(String, std::ops::Range<usize>, ConnectorConfig)>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    let mut api_keys = Vec::new();
    for (i, key) in config.server.api_keys.iter().enumerate() {
        match resolve_secret(key.get_ref(), env) {
            Ok(value) if value.len() >= 16 => api_keys.push(Spanned::new(key.span(), value)),
            Ok(_) => errors.push(ConfigError::new(
                format!("server.api_keys[{i}]"),
                Some(key.span()),
                "API keys must be at least 16 characters",
            )),
            Err(e) => errors.push(ConfigError::new(
                format!("server.api_keys[{i}]"),
                Some(key.span()),
                e,
            )),
        }
    }
    config.server.api_keys = api_keys;

    let url = &config.storage.url;
    if sqlite_path(url.get_ref()).is_none() {
        let message = if url.get_ref().starts_with("postgres") {
            "postgres storage is not available in this build yet; use sqlite://PATH"
        } else {
            "must be sqlite://PATH"
        };
        errors.push(ConfigError::new("storage.url", Some(url.span()), message));
    }

    let positive = [
        ("server.max_backlog", config.server.max_backlog),
        ("plugins.memory_limit_mb", config.plugins.memory_limit_mb),
        ("plugins.cpu_budget_ms", config.plugins.cpu_budget_ms),
        ("plugins.timeout_ms", config.plugins.timeout_ms),
        (
            "plugins.max_instances",
            u64::from(config.plugins.max_instances),
        ),
        ("dispatch.concurrency", config.dispatch.concurrency as u64),
        (
            "dispatch.max_attempts",
            u64::from(config.dispatch.max_attempts),
        ),
        ("dispatch.lease_ms", config.dispatch.lease_ms),
    ];
    for (key, value) in positive {
        if value == 0 {
            errors.push(ConfigError::new(key, None, "must be greater than 0"));
        }
    }
    if !(0..=19).contains(&config.dispatch.nice) {
        errors.push(ConfigError::new(
            "dispatch.nice",
            None,
            "must be between 0 (the API's priority) and 19 (the lowest)",
        ));
    }
    if config.dispatch.backoff_base_ms > config.dispatch.backoff_max_ms {
        errors.push(ConfigError::new(
            "dispatch.backoff_base_ms",
            None,
            "must not exceed dispatch.backoff_max_ms",
        ));
    }

    if let Some(secret) = &config.callbacks.secret {
        match resolve_secret(secret.get_ref(), env) {
            Ok(value) if value.len() >= 16 => {
                config.callbacks.secret = Some(Spanned::new(secret.span(), value));
            }
            Ok(_) => errors.push(ConfigError::new(
                "callbacks.secret",
                Some(secret.span()),
                "must be at least 16 characters",
            )),
            Err(e) => errors.push(ConfigError::new("callbacks.secret", Some(secret.span()), e)),
        }
    }
    if let Some(url) = &config.callbacks.default_url {
        if let Err(e) = callback_url(url.get_ref()) {
            errors.push(ConfigError::new(
                "callbacks.default_url",
                Some(url.span()),
                e,
            ));
        }
        if config.callbacks.secret.is_none() {
            errors.push(ConfigError::new(
                "callbacks.default_url",
                Some(url.span()),
                "needs callbacks.secret to sign callbacks",
            ));
        }
    }

    let mut countries = HashSet::new();
    for (region, members) in &config.regions {
        for spanned in members {
            let country = spanned.get_ref();
            let valid = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
            if !valid {
                errors.push(ConfigError::new(
                    format!("regions.{region}"),
                    Some(spanned.span()),
                    format!("{country:?} is not an ISO 3166-1 alpha-2 code like \"NL\""),
                ));
            } else if !countries.insert(country.clone()) {
                errors.push(ConfigError::new(
                    format!("regions.{region}"),
                    Some(spanned.span()),
                    format!("{country} is in more than one region"),
                ));
            }
        }
    }
    for region in config.routing.regions.keys() {
        if !config.regions.contains_key(region) {
            errors.push(ConfigError::new(
                format!("routing.regions.{region}"),
                None,
                format!("no region {region:?} in [regions]"),
            ));
        }
    }

    let mut names = HashSet::new();
    for (key, span, raw) in raw_connectors {
        let name = raw.name.get_ref();
        if !is_connector_name(name) {
            errors.push(ConfigError::new(
                format!("{key}.name"),
                Some(raw.name.span()),
                format!("{name:?} must be 1-64 characters of a-z, 0-9, - and _"),
            ));
        } else if !names.insert(name.clone()) {
            errors.push(ConfigError::new(
                format!("{key}.name"),
                Some(raw.name.span()),
                format!("duplicate connector name {name:?}"),
            ));
        }
        if raw.max_attempts == Some(0) {
            errors.push(ConfigError::new(
                format!("{key}.max_attempts"),
                Some(span.clone()),
                "must be greater than 0",
            ));
        }
        if raw.push_format.is_some() && raw.channel != crate::message::Channel::Push {
            errors.push(ConfigError::new(
                format!("{key}.push_format"),
                Some(span.clone()),
                "only push connectors take a push_format",
            ));
        }
        if raw.allowed_hosts.get_ref().is_empty() {
            errors.push(ConfigError::new(
                format!("{key}.allowed_hosts"),
                Some(raw.allowed_hosts.span()),
                "must list at least one origin the plugin may call",
            ));
        }
        let mut settings = Vec::new();
        for (setting, value) in &raw.config {
            let text = match value.get_ref() {
                toml::Value::String(s) => resolve_secret(s, env),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                _ => Err("must be a string, number or boolean".to_owned()),
            };
            match text {
                Ok(text) => settings.push((setting.clone(), text)),
                Err(e) => errors.push(ConfigError::new(
                    format!("{key}.config.{setting}"),
                    Some(value.span()),
                    e,
                )),
            }
        }
        config.connectors.push(Connector {
            name: name.clone(),
            plugin: raw.plugin.get_ref().clone(),
            plugin_span: raw.plugin.span(),
            channel: raw.channel,
            max_attempts: raw.max_attempts.unwrap_or(config.dispatch.max_attempts),
            cost: raw.cost.clone(),
            push_format: raw.push_format.unwrap_or_default(),
            allowed_hosts: raw.allowed_hosts.into_inner(),
            settings,
            span,
        });
    }
}

/// `env:NAME` reads the environment; anything else is taken literally.
/// `env:NAME` reads an environment variable, `file:PATH` a file (a service
/// account key), anything else is the value itself.
fn resolve_secret(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if let Some(var) = value.strip_prefix("env:") {
        return env(var).ok_or_else(|| format!("environment variable {var} is not set"));
    }
    if let Some(path) = value.strip_prefix("file:") {
        return std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
    }
    Ok(value.to_owned())
}

/// A status callback URL: absolute http or https.
pub fn callback_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(()),
        _ => Err(format!(
            "invalid URL {url:?}: must be an absolute http or https URL"
        )),
    }
}

fn is_connector_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn sqlite_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("sqlite://")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}
