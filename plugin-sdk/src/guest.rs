//! The wasm side of the contract: generated bindings (kept private to plugin
//! authors), the adapter that exports a [`Connector`], and the backend of
//! [`crate::http`]: the host's `outbound` import, one call per request.

use crate::http::message::{HttpError, Request, Response};
use crate::{Config, Connector, Failure, InboundEvent, Level, Message, Packaged, WebhookRequest};
use std::marker::PhantomData;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/0.4.0",
        world: "crossgate:connector/connector@0.4.0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "crossgate_plugin_sdk::guest::bindings",
    });
}

pub use bindings::export_connector;

use bindings::crossgate::connector::{host, outbound, types as wit};

/// Adapts a [`Connector`] (and its package's metadata) to the generated
/// `Guest` trait; see `register_connector!`.
pub struct Adapter<C, P>(PhantomData<(C, P)>);

fn config() -> Config {
    Config::new(host::config())
}

std::thread_local! {
    /// The connector this instance built from its configuration, for every
    /// later call of the instance (a kept one serves many; the host's
    /// configuration does not change under an instance). A configuration
    /// the connector refused is read and refused again on the next call.
    static BUILT: std::cell::OnceCell<Box<dyn std::any::Any>> = const { std::cell::OnceCell::new() };
}

/// `f` with this instance's connector, built on its first call.
fn with_connector<C: Connector, R>(f: impl FnOnce(Result<&C, crate::ConfigError>) -> R) -> R {
    BUILT.with(|built| {
        if built.get().is_none() {
            match C::new(&config()) {
                Ok(connector) => {
                    let _ = built.set(Box::new(connector));
                }
                Err(refused) => return f(Err(refused)),
            }
        }
        let connector = built
            .get()
            .and_then(|any| any.downcast_ref::<C>())
            .expect("one connector type per component");
        f(Ok(connector))
    })
}

impl<C: Connector, P: Packaged> bindings::Guest for Adapter<C, P> {
    fn describe() -> wit::PluginInfo {
        let info = crate::plugin_info::<C>(P::PACKAGE);
        wit::PluginInfo {
            name: info.name,
            version: info.version,
            channel: channel_to_wit(info.channel),
            sdk_version: info.sdk_version,
            description: info.description,
        }
    }

    fn settings() -> Vec<wit::Setting> {
        C::SETTINGS
            .iter()
            .map(|s| wit::Setting {
                name: s.name.to_owned(),
                required: s.required,
                secret: s.secret,
                kind: match s.kind {
                    crate::SettingKind::Text => wit::SettingKind::Text,
                    crate::SettingKind::Url => wit::SettingKind::Url,
                    crate::SettingKind::Number => wit::SettingKind::Number,
                    crate::SettingKind::Boolean => wit::SettingKind::Boolean,
                    crate::SettingKind::Choice(words) => {
                        wit::SettingKind::Choice(words.iter().map(|w| (*w).to_owned()).collect())
                    }
                },
            })
            .collect()
    }

    fn validate_config() -> Result<(), String> {
        with_connector::<C, _>(|built| built.map(|_| ()).map_err(|e| e.to_string()))
    }

    fn deliver(msg: wit::Message) -> Result<wit::Receipt, wit::Failure> {
        with_connector::<C, _>(|built| crate::deliver(built, &message_from_wit(msg)))
            .map(|r| wit::Receipt {
                provider_message_id: r.provider_message_id,
                part_ids: r.part_ids,
            })
            .map_err(failure_to_wit)
    }

