//! The part of the configuration that may change while the gateway runs:
//! regions, routing, categories, connectors with their plugins, templates and journeys. Each
//! request and each attempt takes the current version once; a reload
//! builds the next one completely (plugins loaded and checked) and swaps it
//! whole, so nothing sees half of one and half of the other, and an invalid
//! file changes nothing. Attempts in flight finish on the version they
//! started with; a delivery planned for a connector that a reload removed
//! fails over like any permanent failure.

use crate::config::at_start::AtStart;
use crate::config::{self, Config};
use crate::message::Channel;
use crate::plugins::PluginHost;
use crate::routing::Policy;
use crate::templates::{self, Templates};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// One version of the reloadable configuration.
pub struct Routing {
    pub policy: Policy,
    /// Connector names per channel, in failover order.
    pub routes: HashMap<Channel, Vec<String>>,
    pub connector_channels: HashMap<String, Channel>,
    /// Attempts allowed per connector, by name.
    pub max_attempts: HashMap<String, u32>,
    pub plugins: Arc<PluginHost>,
    pub templates: Arc<Templates>,
    pub journeys: Arc<crate::config::journeys::Catalogue>,
    /// `[segments.<name>]`: ahead of those defined over the API.
    pub segments: Arc<std::collections::BTreeMap<String, crate::config::segments::Segment>>,
    /// `[conversions.<event>]`
    pub conversions:
        Arc<std::collections::BTreeMap<String, crate::config::conversions::Conversion>>,
}

impl Routing {
    pub fn new(config: &Config, plugins: PluginHost, templates: Templates) -> Self {
        let mut routes: HashMap<Channel, Vec<String>> = HashMap::new();
        for connector in &config.connectors {
            routes
                .entry(connector.channel)
                .or_default()
                .push(connector.name.clone());
        }
        Routing {
            policy: config.policy(),
            routes,
            connector_channels: config
                .connectors
                .iter()
                .map(|c| (c.name.clone(), c.channel))
                .collect(),
            max_attempts: config
                .connectors
                .iter()
                .map(|c| (c.name.clone(), c.max_attempts))
                .collect(),
            plugins: Arc::new(plugins),
            templates: Arc::new(templates),
            journeys: Arc::new(crate::config::journeys::Catalogue::new(&config.journeys)),
            segments: Arc::new(config.segments.clone()),
            conversions: Arc::new(config.conversions.clone()),
        }
    }
}

pub struct Live {
    current: RwLock<Arc<Routing>>,
    /// The file the gateway started from; without one there is nothing to reload.
    source: Option<PathBuf>,
    /// What the gateway read of that file at start and keeps until a restart.
    started: AtStart,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Live {
    pub fn new(routing: Routing, config: &Config) -> Self {
        Live {
            current: RwLock::new(Arc::new(routing)),
            source: config.source.clone(),
            started: config.at_start.clone(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub fn current(&self) -> Arc<Routing> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Read the file again and switch to it, or say why not (every error,
    /// with key, line and column). What [`Routing`] holds takes effect; the
    /// file's changes to what was read at start are named, to wait for a
    /// restart ([`AtStart`]).
    pub async fn reload(&self) -> Result<Reloaded, String> {
        let _one = self.reloading.lock().await;
        let (name, ready) = self.read_source().await?;
        let restart_needed = self.started.changed_in(&ready.config.at_start);
        let routing = Routing::new(&ready.config, ready.plugins, ready.templates);
        let mut connectors: Vec<String> = routing.connector_channels.keys().cloned().collect();
        connectors.sort();
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(routing);
        tracing::info!(?connectors, ?restart_needed, file = %name, "configuration reloaded");
        Ok(Reloaded {
            connectors,
            restart_needed,
        })
    }

    /// What `crossgate check` says of the file the gateway started from, as
    /// it is on disk now: what a reload would load, or why it would refuse,
    /// and which of its changes a reload would leave for a restart.
    pub async fn check(&self) -> Result<String, String> {
        let _one = self.reloading.lock().await;
        let (name, ready) = self.read_source().await?;
        let mut summary = ready.summary(&name);
        let waiting = self.started.changed_in(&ready.config.at_start);
        if !waiting.is_empty() {
            summary += &format!(
                "\nchanged, in effect only after a restart: {}",
                waiting.join(", ")
            );
        }
        Ok(summary)
    }

    async fn read_source(&self) -> Result<(String, Ready), String> {
        let path = self.source.as_ref().ok_or(
            "the gateway started from the embedded default: start it with --config FILE to reload",
        )?;
        let (config, text) = config::load(path).map_err(|report| report.to_string())?;
        let name = path.display().to_string();
        let ready = Ready::prepare(&name, &text, config).await?;
        Ok((name, ready))
    }
}

/// What a reload switched to, and what it could not.
pub struct Reloaded {
    /// The connectors now configured, sorted.
    pub connectors: Vec<String>,
    /// Start-only keys the file changed since the gateway started
    /// (`dispatch`, `connectors.twilio.rate`): in effect after a restart.
    pub restart_needed: Vec<String>,
}

/// A configuration made ready to run: its plugins loaded, its templates
/// compiled and rendered with their examples, its journeys checked against
/// them. `crossgate check`, a reload and the console's check all take this
/// one path, so what `check` passes is what a reload takes.
pub struct Ready {
    pub config: Config,
    pub plugins: PluginHost,
    pub templates: Templates,
    /// The plugins' warnings, each at its file, line and column.
    pub warnings: String,
}

impl Ready {
    /// `config`, read from `text` in the file called `name`, made ready;
    /// or every problem found, each as `file:line:column: ...`.
    pub async fn prepare(name: &str, text: &str, config: Config) -> Result<Ready, String> {
        let plugins = PluginHost::load(&config).await;
        let templates = templates::for_config(&config);
        let mut report = String::new();
        if let Err(errors) = &plugins {
            report += &config::ConfigReport::new(name, text, errors.clone()).to_string();
        }
        match &templates {
            Err(errors) => {
                for error in errors {
                    report += &format!("{error}\n");
                }
            }
            Ok(templates) => {
                let mistakes = crate::config::journeys::check_config(&config, &|t| {
                    templates.get(t).map(|t| t.category.clone())
                });
                if !mistakes.is_empty() {
                    report += &config::ConfigReport::new(name, text, mistakes).to_string();
                }
            }
        }
        match (plugins, templates) {
            (Ok(plugins), Ok(templates)) if report.is_empty() => {
                let warnings = match plugins.warnings() {
                    [] => String::new(),
                    some => config::ConfigReport::new(name, text, some.to_vec()).to_string(),
                };
                Ok(Ready {
                    config,
                    plugins,
                    templates,
                    warnings,
                })
            }
            _ => Err(report),
        }
    }

    /// What `crossgate check` prints: a line, and the warnings after it.
    pub fn summary(&self, name: &str) -> String {
        let mut summary = format!(
            "{name}: ok ({} connectors loaded, {} templates checked, {} journeys)",
            self.plugins.connectors().count(),
            self.templates.len(),
            self.config.journeys.len()
        );
        if !self.warnings.is_empty() {
            summary += &format!("\nwarnings:\n{}", self.warnings.trim_end());
        }
        summary
    }
}
