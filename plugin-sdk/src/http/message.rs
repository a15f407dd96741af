//! Requests and responses as plain data, so the transports (the sandbox's
//! `wasi:http` and the native test script) depend on them and not on each other.

use crate::Failure;
use base64::Engine as _;
use std::fmt;

/// An outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(url: &str) -> Self {
        Request::new("GET", url)
    }

    pub fn post(url: &str) -> Self {
        Request::new("POST", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Basic` with the given credentials.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", &format!("Basic {token}"))
    }

    /// `Authorization: Bearer` with the given token.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A form-encoded body (`application/x-www-form-urlencoded`).
    pub fn form<'a>(self, fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// A JSON body; the caller serialises it.
    pub fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A header value by case-insensitive name.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as text, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Retry-After` in milliseconds, when given as delay-seconds.
    ///
    /// The HTTP-date form is rare with messaging providers and is ignored:
    /// the gateway's own backoff applies then.
    pub fn retry_after_ms(&self) -> Option<u64> {
        let value = self.header("retry-after")?.trim();
        value
            .parse::<u64>()
            .ok()
            .map(|secs| secs.saturating_mul(1000))
    }

    /// The body as JSON. A provider that says "accepted" in words we cannot
    /// read is a permanent `unreadable_response`: sending again could deliver twice.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Failure::permanent(
                "unreadable_response",
                format!("HTTP {} answer is not the expected JSON: {e}", self.status),
            )
        })
    }

    /// The provider's refusal as a failure: its own code and words, read at
    /// the JSON pointers given (`"/error/code"`, `"/error/message"`), or
    /// `http_<status>` and the body's first 200 characters when the body
    /// has none; classified as [`Self::failure`] does.
    pub fn provider_failure(&self, code_at: &str, message_at: &str) -> Failure {
        let body = serde_json::from_slice::<serde_json::Value>(&self.body).ok();
        let field = |at: &str| {
            body.as_ref()
                .and_then(|b| b.pointer(at))
                .and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .filter(|v| !v.is_empty())
        };
        let code = field(code_at).unwrap_or_else(|| format!("http_{}", self.status));
        let message = field(message_at).unwrap_or_else(|| self.text().chars().take(200).collect());
        self.failure(code, message)
    }

    /// The usual classification of a status code: `429` and `5xx` can be
    /// retried (honouring `Retry-After`), everything else is permanent. A
    /// `429` without `Retry-After` asks for a second: the gateway pauses a
    /// rate-limited connector's every node that long.
    pub fn failure(&self, code: impl Into<String>, message: impl Into<String>) -> Failure {
        if self.status == 429 {
            let after = self.retry_after_ms().unwrap_or(TOO_MANY_REQUESTS_PAUSE_MS);
            Failure::retryable(code, message).with_retry_after_ms(Some(after))
        } else if self.status >= 500 {
            Failure::retryable(code, message).with_retry_after_ms(self.retry_after_ms())
        } else {
            Failure::permanent(code, message)
        }
    }
}

/// How long a `429` without `Retry-After` asks to wait.
const TOO_MANY_REQUESTS_PAUSE_MS: u64 = 1_000;

/// The request never produced a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub message: String,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A transport failure is worth retrying: the provider may not have seen the request.
impl From<HttpError> for Failure {
    fn from(err: HttpError) -> Self {
        Failure::retryable("http_error", err.message)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_the_providers_code_and_words() {
        let meta = Response::new(
            400,
            r#"{"error":{"code":131047,"message":"Re-engagement message"}}"#,
        );
        let f = meta.provider_failure("/error/code", "/error/message");
        assert_eq!(
            (f.code.as_str(), f.message.as_str()),
            ("131047", "Re-engagement message")
        );
        assert!(!f.retryable);
        let busy = Response::new(503, "upstream busy").with_header("retry-after", "2");
        let f = busy.provider_failure("/error/code", "/error/message");
        assert_eq!(
            (f.code.as_str(), f.message.as_str()),
            ("http_503", "upstream busy")
        );
        assert!(f.retryable);
        assert_eq!(f.retry_after_ms, Some(2000));
    }
}
