//! The wasmtime host: every connector runs as a sandboxed component.
//!
//! One [`Engine`] per process with a pooling allocator and epoch interruption;
//! components are compiled once and cached on disk ([`cache`]); each connector
//! keeps an `InstancePre`, and every call gets a fresh `Store` that is dropped
//! afterwards, so a trapped or timed-out instance is never entered again
//! (unless the operator lets a healthy instance serve several calls: [`reuse`]).
//! The only way out of the sandbox is `wasi:http`, checked by [`egress`].

mod bindings;
mod cache;
mod connector_cache;
mod contract;
mod egress;
mod epoch;
mod exports;
mod file_kind;
mod last_words;
mod legacy;
mod limits;
#[cfg(feature = "native-baseline")]
mod native;
mod outcome;
#[cfg(feature = "native-baseline")]
pub mod phases;
#[cfg(not(feature = "native-baseline"))]
mod phases;
mod reuse;
mod sandbox;
mod scope;
mod settings;
mod untrusted;

pub use contract::SUPPORTED_CONTRACTS;
pub use limits::CallLimits;
pub use outcome::{Failure, Receipt};
pub use scope::{Answer, Exchange, Transcript};
pub use settings::{Declared, SettingKind};

use crate::config::{Config, ConfigError, Connector as ConnectorConfig};
use crate::message::{Channel, Content, ProviderState};
use crate::outbound::OutboundClient;
use anyhow::Context as _;
use contract::{ConnectorPre, Instance};
use phases::Phase;
use sandbox::CallState;
use scope::Scope;
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

/// One attempt as a connector gets it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Stable across attempts: providers that deduplicate use it as the key.
    pub message_id: &'a str,
    /// 1 for the first attempt on this delivery.
    pub attempt: u32,
    pub channel: Channel,
    pub to: &'a str,
    pub content: &'a Content,
    /// The number or sender ID to send from, when a sender pool chose one.
    pub sender: Option<&'a str>,
}

/// A provider callback as the gateway received it.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub method: String,
    /// The public URL the provider called: what it signed.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a connector read from a provider callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Status {
        provider_message_id: String,
        state: ProviderState,
        code: Option<String>,
        description: Option<String>,
    },
    /// The address asked to stop (STOP, unsubscribe, spam complaint).
    OptOut(String),
    /// The address asked to receive messages again (START).
    OptIn(String),
    /// The provider says the address does not exist (a hard bounce).
    Undeliverable { address: String, reason: String },
    /// A customer wrote back.
    Message(InboundMessage),
}

impl Inbound {
    /// Whether applying it changes consent or the suppression list: what a
    /// replayed callback must not do twice.
    pub fn changes_consent(&self) -> bool {
        matches!(
            self,
            Inbound::OptOut(_) | Inbound::OptIn(_) | Inbound::Undeliverable { .. }
        )
    }
}

/// A reply from a customer, as the connector read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The sender's address as the provider gave it.
    pub from: String,
    pub text: String,
    /// The reply's own provider id: a repeated callback is one reply.
    pub provider_message_id: String,
    /// The provider id of the message it answers, when the provider says.
    pub in_reply_to: Option<String>,
}

/// Why a connector did not take a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookRejection {
    /// Not provably from the provider: bad or missing signature.
    Unauthorized(String),
    /// From the provider but unreadable.
    Malformed(String),
    /// The connector takes no callbacks.
    Unsupported,
    /// The sandbox stopped the call (trap, timeout, unknown connector).
    Failed(Failure),
}

/// What one `deliver` call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub result: Result<Receipt, Failure>,
    /// Addresses the connector reported dead, with its reason: the gateway
    /// removes them from the customer's profile.
    pub dead_addresses: Vec<(String, String)>,
}

/// What `describe` told us about a loaded plugin.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub sdk_version: String,
    pub contract_version: String,
    pub channel: Channel,
    pub description: String,
}

/// What `crossgate plugin inspect` reads from a plugin.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub info: PluginInfo,
    /// The `[connectors.config]` keys it declares (none before contract 0.3).
    pub settings: Vec<Declared>,
}

/// A connector ready to be called: its plugin compiled and pre-linked.
struct LoadedConnector {
    scope: Arc<Scope>,
    info: PluginInfo,
    pre: ConnectorPre,
    shelf: reuse::Shelf,
}

