//! The contract versions this gateway hosts, and one way to call either.
//!
//! 0.2.0 only added host functions (the per-connector cache and dead-address
//! reports), so both versions share the same records: the 0.1.0 bindings are
//! generated against 0.2.0's Rust types and a plugin of either version is
//! called through [`Instance`].

use super::sandbox::CallState;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

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

pub use v2::crossgate::connector::types as wit;

/// Contract versions this gateway can host. A plugin built against any other
/// `crossgate:connector` version is refused at load time with a clear message.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0", "0.2.0"];

/// Host functions for every supported version, on one linker.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    v2::crossgate::connector::host::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
    v2::crossgate::connector::types::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
    v1::crossgate::connector::host::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
    // 0.1.0's `types` holds only types; its Rust side is 0.2.0's.
    linker.instance("crossgate:connector/types@0.1.0")?;
    Ok(linker)
}

/// A connector component, linked and ready to instantiate per call.
pub enum ConnectorPre {
    V1(v1::ConnectorPre<CallState>),
    V2(v2::ConnectorPre<CallState>),
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
        } else {
            ConnectorPre::V2(v2::ConnectorPre::new(pre).map_err(not_a_connector)?)
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
        })
    }
}

/// One instantiated connector, of either contract version.
pub enum Instance {
    V1(v1::Connector),
    V2(v2::Connector),
}

type Store<'a> = &'a mut wasmtime::Store<CallState>;

impl Instance {
    pub async fn describe(&self, store: Store<'_>) -> wasmtime::Result<wit::PluginInfo> {
        match self {
            Instance::V1(c) => c.call_describe(store).await,
            Instance::V2(c) => c.call_describe(store).await,
        }
    }

    pub async fn validate_config(&self, store: Store<'_>) -> wasmtime::Result<Result<(), String>> {
        match self {
            Instance::V1(c) => c.call_validate_config(store).await,
            Instance::V2(c) => c.call_validate_config(store).await,
        }
    }

    pub async fn deliver(
        &self,
        store: Store<'_>,
        msg: &wit::Message,
    ) -> wasmtime::Result<Result<wit::Receipt, wit::Failure>> {
        match self {
            Instance::V1(c) => c.call_deliver(store, msg).await,
            Instance::V2(c) => c.call_deliver(store, msg).await,
        }
    }

    pub async fn handle_webhook(
        &self,
        store: Store<'_>,
        req: &wit::WebhookRequest,
    ) -> wasmtime::Result<Result<Vec<wit::InboundEvent>, String>> {
        match self {
            Instance::V1(c) => c.call_handle_webhook(store, req).await,
            Instance::V2(c) => c.call_handle_webhook(store, req).await,
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
