//! The few pages the gateway shows people itself (unsubscribe, the
//! preference page): one shell, escaped text, no scripts.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Text for HTML, attribute values included.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A whole page around `body` (already HTML). No script runs on it, and it
/// may not be framed: a page that changes consent must not be clickjacked.
pub fn page(status: StatusCode, lang: &str, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style><main>{body}</main></html>",
        lang = escape(lang),
        title = escape(title),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
            // The page's URL holds its token: no other site sees it. (Not
            // `no-referrer`: a browser then posts the form with `Origin:
            // null`, which reads as a post from nowhere.)
            (header::REFERRER_POLICY, "same-origin"),
        ],
        html,
    )
        .into_response()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f7;color:#1c1c1e}\
main{max-width:40rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.5rem}\
fieldset{border:1px solid #d8d8dc;border-radius:.4rem;margin:1rem 0;padding:.75rem 1rem}\
legend{font-weight:600}label{display:block;padding:.3rem 0}\
button{font:inherit;padding:.5rem 1.2rem;border-radius:.4rem;border:0;background:#2c5fd4;color:#fff}\
[role=status]{background:#e7f5ea;padding:.5rem .75rem;border-radius:.4rem}";

/// Whether a browser says a post came from another site's page (its
/// `Sec-Fetch-Site`, or an `Origin` that is not this gateway's): refused
/// before any form check, which refuses it too.
pub fn from_another_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            origin.split_once("://").map(|(_, authority)| authority) != Some(host)
        }
        _ => false,
    }
}

/// A form post's fields, in order (a key may repeat: a ticked box each).
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}