    fn handle_webhook(
        req: wit::WebhookRequest,
    ) -> Result<Vec<wit::InboundEvent>, wit::WebhookError> {
        let req = WebhookRequest {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        let events = with_connector::<C, _>(|built| crate::handle_webhook(built, &req)).map_err(
            |e| match e {
                crate::WebhookError::Unauthorized(why) => wit::WebhookError::Unauthorized(why),
                crate::WebhookError::Malformed(why) => wit::WebhookError::Malformed(why),
                crate::WebhookError::Unsupported => wit::WebhookError::Unsupported,
            },
        )?;
        Ok(events.into_iter().filter_map(event_to_wit).collect())
    }
}

pub(crate) fn cache_get(key: &str) -> Option<Vec<u8>> {
    host::cache_get(key)
}

pub(crate) fn cache_set(key: &str, value: &[u8], ttl: std::time::Duration) {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    host::cache_set(key, value, ttl_ms);
}

pub(crate) fn report_dead_address(address: &str, reason: &str) {
    host::report_dead_address(address, reason);
}

pub(crate) fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => wit::Level::Trace,
        Level::Debug => wit::Level::Debug,
        Level::Info => wit::Level::Info,
        Level::Warn => wit::Level::Warn,
        Level::Error => wit::Level::Error,
    };
    host::log(level, message);
}

fn channel_to_wit(channel: crate::Channel) -> wit::Channel {
    match channel {
        crate::Channel::Email => wit::Channel::Email,
        crate::Channel::Sms => wit::Channel::Sms,
        crate::Channel::Whatsapp => wit::Channel::Whatsapp,
        crate::Channel::Push => wit::Channel::Push,
    }
}

fn message_from_wit(msg: wit::Message) -> Message {
    Message {
        id: msg.id,
        attempt: msg.attempt,
        channel: match msg.channel {
            wit::Channel::Email => crate::Channel::Email,
            wit::Channel::Sms => crate::Channel::Sms,
            wit::Channel::Whatsapp => crate::Channel::Whatsapp,
            wit::Channel::Push => crate::Channel::Push,
        },
        to: msg.to,
        subject: msg.subject,
        text: msg.text,
        html: msg.html,
        template: msg.template.map(|t| crate::ProviderTemplate {
            name: t.name,
            language: t.language,
            parameters: t.parameters,
        }),
        metadata: msg.metadata,
        sender: msg.sender,
    }
}

fn failure_to_wit(f: Failure) -> wit::Failure {
    wit::Failure {
        retryable: f.retryable,
        retry_after_ms: f.retry_after_ms,
        code: f.code,
        message: f.message,
    }
}

/// An event as the contract carries it. An undeliverable address travels
/// through the host's `report-dead-address`, which the records lack.
fn event_to_wit(event: InboundEvent) -> Option<wit::InboundEvent> {
    Some(match event {
        InboundEvent::Status(s) => wit::InboundEvent::Status(wit::StatusEvent {
            provider_message_id: s.provider_message_id,
            state: match s.state {
                crate::DeliveryState::Sent => wit::DeliveryState::Sent,
                crate::DeliveryState::Delivered => wit::DeliveryState::Delivered,
                crate::DeliveryState::Read => wit::DeliveryState::Read,
                crate::DeliveryState::Failed => wit::DeliveryState::Failed,
            },
            code: s.code,
            description: s.description,
        }),
        InboundEvent::OptOut(address) => wit::InboundEvent::OptOut(address),
        InboundEvent::OptIn(address) => wit::InboundEvent::OptIn(address),
        InboundEvent::Message(m) => wit::InboundEvent::Message(wit::InboundMessage {
            from: m.from,
            text: m.text,
            provider_message_id: m.provider_message_id,
            in_reply_to: m.in_reply_to,
        }),
        InboundEvent::Undeliverable { address, reason } => {
            host::report_dead_address(&address, &reason);
            return None;
        }
    })
}

/// One whole request through the host's `outbound` import: one host call,
/// checked by the same `allowed_hosts` and limits as `wasi:http`.
pub(crate) fn send_http(req: Request) -> Result<Response, HttpError> {
    let request = outbound::Request {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.body,
    };
    match outbound::send_request(&request) {
        Ok(answer) => Ok(Response {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        }),
        Err(e) => Err(HttpError {
            message: match e {
                outbound::Error::Denied(why) => format!("request denied by the gateway: {why}"),
                outbound::Error::Timeout => "no answer in time".to_owned(),
                outbound::Error::TooLarge => {
                    "the answer is larger than the gateway allows".to_owned()
                }
                outbound::Error::Failed(why) => why,
            },
        }),
    }
}
