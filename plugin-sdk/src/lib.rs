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
pub mod declare;
pub mod http;
pub mod jwt;
mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub mod keywords;
pub mod phone;
pub mod settings;
pub mod webhook;

pub use config::{Config, ConfigError};
pub use types::{
    Channel, DeliveryState, Failure, InboundEvent, InboundMessage, Level, Message, PluginInfo,
    ProviderTemplate, Receipt, Setting, SettingKind, StatusEvent, WebhookError, WebhookRequest,
};

/// The version of this SDK, reported to the gateway by `describe`.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The contract (WIT package) version this SDK builds plugins against.
pub const CONTRACT_VERSION: &str = "0.4.0";

/// The settings every connector takes besides its own: where the provider
/// is (a simulator in tests).
pub const BASE_URL: Setting = Setting::url("base_url");

/// A provider connector.
///
/// The gateway creates a fresh sandbox for every call, so a connector is
/// built from its configuration each time: keep `new` cheap and put anything
/// that must outlive a call (access tokens) in [`cache`]. Its version and
/// description come from the plugin's `Cargo.toml` (see [`register_connector!`]).
pub trait Connector: Sized + 'static {
    /// Short provider name, e.g. `twilio`.
    const NAME: &'static str;
    /// The channel this connector serves; the SDK refuses messages of any other.
    const CHANNEL: Channel;
    /// Every `[connectors.config]` key the connector reads: the gateway
    /// refuses unknown keys (a typo like `bse_url`), missing required ones
    /// and values of the wrong kind. Empty declares nothing and checks nothing.
    const SETTINGS: &'static [Setting] = &[];

    /// Parse and check the connector's `[connectors.config]` table.
    fn new(config: &Config) -> Result<Self, ConfigError>;

    /// Hand one message to the provider.
    fn deliver(&self, msg: &Message) -> Result<Receipt, Failure>;

    /// Interpret a provider callback (status updates, opt-outs, bounces).
    /// Verify the provider's signature first. Connectors without callbacks
    /// keep the default, and the gateway answers the provider `404`.
    fn handle_webhook(&self, req: &WebhookRequest) -> Result<Vec<InboundEvent>, WebhookError> {
        let _ = req;
        Err(WebhookError::Unsupported)
    }
}

/// What the plugin's `Cargo.toml` says about it.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    pub version: &'static str,
    pub description: &'static str,
}

/// Implemented by `register_connector!` with the plugin crate's own metadata.
#[doc(hidden)]
pub trait Packaged {
    const PACKAGE: Package;
}

/// The [`PluginInfo`] a connector reports through `describe`.
pub fn plugin_info<C: Connector>(package: Package) -> PluginInfo {
    PluginInfo {
        name: C::NAME.to_owned(),
        version: package.version.to_owned(),
        channel: C::CHANNEL,
        sdk_version: SDK_VERSION.to_owned(),
        description: package.description.to_owned(),
    }
}

/// One `deliver` call as the gateway makes it, with the connector its
/// instance built (or the reason it could not): a message for another
/// channel is refused first, whatever the configuration.
pub(crate) fn deliver<C: Connector>(
    connector: Result<&C, ConfigError>,
    msg: &Message,
) -> Result<Receipt, Failure> {
    if msg.channel != C::CHANNEL {
        return Err(Failure::permanent(
            "unsupported_channel",
            format!(
                "{} connector sends {:?}, not {:?}",
                C::NAME,
                C::CHANNEL,
                msg.channel
            ),
        ));
    }
    connector
        .map_err(|e| Failure::permanent("invalid_config", e.to_string()))?
        .deliver(msg)
}

/// One `handle-webhook` call as the gateway makes it.
pub(crate) fn handle_webhook<C: Connector>(
    connector: Result<&C, ConfigError>,
    req: &WebhookRequest,
) -> Result<Vec<InboundEvent>, WebhookError> {
    connector
        .map_err(|e| WebhookError::Malformed(format!("connector configuration: {e}")))?
        .handle_webhook(req)
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

/// The plugin's version and description, from the `Cargo.toml` of the crate
/// that expands it. Used by [`register_connector!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __crossgate_package {
    () => {
        #[doc(hidden)]
        pub struct __CrossgatePackage;
        impl $crate::Packaged for __CrossgatePackage {
            const PACKAGE: $crate::Package = $crate::Package {
                version: env!("CARGO_PKG_VERSION"),
                description: env!("CARGO_PKG_DESCRIPTION"),
            };
        }
    };
}

/// Export a [`Connector`] as the plugin's component. Call it once per plugin
/// crate; the plugin's version and description are its `Cargo.toml`'s.
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! register_connector {
    ($connector:ty) => {
        $crate::__crossgate_package!();
        type __CrossgateExport = $crate::guest::Adapter<$connector, __CrossgatePackage>;
        $crate::guest::export_connector!(__CrossgateExport with_types_in $crate::guest::bindings);
    };
}

/// Export a [`Connector`] as the plugin's component. Call it once per plugin
/// crate; the plugin's version and description are its `Cargo.toml`'s.
///
/// Natively (unit tests) there is nothing to export: the macro checks that
/// the type is a connector and names its package, for `plugin_info`.
#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! register_connector {
    ($connector:ty) => {
        $crate::__crossgate_package!();
        const _: fn() = || {
            fn is_connector<C: $crate::Connector>() {}
            is_connector::<$connector>();
        };
    };
}
