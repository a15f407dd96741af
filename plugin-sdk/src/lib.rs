//! # Crossgate plugin SDK
//!
//! A channel connector is a WebAssembly component that turns one Crossgate
//! message into one call to a provider's API. Write a type, implement
//! [`Connector`] for it and call [`register_connector!`] once:
//!
//! ```no_run
//! use crossgate_plugin_sdk::{http, Channel, Config, ConfigError, Connector, Failure, Message, Receipt};
//!
//! struct Echo { url: String }
//!
//! impl Connector for Echo {
//!     const NAME: &'static str = "echo";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const CHANNEL: Channel = Channel::Sms;
//!
//!     fn new(config: &Config) -> Result<Self, ConfigError> {
//!         Ok(Echo { url: config.required("url")?.to_owned() })
//!     }
//!
//!     fn deliver(&self, msg: &Message) -> Result<Receipt, Failure> {
//!         let response = http::Request::post(&self.url).body(msg.text.clone()).send()?;
//!         Ok(Receipt::new(response.text()))
//!     }
//! }
//!
//! crossgate_plugin_sdk::register_connector!(Echo);
//! ```
//!
//! The connector *classifies* and the gateway *schedules*: return
//! [`Failure::retryable`] or [`Failure::permanent`] and never sleep or retry
//! inside the plugin. [`testing`] runs a connector natively against scripted
//! HTTP responses, so a plugin's unit tests need no wasm runtime.

pub mod cache;
mod config;
pub mod http;
pub mod jwt;
mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use config::{Config, ConfigError};
pub use types::{
    Channel, DeliveryState, Failure, InboundEvent, Level, Message, PluginInfo, ProviderTemplate,
    Receipt, StatusEvent, WebhookRequest,
};

/// The version of this SDK, reported to the gateway by `describe`.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The contract (WIT package) version this SDK builds plugins against.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// A provider connector.
///
/// The gateway creates a fresh sandbox for every call, so a connector is
/// built from its configuration each time: keep `new` cheap and put anything
/// that must outlive a call (access tokens) in [`cache`].
pub trait Connector: Sized + 'static {
    /// Short provider name, e.g. `twilio`.
    const NAME: &'static str;
    /// The plugin's version; `env!("CARGO_PKG_VERSION")` is the usual choice.
    const VERSION: &'static str;
    /// The channel this connector serves.
    const CHANNEL: Channel;
    /// One line for `crossgate plugin inspect`.
    const DESCRIPTION: &'static str = "";

    /// Parse and check the connector's `[connectors.config]` table.
    fn new(config: &Config) -> Result<Self, ConfigError>;

    /// Hand one message to the provider.
    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure>;

    /// Interpret a provider callback (status updates, opt-outs).
    fn handle_webhook(&self, req: &WebhookRequest) -> Result<Vec<InboundEvent>, String> {
        let _ = req;
        Ok(Vec::new())
    }
}

/// The [`PluginInfo`] a connector reports through `describe`.
pub fn plugin_info<C: Connector>() -> PluginInfo {
    PluginInfo {
        name: C::NAME.to_owned(),
        version: C::VERSION.to_owned(),
        channel: C::CHANNEL,
        sdk_version: SDK_VERSION.to_owned(),
        description: C::DESCRIPTION.to_owned(),
    }
}

/// Write to the gateway's log, tagged with the connector's name.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    guest::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    testing::log(level, message);
}

/// Tell the gateway that the provider says `address` (the message's `to`) no
/// longer exists: an unregistered push token, an expired subscription. The
/// gateway removes it from the customer's profile and stops routing to it.
/// Return a permanent [`Failure`] as well, so the message falls back.
pub fn report_dead_address(address: &str, reason: &str) {
    #[cfg(target_arch = "wasm32")]
    guest::report_dead_address(address, reason);
    #[cfg(not(target_arch = "wasm32"))]
    testing::report_dead_address(address, reason);
}

/// Export a [`Connector`] as the plugin's component. Call it once per plugin crate.
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! register_connector {
    ($connector:ty) => {
        type __CrossgateExport = $crate::guest::Adapter<$connector>;
        $crate::guest::export_connector!(__CrossgateExport with_types_in $crate::guest::bindings);
    };
}

/// Export a [`Connector`] as the plugin's component. Call it once per plugin crate.
///
/// Natively (unit tests) there is nothing to export; the macro only checks
/// that the type is a connector.
#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! register_connector {
    ($connector:ty) => {
        const _: fn() = || {
            fn is_connector<C: $crate::Connector>() {}
            is_connector::<$connector>();
        };
    };
}
