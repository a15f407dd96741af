//! Plugins built against contracts 0.1.0 and 0.2.0, which share their
//! records (0.2.0 only added host functions). Such a plugin never reports
//! an inbound message, never names a sender or a part, and refuses a webhook
//! with a string.

use super::super::bindings::current as wit;
use super::super::sandbox::CallState;
use wasmtime::component::HasSelf;

pub mod v2 {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit/0.2.0",
        world: "crossgate:connector/connector",
        imports: { "crossgate:connector/host.cache-get": async },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit/0.1.0",
        world: "crossgate:connector/connector",
        exports: { default: async },
        with: {
            "crossgate:connector/types": super::v2::crossgate::connector::types,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

use v2::crossgate::connector::types as old;

/// The 0.1.0 and 0.2.0 host functions.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> anyhow::Result<()> {
    v2::crossgate::connector::host::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    v2::crossgate::connector::types::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    v1::crossgate::connector::host::add_to_linker::<_, HasSelf<CallState>>(linker, |s| s)?;
    // 0.1.0's `types` holds only types; its Rust side is 0.2.0's.
    linker.instance("crossgate:connector/types@0.1.0")?;
    Ok(())
}

impl old::Host for CallState {}

// 0.2.0's host functions are the current ones.
super::forward_host!(v2::crossgate::connector::host::Host);

/// 0.1.0 plugins get the same log and config; they know nothing else.
impl v1::crossgate::connector::host::Host for CallState {
    fn log(&mut self, level: old::Level, message: String) {
        wit::host::Host::log(self, level_from_old(level), message);
    }

    fn config(&mut self) -> Vec<(String, String)> {
        wit::host::Host::config(self)
    }
}

super::shared_records!();

pub fn inbound(events: Result<Vec<old::InboundEvent>, String>) -> InboundResult {
    events.map_err(super::webhook_error).map(|events| {
        events
            .into_iter()
            .map(|event| match event {
                old::InboundEvent::Status(s) => {
                    wit::types::InboundEvent::Status(wit::types::StatusEvent {
                        provider_message_id: s.provider_message_id,
                        state: match s.state {
                            old::DeliveryState::Sent => wit::types::DeliveryState::Sent,
                            old::DeliveryState::Delivered => wit::types::DeliveryState::Delivered,
                            old::DeliveryState::Read => wit::types::DeliveryState::Read,
                            old::DeliveryState::Failed => wit::types::DeliveryState::Failed,
                        },
                        code: s.code,
                        description: s.description,
                    })
                }
                old::InboundEvent::OptOut(address) => wit::types::InboundEvent::OptOut(address),
                old::InboundEvent::OptIn(address) => wit::types::InboundEvent::OptIn(address),
            })
            .collect()
    })
}

type InboundResult = Result<Vec<wit::types::InboundEvent>, wit::types::WebhookError>;
