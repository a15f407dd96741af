//! The part of the configuration that may change while the gateway runs:
//! regions, routing, categories, connectors with their plugins, templates and journeys. Each
//! request and each attempt takes the current version once; a reload
//! builds the next one completely (plugins loaded and checked) and swaps it
//! whole, so nothing sees half of one and half of the other, and an invalid
//! file changes nothing. Attempts in flight finish on the version they
//! started with; a delivery planned for a connector that a reload removed
//! fails over like any permanent failure.

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
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Live {
    pub fn new(routing: Routing, source: Option<PathBuf>) -> Self {
        Live {
            current: RwLock::new(Arc::new(routing)),
            source,
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
    /// with key, line and column). Only regions, routing, categories,
    /// connectors and templates take effect; the other sections need a restart.
    pub async fn reload(&self) -> Result<Vec<String>, String> {
        let _one = self.reloading.lock().await;
        let path = self.source.as_ref().ok_or(
            "the gateway started from the embedded default: start it with --config FILE to reload",
        )?;
        let (config, text) = config::load(path).map_err(|report| report.to_string())?;
        let name = path.display().to_string();
        let plugins = PluginHost::load(&config)
            .await
            .map_err(|errors| config::ConfigReport::new(&name, &text, errors).to_string())?;
        let templates = templates::for_config(&config).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            lines.join("\n")
        })?;
        let mistakes = crate::config::journeys::check_config(&config, &|t| {
            templates.get(t).map(|t| t.category.clone())
        });
        if !mistakes.is_empty() {
            return Err(config::ConfigReport::new(&name, &text, mistakes).to_string());
        }
        let routing = Routing::new(&config, plugins, templates);
        let mut connectors: Vec<String> = routing.connector_channels.keys().cloned().collect();
        connectors.sort();
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(routing);
        tracing::info!(?connectors, file = %name, "configuration reloaded");
        Ok(connectors)
    }
}
