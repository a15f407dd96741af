//! The contract versions this gateway hosts, and one way to call any of them.
//!
//! 0.4.0 is the current contract; plugins built against 0.1.0 to 0.3.0 are
//! adapted to its records by [`legacy`](super::legacy), and every plugin is
//! called through [`Instance`].
//!
//! With `legacy`, this is the only module that sees the generated bindings:
//! it implements the host functions and turns contract records into the
//! gateway's types and back.

use super::connector_cache::{self, Lookup};
use super::egress::FetchError;
use super::exports::{CurrentInstance, CurrentPre};
use super::legacy::{self, before_0_3 as old, v0_3, v1, v2, v3};
use super::outcome::{Failure, Receipt};
use super::sandbox::CallState;
use super::settings::{Declared, SettingKind};
use super::untrusted;
use super::{Inbound, InboundMessage, Outgoing, WebhookRejection, WebhookRequest};
use crate::message::{Channel, ProviderState};
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::current;
use current::types as wit;
use wit::Level;

/// Contract versions this gateway can host. A plugin built against any other
/// `crossgate:connector` version is refused at load time with a clear message.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.4.0"];

/// Host functions for every supported version, on one linker.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    current::host::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
    current::types::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
    current::outbound::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
    legacy::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// A connector component, linked and ready to instantiate per call.
pub enum ConnectorPre {
    V1(v1::ConnectorPre<CallState>),
    V2(v2::ConnectorPre<CallState>),
    V3(v3::ConnectorPre<CallState>),
    V4(CurrentPre),
}

impl ConnectorPre {
    /// Check the contract version and pre-link the component. Returns the version too.
    pub fn new(
        engine: &Engine,
        linker: &Linker<CallState>,
        component: &Component,
    ) -> anyhow::Result<(ConnectorPre, String)> {
        let version = contract_version(engine, component)?;
        let pre = linker.instantiate_pre(component).map_err(|e| {
            anyhow::anyhow!("plugin needs imports the gateway does not offer: {e:#}")
        })?;
        let not_a_connector = |e| anyhow::anyhow!("plugin is not a connector: {e:#}");
        let pre = if version.starts_with("0.1.") {
            ConnectorPre::V1(v1::ConnectorPre::new(pre).map_err(not_a_connector)?)
        } else if version.starts_with("0.2.") {
            ConnectorPre::V2(v2::ConnectorPre::new(pre).map_err(not_a_connector)?)
        } else if version.starts_with("0.3.") {
            ConnectorPre::V3(v3::ConnectorPre::new(pre).map_err(not_a_connector)?)
        } else {
            ConnectorPre::V4(CurrentPre::new(pre).map_err(not_a_connector)?)
        };
        Ok((pre, version))
    }

    pub async fn instantiate(
        &self,
        store: &mut wasmtime::Store<CallState>,
    ) -> wasmtime::Result<Instance> {
        Ok(match self {
            ConnectorPre::V1(pre) => Instance::V1(pre.instantiate_async(store).await?),
            ConnectorPre::V2(pre) => Instance::V2(pre.instantiate_async(store).await?),
            ConnectorPre::V3(pre) => Instance::V3(pre.instantiate_async(store).await?),
            ConnectorPre::V4(pre) => Instance::V4(pre.instantiate(store).await?),
        })
    }
}

/// One instantiated connector, of any supported contract version.
pub enum Instance {
    V1(v1::Connector),
    V2(v2::Connector),
    V3(v3::Connector),
    V4(CurrentInstance),
}

type Store<'a> = &'a mut wasmtime::Store<CallState>;

impl Instance {
    pub async fn describe(&self, store: Store<'_>) -> wasmtime::Result<wit::PluginInfo> {
        match self {
            Instance::V1(c) => c.call_describe(store).await.map(old::plugin_info),
            Instance::V2(c) => c.call_describe(store).await.map(old::plugin_info),
            Instance::V3(c) => c.call_describe(store).await.map(v0_3::plugin_info),
            Instance::V4(c) => c.checked(store)?.call_describe(store).await,
        }
    }

    /// The settings a connector declares (since 0.3.0; older ones declare none).
    pub async fn settings(&self, store: Store<'_>) -> wasmtime::Result<Vec<Declared>> {
        let settings = match self {
            Instance::V1(_) | Instance::V2(_) => Vec::new(),
            Instance::V3(c) => v0_3::settings(c.call_settings(store).await?),
            Instance::V4(c) => c.checked(store)?.call_settings(store).await?,
        };
        Ok(settings
            .into_iter()
            .take(MAX_SETTINGS)
            .map(declared)
            .collect())
    }

