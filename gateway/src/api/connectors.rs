//! `GET /v1/connectors`: every configured connector, the regions it
//! serves, its plugin and its circuit as this node last read it from the
//! store (every node's attempts in the window).

use super::AppState;
use crate::health::{ConnectorHealth, State as Circuit};
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize)]
struct ConnectorView {
    name: String,
    channel: crate::message::Channel,
    /// `null`: every region.
    regions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<PluginView>,
    health: ConnectorHealth,
    /// `rate` and `burst`: the provider account's limit, every node together.
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<RateView>,
    /// `expect_report_within` (failover on silence), as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    expect_report_within: Option<String>,
}

#[derive(Serialize)]
struct RateView {
    per_second: f64,
    burst: u32,
}

#[derive(Serialize)]
struct PluginView {
    name: String,
    version: String,
    contract: String,
}

#[utoipa::path(get, path = "/v1/connectors", tag = "operations",
    responses((status = 200, description = "{\"connectors\": [{\"name\", \"channel\", \"regions\", \"plugin\", \"health\": {\"state\": \"closed|open|half_open\", \"since\", \"reason\", \"attempts\", \"failed\"}}]}", body = Object)))]
pub async fn list(State(state): State<Arc<AppState>>) -> axum::Json<serde_json::Value> {
    let routing = state.live.current();
    let plugins: std::collections::HashMap<&str, &crate::plugins::PluginInfo> =
        routing.plugins.connectors().collect();
    let mut health = state.health.snapshot();
    let connectors: Vec<ConnectorView> = routing
        .policy
        .connectors
        .iter()
        .map(|c| ConnectorView {
            name: c.name.clone(),
            channel: c.channel,
            regions: c.regions.clone(),
            plugin: plugins.get(c.name.as_str()).map(|p| PluginView {
                name: p.name.clone(),
                version: p.version.clone(),
                contract: p.contract_version.clone(),
            }),
            health: health.remove(&c.name).unwrap_or(ConnectorHealth {
                state: Circuit::Closed,
                since: None,
                reason: String::new(),
                attempts: 0,
                failed: 0,
            }),
            rate: state.rates.get(&c.name).map(|r| RateView {
                per_second: r.per_second,
                burst: r.burst,
            }),
            expect_report_within: c.expect_report_within.map(crate::routing::policy::humane),
        })
        .collect();
    axum::Json(serde_json::json!({ "connectors": connectors }))
}
