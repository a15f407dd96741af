//! The customer's own preference page, `GET/POST /p/{token}` (a signed,
//! expiring link templates get as `{{ preferences_url }}`), and the same
//! choices as JSON for platforms that draw their own page,
//! `GET/PUT /v1/customers/{id}/preferences`. What may be chosen and what a
//! choice writes is [`crate::preferences`]'s.

use super::page::{escape, page};
use super::{ApiError, AppState};
use crate::customer::signed::{self, Purpose, Refused};
use crate::message::Channel;
use crate::preferences::{self, CategoryChoice};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The page's own words, per language ([`preferences::LOCALES`]).
struct Words {
    title: &'static str,
    intro: &'static str,
    save: &'static str,
    saved: &'static str,
    nothing: &'static str,
    expired: &'static str,
    forged: &'static str,
}

fn words(language: &str) -> Words {
    if language == "nl" {
        Words {
            title: "Jouw berichten",
            intro: "Kies wat we je sturen, en waar.",
            save: "Opslaan",
            saved: "Opgeslagen.",
            nothing: "Er is niets te kiezen: we kunnen je nergens bereiken.",
            expired: "Deze link is verlopen. Gebruik de link in een nieuwer bericht.",
            forged: "Deze link is niet geldig.",
        }
    } else {
        Words {
            title: "Your messages",
            intro: "Choose what we send you, and where.",
            save: "Save",
            saved: "Saved.",
            nothing: "There is nothing to choose: we have no way to reach you.",
            expired: "This link has expired. Use the link in a more recent message.",
            forged: "This link is not valid.",
        }
    }
}

/// The customer a page link names, or the status and words that say why not.
fn customer_of(state: &AppState, token: &str) -> Result<String, (StatusCode, &'static str)> {
    let forged = (StatusCode::FORBIDDEN, words("en").forged);
    let links = state.send.unsubscribe.as_ref().ok_or(forged)?;
    match signed::verify(
        &links.secret,
        Purpose::Preferences,
        token,
        state.clock.now(),
    ) {
        Ok((fields, _)) => fields.into_iter().next().ok_or(forged),
        Err(Refused::Forged) => Err(forged),
        Err(Refused::Expired) => Err((StatusCode::GONE, words("en").expired)),
    }
}

/// The page that says why a link is refused.
fn refused((status, text): (StatusCode, &str)) -> Response {
    page(status, "en", "Preferences", &format!("<p>{text}</p>"))
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    saved: Option<String>,
}

#[utoipa::path(get, path = "/p/{token}", tag = "preferences", security(()),
    params(("token" = String, Path, description = "From a message's preferences_url")),
    responses((status = 200, description = "The customer's categories against their channels, as a form (no JavaScript)", body = String),
              (status = 403, description = "Not a link this gateway signed", body = String),
              (status = 410, description = "The link expired", body = String)))]
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let customer_id = match customer_of(&state, &token) {
        Ok(id) => id,
        Err(why) => return refused(why),
    };
    match state.store.customer(&customer_id).await {
        Ok(Some(record)) => {
            let language = preferences::language(record.profile.locale.as_deref());
            let choices = current(&state, &record.profile);
            let check = state
                .send
                .unsubscribe
                .as_ref()
                .map(|links| signed::form_check(&links.secret, &token))
                .unwrap_or_default();
            let saved = query.saved.is_some();
            page(
                StatusCode::OK,
                language,
                words(language).title,
                &form(&token, &check, &choices, language, saved),
            )
        }
        Ok(None) => page(
            StatusCode::NOT_FOUND,
            "en",
            "Preferences",
            &format!("<p>{}</p>", words("en").nothing),
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn current(state: &AppState, profile: &crate::customer::Profile) -> Vec<CategoryChoice> {
    preferences::choices(
        profile,
        &state.live.current().policy,
        state.feed_tokens.is_some(),
    )
}

/// The form: a fieldset per category, a checkbox per channel. Each box
/// also names itself in a hidden `shown` field, so an unticked box (which a
/// form does not send) is read as "no", not as "not asked".
fn form(
    token: &str,
    check: &str,
    choices: &[CategoryChoice],
    language: &str,
    saved: bool,
) -> String {
    let w = words(language);
    let mut html = format!("<h1>{}</h1><p>{}</p>", w.title, w.intro);
    if saved {
        html += &format!("<p role=status>{}</p>", w.saved);
    }
    if choices.iter().all(|c| c.channels.is_empty()) {
        html += &format!("<p>{}</p>", w.nothing);
        return html;
    }
    html += &format!(
        "<form method=post action=\"/p/{}\"><input type=hidden name=check value=\"{}\">",
        escape(token),
        escape(check)
    );
    for category in choices {
        html += &format!("<fieldset><legend>{}</legend>", escape(&category.title));
        if let Some(description) = &category.description {
            html += &format!("<p>{}</p>", escape(description));
        }
        for choice in &category.channels {
            let cell = format!("{}.{}", choice.channel, category.name);
            html += &format!(
                "<label><input type=checkbox name=c value=\"{cell}\"{}> {}</label>\
                 <input type=hidden name=shown value=\"{cell}\">",
                if choice.subscribed { " checked" } else { "" },
                escape(choice.label),
                cell = escape(&cell),
            );
        }
        html += "</fieldset>";
    }
    html += &format!("<button type=submit>{}</button></form>", w.save);
    html
}

#[utoipa::path(post, path = "/p/{token}", tag = "preferences", security(()),
    params(("token" = String, Path, description = "From a message's preferences_url")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "The page's form: check, shown and c fields"),
    responses((status = 303, description = "Saved: back to the page"),
              (status = 403, description = "Not this gateway's link, or a post from another site", body = String),
              (status = 410, description = "The link expired", body = String),
              (status = 422, description = "A choice the page did not offer", body = String)))]