    pub async fn validate_config(&self, store: Store<'_>) -> wasmtime::Result<Result<(), String>> {
        match self {
            Instance::V1(c) => c.call_validate_config(store).await,
            Instance::V2(c) => c.call_validate_config(store).await,
            Instance::V3(c) => c.call_validate_config(store).await,
            Instance::V4(c) => c.checked(store)?.call_validate_config(store).await,
        }
    }

    pub async fn deliver(
        &self,
        store: Store<'_>,
        msg: &wit::Message,
    ) -> wasmtime::Result<Result<wit::Receipt, wit::Failure>> {
        match self {
            Instance::V1(c) => {
                let outcome = c.call_deliver(store, &old::message(msg)).await?;
                Ok(old::outcome(outcome))
            }
            Instance::V2(c) => {
                let outcome = c.call_deliver(store, &old::message(msg)).await?;
                Ok(old::outcome(outcome))
            }
            Instance::V3(c) => {
                let outcome = c.call_deliver(store, &v0_3::message(msg)).await?;
                Ok(v0_3::outcome(outcome))
            }
            Instance::V4(c) => c.deliver(store, msg).await,
        }
    }

    pub async fn handle_webhook(
        &self,
        store: Store<'_>,
        req: &wit::WebhookRequest,
    ) -> wasmtime::Result<Result<Vec<wit::InboundEvent>, wit::WebhookError>> {
        match self {
            Instance::V1(c) => {
                let events = c
                    .call_handle_webhook(store, &old::webhook_request(req))
                    .await?;
                Ok(old::inbound(events))
            }
            Instance::V2(c) => {
                let events = c
                    .call_handle_webhook(store, &old::webhook_request(req))
                    .await?;
                Ok(old::inbound(events))
            }
            Instance::V3(c) => {
                let events = c
                    .call_handle_webhook(store, &v0_3::webhook_request(req))
                    .await?;
                Ok(v0_3::inbound(events))
            }
            Instance::V4(c) => c.checked(store)?.call_handle_webhook(store, req).await,
        }
    }
}

/// The `crossgate:connector` version a component was built against, read
/// from its imports before anything is instantiated.
fn contract_version(engine: &Engine, component: &Component) -> anyhow::Result<String> {
    let ty = component.component_type();
    let version = ty
        .imports(engine)
        .find_map(|(name, _)| {
            name.strip_prefix("crossgate:connector/")
                .and_then(|rest| rest.split_once('@'))
                .map(|(_, version)| version.to_owned())
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "not a Crossgate connector: it imports no crossgate:connector interface"
            )
        })?;
    let compatible = SUPPORTED_CONTRACTS
        .iter()
        .any(|supported| same_minor(supported, &version));
    if !compatible {
        anyhow::bail!(
            "plugin was built for contract crossgate:connector@{version}, but this gateway supports {}; rebuild it with a matching crossgate-plugin-sdk",
            SUPPORTED_CONTRACTS.join(", ")
        );
    }
    Ok(version)
}

/// Semver compatibility for 0.x versions: the same major and minor.
fn same_minor(a: &str, b: &str) -> bool {
    let prefix = |v: &str| v.rsplit_once('.').map(|(p, _)| p.to_owned());
    prefix(a).is_some() && prefix(a) == prefix(b)
}

impl wit::Host for CallState {}

/// What is kept of a plugin's words: log lines, failure messages, reasons,
/// codes, provider ids, addresses (a Web Push subscription is the longest).
const MAX_LOG_LINE: usize = 2048;
const MAX_MESSAGE: usize = 2048;
const MAX_REASON: usize = 512;
const MAX_CODE: usize = 64;
const MAX_PROVIDER_ID: usize = 256;
const MAX_ADDRESS: usize = 8192;
/// A customer's reply: WhatsApp's longest text is 4,096 characters.
const MAX_REPLY: usize = 16 * 1024;
/// The most cache keys one call may claim to fill.
const MAX_CLAIMS: usize = 16;
/// The most dead addresses one call may report.
const MAX_DEAD_REPORTS: usize = 16;
/// The most settings, choices of one setting, and part ids that are read.
const MAX_SETTINGS: usize = 256;
const MAX_CHOICES: usize = 64;
const MAX_PARTS: usize = 16;

