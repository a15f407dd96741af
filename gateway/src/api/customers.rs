//! Customer profiles: `PUT/GET/DELETE /v1/customers/{id}` and
//! `PATCH /v1/customers/{id}/consent`.

use super::body::{parse_json, read_body};
use super::messages::timestamp;
use super::{ApiError, AppState};
use crate::customer::{Consent, ConsentStatus, Profile};
use crate::message::Channel;
use crate::store::CustomerRecord;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A customer id from a path: [`crate::customer::check_id`].
pub(super) fn check_id(id: &str) -> Result<(), ApiError> {
    crate::customer::check_id(id).map_err(invalid)
}

fn invalid(e: crate::customer::Invalid) -> ApiError {
    ApiError::invalid(e.code, &e.field, e.message)
}

fn view(id: &str, record: &CustomerRecord) -> Value {
    let mut value = serde_json::to_value(&record.profile).unwrap_or(Value::Null);
    value["id"] = json!(id);
    value["created_at"] = json!(timestamp(record.created_at));
    value["updated_at"] = json!(timestamp(record.updated_at));
    value
}

#[utoipa::path(put, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "The platform's customer id")),
    request_body = Profile,
    responses((status = 201, description = "Created", body = Object), (status = 200, description = "Replaced", body = Object),
              (status = 422, body = super::error::ErrorBody)))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_id(&id)?;
    let profile: Profile = parse_json(&read_body(&state, body).await?)?;
    let now = state.clock.now();
    let profile = profile.validate(now).map_err(invalid)?;
    check_against_policy(&state, &profile)?;
    let created = state
        .store
        .put_customer(&id, profile.clone(), now)
        .await
        .map_err(ApiError::from)?;
    let record = state
        .store
        .customer(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::internal("customer vanished after write"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&id, &record))))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "The platform's customer id")),
    responses((status = 200, description = "The profile with id and times", body = Object), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_id(&id)?;
    let record = state
        .store
        .customer(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no customer {id:?}")))?;
    Ok(Json(view(&id, &record)))
}

#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "The platform's customer id")),
    responses((status = 204, description = "Erased"), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    if state
        .store
        .delete_customer(&id, state.clock.now())
        .await
        .map_err(ApiError::from)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no customer {id:?}")))
    }
}

/// A profile may only name regions and categories the gateway knows: an
/// unknown one would be stored and silently never match.
fn check_against_policy(state: &AppState, profile: &Profile) -> Result<(), ApiError> {
    state.live.current().policy.admits(profile).map_err(invalid)
}

/// `{"sms": {"marketing": {"status": "opted_out", "source": "support"}}}`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentChange {
    pub status: ConsentStatus,
    /// Defaults to now.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<jiff::Timestamp>,
    #[serde(default)]
    pub source: Option<String>,
}

#[utoipa::path(patch, path = "/v1/customers/{id}/consent", tag = "customers",
    params(("id" = String, Path, description = "The platform's customer id")),
    request_body(content = Object, description = "channel -> category -> ConsentChange"),
    responses((status = 200, description = "The customer's consent", body = Object), (status = 404, body = super::error::ErrorBody)))]
pub async fn patch_consent(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    check_id(&id)?;
    let changes: BTreeMap<Channel, BTreeMap<String, ConsentChange>> =
        parse_json(&read_body(&state, body).await?)?;
    let now = state.clock.now();
    let at_now = jiff::Timestamp::from_millisecond(now).map_err(ApiError::internal)?;
    let mut list = Vec::new();
    for (channel, by_category) in changes {
        for (category, change) in by_category {
            if !state
                .live
                .current()
                .policy
                .categories
                .contains_key(&category)
            {
                return Err(ApiError::invalid(
                    "unknown_category",
                    &format!("{channel}.{category}"),
                    format!("no category {category:?} is configured"),
                ));
            }
            list.push((
                channel,
                category,
                Consent {
                    status: change.status,
                    at: change.at.unwrap_or(at_now),
                    source: change.source,
                },
            ));
        }
    }
    let profile = state
        .store
        .update_consent(&id, list, now)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no customer {id:?}")))?;
    Ok(Json(json!({"id": id, "consent": profile.consent})))
}
