//! The wasm side of the contract: generated bindings (kept private to plugin
//! authors), the adapter that exports a [`Connector`], and the `wasi:http`
//! backend of [`crate::http`].

use crate::http::message::{HttpError, Request, Response};
use crate::{Config, Connector, Failure, InboundEvent, Level, Message, Packaged, WebhookRequest};
use std::marker::PhantomData;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/0.3.0",
        world: "crossgate:connector/connector@0.3.0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_connector",
        default_bindings_module: "crossgate_plugin_sdk::guest::bindings",
    });
}

pub use bindings::export_connector;

use bindings::crossgate::connector::{host, types as wit};
use bindings::wasi::http::{outgoing_handler, types as wasi_http};
use bindings::wasi::io::streams::StreamError;

/// Adapts a [`Connector`] (and its package's metadata) to the generated
/// `Guest` trait; see `register_connector!`.
pub struct Adapter<C, P>(PhantomData<(C, P)>);

fn config() -> Config {
    Config::new(host::config())
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

    fn validate_config() -> Result<(), String> {
        C::new(&config()).map(|_| ()).map_err(|e| e.to_string())
    }

    fn deliver(msg: wit::Message) -> Result<wit::Receipt, wit::Failure> {
        crate::deliver::<C>(&config(), &message_from_wit(msg))
            .map(|r| wit::Receipt {
                provider_message_id: r.provider_message_id,
            })
            .map_err(failure_to_wit)
    }

    fn handle_webhook(req: wit::WebhookRequest) -> Result<Vec<wit::InboundEvent>, String> {
        let req = WebhookRequest {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        let events = crate::handle_webhook::<C>(&config(), &req).map_err(|e| e.to_wire())?;
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

/// The largest write `blocking-write-and-flush` accepts.
const WRITE_CHUNK: usize = 4096;
/// Responses are read in chunks of this size; the host caps the total.
const READ_CHUNK: u64 = 64 * 1024;

pub(crate) fn send_http(req: Request) -> Result<Response, HttpError> {
    let err = |message: String| HttpError { message };
    let (scheme, authority, path) = split_url(&req.url).ok_or_else(|| {
        err(format!(
            "invalid URL {:?}: expected scheme://host/path",
            req.url
        ))
    })?;

    let entries: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let headers = wasi_http::Fields::from_list(&entries)
        .map_err(|e| err(format!("invalid request header: {e:?}")))?;
    let outgoing = wasi_http::OutgoingRequest::new(headers);
    let method = match req.method.as_str() {
        "GET" => wasi_http::Method::Get,
        "POST" => wasi_http::Method::Post,
        "PUT" => wasi_http::Method::Put,
        "PATCH" => wasi_http::Method::Patch,
        "DELETE" => wasi_http::Method::Delete,
        other => wasi_http::Method::Other(other.to_owned()),
    };
    let scheme = match scheme {
        "https" => wasi_http::Scheme::Https,
        "http" => wasi_http::Scheme::Http,
        other => wasi_http::Scheme::Other(other.to_owned()),
    };
    let invalid = |what: &str| err(format!("invalid request {what} in {:?}", req.url));
    outgoing
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| invalid("authority"))?;
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|()| invalid("path"))?;

    let body = outgoing
        .body()
        .map_err(|()| err("request body already taken".into()))?;
    let pending = outgoing_handler::handle(outgoing, None).map_err(|e| err(describe_error(&e)))?;
    {
        let stream = body
            .write()
            .map_err(|()| err("request body stream unavailable".into()))?;
        for chunk in req.body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| err(format!("writing request body: {e:?}")))?;
        }
    }
    wasi_http::OutgoingBody::finish(body, None)
        .map_err(|e| err(format!("finishing request body: {}", describe_error(&e))))?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(err(describe_error(&code))),
        Some(Err(())) | None => return Err(err("response already taken".into())),
    };

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| err("response body already taken".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| err("response body stream unavailable".into()))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(err(format!(
                        "reading response body: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
    drop(wasi_http::IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// `scheme://authority/path?query` into its parts; the host re-checks the
/// parsed URI against `allowed_hosts`, so this only has to be faithful.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(path_start);
    if authority.is_empty() {
        return None;
    }
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

fn describe_error(code: &wasi_http::ErrorCode) -> String {
    match code {
        wasi_http::ErrorCode::HttpRequestDenied => {
            "request denied by the gateway: host not in allowed_hosts".to_owned()
        }
        wasi_http::ErrorCode::ConnectionRefused => "connection refused".to_owned(),
        wasi_http::ErrorCode::ConnectionTimeout => "connection timed out".to_owned(),
        wasi_http::ErrorCode::HttpResponseTimeout => "response timed out".to_owned(),
        other => format!("{other:?}"),
    }
}