fn declared(s: wit::Setting) -> Declared {
    let word = |w: &String| untrusted::text(w, 128);
    Declared {
        name: word(&s.name),
        required: s.required,
        secret: s.secret,
        kind: match s.kind {
            wit::SettingKind::Text => SettingKind::Text,
            wit::SettingKind::Url => SettingKind::Url,
            wit::SettingKind::Number => SettingKind::Number,
            wit::SettingKind::Boolean => SettingKind::Boolean,
            wit::SettingKind::Choice(words) => {
                SettingKind::Choice(words.iter().take(MAX_CHOICES).map(word).collect())
            }
        },
    }
}

impl current::host::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        let message = untrusted::text(&message, MAX_LOG_LINE);
        let connector = &*self.scope.name;
        match level {
            Level::Trace => tracing::trace!(connector, "{message}"),
            Level::Debug => tracing::debug!(connector, "{message}"),
            Level::Info => tracing::info!(connector, "{message}"),
            Level::Warn => tracing::warn!(connector, "{message}"),
            Level::Error => tracing::error!(connector, "{message}"),
        }
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.scope.settings.clone()
    }

    async fn cache_get(&mut self, key: String) -> Option<Vec<u8>> {
        // A call holding many unfilled claims is misbehaving: it gets plain
        // misses, so it cannot grow the cache or make others wait.
        if key.len() > connector_cache::MAX_KEY_BYTES || self.claims.len() >= MAX_CLAIMS {
            return self.scope.cache.peek(&key).map(|value| value.to_vec());
        }
        match self.scope.cache.get(&key).await {
            Lookup::Hit(value) => Some(value.to_vec()),
            Lookup::Miss(claim) => {
                self.claims.push(claim);
                None
            }
        }
    }

    fn cache_set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) {
        if let Err(refused) = self
            .scope
            .cache
            .set(&key, value, Duration::from_millis(ttl_ms))
        {
            tracing::warn!(connector = %self.scope.name, "cache-set refused: {refused}");
        }
    }

    fn report_dead_address(&mut self, address: String, reason: String) {
        if self.dead_addresses.len() >= MAX_DEAD_REPORTS {
            return;
        }
        self.dead_addresses.push((
            untrusted::text(&address, MAX_ADDRESS),
            untrusted::text(&reason, MAX_REASON),
        ));
    }
}

