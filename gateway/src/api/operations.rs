//! Operations: `/metrics` (Prometheus text) and `/readyz` (the store
//! answers), and the per-route request count behind them.

use super::{ApiError, AppState};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let health = state
        .store
        .queue_health(now)
        .await
        .map_err(ApiError::from)?;
    let oldest = health
        .oldest_due_at
        .map(|due| (now - due).max(0) as f64 / 1000.0);
    // Counted now, not the back-pressure sampler's last figure.
    let backlog = state.store.backlog(now).await.map_err(ApiError::from)?;
    let routing = state.live.current();
    let kept: Vec<(&str, usize)> = routing.plugins.kept_instances().collect();
    let circuits: Vec<(String, i64)> = state
        .health
        .snapshot()
        .into_iter()
        .map(|(connector, h)| (connector, h.state.gauge()))
        .collect();
    let text = state
        .metrics
        .render(backlog, oldest, health.outbox, &kept, &circuits);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `POST /v1/admin/reload` (admin scope): read the configuration file again
/// and switch routing, regions, categories and connectors to it, naming the
/// changes that wait for a restart; an invalid file is refused with every
/// error and the running configuration stays.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "operations",
    responses((status = 200, description = "Reloaded: the connectors now configured, and the start-only keys the file changed (`restart_needed`)", body = Object),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn reload(
    State(state): State<Arc<AppState>>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let reloaded = state.live.reload().await.map_err(|report| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_config", report)
    })?;
    Ok(axum::Json(serde_json::json!({
        "reloaded": true,
        "connectors": reloaded.connectors,
        "restart_needed": reloaded.restart_needed,
    })))
}

/// `GET /v1/admin/work` (admin scope): the work due now on every node, and
/// whether there is none (`quiet`). Nothing more happens on a quiet gateway
/// until the clock reaches what is scheduled or a request arrives: a drain
/// waits for it before taking nodes down, and a test before it checks that
/// nothing else was sent.
#[utoipa::path(get, path = "/v1/admin/work", tag = "operations",
    responses((status = 200, description = "{\"quiet\", \"due\": {\"deliveries\", \"events\", \"journey_runs\", \"broadcasts\", \"callbacks\"}}", body = Object),
              (status = 503, body = super::error::ErrorBody)))]
pub async fn work(
    State(state): State<Arc<AppState>>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let due = state
        .store
        .due_work(state.clock.now())
        .await
        .map_err(ApiError::from)?;
    Ok(axum::Json(
        serde_json::json!({"quiet": due.is_quiet(), "due": due}),
    ))
}

/// `200 ready` while the store takes a write, `503` otherwise (a load balancer
/// then sends traffic elsewhere); `/healthz` stays a cheap liveness check.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "The store answers", body = String), (status = 503, body = super::error::ErrorBody)))]
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping(state.clock.now()).await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            if e.is_transient() {
                crate::store::outage_log::transient(&e);
            } else {
                tracing::error!("not ready: {e}");
            }
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("the store cannot be written now ({})", e.reason()),
            );
            error.retry_after = Some(1);
            error.into_response()
        }
    }
}
