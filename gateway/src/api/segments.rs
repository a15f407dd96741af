//! `PUT /v1/segments/{name}`, `GET /v1/segments/{name}` and its count and
//! sample. A segment in the configuration (`[segments.<name>]`) is read
//! there first and cannot be replaced over the API.

use super::body::{parse_json, read_body};
use super::{ApiError, AppState};
use crate::campaigns;
use crate::config::segments::{self, Segment};
use crate::store::segments::SegmentQuery;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The most member ids a sample shows.
const MAX_SAMPLE: usize = 100;

pub use crate::campaigns::segments::Defined;

/// The segment named `name`, from the configuration or the store.
pub async fn find(state: &AppState, name: &str) -> Result<Option<Defined>, ApiError> {
    let routing = state.live.current();
    Ok(campaigns::segments::find(&*state.store, &routing, name).await?)
}

/// The segment named `name`, or a `404` that says so.
pub async fn require(state: &AppState, name: &str) -> Result<Defined, ApiError> {
    find(state, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no segment named {name:?}")))
}

/// The store's query for the segment named `name`, as of `now`.
pub async fn query(state: &AppState, name: &str, now: i64) -> Result<SegmentQuery, ApiError> {
    let defined = require(state, name).await?;
    Ok(campaigns::segments::query(
        defined.segment(),
        &state.live.current().policy,
        now,
    ))
}

#[utoipa::path(put, path = "/v1/segments/{name}", tag = "campaigns",
    params(("name" = String, Path)),
    request_body = Segment,
    responses((status = 201, description = "Created", body = Object), (status = 200, description = "Replaced", body = Object),
              (status = 409, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !crate::config::journeys::valid_name(&name) {
        return Err(ApiError::invalid(
            "invalid_segment",
            "name",
            "a segment's name is 1-64 letters, digits, '_', '.', '-' and ':'",
        ));
    }
    let bytes = read_body(&state, body).await?;
    let segment: Segment = parse_json(&bytes)?;
    let routing = state.live.current();
    if routing.segments.contains_key(&name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "segment_in_config",
            format!("segment {name:?} is defined in the configuration; change it there"),
        ));
    }
    let is_region = |region: &str| routing.policy.regions.values().any(|r| r == region);
    let problems = segments::check(
        &segment,
        &is_region,
        &routing.policy.categories,
        state.send.retention.events,
    );
    if let Some((field, why)) = problems.into_iter().next() {
        return Err(ApiError::invalid("invalid_segment", &field, why));
    }
    let definition = serde_json::to_string(&segment).map_err(ApiError::internal)?;
    let created = state
        .store
        .put_segment(&name, definition, state.clock.now())
        .await
        .map_err(ApiError::from)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"name": name, "segment": segment}))))
}

#[utoipa::path(get, path = "/v1/segments/{name}", tag = "campaigns",
    params(("name" = String, Path)),
    responses((status = 200, description = "The definition and where it lives (`config` or `api`)", body = Object),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let defined = require(&state, &name).await?;
    let source = match defined {
        Defined::Config(_) => "config",
        Defined::Api(_) => "api",
    };
    Ok(Json(
        json!({"name": name, "source": source, "segment": defined.segment()}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct CountQuery {
    sample: Option<usize>,
}

#[utoipa::path(get, path = "/v1/segments/{name}/count", tag = "campaigns",
    params(("name" = String, Path), ("sample" = Option<usize>, Query, description = "How many member ids to show (default 10, at most 100)")),
    responses((status = 200, description = "`{\"count\", \"sample\": [customer ids]}`, computed by the store now", body = Object),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn count(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(params): Query<CountQuery>,
) -> Result<Json<Value>, ApiError> {
    let query = query(&state, &name, state.clock.now()).await?;
    let sample = params.sample.unwrap_or(10).min(MAX_SAMPLE);
    let (count, members) = tokio::try_join!(
        state.store.segment_count(query.clone()),
        state.store.segment_members(query, String::new(), sample),
    )
    .map_err(ApiError::from)?;
    Ok(Json(
        json!({"name": name, "count": count, "sample": members}),
    ))
}
