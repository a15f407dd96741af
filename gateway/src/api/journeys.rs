//! Events in, journeys out: `POST /v1/events`, the runs a customer is in,
//! one run's history, a journey's simulation and its manual clock (the
//! sends journeys make are `journeys::sends`).

use super::body::{parse_json, read_body};
use super::messages::timestamp;
use super::{ApiError, AppState, Caller};
use crate::journeys::engine::{self, Facts, RunState};
use crate::journeys::intake::{self, EventRequest};
use crate::journeys::simulate;
use crate::store::journeys::RunRecord;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// `{"events": [...]}`: nothing may stand beside the list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<EventRequest>,
}

/// One event or a batch, told apart by an `events` key, so each form is
/// parsed strictly and its error names what is wrong (an untagged enum would
/// let a batch with extra keys through, or answer "matched no variant").
fn parse_events(bytes: &[u8]) -> Result<(Vec<EventRequest>, bool), ApiError> {
    let object: Map<String, Value> = parse_json(bytes)?;
    let invalid = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid request body: {e}"),
        )
    };
    if object.contains_key("events") {
        let batch: Batch = serde_json::from_value(Value::Object(object)).map_err(invalid)?;
        Ok((batch.events, true))
    } else {
        let one: EventRequest = serde_json::from_value(Value::Object(object)).map_err(invalid)?;
        Ok((vec![one], false))
    }
}

#[utoipa::path(post, path = "/v1/events", tag = "journeys",
    request_body(content = EventRequest, description = "One event, or {\"events\": [...]} (at most 1000)"),
    responses((status = 202, description = "Stored durably: {\"id\", \"duplicate\"}, or {\"events\": [...]} for a batch", body = Object),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn events(
    State(state): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&state, body).await?;
    let (requests, batch) = parse_events(&bytes)?;
    let caller = caller.map_or_else(|| "default".to_owned(), |Extension(c)| c.0);
    let checked = intake::check(
        requests,
        batch,
        &caller,
        state.clock.now(),
        state.max_event_delay,
        &state.live.current().conversions,
    )
    .map_err(|e| ApiError::invalid(e.code, &e.field, e.message))?;
    let recorded = intake::record(&*state.store, checked)
        .await
        .map_err(ApiError::from)?;
    state.journeys_wake.notify_one();
    let answers: Vec<Value> = recorded
        .into_iter()
        .map(|r| {
            let mut answer = json!({"id": r.id, "duplicate": r.duplicate});
            if let Some(why) = r.conversion_warning {
                answer["conversion_warning"] = json!(why);
            }
            if let Some(why) = r.late_warning {
                answer["late_warning"] = json!(why);
            }
            answer
        })
        .collect();
    let body = if batch {
        json!({"events": answers})
    } else {
        answers.into_iter().next().unwrap_or_default()
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Runs listed per page unless `limit` says otherwise, and at most.
const RUNS_PAGE: usize = 20;
const MAX_RUNS_PAGE: usize = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Runs per page: 1-100, default 20.
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/journeys", tag = "journeys",
    params(("id" = String, Path, description = "The platform's customer id"), RunsQuery),
    responses((status = 200, description = "A page of the customer's journey runs, newest first, and `next` (the cursor of the following page, null on the last)", body = Object),
              (status = 400, body = super::error::ErrorBody)))]
pub async fn customer_runs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    super::customers::check_id(&id)?;
    let axum::extract::Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(RUNS_PAGE);
    if !(1..=MAX_RUNS_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit",
            format!("limit is 1-{MAX_RUNS_PAGE}"),
        ));
    }
    let runs = state
        .store
        .customer_runs_page(&id, limit, query.after.as_deref())
        .await
        .map_err(ApiError::from)?;
    let next = (runs.len() == limit)
        .then(|| runs.last().map(|r| r.id.clone()))
        .flatten();
    let runs: Vec<Value> = runs.iter().map(run_view).collect::<Result<_, _>>()?;
    Ok(Json(json!({"customer_id": id, "runs": runs, "next": next})))
}

