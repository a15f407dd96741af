//! Plugins built against older contracts, adapted to the current one's
//! records at the edge, so the rest of the host speaks one version.
//!
//! 0.1.0 and 0.2.0 share their records ([`before_0_3`]); 0.3.0's records
//! are its own ([`v0_3`]). Every adaptation is total: an older plugin
//! knows less (no sender, no part ids, a webhook error as a string), never
//! something the current contract cannot say.

/// The records every older contract shares with the current one (the
/// message, a receipt or failure, the plugin's description, a webhook
/// request, a log level), converted alike from each version's own generated types:
/// expanded where `old` names that version's `types` and `wit` the
/// current bindings.
macro_rules! shared_records {
    () => {
        pub fn message(msg: &wit::types::Message) -> old::Message {
            old::Message {
                id: msg.id.clone(),
                attempt: msg.attempt,
                channel: match msg.channel {
                    wit::types::Channel::Email => old::Channel::Email,
                    wit::types::Channel::Sms => old::Channel::Sms,
                    wit::types::Channel::Whatsapp => old::Channel::Whatsapp,
                    wit::types::Channel::Push => old::Channel::Push,
                },
                to: msg.to.clone(),
                subject: msg.subject.clone(),
                text: msg.text.clone(),
                html: msg.html.clone(),
                template: msg.template.clone().map(|t| old::ProviderTemplate {
                    name: t.name,
                    language: t.language,
                    parameters: t.parameters,
                }),
                metadata: msg.metadata.clone(),
            }
        }

        pub fn outcome(
            outcome: Result<old::Receipt, old::Failure>,
        ) -> Result<wit::types::Receipt, wit::types::Failure> {
            match outcome {
                Ok(receipt) => Ok(wit::types::Receipt {
                    provider_message_id: receipt.provider_message_id,
                    part_ids: Vec::new(),
                }),
                Err(f) => Err(wit::types::Failure {
                    retryable: f.retryable,
                    retry_after_ms: f.retry_after_ms,
                    code: f.code,
                    message: f.message,
                }),
            }
        }

        pub fn plugin_info(info: old::PluginInfo) -> wit::types::PluginInfo {
            use wit::types::Channel;
            wit::types::PluginInfo {
                name: info.name,
                version: info.version,
                channel: match info.channel {
                    old::Channel::Email => Channel::Email,
                    old::Channel::Sms => Channel::Sms,
                    old::Channel::Whatsapp => Channel::Whatsapp,
                    old::Channel::Push => Channel::Push,
                },
                sdk_version: info.sdk_version,
                description: info.description,
            }
        }

        pub fn webhook_request(req: &wit::types::WebhookRequest) -> old::WebhookRequest {
            old::WebhookRequest {
                method: req.method.clone(),
                url: req.url.clone(),
                headers: req.headers.clone(),
                body: req.body.clone(),
            }
        }

        fn level_from_old(level: old::Level) -> wit::types::Level {
            use wit::types::Level;
            match level {
                old::Level::Trace => Level::Trace,
                old::Level::Debug => Level::Debug,
                old::Level::Info => Level::Info,
                old::Level::Warn => Level::Warn,
                old::Level::Error => Level::Error,
            }
        }
    };
}
use shared_records;

/// An older contract's `host` interface with every function the current
/// one has (0.2.0 and 0.3.0): each call goes to the current host's own.
macro_rules! forward_host {
    ($host:path) => {
        impl $host for CallState {
            fn log(&mut self, level: old::Level, message: String) {
                wit::host::Host::log(self, level_from_old(level), message);
            }

            fn config(&mut self) -> Vec<(String, String)> {
                wit::host::Host::config(self)
            }

            async fn cache_get(&mut self, key: String) -> Option<Vec<u8>> {
                wit::host::Host::cache_get(self, key).await
            }

            fn cache_set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) {
                wit::host::Host::cache_set(self, key, value, ttl_ms);
            }

            fn report_dead_address(&mut self, address: String, reason: String) {
                wit::host::Host::report_dead_address(self, address, reason);
            }
        }
    };
}
use forward_host;

pub mod before_0_3;
pub mod v0_3;

pub use before_0_3::{v1, v2};
pub use v0_3::v3;

use super::bindings::current::types as wit;
use super::sandbox::CallState;

/// The older contracts' host functions, beside the current one's on the same linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> anyhow::Result<()> {
    before_0_3::add_to_linker(linker)?;
    v0_3::add_to_linker(linker)
}

/// Before 0.4.0 a webhook error is a string; the SDK put the kind in front
/// (`unauthorized: ...`). Plugins from older SDKs send bare text, read as
/// malformed.
pub fn webhook_error(text: String) -> wit::WebhookError {
    if let Some(why) = text.strip_prefix("unauthorized: ") {
        wit::WebhookError::Unauthorized(why.to_owned())
    } else if text.starts_with("unsupported: ") {
        wit::WebhookError::Unsupported
    } else {
        let why = text.strip_prefix("malformed: ").unwrap_or(&text);
        wit::WebhookError::Malformed(why.to_owned())
    }
}
