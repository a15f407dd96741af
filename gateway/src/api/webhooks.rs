//! `POST` (or `GET`) `/v1/webhooks/{connector}`: provider callbacks, handed
//! to the connector that understands them (it checks the provider's
//! signature), then applied by [`crate::webhooks::inbound`]. Some providers
//! (Vonage) send receipts by `GET`, their parameters in the query string.

use super::body::read_at_most;
use super::{ApiError, AppState};
use crate::plugins::{WebhookRejection, WebhookRequest};
use crate::webhooks::inbound::{self, Applied};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use std::sync::Arc;

#[utoipa::path(method(get, post), path = "/v1/webhooks/{connector}", tag = "webhooks",
    params(("connector" = String, Path)),
    request_body(content = String, description = "The provider's own callback, verified by the connector"),
    responses((status = 200, body = Object), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(connector): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Applied>, ApiError> {
    let routing = state.live.current();
    let channel = *routing
        .connector_channels
        .get(&connector)
        .ok_or_else(|| ApiError::not_found(format!("no connector named {connector:?}")))?;
    let body = read_at_most(body, state.max_webhook_body_bytes).await?;
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let request = WebhookRequest {
        method: method.as_str().to_owned(),
        // What the provider signed: the public URL it was given.
        url: format!("{}{path}", state.public_url),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    // What a replay repeats: a GET's parameters are its path and query.
    let request_body = if method == Method::GET {
        bytes::Bytes::copy_from_slice(path.as_bytes())
    } else {
        body
    };
    let events = routing
        .plugins
        .handle_webhook(&connector, request)
        .await
        .map_err(|rejection| match rejection {
            WebhookRejection::Unauthorized(why) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "webhook_unauthorized", why)
            }
            WebhookRejection::Malformed(why) => {
                ApiError::new(StatusCode::BAD_REQUEST, "webhook_rejected", why)
            }
            WebhookRejection::Unsupported => {
                ApiError::not_found(format!("connector {connector:?} takes no webhooks"))
            }
            WebhookRejection::Failed(failure) => ApiError::internal(failure.message),
        })?;
    let categories: Vec<String> = routing.policy.categories.keys().cloned().collect();
    let source = inbound::Source {
        connector: &connector,
        channel,
        categories: &categories,
        reply_url: state.reply_callback_url.as_deref(),
    };
    inbound::apply_once(
        state.store.as_ref(),
        &source,
        events,
        &request_body,
        state.clock.now(),
    )
    .await
    .map(Json)
    .map_err(ApiError::from)
}