/// All connectors of one gateway, sharing one engine and one provider client.
pub struct PluginHost {
    engine: Engine,
    limits: CallLimits,
    client: OutboundClient,
    connectors: HashMap<String, Arc<LoadedConnector>>,
    shelf_space: reuse::ShelfSpace,
    /// `make bench`'s baseline: connectors served outside the sandbox.
    #[cfg(feature = "native-baseline")]
    native: HashMap<String, (PluginInfo, native::NativeTwilio)>,
    ticker: epoch::EpochTicker,
    /// What loading found worth saying that does not stop the gateway.
    warnings: Vec<ConfigError>,
}

impl PluginHost {
    /// Compile (or load from cache), link and check every configured connector.
    ///
    /// Returns every problem at once, each tied to its `[[connectors]]` entry.
    pub async fn load(config: &Config) -> Result<PluginHost, Vec<ConfigError>> {
        let limits = CallLimits::from_config(&config.plugins);
        let engine = sandbox::engine(&config.plugins).map_err(|e| {
            vec![ConfigError::new(
                "plugins",
                None,
                format!("cannot create the wasm engine: {e:#}"),
            )]
        })?;
        let linker = contract::linker(&engine).map_err(|e| {
            vec![ConfigError::new(
                "plugins",
                None,
                format!("cannot link host functions: {e:#}"),
            )]
        })?;
        let client = OutboundClient::new();
        let mut host = PluginHost {
            ticker: epoch::EpochTicker::start(engine.clone()),
            engine,
            limits,
            client,
            connectors: HashMap::new(),
            shelf_space: reuse::ShelfSpace::new(config.plugins.max_instances),
            #[cfg(feature = "native-baseline")]
            native: HashMap::new(),
            warnings: Vec::new(),
        };
        let exposure = if config.server.listen.ip().is_loopback() {
            settings::Exposure::Loopback
        } else {
            settings::Exposure::Reachable
        };
        let mut errors = Vec::new();
        for (i, connector) in config.connectors.iter().enumerate() {
            let key = format!("connectors[{i}]");
            #[cfg(feature = "native-baseline")]
            if connector.plugin.as_os_str() == native::PLUGIN {
                match native::NativeTwilio::new(&connector.settings, host.client.clone()) {
                    Ok(native) => {
                        let info = native::NativeTwilio::info(connector.channel);
                        host.native.insert(connector.name.clone(), (info, native));
                    }
                    Err(e) => errors.push(ConfigError::new(key, None, format!("{e:#}"))),
                }
                continue;
            }
            let component = match host.component(config, connector) {
                Ok(component) => component,
                Err(e) => {
                    errors.push(ConfigError::new(
                        format!("{key}.plugin"),
                        Some(connector.plugin_span.clone()),
                        format!("{e:#}"),
                    ));
                    continue;
                }
            };
            let at_its_key = |m: settings::Mistake| {
                ConfigError::new(format!("{key}.config{}", m.key), Some(m.span), m.message)
            };
            match host
                .load_one(connector, &component, &linker, exposure)
                .await
            {
                Ok(Ok((loaded, warnings))) => {
                    host.connectors
                        .insert(connector.name.clone(), Arc::new(loaded));
                    host.warnings.extend(warnings.into_iter().map(at_its_key));
                }
                // Each mistake at its own key, with its line and column.
                Ok(Err(mistakes)) => errors.extend(mistakes.into_iter().map(at_its_key)),
                Err(e) => errors.push(ConfigError::new(
                    key,
                    Some(connector.span.clone()),
                    format!("connector {:?}: {e:#}", connector.name),
                )),
            }
        }
        if errors.is_empty() {
            Ok(host)
        } else {
            Err(errors)
        }
    }

    /// The plugin file, compiled (or loaded from the cache).
    fn component(&self, config: &Config, connector: &ConnectorConfig) -> anyhow::Result<Component> {
        let path = config.plugin_path(connector);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read plugin {}", path.display()))?;
        if let Some(why) = file_kind::not_a_component(&bytes) {
            anyhow::bail!("plugin {}: {why}", path.display());
        }
        cache::compile(&self.engine, &bytes, &config.plugins.cache_dir)
            .with_context(|| format!("cannot compile plugin {}", path.display()))
    }

