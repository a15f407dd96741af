//! Events in, journeys out: `POST /v1/events`, the runs a customer is in,
//! one run's history, a journey's simulation and its manual clock (the
//! sends journeys make are `journeys::sends`).

use super::body::{parse_json, read_body};
use super::messages::timestamp;
use super::{ApiError, AppState, Caller};
use crate::journeys::engine::{self, Effect, Facts, Input, RunState, RunStatus, SendOutcome};
use crate::store::journeys::{EventInserted, NewEvent, RunRecord};
use crate::store::reports::NewConversion;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The largest `properties` object, as JSON.
const MAX_PROPERTIES_BYTES: usize = 16 * 1024;
/// Events in one batch.
const MAX_BATCH: usize = 1000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    pub customer_id: String,
    /// `cart_abandoned`, `purchase`: 1-64 of A-Z a-z 0-9 _ . - :
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// RFC 3339; default now.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// The same key names the same event: a retry stores nothing twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

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
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "invalid_batch",
            "events",
            format!("1-{MAX_BATCH} events"),
        ));
    }
    let caller = caller.map_or_else(|| "default".to_owned(), |Extension(c)| c.0);
    let now = state.clock.now();
    let conversions_config = state.live.current().conversions.clone();
    let mut events = Vec::with_capacity(requests.len());
    let mut conversions = Vec::new();
    let mut notes: Vec<(usize, String)> = Vec::new();
    for (i, request) in requests.into_iter().enumerate() {
        let at = |field: &str| {
            if batch {
                format!("events[{i}].{field}")
            } else {
                field.to_owned()
            }
        };
        // The event is the customer's fact and is stored whatever its value
        // says: a journey's exit must not hang on a reporting setting. A
        // conversion without a usable value is credited at none.
        let conversion = conversions_config.get(&request.name).map(|c| {
            let value = c.value_of(&Value::Object(request.properties.clone()));
            (c, value)
        });
        let event = validate(request, &caller, now, &at)?;
        if let Some((config, value)) = conversion {
            let value = value.inspect_err(|why| notes.push((i, why.clone()))).ok();
            conversions.push((
                i,
                NewConversion {
                    event_id: event.id.clone(),
                    customer_id: event.customer_id.clone(),
                    name: event.name.clone(),
                    value,
                    currency: config.currency.clone(),
                    occurred_at: event.occurred_at,
                    window_ms: config.window,
                },
            ));
        }
        events.push(event);
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let inserted = state
        .store
        .record_events(events)
        .await
        .map_err(ApiError::from)?;
    state.journeys_wake.notify_one();
    // Credited once the events are stored; a retried batch credits the
    // stored event, so a failure here is mended by the platform's retry.
    for (i, mut conversion) in conversions {
        if let Some(EventInserted::Duplicate { id }) = inserted.get(i) {
            conversion.event_id.clone_from(id);
        }
        state
            .store
            .record_conversion(conversion)
            .await
            .map_err(ApiError::from)?;
    }
    let answers: Vec<Value> = ids
        .into_iter()
        .zip(inserted)
        .enumerate()
        .map(|(i, (id, inserted))| {
            let mut answer = match inserted {
                EventInserted::New => json!({"id": id, "duplicate": false}),
                EventInserted::Duplicate { id } => json!({"id": id, "duplicate": true}),
            };
            if let Some((_, why)) = notes.iter().find(|(n, _)| *n == i) {
                answer["conversion_warning"] =
                    json!(format!("recorded as a conversion without value: {why}"));
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

fn validate(
    request: EventRequest,
    caller: &str,
    now: i64,
    at: &dyn Fn(&str) -> String,
) -> Result<NewEvent, ApiError> {
    super::customers::check_id(&request.customer_id).map_err(|e| e.field(at("customer_id")))?;
    if !crate::journeys::valid_name(&request.name) {
        return Err(ApiError::invalid(
            "invalid_event_name",
            &at("name"),
            "event names are 1-64 of A-Z a-z 0-9 _ . - :",
        ));
    }
    if crate::journeys::reserved_name(&request.name) {
        return Err(ApiError::invalid(
            "reserved_event_name",
            &at("name"),
            "names starting with `message.` are the gateway's own (provider reports, replies)",
        ));
    }
    let properties = serde_json::to_string(&request.properties).map_err(ApiError::internal)?;
    if properties.len() > MAX_PROPERTIES_BYTES {
        return Err(ApiError::invalid(
            "properties_too_large",
            &at("properties"),
            format!("properties are at most {MAX_PROPERTIES_BYTES} bytes of JSON"),
        ));
    }
    let occurred_at = match &request.occurred_at {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|e| {
                ApiError::invalid(
                    "invalid_time",
                    &at("occurred_at"),
                    format!("occurred_at must be RFC 3339: {e}"),
                )
            })?
            .as_millisecond(),
        None => now,
    };
    if let Some(key) = &request.idempotency_key
        && !super::idempotency::valid_key(key)
    {
        return Err(ApiError::invalid(
            "invalid_key",
            &at("idempotency_key"),
            "1-255 printable ASCII characters",
        ));
    }
    Ok(NewEvent {
        id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
        customer_id: request.customer_id,
        name: request.name,
        properties,
        occurred_at,
        received_at: now,
        idempotency_key: request
            .idempotency_key
            .map(|k| super::idempotency::scoped(caller, &k)),
    })
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

fn run_view(run: &RunRecord) -> Result<Value, ApiError> {
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
        Some(engine::Waiting::Event { name, timeout_at }) => {
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
    let routing = state.live.current();
    let pinned = routing
        .journeys
        .get(&name)
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
    timeline.sort_by_key(|(at, _)| *at);
    let profile = request.customer.unwrap_or_default();
    let profile_json = serde_json::to_value(&profile).map_err(ApiError::internal)?;
    let time_zone = profile.time_zone();
    let facts = Facts {
        profile: &profile_json,
        time_zone: &time_zone,
    };
    let journey = &pinned.config;
    let mut run = engine::start(Value::Object(request.properties));
    let mut effects = advance_or_fail(journey, &mut run, Input::Start, start, &facts)?;
    let mut next_event = 0;
    // Bounded: a journey's timers and the timeline end it, or this does.
    for _ in 0..1000 {
        for effect in effects.drain(..) {
            if let Effect::Send { step, record } = effect {
                let id = journey.steps[step].id.clone();
                let at = run.history.get(record).map_or(start, |r| r.at);
                engine::record_send(
                    &mut run,
                    &id,
                    record,
                    at,
                    SendOutcome::Accepted {
                        message_id: "simulated".into(),
                        status: "simulated".into(),
                        channel: None,
                    },
                );
            }
        }
        if run.status != RunStatus::Active {
            break;
        }
        let wake = run.waiting.as_ref().map(|w| w.wake_at());
        let event = timeline.get(next_event).copied();
        effects = match (wake, event) {
            (Some(wake), Some((at, _))) if wake < at => {
                advance_or_fail(journey, &mut run, Input::Tick, wake, &facts)?
            }
            (_, Some((at, name))) => {
                next_event += 1;
                advance_or_fail(journey, &mut run, Input::Event { name }, at, &facts)?
            }
            (Some(wake), None) => advance_or_fail(journey, &mut run, Input::Tick, wake, &facts)?,
            (None, None) => break,
        };
    }
    Ok(Json(json!({
        "journey": name,
        "version": pinned.version,
        "status": run.status.as_str(),
        "waiting": waiting_view(&run),
        "steps": run.steps,
        "history": history_view(&run),
    })))
}

fn advance_or_fail(
    journey: &crate::journeys::JourneyConfig,
    run: &mut RunState,
    input: Input<'_>,
    now: i64,
    facts: &Facts<'_>,
) -> Result<Vec<Effect>, ApiError> {
    engine::advance(journey, run, input, now, facts)
        .map_err(|e| ApiError::invalid("journey_error", "timeline", e))
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
    state.journeys_wake.notify_one();
    Ok(Json(json!({"now": timestamp(now)})))
}