pub async fn save(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let customer_id = match customer_of(&state, &token) {
        Ok(id) => id,
        Err(why) => return refused(why),
    };
    let cross_site = || {
        page(
            StatusCode::FORBIDDEN,
            "en",
            "Preferences",
            "<p>This form can only be sent from its own page.</p>",
        )
    };
    if super::page::from_another_site(&headers) {
        return cross_site();
    }
    let body = match super::body::read_body(&state, body).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let mut check = None;
    let (mut shown, mut ticked) = (BTreeSet::new(), BTreeSet::new());
    for (key, value) in super::page::form(&body) {
        match key.as_str() {
            "check" => check = Some(value),
            "shown" => {
                shown.insert(value);
            }
            "c" => {
                ticked.insert(value);
            }
            _ => {}
        }
    }
    let links = state.send.unsubscribe.as_ref();
    let checked = links
        .zip(check)
        .is_some_and(|(links, check)| signed::form_check_holds(&links.secret, &token, &check));
    if !checked {
        return cross_site();
    }
    let mut wanted: BTreeMap<Channel, BTreeMap<String, bool>> = BTreeMap::new();
    for cell in &shown {
        let Some((channel, category)) = cell
            .split_once('.')
            .and_then(|(c, k)| Some((c.parse::<Channel>().ok()?, k)))
        else {
            return unprocessable(&format!("{cell:?} is not a choice of this page"));
        };
        wanted
            .entry(channel)
            .or_default()
            .insert(category.to_owned(), ticked.contains(cell));
    }
    match apply(&state, &customer_id, &wanted).await {
        Ok(_) => Redirect::to(&format!("/p/{token}?saved=1")).into_response(),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => unprocessable(&e.message),
        Err(e) => e.into_response(),
    }
}

fn unprocessable(why: &str) -> Response {
    page(
        StatusCode::UNPROCESSABLE_ENTITY,
        "en",
        "Preferences",
        &format!("<p>Nothing was saved: {}</p>", escape(why)),
    )
}

/// Write what `wanted` changes, stamped now, with the page's source.
async fn apply(
    state: &AppState,
    customer_id: &str,
    wanted: &BTreeMap<Channel, BTreeMap<String, bool>>,
) -> Result<Vec<CategoryChoice>, ApiError> {
    let record = state
        .store
        .customer(customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no customer {customer_id:?}")))?;
    let now = state.clock.now();
    let at = jiff::Timestamp::from_millisecond(now).map_err(ApiError::internal)?;
    let before = current(state, &record.profile);
    let changes = preferences::changes(&before, wanted, at)
        .map_err(|e| ApiError::invalid("not_offered", &e.field, e.message))?;
    if changes.is_empty() {
        return Ok(before);
    }
    let count = changes.len();
    let profile = state
        .store
        .update_consent(customer_id, changes, now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no customer {customer_id:?}")))?;
    tracing::info!(customer_id, changes = count, "preferences saved");
    Ok(current(state, &profile))
}

#[utoipa::path(get, path = "/v1/customers/{id}/preferences", tag = "customers",
    params(("id" = String, Path, description = "The platform's customer id")),
    responses((status = 200, description = "What the preference page shows: each category, on each channel the customer has, subscribed or not", body = Object),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    super::customers::check_id(&id)?;
    let record = state
        .store
        .customer(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no customer {id:?}")))?;
    Ok(Json(
        json!({"customer_id": id, "categories": current(&state, &record.profile)}),
    ))
}

#[utoipa::path(put, path = "/v1/customers/{id}/preferences", tag = "customers",
    params(("id" = String, Path, description = "The platform's customer id")),
    request_body(content = Object, description = "Channel -> category -> subscribed, e.g. {\"sms\": {\"marketing\": false}}"),
    responses((status = 200, description = "The choices as they are now", body = Object),
              (status = 404, body = super::error::ErrorBody),
              (status = 422, description = "A category or channel the customer cannot choose", body = super::error::ErrorBody)))]
pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    super::customers::check_id(&id)?;
    let wanted: BTreeMap<Channel, BTreeMap<String, bool>> =
        super::body::parse_json(&super::body::read_body(&state, body).await?)?;
    let choices = apply(&state, &id, &wanted).await?;
    Ok(Json(json!({"customer_id": id, "categories": choices})))
}