    /// Check the contract version, link, and ask the plugin about itself and its config.
    /// Its warnings beside it, or every mistake that keeps it from loading.
    async fn load_one(
        &self,
        connector: &ConnectorConfig,
        component: &Component,
        linker: &Linker<CallState>,
        exposure: settings::Exposure,
    ) -> anyhow::Result<Result<(LoadedConnector, Vec<settings::Mistake>), Vec<settings::Mistake>>>
    {
        let scope = Scope {
            name: Arc::from(connector.name.as_str()),
            settings: connector.settings.clone(),
            allowed_hosts: connector.allowed_hosts.clone(),
            cache: Default::default(),
            transcript: None,
        };
        let (loaded, declared) = self
            .introduce(scope, component, linker, connector.calls_per_instance)
            .await?;
        if loaded.info.channel != connector.channel {
            anyhow::bail!(
                "plugin {} serves {}, but the connector is configured for {}",
                loaded.info.name,
                loaded.info.channel,
                connector.channel
            );
        }
        let (warnings, mistakes): (Vec<_>, Vec<_>) =
            settings::check(&declared, connector, exposure)
                .into_iter()
                .partition(|m| m.warning);
        if !mistakes.is_empty() {
            return Ok(Err(mistakes));
        }
        let validated = self
            .call(&loaded, |c, store| {
                Box::pin(async move { c.validate_config(store).await })
            })
            .await
            .map_err(|f| anyhow::anyhow!("validate-config failed: {}", f.message))?;
        if let Err(refusal) = validated {
            return Ok(Err(vec![settings::refusal_at_its_key(&refusal, connector)]));
        }
        Ok(Ok((loaded, warnings)))
    }

