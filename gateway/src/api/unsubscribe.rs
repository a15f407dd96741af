//! `POST /u/{token}`: one-click unsubscribe (RFC 8058), as a mail client
//! sends it from the `List-Unsubscribe` header; `GET /u/{token}` shows a
//! page with the same button for a person who follows the link. Only the
//! POST changes anything: link scanners that fetch every URL in a mail must
//! not unsubscribe anyone.

use super::{ApiError, AppState};
use crate::customer::unsubscribe::{self, Refused, Unsubscribe};
use crate::customer::{Consent, ConsentStatus};
use crate::message::Channel;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[utoipa::path(post, path = "/u/{token}", tag = "unsubscribe", security(()),
    params(("token" = String, Path, description = "From the mail's List-Unsubscribe link")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "List-Unsubscribe=One-Click (RFC 8058)"),
    responses((status = 200, description = "The customer is opted out of the link's category on email", body = String),
              (status = 403, description = "Not a link this gateway signed; nothing changed", body = super::error::ErrorBody),
              (status = 410, description = "The link expired; nothing changed", body = super::error::ErrorBody)))]
pub async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let who = verify(&state, &token, now)?;
    let at = jiff::Timestamp::from_millisecond(now).map_err(ApiError::internal)?;
    let change = Consent {
        status: ConsentStatus::OptedOut,
        at,
        source: Some("one-click-unsubscribe".into()),
    };
    let updated = state
        .store
        .update_consent(
            &who.customer_id,
            vec![(Channel::Email, who.category.clone(), change)],
            now,
        )
        .await
        .map_err(ApiError::from)?;
    // A customer erased since the mail went gets nothing anyway.
    tracing::info!(
        customer_id = %who.customer_id,
        category = %who.category,
        known = updated.is_some(),
        "one-click unsubscribe"
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Unsubscribed: no more {} email.\n", who.category),
    )
        .into_response())
}

#[utoipa::path(get, path = "/u/{token}", tag = "unsubscribe", security(()),
    params(("token" = String, Path, description = "From the mail's List-Unsubscribe link")),
    responses((status = 200, description = "A page with an unsubscribe button; changes nothing", body = String),
              (status = 403, body = super::error::ErrorBody), (status = 410, body = super::error::ErrorBody)))]
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let who = verify(&state, &token, state.clock.now())?;
    // The token is base64url and a dot: nothing in it needs escaping, but
    // the category came from the configuration; escape it anyway.
    let category = super::page::escape(&who.category);
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>\
         <form method=post action=\"/u/{token}\">\
         <input type=hidden name=List-Unsubscribe value=One-Click>\
         <p>Stop receiving {category} email?</p><button>Unsubscribe</button></form>"
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response())
}

fn verify(state: &AppState, token: &str, now: i64) -> Result<Unsubscribe, ApiError> {
    let links = state.send.unsubscribe.as_ref().ok_or_else(|| {
        ApiError::not_found("unsubscribe links are off: [unsubscribe].secret is not set")
    })?;
    let who = unsubscribe::verify(&links.secret, token, now).map_err(|e| match e {
        Refused::Forged => ApiError::new(StatusCode::FORBIDDEN, "invalid_link", e.to_string()),
        Refused::Expired => ApiError::new(StatusCode::GONE, "link_expired", e.to_string()),
    })?;
    // A category removed since the mail went (or never configured) has no
    // consent to withdraw: saying "Unsubscribed" would be a false promise.
    if !state
        .live
        .current()
        .policy
        .categories
        .contains_key(&who.category)
    {
        return Err(ApiError::not_found(format!(
            "the link's category {:?} is not configured here; nothing changed",
            who.category
        )));
    }
    Ok(who)
}
