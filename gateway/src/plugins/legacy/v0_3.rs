//! Plugins built against contract 0.3.0: its host functions are the
//! current ones, its records lack what 0.4.0 added (the sender, a receipt's
//! part ids, the choice setting kind, typed webhook errors).

use super::super::bindings::current as wit;
use super::super::sandbox::CallState;
use wasmtime::component::HasSelf;

pub mod v3 {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit/0.3.0",
        world: "crossgate:connector/connector",
        imports: {
            "crossgate:connector/host.cache-get": async,
            "crossgate:connector/outbound.send-request": async,
        },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

use v3::crossgate::connector::outbound as old_outbound;
use v3::crossgate::connector::types as old;

pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> anyhow::Result<()> {
    v3::crossgate::connector::host::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    old::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    old_outbound::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    Ok(())
}

impl old::Host for CallState {}

super::forward_host!(v3::crossgate::connector::host::Host);

impl old_outbound::Host for CallState {
    async fn send_request(
        &mut self,
        req: old_outbound::Request,
    ) -> Result<old_outbound::Response, old_outbound::Error> {
        use wit::outbound::{Error, Host, Request};
        let req = Request {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        match Host::send_request(self, req).await {
            Ok(r) => Ok(old_outbound::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(Error::Denied(why)) => Err(old_outbound::Error::Denied(why)),
            Err(Error::Timeout) => Err(old_outbound::Error::Timeout),
            Err(Error::TooLarge) => Err(old_outbound::Error::TooLarge),
            Err(Error::Failed(why)) => Err(old_outbound::Error::Failed(why)),
        }
    }
}

super::shared_records!();

pub fn settings(settings: Vec<old::Setting>) -> Vec<wit::types::Setting> {
    use wit::types::SettingKind;
    settings
        .into_iter()
        .map(|s| wit::types::Setting {
            name: s.name,
            required: s.required,
            secret: s.secret,
            kind: match s.kind {
                old::SettingKind::Text => SettingKind::Text,
                old::SettingKind::Url => SettingKind::Url,
                old::SettingKind::Number => SettingKind::Number,
                old::SettingKind::Boolean => SettingKind::Boolean,
            },
        })
        .collect()
}

pub fn inbound(
    events: Result<Vec<old::InboundEvent>, String>,
) -> Result<Vec<wit::types::InboundEvent>, wit::types::WebhookError> {
    use wit::types::{DeliveryState, InboundEvent, InboundMessage, StatusEvent};
    let events = events.map_err(super::webhook_error)?;
    Ok(events
        .into_iter()
        .map(|event| match event {
            old::InboundEvent::Status(s) => InboundEvent::Status(StatusEvent {
                provider_message_id: s.provider_message_id,
                state: match s.state {
                    old::DeliveryState::Sent => DeliveryState::Sent,
                    old::DeliveryState::Delivered => DeliveryState::Delivered,
                    old::DeliveryState::Read => DeliveryState::Read,
                    old::DeliveryState::Failed => DeliveryState::Failed,
                },
                code: s.code,
                description: s.description,
            }),
            old::InboundEvent::OptOut(address) => InboundEvent::OptOut(address),
            old::InboundEvent::OptIn(address) => InboundEvent::OptIn(address),
            old::InboundEvent::Message(m) => InboundEvent::Message(InboundMessage {
                from: m.from,
                text: m.text,
                provider_message_id: m.provider_message_id,
                in_reply_to: m.in_reply_to,
            }),
        })
        .collect())
}
