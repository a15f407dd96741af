//! The live feed: `GET /v1/inbox/stream`, Server-Sent Events of one
//! customer's new items and counts, from whichever node the device reached.

use super::{TokenQuery, customer, view};
use crate::api::{ApiError, AppState};
use crate::feed::live::Signal;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(get, path = "/v1/inbox/stream", tag = "inbox", security(("feed_token" = [])),
    params(("token" = Option<String>, Query, description = "The feed token (EventSource cannot send headers)")),
    responses((status = 200, description = "Server-Sent Events: `counts` (`{\"unseen\", \"unread\"}`) at once and on every change, `item` (an item) when one arrives", content_type = "text/event-stream", body = String),
              (status = 401, body = crate::api::error::ErrorBody),
              (status = 503, description = "This node serves [inbox] max_streams already", body = crate::api::error::ErrorBody)))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    let customer_id = customer(&state, &headers, query.token.as_deref())?;
    let hub = state
        .feed_hub
        .as_ref()
        .ok_or_else(|| ApiError::not_found("the feed is off: [inbox] secret is not set"))?;
    let subscription = hub.subscribe(&customer_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "this node serves [inbox] max_streams live streams already: try again later",
        )
    })?;
    state
        .store
        .feed_opened(&customer_id, state.clock.now())
        .await?;
    let first = counts_event(&state, &customer_id).await?;
    let live = Live {
        state: state.clone(),
        customer_id,
        subscription,
        pending: vec![first],
    };
    let events = futures::stream::unfold(live, |mut live| async move {
        let event = live.next().await?;
        Some((Ok::<_, std::convert::Infallible>(event), live))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// One open stream: what it still has to send, and where it hears more.
struct Live {
    state: Arc<AppState>,
    customer_id: String,
    subscription: crate::feed::live::Subscription,
    pending: Vec<Event>,
}

impl Live {
    /// The next event, or `None` when the stream ends (shutdown, or the
    /// store failing: the client reconnects, as EventSource does).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.remove(0));
            }
            let signal = tokio::select! {
                signal = self.subscription.signals.recv() => signal,
                _ = self.subscription.closing.wait_for(|closing| *closing) => return None,
            };
            let now = self.state.clock.now();
            let store = &self.state.store;
            match signal {
                Ok(Signal::Item(id)) => {
                    if let Some(item) = store.feed_item(&self.customer_id, &id, now).await.ok()? {
                        self.pending
                            .push(Event::default().event("item").data(view(&item).to_string()));
                    }
                }
                Ok(Signal::Counts) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
            self.pending
                .push(counts_event(&self.state, &self.customer_id).await.ok()?);
        }
    }
}

async fn counts_event(state: &AppState, customer_id: &str) -> Result<Event, ApiError> {
    let counts = state
        .store
        .feed_counts(customer_id, state.clock.now())
        .await?;
    Ok(Event::default()
        .event("counts")
        .data(json!(counts).to_string()))
}
