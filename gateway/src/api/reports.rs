//! What campaigns cost and brought: `GET /v1/reports/channels` (JSON, or
//! CSV with `format=csv`) and `GET /v1/conversions/{event_id}`, the message
//! a conversion was credited to.

use super::{ApiError, AppState};
use crate::store::reports::{ConversionRecord, ReportKey, ReportRow};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Without `from`, the report covers the last 30 days.
const DEFAULT_SPAN_MS: i64 = 30 * 86_400_000;
/// The longest period one report covers: a year and a day, so a year is
/// comparable with the one before, and no request reads the whole history.
const MAX_SPAN_MS: i64 = 366 * 86_400_000;

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
    format: Option<String>,
}

#[utoipa::path(get, path = "/v1/reports/channels", tag = "campaigns",
    params(("from" = Option<String>, Query, description = "RFC 3339; default 30 days before `to`"),
           ("to" = Option<String>, Query, description = "RFC 3339, exclusive; default now"),
           ("group_by" = Option<String>, Query, description = "Any of `channel`, `region`, `campaign`, comma-separated; default `channel`"),
           ("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses((status = 200, description = "Per group: sent, delivered, read, failed, suppressed, cost, conversions, revenue, cost_per_conversion, return_on_spend, delivery_rate, conversion_rate; and the totals", body = Object),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn channels(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let report = report(
        &state,
        query.from.as_deref(),
        query.to.as_deref(),
        query.group_by.as_deref().unwrap_or("channel"),
    )
    .await?;
    match query.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(report.json()).into_response()),
        "csv" => report.csv(),
        other => Err(ApiError::invalid(
            "invalid_format",
            "format",
            format!("{other:?}: json or csv"),
        )),
    }
}

/// A report over `[from, to)` grouped by `keys`: the API's and the console's.
pub struct Report {
    from: i64,
    to: i64,
    keys: Vec<ReportKey>,
    rows: Vec<ReportRow>,
}

impl Report {
    pub fn json(&self) -> Value {
        let keys = &self.keys;
        json!({
            "from": super::messages::timestamp(self.from),
            "to": super::messages::timestamp(self.to),
            "group_by": keys.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "rows": self.rows.iter().map(|r| row(keys, r)).collect::<Vec<_>>(),
            "totals": row(&[], &totals(&self.rows)),
        })
    }

    pub fn csv(&self) -> Result<Response, ApiError> {
        csv(&self.keys, &self.rows)
    }
}

/// The report the parameters ask for (RFC 3339 times, default the last 30
/// days; `group_by` as `channel,region`), checked and bounded.
pub async fn report(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
    group_by: &str,
) -> Result<Report, ApiError> {
    let now = state.clock.now();
    let to = time(to, "to")?.unwrap_or(now);
    let from = time(from, "from")?.unwrap_or(to - DEFAULT_SPAN_MS);
    if from >= to {
        return Err(ApiError::invalid(
            "invalid_range",
            "from",
            "from must be before to",
        ));
    }
    if to - from > MAX_SPAN_MS {
        return Err(ApiError::invalid(
            "invalid_range",
            "from",
            "a report covers at most 366 days: ask for several",
        ));
    }
    let keys = keys(group_by)?;
    let rows = state
        .store
        .channel_report(from, to, keys.clone(), now)
        .await?;
    Ok(Report {
        from,
        to,
        keys,
        rows,
    })
}

#[utoipa::path(get, path = "/v1/conversions/{event_id}", tag = "campaigns",
    params(("event_id" = String, Path, description = "The id `POST /v1/events` answered")),
    responses((status = 200, description = "The conversion, its value, and the last (credited) and first message delivered or read within its window, with channel, region, connector, campaign and template", body = Object),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn conversion(
    State(state): State<Arc<AppState>>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c: ConversionRecord = state
        .store
        .conversion(&event_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no conversion for event {event_id:?}")))?;
    Ok(Json(json!({
        "event_id": c.event_id,
        "customer_id": c.customer_id,
        "name": c.name,
        "value": c.value,
        "currency": c.currency,
        "occurred_at": super::messages::timestamp(c.occurred_at),
        "last_touch": c.last_message_id,
        "first_touch": c.first_message_id,
        "channel": c.channel,
        "region": c.region,
        "connector": c.connector,
        "campaign": c.campaign,
        "template": c.template,
    })))
}

fn time(text: Option<&str>, field: &str) -> Result<Option<i64>, ApiError> {
    text.map(|t| {
        t.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|e| ApiError::invalid("invalid_time", field, format!("RFC 3339: {e}")))
    })
    .transpose()
}

fn keys(text: &str) -> Result<Vec<ReportKey>, ApiError> {
    let mut keys = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let key = ReportKey::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "invalid_group_by",
                "group_by",
                format!("{name:?}: group by channel, region or campaign"),
            )
        })?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

fn totals(rows: &[ReportRow]) -> ReportRow {
    rows.iter().fold(ReportRow::default(), |mut t, r| {
        t.sent += r.sent;
        t.delivered += r.delivered;
        t.read += r.read;
        t.failed += r.failed;
        t.suppressed += r.suppressed;
        t.cost += r.cost;
        t.conversions += r.conversions;
        t.revenue += r.revenue;
        t
    })
}

/// `a / b`, or nothing when there is nothing to divide by.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// The figures an operator reads off one group.
fn figures(r: &ReportRow) -> [(&'static str, Value); 12] {
    [
        ("sent", json!(r.sent)),
        ("delivered", json!(r.delivered)),
        ("read", json!(r.read)),
        ("failed", json!(r.failed)),
        ("suppressed", json!(r.suppressed)),
        ("cost", json!(r.cost)),
        ("conversions", json!(r.conversions)),
        ("revenue", json!(r.revenue)),
        (
            "cost_per_conversion",
            json!(ratio(r.cost, r.conversions as f64)),
        ),
        ("return_on_spend", json!(ratio(r.revenue, r.cost))),
        (
            "delivery_rate",
            json!(ratio(r.delivered as f64, r.sent as f64)),
        ),
        (
            "conversion_rate",
            json!(ratio(r.conversions as f64, r.delivered as f64)),
        ),
    ]
}

fn row(keys: &[ReportKey], r: &ReportRow) -> Value {
    let mut out = serde_json::Map::new();
    for (key, value) in keys.iter().zip(&r.key) {
        out.insert(key.as_str().into(), json!(value));
    }
    for (name, value) in figures(r) {
        out.insert(name.into(), value);
    }
    Value::Object(out)
}

fn csv(keys: &[ReportKey], rows: &[ReportRow]) -> Result<Response, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = keys
        .iter()
        .map(|k| k.as_str())
        .chain(figures(&ReportRow::default()).iter().map(|(name, _)| *name))
        .collect();
    writer.write_record(&header).map_err(ApiError::internal)?;
    for r in rows {
        let cells: Vec<String> = r
            .key
            .iter()
            .map(|k| k.clone().unwrap_or_default())
            .chain(figures(r).into_iter().map(|(_, v)| match v {
                Value::Null => String::new(),
                v => v.to_string(),
            }))
            .collect();
        writer.write_record(&cells).map_err(ApiError::internal)?;
    }
    let body = writer.into_inner().map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}
