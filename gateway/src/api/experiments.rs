//! `GET /v1/reports/experiments?journey=&step=`: each arm of a journey
//! step's experiment, with its conversion rate and the uplift over the
//! holdout (JSON, or CSV with `format=csv`). The arithmetic is
//! [`crate::journeys::experiments::report`]'s.

use super::{ApiError, AppState};
use crate::journeys::experiments::{self, ArmReport};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Without `window`, and without `[conversions]` to take it from.
const DEFAULT_WINDOW_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Deserialize)]
pub struct ExperimentQuery {
    journey: Option<String>,
    step: Option<String>,
    window: Option<String>,
    format: Option<String>,
}

#[utoipa::path(get, path = "/v1/reports/experiments", tag = "journeys",
    params(("journey" = String, Query, description = "The journey"),
           ("step" = String, Query, description = "Its `send` step with `variants` or a `holdout`"),
           ("window" = Option<String>, Query, description = "Conversions this long after a customer's assignment count (default: the longest `[conversions]` window, else 7d)"),
           ("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses((status = 200, description = "Per arm: customers, sent, delivered, conversions, conversion_rate {rate, low, high}, uplift over the holdout {rate, low, high}, cost, cost_per_incremental_conversion", body = Object),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn report(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ExperimentQuery>,
) -> Result<Response, ApiError> {
    let required = |value: Option<String>, field: &str| {
        value
            .filter(|v| crate::journeys::valid_name(v))
            .ok_or_else(|| ApiError::invalid("invalid_query", field, format!("give {field}")))
    };
    let journey = required(query.journey, "journey")?;
    let step = required(query.step, "step")?;
    let window = match query.window.as_deref() {
        Some(text) => crate::routing::policy::parse_duration(text)
            .map_err(|e| ApiError::invalid("invalid_duration", "window", e))?,
        None => state
            .live
            .current()
            .conversions
            .values()
            .map(|c| c.window)
            .max()
            .unwrap_or(DEFAULT_WINDOW_MS),
    };
    let totals = state.store.arm_totals(&journey, &step, window).await?;
    let arms = experiments::report(&totals);
    match query.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(json!({
            "journey": journey,
            "step": step,
            "window": crate::routing::policy::humane(window),
            "arms": arms,
        }))
        .into_response()),
        "csv" => csv(&arms),
        other => Err(ApiError::invalid(
            "invalid_format",
            "format",
            format!("{other:?}: json or csv"),
        )),
    }
}

/// One line per arm; rates as fractions, an empty cell where there is no
/// figure (no holdout to compare with, no conversion added).
fn csv(arms: &[ArmReport]) -> Result<Response, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "arm",
            "customers",
            "sent",
            "delivered",
            "conversions",
            "conversion_rate",
            "conversion_rate_low",
            "conversion_rate_high",
            "uplift",
            "uplift_low",
            "uplift_high",
            "cost",
            "cost_per_incremental_conversion",
        ])
        .map_err(ApiError::internal)?;
    let cell = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    for arm in arms {
        let uplift = arm.uplift;
        writer
            .write_record([
                arm.arm.clone(),
                arm.customers.to_string(),
                arm.sent.to_string(),
                arm.delivered.to_string(),
                arm.conversions.to_string(),
                arm.conversion_rate.rate.to_string(),
                arm.conversion_rate.low.to_string(),
                arm.conversion_rate.high.to_string(),
                cell(uplift.map(|u| u.rate)),
                cell(uplift.map(|u| u.low)),
                cell(uplift.map(|u| u.high)),
                arm.cost.to_string(),
                cell(arm.cost_per_incremental_conversion),
            ])
            .map_err(ApiError::internal)?;
    }
    let body = writer.into_inner().map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}