#[utoipa::path(get, path = "/v1/journey-runs/{id}", tag = "journeys",
    params(("id" = String, Path, description = "A run id")),
    responses((status = 200, description = "The run: status, where it waits, every step with when, what and why", body = Object),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn run(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run = state
        .store
        .run(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no journey run {id:?}")))?;
    Ok(Json(run_view(&run)?))
}

/// A run as the API shows it (and the console reads it).
pub fn run_view(run: &RunRecord) -> Result<Value, ApiError> {
    let state: RunState = serde_json::from_str(&run.state).map_err(ApiError::internal)?;
    Ok(json!({
        "id": run.id,
        "journey": run.journey,
        "version": run.version,
        "customer_id": run.customer_id,
        "status": run.status,
        "started_at": timestamp(run.started_at),
        "updated_at": timestamp(run.updated_at),
        "waiting": waiting_view(&state),
        "event": state.event,
        "steps": state.steps,
        "history": history_view(&state),
    }))
}

fn waiting_view(state: &RunState) -> Value {
    match &state.waiting {
        Some(engine::Waiting::Until { at }) => json!({"until": timestamp(*at)}),
        Some(engine::Waiting::Digest {
            key, until, events, ..
        }) => {
            json!({"digest": key, "until": timestamp(*until), "count": events.len()})
        }
        Some(engine::Waiting::Throttled { at }) => {
            json!({"until": timestamp(*at), "throttled": true})
        }
        Some(engine::Waiting::Event {
            name, timeout_at, ..
        }) => {
            json!({"event": name, "until": timestamp(*timeout_at)})
        }
        None => Value::Null,
    }
}

fn history_view(state: &RunState) -> Vec<Value> {
    state
        .history
        .iter()
        .map(|r| json!({"step": r.step, "at": timestamp(r.at), "what": r.what, "why": r.why}))
        .collect()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// The customer as `PUT /v1/customers` takes it (conditions and time zone read it).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub customer: Option<crate::customer::Profile>,
    /// The trigger's properties.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// RFC 3339; default now.
    #[serde(default)]
    pub start: Option<String>,
    /// Whose arm of the journey's experiments to show (`steps.<id>.arm`);
    /// without it, every experiment step is shown as sending.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// What the customer does after the trigger: `{"name": "purchase", "after": "2d"}`.
    #[serde(default)]
    pub timeline: Vec<TimelineEvent>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelineEvent {
    pub name: String,
    /// A duration after the start.
    pub after: String,
}

#[utoipa::path(post, path = "/v1/journeys/{name}/simulate", tag = "journeys",
    params(("name" = String, Path, description = "A configured journey")),
    request_body = SimulateRequest,
    responses((status = 200, description = "The steps a run would take and when; nothing stored or sent", body = Object),
              (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn simulate(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: SimulateRequest = parse_json(&read_body(&state, body).await?)?;
    Ok(Json(simulated(&state, &name, request)?))
}

/// What a run of journey `name` would do (the API's and the console's).
pub fn simulated(
    state: &AppState,
    name: &str,
    request: SimulateRequest,
) -> Result<Value, ApiError> {
    let routing = state.live.current();
    let pinned = routing
        .journeys
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("no journey {name:?}")))?;
    let start = match &request.start {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|e| ApiError::invalid("invalid_time", "start", e.to_string()))?
            .as_millisecond(),
        None => state.clock.now(),
    };
    let mut timeline = Vec::with_capacity(request.timeline.len());
    for (i, event) in request.timeline.iter().enumerate() {
        let after = crate::routing::policy::parse_duration(&event.after).map_err(|e| {
            ApiError::invalid("invalid_duration", &format!("timeline[{i}].after"), e)
        })?;
        timeline.push((start.saturating_add(after), event.name.as_str()));
    }
    let profile = request.customer.unwrap_or_default();
    let profile_json = serde_json::to_value(&profile).map_err(ApiError::internal)?;
    let time_zone = profile.time_zone();
    let facts = Facts {
        profile: &profile_json,
        time_zone: &time_zone,
        // One run, played alone: only its own sends count against a throttle.
        sent_elsewhere: &[],
        feed_opened_at: None,
    };
    let properties = Value::Object(request.properties);
    let who = request
        .customer_id
        .as_deref()
        .map(|customer| (&*name, customer));
    let run = simulate::simulate(&pinned.config, properties, start, timeline, &facts, who)
        .map_err(|e| ApiError::invalid("journey_error", "timeline", e))?;
    Ok(json!({
        "journey": name,
        "version": pinned.version,
        "status": run.status.as_str(),
        "waiting": waiting_view(&run),
        "steps": run.steps,
        "history": history_view(&run),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    /// A duration to move the gateway's clock forward by, e.g. `"7d"`.
    pub advance: String,
}

#[utoipa::path(post, path = "/v1/admin/clock", tag = "journeys",
    request_body = ClockRequest,
    responses((status = 200, description = "The gateway's clock now: {\"now\"}", body = Object),
              (status = 409, description = "The clock is the system's ([clock] mode = \"system\"), or the duration is negative", body = super::error::ErrorBody)))]
pub async fn clock(
    State(state): State<Arc<AppState>>,
    _headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: ClockRequest = parse_json(&read_body(&state, body).await?)?;
    let ms = crate::routing::policy::parse_duration(&request.advance)
        .map_err(|e| ApiError::invalid("invalid_duration", "advance", e))?;
    let now = state
        .clock
        .advance(ms)
        .map_err(|why| ApiError::new(StatusCode::CONFLICT, "system_clock", why))?;
    // What came due (journey timers, escalations, retries) goes now.
    state.journeys_wake.notify_one();
    state.wake.notify_one();
    Ok(Json(json!({"now": timestamp(now)})))
}