    /// Link `component` under `scope` and ask it what it is (`describe`)
    /// and which settings it reads.
    async fn introduce(
        &self,
        scope: Scope,
        component: &Component,
        linker: &Linker<CallState>,
        calls_per_instance: u32,
    ) -> anyhow::Result<(LoadedConnector, Vec<settings::Declared>)> {
        let (pre, contract_version) = ConnectorPre::new(&self.engine, linker, component)?;
        let mut loaded = LoadedConnector {
            scope: Arc::new(scope),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                sdk_version: String::new(),
                contract_version,
                channel: Channel::Sms,
                description: String::new(),
            },
            pre,
            shelf: reuse::Shelf::new(calls_per_instance),
        };
        let described = self
            .call(&loaded, |c, store| {
                Box::pin(async move { c.describe(store).await })
            })
            .await
            .map_err(|f| anyhow::anyhow!("describe failed: {}", f.message))?;
        loaded.info = PluginInfo {
            name: untrusted::text(&described.name, 64),
            version: untrusted::text(&described.version, 64),
            sdk_version: untrusted::text(&described.sdk_version, 64),
            contract_version: loaded.info.contract_version,
            channel: contract::channel_from_wit(described.channel),
            description: untrusted::text(&described.description, 256),
        };
        let declared = self
            .call(&loaded, |c, store| {
                Box::pin(async move { c.settings(store).await })
            })
            .await
            .map_err(|f| anyhow::anyhow!("settings failed: {}", f.message))?;
        Ok((loaded, declared))
    }

    /// Keep every whole request `connector` makes from now on, with its
    /// answer, for `crossgate plugin run` to print. `None` when there is no
    /// such connector or a call holds it.
    pub fn transcribe(&mut self, connector: &str) -> Option<Arc<scope::Transcript>> {
        let loaded = Arc::get_mut(self.connectors.get_mut(connector)?)?;
        let scope = &loaded.scope;
        let transcript = Arc::new(scope::Transcript::default());
        loaded.scope = Arc::new(Scope {
            name: scope.name.clone(),
            settings: scope.settings.clone(),
            allowed_hosts: scope.allowed_hosts.clone(),
            cache: Default::default(),
            transcript: Some(transcript.clone()),
        });
        Some(transcript)
    }

    /// What a plugin file says of itself, with no connector configured:
    /// `crossgate plugin inspect`. A file that is no component says what to
    /// build instead.
    pub async fn inspect(&self, bytes: &[u8]) -> anyhow::Result<Inspected> {
        if let Some(why) = file_kind::not_a_component(bytes) {
            anyhow::bail!("{why}");
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let linker = contract::linker(&self.engine)?;
        let scope = Scope {
            name: Arc::from("inspect"),
            settings: Vec::new(),
            allowed_hosts: Vec::new(),
            cache: Default::default(),
            transcript: None,
        };
        let (loaded, settings) = self.introduce(scope, &component, &linker, 1).await?;
        Ok(Inspected {
            info: loaded.info,
            settings,
        })
    }

    /// What loading found worth saying that does not stop the gateway
    /// (a secret written in the file of a gateway on loopback).
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// The channel of every loaded connector, by name.
    pub fn connectors(&self) -> impl Iterator<Item = (&str, &PluginInfo)> {
        let loaded = self
            .connectors
            .iter()
            .map(|(name, c)| (name.as_str(), &c.info));
        #[cfg(feature = "native-baseline")]
        let loaded = loaded.chain(
            self.native
                .iter()
                .map(|(name, (info, _))| (name.as_str(), info)),
        );
        loaded
    }

    /// Instances each connector that keeps them (`calls_per_instance` above
    /// 1) holds between calls now: for `/metrics`.
    pub fn kept_instances(&self) -> impl Iterator<Item = (&str, usize)> {
        self.connectors
            .iter()
            .filter(|(_, c)| c.shelf.keeps())
            .map(|(name, c)| (name.as_str(), c.shelf.len()))
    }

    /// Let a connector interpret a provider callback (it checks the
    /// signature). Addresses it reports dead come back as `Undeliverable`.
    pub async fn handle_webhook(
        &self,
        connector: &str,
        request: WebhookRequest,
    ) -> Result<Vec<Inbound>, WebhookRejection> {
        let loaded = self.connectors.get(connector).ok_or_else(|| {
            WebhookRejection::Failed(Failure::sandbox(
                "unknown_connector",
                format!("no connector named {connector:?}"),
            ))
        })?;
        let request = contract::webhook_request(request);
        let (result, after) = self
            .call_with_egress(loaded, move |c, store| {
                Box::pin(async move { c.handle_webhook(store, &request).await })
            })
            .await;
        let events = result
            .map_err(WebhookRejection::Failed)?
            .map_err(contract::webhook_rejection)?;
        let mut events: Vec<Inbound> = events.into_iter().map(contract::inbound).collect();
        events.extend(
            after
                .dead_addresses
                .into_iter()
                .map(|(address, reason)| Inbound::Undeliverable { address, reason }),
        );
        Ok(events)
    }

    /// Hand one message to a connector. Every failure, the plugin's or the
    /// sandbox's, comes back as a [`Failure`]; nothing here can take the
    /// gateway down.
    pub async fn deliver(&self, connector: &str, out: Outgoing<'_>) -> Delivered {
        #[cfg(feature = "native-baseline")]
        if let Some((_, native)) = self.native.get(connector) {
            return Delivered {
                result: native.deliver(out).await,
                dead_addresses: Vec::new(),
            };
        }
        let Some(loaded) = self.connectors.get(connector) else {
            return Delivered {
                result: Err(Failure::sandbox(
                    "unknown_connector",
                    format!("no connector named {connector:?}"),
                )),
                dead_addresses: Vec::new(),
            };
        };
        let Some(msg) = contract::message(&out) else {
            return Delivered {
                result: Err(Failure::sandbox(
                    "unsupported_channel",
                    format!("connector {connector:?} cannot deliver on {}", out.channel),
                )),
                dead_addresses: Vec::new(),
            };
        };
        let (result, after) = self
            .call_with_egress(loaded, move |c, store| {
                Box::pin(async move { c.deliver(store, &msg).await })
            })
            .await;
        let result = result.and_then(|result| match (result, &after.refused, after.timed_out) {
            (Ok(receipt), _, _) => Ok(contract::receipt(receipt)),
            // The plugin's own account of a refused or unanswered request
            // is a guess; the host knows what it refused and why.
            (Err(_), Some(why), _) => Err(Failure::sandbox(
                "egress_denied",
                format!("connector {connector:?}: {why}"),
            )),
            // The provider may just be slow: worth another attempt later.
            (Err(_), None, Some(waited)) => Err(Failure {
                retryable: true,
                ..Failure::sandbox(
                    "provider_timeout",
                    format!(
                        "connector {connector:?}: the provider did not answer within {} ms",
                        waited.as_millis()
                    ),
                )
            }),
            (Err(f), None, None) => Err(contract::failure(f)),
        });
        Delivered {
            result,
            dead_addresses: after.dead_addresses,
        }
    }

    /// Run one export in a fresh store (or a kept one, see [`reuse`]) under
    /// the call limits.
    async fn call<R, F>(&self, loaded: &LoadedConnector, f: F) -> Result<R, Failure>
    where
        R: Send,
        F: for<'a> FnOnce(
            &'a Instance,
            &'a mut Store<CallState>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        >,
    {
        self.call_with_egress(loaded, f).await.0
    }

    /// [`Self::call`], also returning what the call left behind: the origin
    /// of a request the egress policy refused and the dead addresses reported.
    async fn call_with_egress<R, F>(
        &self,
        loaded: &LoadedConnector,
        f: F,
    ) -> (Result<R, Failure>, AfterCall)
    where
        R: Send,
        F: for<'a> FnOnce(
            &'a Instance,
            &'a mut Store<CallState>,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        >,
    {
        let mut watch = phases::Stopwatch::start();
        let _ticking = self.ticker.running();
        let (mut store, kept, calls) = match loaded.shelf.take(&self.shelf_space) {
            Some(mut kept) => {
                kept.store
                    .data_mut()
                    .begin_call(&self.limits, self.client.clone());
                kept.store.set_epoch_deadline(1);
                (kept.store, Some(kept.instance), kept.calls)
            }
            None => {
                let state = CallState::new(loaded.scope.clone(), &self.limits, self.client.clone());
                (sandbox::store(&self.engine, state), None, 0)
            }
        };
        watch.lap(Phase::Setup);
        let name = &loaded.scope.name;
        let outcome = tokio::time::timeout(self.limits.timeout, async {
            let instance = match kept {
                Some(instance) => instance,
                None => loaded.pre.instantiate(&mut store).await?,
            };
            watch.lap(Phase::Instantiate);
            let value = f(&instance, &mut store).await?;
            watch.lap(Phase::Call);
            Ok::<_, wasmtime::Error>((value, instance))
        })
        .await;
        let unlogged = store.data().egress.unlogged_refusals();
        if unlogged > 0 {
            tracing::warn!(connector = %name, "{unlogged} more outbound requests refused in the same call");
        }
        let after = AfterCall {
            refused: store.data().egress.refused(),
            timed_out: store.data().egress.timed_out(),
            dead_addresses: std::mem::take(&mut store.data_mut().dead_addresses),
        };
        let failure = match outcome {
            Ok(Ok((value, instance))) => {
                let kept = reuse::Kept {
                    store,
                    instance,
                    calls: calls + 1,
                };
                loaded.shelf.put_back(kept, &self.shelf_space);
                watch.lap(Phase::Teardown);
                watch.finished();
                return (Ok(value), after);
            }
            Ok(Err(error)) => sandbox::explain_trap(&error, store.data(), &self.limits),
            // The provider may just be slow: unlike a fault of the plugin's
            // own, a timeout is worth another attempt later.
            Err(_elapsed) => Failure {
                retryable: true,
                ..Failure::sandbox(
                    "plugin_timeout",
                    format!(
                        "call exceeded the {} ms wall-clock limit",
                        self.limits.timeout.as_millis()
                    ),
                )
            },
        };
        // What earlier calls left in a kept instance (a leak that reached the
        // memory limit, a broken global) may be the cause: a fresh instance
        // may well succeed, so the attempt is worth repeating.
        let (retryable, kept) = match calls {
            0 => (failure.retryable, String::new()),
            1 => (true, " (in an instance kept after 1 call)".to_owned()),
            n => (true, format!(" (in an instance kept after {n} calls)")),
        };
        let failure = Failure {
            message: format!(
                "connector {name:?} (plugin {} {}): {}{kept}",
                loaded.info.name, loaded.info.version, failure.message
            ),
            retryable,
            ..failure
        };
        tracing::warn!(connector = %name, code = %failure.code, "{}", failure.message);
        (Err(failure), after)
    }
}

/// What a call leaves behind besides its result.
struct AfterCall {
    refused: Option<String>,
    timed_out: Option<std::time::Duration>,
    dead_addresses: Vec<(String, String)>,
}
