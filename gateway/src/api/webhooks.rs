//! `POST /v1/webhooks/{connector}`: provider callbacks, handed to the
//! connector that understands them. The plugin checks the provider's
//! signature; the gateway applies what it reports: delivery progress, and
//! opt-outs and opt-ins sent as keywords (STOP, START).

use super::messages::read_body;
use super::{ApiError, AppState};
use crate::plugins::wit;
use crate::routing::profile::{Consent, ConsentStatus};
use crate::store::{ProviderStatus, now_ms};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(connector): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let channel = *state
        .connector_channels
        .get(&connector)
        .ok_or_else(|| ApiError::not_found(format!("no connector named {connector:?}")))?;
    let body = read_body(&state, body).await?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let request = wit::WebhookRequest {
        method: "POST".to_owned(),
        // What the provider signed: the public URL it was given.
        url: format!("{}{path}", state.public_url),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let events = state
        .plugins
        .handle_webhook(&connector, request)
        .await
        .map_err(|f| match f.code.as_str() {
            "webhook_rejected" => {
                ApiError::new(StatusCode::BAD_REQUEST, "webhook_rejected", f.message)
            }
            _ => ApiError::internal(f.message),
        })?;
    let now = now_ms();
    let categories: Vec<String> = state.policy.categories.keys().cloned().collect();
    let (mut statuses, mut matched, mut consents) = (0, 0, 0);
    for event in events {
        match event {
            wit::InboundEvent::Status(status) => {
                statuses += 1;
                let report = ProviderStatus {
                    connector: connector.clone(),
                    provider_message_id: status.provider_message_id,
                    state: match status.state {
                        wit::DeliveryState::Sent => "sent",
                        wit::DeliveryState::Delivered => "delivered",
                        wit::DeliveryState::Read => "read",
                        wit::DeliveryState::Failed => "failed",
                    }
                    .to_owned(),
                    code: status.code,
                    description: status.description,
                    at: now,
                };
                if state
                    .store
                    .apply_provider_status(report)
                    .await
                    .map_err(ApiError::internal)?
                    .is_some()
                {
                    matched += 1;
                }
            }
            wit::InboundEvent::OptOut(address) | wit::InboundEvent::OptIn(address)
                if categories.is_empty() =>
            {
                tracing::warn!(%connector, %address, "consent keyword received but no categories are configured");
            }
            wit::InboundEvent::OptOut(address) => {
                consents += apply_consent(
                    &state,
                    &address,
                    channel,
                    &categories,
                    ConsentStatus::OptedOut,
                    &connector,
                    now,
                )
                .await?;
            }
            wit::InboundEvent::OptIn(address) => {
                consents += apply_consent(
                    &state,
                    &address,
                    channel,
                    &categories,
                    ConsentStatus::OptedIn,
                    &connector,
                    now,
                )
                .await?;
            }
        }
    }
    Ok(Json(json!({
        "status_events": statuses,
        "matched_messages": matched,
        "consent_changes": consents,
    })))
}

async fn apply_consent(
    state: &AppState,
    address: &str,
    channel: crate::message::Channel,
    categories: &[String],
    status: ConsentStatus,
    connector: &str,
    now: i64,
) -> Result<usize, ApiError> {
    let consent = Consent {
        status,
        at: jiff::Timestamp::from_millisecond(now).map_err(ApiError::internal)?,
        source: Some(format!("{connector} keyword")),
    };
    state
        .store
        .consent_by_address(address, channel, categories.to_vec(), consent, now)
        .await
        .map_err(ApiError::internal)
}