/// One whole provider request, through the call's egress gate.
impl current::outbound::Host for CallState {
    async fn send_request(
        &mut self,
        req: current::outbound::Request,
    ) -> Result<current::outbound::Response, current::outbound::Error> {
        use current::outbound::Error;
        let fetch = super::egress::Fetch {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        let mut watch = super::phases::Stopwatch::start();
        let fetched = self.egress.fetch(fetch).await;
        watch.lap(super::phases::Phase::Provider);
        match fetched {
            Ok(answer) => Ok(current::outbound::Response {
                status: answer.status,
                headers: answer.headers,
                body: answer.body,
            }),
            Err(FetchError::Denied(why)) => Err(Error::Denied(why)),
            Err(FetchError::Timeout) => Err(Error::Timeout),
            Err(FetchError::TooLarge) => Err(Error::TooLarge),
            Err(FetchError::Failed(why)) => Err(Error::Failed(why)),
        }
    }
}

pub fn channel_from_wit(channel: wit::Channel) -> Channel {
    match channel {
        wit::Channel::Email => Channel::Email,
        wit::Channel::Sms => Channel::Sms,
        wit::Channel::Whatsapp => Channel::Whatsapp,
        wit::Channel::Push => Channel::Push,
    }
}

/// `None` for the channels the gateway delivers itself: no plugin has them.
fn channel_to_wit(channel: Channel) -> Option<wit::Channel> {
    match channel {
        Channel::Email => Some(wit::Channel::Email),
        Channel::Sms => Some(wit::Channel::Sms),
        Channel::Whatsapp => Some(wit::Channel::Whatsapp),
        Channel::Push => Some(wit::Channel::Push),
        Channel::Inbox | Channel::InApp => None,
    }
}

/// An attempt as the contract carries it; `None` on a channel no plugin serves.
pub fn message(out: &Outgoing<'_>) -> Option<wit::Message> {
    let content = out.content;
    Some(wit::Message {
        id: out.message_id.to_owned(),
        attempt: out.attempt,
        channel: channel_to_wit(out.channel)?,
        to: out.to.to_owned(),
        subject: content.subject.clone(),
        text: content.text.clone(),
        html: content.html.clone(),
        template: content.template.clone().map(|t| wit::ProviderTemplate {
            name: t.name,
            language: t.language,
            parameters: t.parameters,
        }),
        metadata: metadata(out),
        sender: out.sender.map(str::to_owned),
    })
}

/// The message's metadata, and for an SMS what the gateway knows of its
/// encoding and length (`sms:encoding` `GSM-7` or `UCS-2`, `sms:segments`):
/// every SMS connector needed it and counted again (a provider's `type =
/// unicode`, a refusal of a message too long). Callers cannot set `sms:`
/// keys themselves (`send::content`).
fn metadata(out: &Outgoing<'_>) -> Vec<(String, String)> {
    let content = out.content;
    let mut metadata: Vec<(String, String)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if out.channel == Channel::Sms {
        let sms = crate::sms::segments(&content.text);
        let encoding = match sms.encoding {
            crate::sms::Encoding::Gsm7 => "GSM-7",
            crate::sms::Encoding::Ucs2 => "UCS-2",
        };
        metadata.push((SMS_ENCODING.to_owned(), encoding.to_owned()));
        metadata.push((SMS_SEGMENTS.to_owned(), sms.segments.to_string()));
    }
    metadata
}

/// The metadata keys an SMS's encoding and segment count travel under.
pub const SMS_ENCODING: &str = "sms:encoding";
pub const SMS_SEGMENTS: &str = "sms:segments";

/// A receipt's part ids: at most [`MAX_PARTS`], none repeating the first.
pub fn receipt(receipt: wit::Receipt) -> Receipt {
    let id = untrusted::text(&receipt.provider_message_id, MAX_PROVIDER_ID);
    let mut parts: Vec<String> = Vec::new();
    for part in receipt.part_ids.iter().take(MAX_PARTS) {
        let part = untrusted::text(part, MAX_PROVIDER_ID);
        if !part.is_empty() && part != id && !parts.contains(&part) {
            parts.push(part);
        }
    }
    Receipt {
        parts,
        ..Receipt::sent(id)
    }
}

pub fn failure(f: wit::Failure) -> Failure {
    Failure {
        retryable: f.retryable,
        retry_after: f.retry_after_ms.map(Duration::from_millis),
        code: untrusted::code(&f.code, MAX_CODE),
        message: untrusted::text(&f.message, MAX_MESSAGE),
    }
}

pub fn webhook_request(req: WebhookRequest) -> wit::WebhookRequest {
    wit::WebhookRequest {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.body,
    }
}

pub fn inbound(event: wit::InboundEvent) -> Inbound {
    match event {
        wit::InboundEvent::Status(s) => Inbound::Status {
            provider_message_id: untrusted::text(&s.provider_message_id, MAX_PROVIDER_ID),
            state: match s.state {
                wit::DeliveryState::Sent => ProviderState::Sent,
                wit::DeliveryState::Delivered => ProviderState::Delivered,
                wit::DeliveryState::Read => ProviderState::Read,
                wit::DeliveryState::Failed => ProviderState::Failed,
            },
            code: s.code.map(|c| untrusted::code(&c, MAX_CODE)),
            description: s.description.map(|d| untrusted::text(&d, MAX_REASON)),
        },
        wit::InboundEvent::OptOut(address) => {
            Inbound::OptOut(untrusted::text(&address, MAX_ADDRESS))
        }
        wit::InboundEvent::OptIn(address) => Inbound::OptIn(untrusted::text(&address, MAX_ADDRESS)),
        wit::InboundEvent::Message(m) => Inbound::Message(InboundMessage {
            from: untrusted::text(&m.from, MAX_ADDRESS),
            text: untrusted::lines(&m.text, MAX_REPLY),
            provider_message_id: untrusted::text(&m.provider_message_id, MAX_PROVIDER_ID),
            in_reply_to: m
                .in_reply_to
                .map(|id| untrusted::text(&id, MAX_PROVIDER_ID)),
        }),
    }
}

pub fn webhook_rejection(error: wit::WebhookError) -> WebhookRejection {
    match error {
        wit::WebhookError::Unauthorized(why) => {
            WebhookRejection::Unauthorized(untrusted::text(&why, MAX_REASON))
        }
        wit::WebhookError::Malformed(why) => {
            WebhookRejection::Malformed(untrusted::text(&why, MAX_REASON))
        }
        wit::WebhookError::Unsupported => WebhookRejection::Unsupported,
    }
}
