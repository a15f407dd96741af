//! Vonage's SMS API: `POST /sms/json`, form encoded, the key and secret
//! in the form. Vonage answers `200` whatever happened and says per part
//! what became of it (`status` `0` taken, `1` throttled, `2` a missing
//! parameter, `4` bad credentials, `5` an internal error, ...), so the
//! simulator does too, after the checks Vonage documents for each field.
//! Text beyond GSM-7 sent as `type=text` is refused here (Vonage would
//! deliver question marks): a connector that forgets `unicode` is caught.

use super::{Dialect, SimState, misbehave, record};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The account the default Vonage connector of the tests uses.
pub const DEFAULT_API_KEY: &str = "a1b2c3d4";
pub const DEFAULT_API_SECRET: &str = "simulatorSecret1";

/// Fields of `/sms/json` as Vonage documents them; anything else is refused.
const FIELDS: &[&str] = &[
    "api_key",
    "api_secret",
    "sig",
    "from",
    "to",
    "text",
    "type",
    "ttl",
    "status-report-req",
    "callback",
    "message-class",
    "body",
    "udh",
    "protocol-id",
    "client-ref",
    "account-ref",
    "entity-id",
    "content-id",
];

fn refused(_: StatusCode, status: u32, text: &str) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({
            "message-count": "1",
            "messages": [{"status": status.to_string(), "error-text": text}],
        })),
    )
        .into_response()
}

const VONAGE: Dialect = Dialect {
    error: refused,
    outage: (5, "Internal Error"),
    rate_limited: (1, "Throughput Rate Exceeded - please wait [ 30 ] and retry"),
};

/// GSM 03.38's basic table and its extension, as handsets show them.
const GSM_7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà\u{0C}^{}\\[~]|€";

/// Parts a text takes: 160 (153 when split) GSM-7 characters, 70 (67) otherwise.
fn parts(text: &str, unicode: bool) -> usize {
    let (one, each) = if unicode { (70, 67) } else { (160, 153) };
    let n = if unicode {
        text.encode_utf16().count()
    } else {
        text.chars().count()
    };
    if n <= one { 1 } else { n.div_ceil(each) }
}

pub(crate) async fn send(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    record(
        &state,
        "/sms/json".to_owned(),
        &headers,
        &body,
        form.clone(),
    );
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some((unknown, _)) = form.iter().find(|(k, _)| !FIELDS.contains(&k.as_str())) {
        return refused(
            StatusCode::OK,
            3,
            &format!("Invalid Params: unknown parameter {unknown}"),
        );
    }
    let behaviour = {
        let mut accounts = state.accounts.lock().expect("sim lock");
        let account = field("api_key").and_then(|key| accounts.get_mut(key));
        match account {
            Some(a) if field("api_secret") == Some(a.auth_token.as_str()) => {
                a.script.pop_front().unwrap_or_else(|| a.default.clone())
            }
            _ => return refused(StatusCode::OK, 4, "Bad Credentials"),
        }
    };
    for required in ["from", "to", "text"] {
        if field(required).is_none_or(str::is_empty) {
            return refused(StatusCode::OK, 2, &format!("Missing {required}"));
        }
    }
    let to = field("to").unwrap_or_default();
    if !(7..=15).contains(&to.len()) || !to.bytes().all(|b| b.is_ascii_digit()) {
        return refused(
            StatusCode::OK,
            3,
            "Invalid to: digits only, in international format without +",
        );
    }
    let from = field("from").unwrap_or_default();
    let sender_ok = (from.len() <= 11 && from.chars().all(|c| c.is_ascii_alphanumeric()))
        || (from.len() <= 15 && from.bytes().all(|b| b.is_ascii_digit()));
    if !sender_ok {
        return refused(StatusCode::OK, 15, "Illegal Sender Address - rejected");
    }
    let unicode = match field("type").unwrap_or("text") {
        "text" => false,
        "unicode" => true,
        other => return refused(StatusCode::OK, 3, &format!("Invalid type {other}")),
    };
    let text = field("text").unwrap_or_default();
    if !unicode && !text.chars().all(|c| GSM_7.contains(c)) {
        return refused(
            StatusCode::OK,
            6,
            "Invalid Message: text beyond GSM-7 needs type=unicode",
        );
    }
    if field("client-ref").is_some_and(|r| r.len() > 100) {
        return refused(
            StatusCode::OK,
            3,
            "Invalid client-ref: at most 100 characters",
        );
    }
    if let Some(callback) = field("callback")
        && !(callback.starts_with("https://") || callback.starts_with("http://"))
    {
        return refused(StatusCode::OK, 23, "Invalid Callback Url");
    }
    if let Some(response) = misbehave(behaviour, &VONAGE).await {
        return response;
    }
    let count = parts(text, unicode);
    let messages: Vec<_> = (0..count)
        .map(|_| {
            let n = state.next_sid.fetch_add(1, Ordering::Relaxed);
            json!({
                "to": to,
                "message-id": format!("0A{n:014X}"),
                "status": "0",
                "remaining-balance": "10.00000000",
                "message-price": "0.03330000",
                "network": "20416",
                "client-ref": field("client-ref"),
            })
        })
        .collect();
    (
        StatusCode::OK,
        axum::Json(json!({"message-count": count.to_string(), "messages": messages})),
    )
        .into_response()
}

/// The id of part `k` (0 the first) of a message whose first part is
/// `first`: the simulator numbers one message's parts in a row, as Vonage's
/// own ids for one send follow each other.
pub fn part_id(first: &str, k: u64) -> String {
    let n = u64::from_str_radix(first.trim_start_matches("0A"), 16).expect("a simulator id");
    format!("0A{:014X}", n + k)
}
