//! `POST /v1/cancellations`: a purchase cancels the abandoned-cart reminder.

use super::body::{parse_json, read_body};
use super::{ApiError, AppState, Caller};
use crate::message::MessageStatus;
use crate::send::e164;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub cancel_key: String,
    /// The customer the messages were sent to by `customer_id`.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Or the recipient they were sent to by address.
    #[serde(default)]
    pub to: Option<crate::send::Recipient>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CancelAnswer {
    pub cancel_key: String,
    pub cancelled: usize,
    pub cancelled_ids: Vec<String>,
    /// Messages with the key that were not cancelled, and why.
    pub not_cancelled: Vec<NotCancelled>,
    /// Of those, messages already sent whose escalation to a later channel
    /// was waiting: it is cancelled, so nothing more of them goes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub escalations_cancelled: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NotCancelled {
    pub id: String,
    pub status: &'static str,
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/cancellations", tag = "messages",
    request_body = CancelRequest,
    responses((status = 200, description = "What was cancelled and what could not be", body = CancelAnswer),
              (status = 400, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Result<(StatusCode, Json<CancelAnswer>), ApiError> {
    let caller = caller.map_or_else(|| "default".to_owned(), |Extension(c)| c.0);
    let bytes = read_body(&state, body).await?;
    let request: CancelRequest = parse_json(&bytes)?;
    let to = request.to.as_ref();
    let phone = to.and_then(|t| t.phone.as_deref());
    let email = to.and_then(|t| t.email.as_deref());
    let scope = match (&request.customer_id, phone, email) {
        (Some(customer), None, None) if !customer.is_empty() => format!("customer:{customer}"),
        (None, Some(phone), None) => format!("phone:{}", e164(phone)?),
        (None, None, Some(email)) => format!("email:{}", email.to_ascii_lowercase()),
        _ => {
            return Err(ApiError::invalid(
                "missing_recipient",
                "customer_id",
                "give exactly one of customer_id, to.phone or to.email",
            ));
        }
    };
    let now = state.clock.now();
    let mut report = state
        .store
        .cancel(
            &scope,
            &super::idempotency::scoped(&caller, &request.cancel_key),
            now,
        )
        .await
        .map_err(ApiError::from)?;
    // Messages accepted before keys were kept per caller carry the key as
    // written; the gateway's own (`journey:`, `broadcast:`) stay out of reach.
    if !super::idempotency::reserved(&request.cancel_key) {
        let legacy = state
            .store
            .cancel(&scope, &request.cancel_key, now)
            .await
            .map_err(ApiError::from)?;
        report.cancelled.extend(legacy.cancelled);
        report.not_cancelled.extend(legacy.not_cancelled);
        report.escalation_ended.extend(legacy.escalation_ended);
    }
    Ok((
        StatusCode::OK,
        Json(CancelAnswer {
            cancel_key: request.cancel_key,
            cancelled: report.cancelled.len(),
            cancelled_ids: report.cancelled,
            escalations_cancelled: report.escalation_ended,
            not_cancelled: report
                .not_cancelled
                .into_iter()
                .map(|(id, status)| NotCancelled {
                    id,
                    status: status.as_str(),
                    reason: why_not(status),
                })
                .collect(),
        }),
    ))
}

fn why_not(status: MessageStatus) -> String {
    match status {
        MessageStatus::Sent => "already handed to the provider; it is not recalled".into(),
        MessageStatus::Sending => {
            "an attempt is in flight at the provider; it is not recalled".into()
        }
        other => format!("already {}", other.as_str()),
    }
}
