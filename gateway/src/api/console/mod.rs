//! The operator console at `/console`: pages the gateway renders itself
//! (no script, no build step), signed in with an API key that becomes a
//! session (see [`session`]). Every page reads through the same bounded
//! store queries as the API; every change is a form with the session's
//! CSRF check, offered only to admin sessions and refused to the others.

mod campaigns;
mod customers;
mod health;
mod journeys;
mod messages;
mod session;

use super::AppState;
use super::page::escape;
use crate::store::sessions::ConsoleSession;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/messages") }),
        )
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/messages", get(messages::search))
        .route("/console/messages/{id}", get(messages::timeline))
        .route("/console/customers", get(customers::find))
        .route("/console/customers/{id}", get(customers::show))
        .route(
            "/console/customers/{id}/consent",
            post(customers::change_consent),
        )
        .route(
            "/console/customers/{id}/suppression",
            post(customers::suppression),
        )
        .route("/console/customers/{id}/erase", post(customers::erase))
        .route("/console/broadcasts", get(campaigns::broadcasts))
        .route("/console/broadcasts/create", post(campaigns::create))
        .route("/console/broadcasts/{id}", get(campaigns::broadcast))
        .route("/console/broadcasts/{id}/cancel", post(campaigns::cancel))
        .route("/console/reports", get(campaigns::report))
        .route("/console/reports.csv", get(campaigns::report_csv))
        .route("/console/connectors", get(health::connectors))
        .route("/console/journeys", get(journeys::journeys))
        .route("/console/journey-runs/{id}", get(journeys::run))
        .route("/console/journeys/{name}/simulate", get(journeys::simulate))
        .route("/console/reload", post(health::reload))
}

/// A console page: the navigation, the operator's name and sign-out, and
/// `body`. The first Tab reaches a link past the navigation to the page
/// itself, and whatever has the keyboard's focus is outlined.
fn layout(session: &ConsoleSession, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Crossgate</title><style>{STYLE}</style>\
         <a class=skip href=\"#main\">Skip to the page</a>\
         <header><nav aria-label=Console><a href=\"/console/messages\">Messages</a>\
         <a href=\"/console/customers\">Customers</a><a href=\"/console/journeys\">Journeys</a><a href=\"/console/broadcasts\">Broadcasts</a>\
         <a href=\"/console/reports\">Reports</a><a href=\"/console/connectors\">Connectors</a></nav>\
         <form method=post action=\"/console/sign-out\"><span>{who} ({scope})</span>\
         <input type=hidden name=csrf value=\"{csrf}\"><button type=submit>Sign out</button></form></header>\
         <main id=main tabindex=-1><h1>{title}</h1>{body}</main></html>",
        title = escape(title),
        who = escape(&session.key_name),
        scope = if session.admin { "admin" } else { "read" },
        csrf = escape(&session.csrf),
    );
    html_response(StatusCode::OK, html)
}

/// A page that says one thing went wrong, with its status.
fn alert(session: &ConsoleSession, status: StatusCode, title: &str, what: &str) -> Response {
    let mut page = layout(
        session,
        title,
        &format!("<p role=alert>{}</p>", escape(what)),
    );
    *page.status_mut() = status;
    page
}

/// A change refused: a read session, or a form not from its own page.
fn refused(session: &ConsoleSession) -> Response {
    alert(
        session,
        StatusCode::FORBIDDEN,
        "Refused",
        "Not changed: this needs an admin session, and the form from its own page.",
    )
}

/// A change that could not be made, and why.
fn unprocessable(session: &ConsoleSession, why: &str) -> Response {
    alert(
        session,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Not changed",
        why,
    )
}

/// Nothing of that id.
fn not_found(session: &ConsoleSession, title: &str) -> Response {
    alert(
        session,
        StatusCode::NOT_FOUND,
        title,
        &format!("No such {}.", title.to_lowercase()),
    )
}

/// A customer's page (their id as a path segment).
fn customer_path(id: &str) -> String {
    format!(
        "/console/customers/{}",
        form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )
}

fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        html,
    )
        .into_response()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1c1c1e;background:#f6f6f7}\
header{display:flex;justify-content:space-between;align-items:center;padding:.6rem 1.2rem;background:#1f2a44;color:#fff}\
header a{color:#fff;margin-right:1rem}header form{display:flex;gap:.6rem;align-items:center}\
main{padding:1rem 1.2rem}table{border-collapse:collapse;width:100%;background:#fff}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e5e5ea;vertical-align:top}\
form.search{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin-bottom:1rem}\
label{display:flex;flex-direction:column;font-size:.85em}\
button{font:inherit;padding:.35rem .9rem;border-radius:.3rem;border:0;background:#2c5fd4;color:#fff}\
.reason{color:#6b6b70}.chosen{color:#1a7f37;font-weight:600}[role=alert]{color:#b42318}\
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}main:focus{outline:none}\
.skip{position:absolute;left:-9999px}.skip:focus{left:1rem;top:.4rem;background:#fff;color:#1c1c1e;padding:.3rem .6rem}";
